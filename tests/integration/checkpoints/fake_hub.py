"""A local HTTP server speaking the Hugging Face Hub's REST and file protocol (the Hub's response shapes).

Repos, commits and files live in memory; responses carry the fields huggingface.co returns (see
hub_responses/model_info_smollm2.json, a hand-written model-info response in the Hub's shape). Faults (429 with
Retry-After, 5xx) can be queued per path, and every request is recorded so tests can assert how the client behaved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]
    title: str
    date: dt.datetime


@dataclass
class Repo:
    repo_id: str
    commits: list[Commit] = field(default_factory=list)  # newest first
    refs: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    license: str | None = "apache-2.0"
    created_at: dt.datetime = dt.datetime(2024, 10, 31, 13, 42, 8, tzinfo=dt.UTC)


@dataclass
class Fault:
    pattern: re.Pattern[str]
    statuses: list[int]
    headers: dict[str, str]
    forever: bool


def _blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _f32_count(safetensors: bytes) -> int:
    header_length = int.from_bytes(safetensors[:8], "little") if len(safetensors) >= 8 else 0
    return max(0, (len(safetensors) - 8 - header_length) // 4)


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[str | None] = []
        # A misbehaving mirror: claim this commit in file responses (X-Repo-Commit) / in model info ("sha").
        self.files_claim_commit: str | None = None
        self.info_claims_commit: str | None = None
        self._lock = threading.Lock()
        self._clock = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ content

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        title: str = "Upload",
        ref: str = "main",
        tags: list[str] | None = None,
    ) -> str:
        """Add a commit (the full file set at that commit) on ``ref``; returns its 40-hex SHA."""
        with self._lock:
            repo = self.repos.setdefault(repo_id, Repo(repo_id))
            if tags is not None:
                repo.tags = tags
            self._clock += dt.timedelta(hours=1)
            parent = repo.refs.get(ref, "")
            digest = hashlib.sha1(f"{repo_id}\0{parent}\0{title}\0{self._clock}".encode())
            for path in sorted(files):
                digest.update(path.encode() + b"\0" + files[path])
            sha = digest.hexdigest()
            repo.commits.insert(0, Commit(sha, dict(files), title, self._clock))
            repo.refs[ref] = sha
            return sha

    def fail(
        self, path_regex: str, statuses: list[int], *, headers: dict[str, str] | None = None, forever: bool = False
    ) -> None:
        """Answer the next requests whose path matches with these statuses (or always, with ``forever``)."""
        self.faults.append(Fault(re.compile(path_regex), list(statuses), headers or {}, forever))

    def count(self, path_regex: str) -> int:
        """How many requests hit a path (query string excluded) matching ``path_regex``."""
        return sum(1 for _, path in self.requests if re.search(path_regex, unquote(urlparse(path).path)))

    # ------------------------------------------------------------------ responses

    def _resolve(self, repo: Repo, rev: str) -> Commit | None:
        sha = repo.refs.get(rev, rev)
        return next((c for c in repo.commits if c.sha == sha), None)

    def _sibling(self, path: str, content: bytes, blobs: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"rfilename": path}
        if blobs:
            entry["blobId"] = _blob_id(content)
            entry["size"] = len(content)
            if path.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content), "pointerSize": 134}
        return entry

    def model_json(self, repo: Repo, commit: Commit, *, blobs: bool = False) -> dict[str, Any]:
        config = json.loads(commit.files["config.json"]) if "config.json" in commit.files else None
        params = sum(_f32_count(v) for k, v in commit.files.items() if k.endswith(".safetensors"))
        data: dict[str, Any] = {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.sha,
            "lastModified": _iso(commit.date),
            "private": False,
            "disabled": False,
            "gated": False,
            "pipeline_tag": "text-generation",
            "tags": repo.tags,
            "downloads": 1234,
            "library_name": "transformers",
            "likes": 7,
            "createdAt": _iso(repo.created_at),
            "cardData": {"license": repo.license, "language": ["en"]} if repo.license else None,
            "siblings": [self._sibling(p, c, blobs) for p, c in sorted(commit.files.items())],
            "spaces": [],
        }
        if config is not None:
            data["config"] = {k: config[k] for k in ("architectures", "model_type", "auto_map") if k in config}
        if params:
            data["safetensors"] = {"parameters": {"F32": params}, "total": params}
        return data

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve(head=False)

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def _send(
                self,
                status: int,
                body: bytes = b"",
                headers: dict[str, str] | None = None,
                head: bool = False,
                content_type: str = "application/json",
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(data).encode(), headers)

            def _error(self, status: int, code: str, message: str, head: bool = False) -> None:
                body = json.dumps({"error": message}).encode()
                self._send(status, body, {"X-Error-Code": code, "X-Error-Message": message}, head)

            def _serve(self, head: bool) -> None:
                url = urlparse(self.path)
                path = unquote(url.path)
                query = parse_qs(url.query)
                with hub._lock:
                    hub.requests.append((self.command, self.path))
                    hub.authorizations.append(self.headers.get("Authorization"))
                    for fault in hub.faults:
                        if fault.pattern.search(path) and fault.statuses:
                            status = fault.statuses[0] if fault.forever else fault.statuses.pop(0)
                            body = json.dumps({"error": f"injected {status}"}).encode()
                            self._send(status, body, fault.headers, head)
                            return
                try:
                    self._route(path, query, head)
                except KeyError as exc:
                    self._error(404, "EntryNotFound", f"not found: {exc}", head)

            def _route(self, path: str, query: dict[str, list[str]], head: bool) -> None:
                if path == "/api/models":
                    return self._list_models(query)
                match = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
                if match:
                    repo, commit = self._repo_commit(match.group(1), match.group(2) or "main", head)
                    if repo and commit:
                        data = hub.model_json(repo, commit, blobs="blobs" in query)
                        data["sha"] = hub.info_claims_commit or data["sha"]
                        self._json(200, data)
                    return None
                match = re.fullmatch(r"/api/models/([^/]+/[^/]+)/commits/([^/]+)", path)
                if match:
                    return self._commits(match.group(1), match.group(2))
                match = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
                if match:
                    repo, commit = self._repo_commit(match.group(1), match.group(2), head)
                    if repo and commit:
                        self._json(
                            200,
                            [
                                {
                                    "type": "file",
                                    "oid": _blob_id(c),
                                    "size": len(c),
                                    "path": p,
                                    **(
                                        {
                                            "lfs": {
                                                "oid": hashlib.sha256(c).hexdigest(),
                                                "size": len(c),
                                                "pointerSize": 134,
                                            }
                                        }
                                        if p.endswith(LFS_SUFFIXES)
                                        else {}
                                    ),
                                }
                                for p, c in sorted(commit.files.items())
                            ],
                        )
                    return None
                match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
                if match:
                    return self._resolve_file(match.group(1), match.group(2), match.group(3), head)
                self._error(404, "NotFound", f"no route {path}", head)
                return None

            def _repo_commit(self, repo_id: str, rev: str, head: bool) -> tuple[Repo | None, Commit | None]:
                repo = hub.repos.get(repo_id)
                if repo is None:
                    self._error(404, "RepoNotFound", f"Repository {repo_id} not found", head)
                    return None, None
                commit = hub._resolve(repo, rev)
                if commit is None:
                    self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
                    return repo, None
                return repo, commit

            def _list_models(self, query: dict[str, list[str]]) -> None:
                author = (query.get("author") or [None])[0]
                search = (query.get("search") or [None])[0]
                filters = query.get("filter") or []
                limit = int((query.get("limit") or ["1000"])[0])
                found = []
                for repo in sorted(hub.repos.values(), key=lambda r: r.commits[0].date, reverse=True):
                    if author and repo.repo_id.split("/")[0] != author:
                        continue
                    if search and search.lower() not in repo.repo_id.lower():
                        continue
                    if any(f not in repo.tags for f in filters):
                        continue
                    data = hub.model_json(repo, repo.commits[0])
                    data.pop("siblings")
                    found.append(data)
                self._json(200, found[:limit])

            def _commits(self, repo_id: str, rev: str) -> None:
                repo, commit = self._repo_commit(repo_id, rev, False)
                if repo is None or commit is None:
                    return
                start = repo.commits.index(commit)
                self._json(
                    200,
                    [
                        {
                            "id": c.sha,
                            "title": c.title,
                            "message": "",
                            "authors": [{"user": "uploader", "avatar": None}],
                            "date": _iso(c.date),
                        }
                        for c in repo.commits[start:]
                    ],
                )

            def _resolve_file(self, repo_id: str, rev: str, file_path: str, head: bool) -> None:
                repo, commit = self._repo_commit(repo_id, rev, head)
                if repo is None or commit is None:
                    return
                if file_path not in commit.files:
                    self._error(404, "EntryNotFound", f"{file_path} does not exist at {rev}", head)
                    return
                content = commit.files[file_path]
                headers = {
                    "X-Repo-Commit": hub.files_claim_commit or commit.sha,
                    "ETag": f'"{_blob_id(content)}"',
                    "Accept-Ranges": "bytes",
                }
                if file_path.endswith(LFS_SUFFIXES):
                    headers["X-Linked-Etag"] = f'"{hashlib.sha256(content).hexdigest()}"'
                    headers["X-Linked-Size"] = str(len(content))
                self._send(200, content, headers, head, content_type="application/octet-stream")

        return Handler
