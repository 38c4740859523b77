"""Latency scenarios: the versioned YAML model (prompts, output, load levels, SLO, price) and its loader."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from evals.errors import ConfigError
from evals.schemas import LATENCY_METRICS, LATENCY_STATS

APIS = ("completions", "chat")
_SLO_KEY = re.compile(r"^(?P<metric>[a-z0-9]+)_(?P<stat>[a-z0-9]+)_ms$")


class _Strict(BaseModel):
    # inf/NaN would pass gt=0 checks, then break strict JSON (XCom) and every derived number.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TokenLength(_Strict):
    """A token-length distribution: ``fixed`` (mean), ``uniform`` (min..max) or ``normal`` (clipped to min..max)."""

    distribution: Literal["fixed", "uniform", "normal"] = "fixed"
    mean: int = Field(gt=0)
    min: int | None = Field(None, gt=0)
    max: int | None = Field(None, gt=0)
    stddev: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> TokenLength:
        if self.distribution == "fixed" and (self.min is not None or self.max is not None):
            raise ValueError("a fixed length takes only mean; use distribution uniform or normal for min/max")
        low, high = self.low, self.high
        if low > high:
            raise ValueError(f"min ({low}) must not exceed max ({high})")
        if not low <= self.mean <= high:
            raise ValueError(f"mean ({self.mean}) must lie within min..max ({low}..{high})")
        if self.distribution == "normal" and self.stddev is None:
            raise ValueError("a normal distribution needs stddev")
        return self

    @property
    def low(self) -> int:
        return self.min if self.min is not None else (self.mean if self.distribution == "fixed" else 1)

    @property
    def high(self) -> int:
        if self.max is not None:
            return self.max
        return self.mean if self.distribution == "fixed" else 2 * self.mean


def _token_length(value: Any) -> Any:
    return {"mean": value} if isinstance(value, int) and not isinstance(value, bool) else value


class SyntheticPrompts(_Strict):
    """Random prompts of known token lengths, made from the checkpoint's tokenizer vocabulary with a seed."""

    source: Literal["synthetic"]
    input_tokens: TokenLength
    count: int | None = Field(
        None, gt=0, description="Distinct prompts to make; default one per request the scenario sends."
    )

    _coerce = field_validator("input_tokens", mode="before")(lambda cls, v: _token_length(v))


class JsonlPrompts(_Strict):
    """Real prompts, one JSON object per line: ``{"prompt": "..."}`` or ``{"messages": [...]}``."""

    source: Literal["jsonl"]
    path: str = Field(description="Relative paths are resolved against the scenario file's folder.")
    limit: int | None = Field(None, gt=0)


class SharedPrefixPrompts(_Strict):
    """Prompts that share a long prefix (a system prompt) and differ after it: what prefix caching speeds up.

    Chat: the prefix is the system message, the distinct part the user message; completions: prefix + text.
    """

    source: Literal["shared_prefix"]
    prefix_tokens: int = Field(gt=0, description="Length of each shared prefix in tokens.")
    input_tokens: TokenLength = Field(description="Length of the distinct part after the prefix.")
    prefixes: int = Field(1, gt=0, description="Distinct prefixes, used round-robin (1: every prompt shares one).")
    count: int | None = Field(None, gt=0, description="Prompts to make; default one per request sent.")

    _coerce = field_validator("input_tokens", mode="before")(lambda cls, v: _token_length(v))


class MultiTurnPrompts(_Strict):
    """Multi-turn chat: the prompt of turn k holds turns 1..k-1 (user and assistant) before the new user turn.

    From ``path`` (JSONL, one conversation a line: ``{"turns": ["user 1", "user 2", ...]}`` with optional
    ``"replies"``, or ``{"messages": [...]}``) or synthetic (``conversations`` x ``turns``, random words of
    ``input_tokens`` per user turn and ``reply_tokens`` per assistant reply). Requests go out turn by turn: every
    conversation's turn 1, then every turn 2, ... so a turn's history was served before it is asked again.
    """

    source: Literal["multi_turn"]
    path: str | None = Field(None, description="JSONL of conversations; relative to the scenario file.")
    conversations: int = Field(16, gt=0, description="Synthetic conversations (without path).")
    turns: int = Field(4, gt=0, description="Synthetic turns per conversation (without path).")
    input_tokens: TokenLength | None = Field(None, description="Synthetic user-turn length (without path).")
    reply_tokens: int = Field(32, gt=0, description="Synthetic assistant reply length put into the history.")

    _coerce = field_validator("input_tokens", mode="before")(lambda cls, v: _token_length(v))

    @model_validator(mode="after")
    def _source(self) -> MultiTurnPrompts:
        if self.path is None and self.input_tokens is None:
            raise ValueError("give a JSONL path of conversations, or input_tokens for synthetic ones")
        return self


class RagPrompts(_Strict):
    """Retrieval-augmented prompts: a retrieved context of each swept length, then a short question.

    Every load level runs once per context length (``input_tokens`` in the level key), shortest first, so the
    result shows TTFT against input length. A length whose prompt (context + question + ``output.max_tokens`` +
    a template allowance) does not fit the model's context window is refused, unless ``cap`` sweeps only the
    lengths that fit, ending with the longest context that fits.
    """

    source: Literal["rag"]
    context_tokens: list[int] = Field(min_length=1, description="Context lengths to sweep (tokens), ascending.")
    question_tokens: int = Field(32, gt=0, description="Length of the question after the context.")
    context_window: int | None = Field(
        None, gt=0, description="The model's context window; default: the checkpoint's (config.json / tokenizer)."
    )
    cap: bool = Field(False, description="Cap the sweep at the context window instead of refusing the scenario.")
    count: int | None = Field(None, gt=0, description="Distinct prompts per length; default one per request sent.")

    @field_validator("context_tokens")
    @classmethod
    def _ascending(cls, value: list[int]) -> list[int]:
        if any(n <= 0 for n in value) or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError(f"context lengths must be positive and strictly ascending, got {value}")
        return value


Prompts = Annotated[
    SyntheticPrompts | JsonlPrompts | SharedPrefixPrompts | MultiTurnPrompts | RagPrompts,
    Field(discriminator="source"),
]


class Output(_Strict):
    max_tokens: int = Field(gt=0)
    ignore_eos: bool = Field(True, description="Sent only to servers that accept it (vLLM); forces full length.")
    temperature: float = Field(0.0, ge=0)


class _Level(_Strict):
    requests: int | None = Field(None, gt=0, description="Measured requests; default: the scenario's.")
    duration_s: float | None = Field(None, gt=0, description="Run this long instead of a request count.")

    @model_validator(mode="after")
    def _one_size(self) -> _Level:
        if self.requests is not None and self.duration_s is not None:
            raise ValueError("give requests or duration_s for a level, not both")
        return self


class ConcurrencyLevel(_Level):
    """Closed loop: ``concurrency`` requests always in flight."""

    concurrency: int = Field(gt=0)

    @property
    def load_type(self) -> str:
        return "concurrency"

    @property
    def load(self) -> float:
        return float(self.concurrency)


class RateLevel(_Level):
    """Open loop: requests arrive at ``rate`` per second (Poisson or constant gaps), whatever the server does."""

    rate: float = Field(gt=0)
    arrival: Literal["poisson", "constant"] = "poisson"
    max_concurrency: int | None = Field(None, gt=0, description="Cap on requests in flight (client queueing).")

    @property
    def load_type(self) -> str:
        return "rate"

    @property
    def load(self) -> float:
        return float(self.rate)


def _level_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "concurrency" in value and "rate" in value:
            return None
        if "concurrency" in value:
            return "concurrency"
        if "rate" in value:
            return "rate"
        return None
    return getattr(value, "load_type", None)


Level = Annotated[
    Annotated[ConcurrencyLevel, Tag("concurrency")] | Annotated[RateLevel, Tag("rate")],
    Discriminator(
        _level_kind,
        custom_error_type="level_kind",
        custom_error_message="a level needs exactly one of 'concurrency' (closed loop) or 'rate' (open loop)",
    ),
]


class Saturation(_Strict):
    """When a level counts as saturated; a sweep stops after the first saturated level (and says why)."""

    stop: bool = True
    max_error_rate: float = Field(0.05, ge=0, le=1)
    max_latency_growth: float = Field(
        2.0, gt=1, description="Median E2E of the last quarter of a rate level over the first quarter's."
    )
    min_latency_growth_ms: float = Field(
        20.0, ge=0, description="...and grew by at least this much (ignores noise on very fast servers)."
    )
    max_send_lag_p99_ms: float = Field(
        50.0, gt=0, description="Client send lag above this: the load generator, not the server, fell behind."
    )


class Scenario(_Strict):
    """A latency scenario, e.g. ``evals/scenarios/smoke.yaml``. ``version`` goes into the run key."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: str
    description: str = ""
    api: Literal["completions", "chat"]
    prompts: Prompts
    output: Output
    levels: list[Level] = Field(min_length=1)
    requests_per_level: int = Field(64, gt=0)
    warmup_requests: int = Field(
        4, ge=0, description="Unmeasured requests before each level; raised to the level's concurrency."
    )
    timeout_s: float = Field(60.0, gt=0, description="Per-request limit, from send to the end of the stream.")
    seed: int = 0
    slo: dict[str, float] = Field(
        default_factory=dict,
        description="e.g. {ttft_p95_ms: 500, tpot_p95_ms: 50}: <metric>_<stat>_ms: limit",
    )
    gpu_hour_usd: float = Field(0.0, ge=0, description="Price of one GPU-hour, for USD per 1M output tokens.")
    saturation: Saturation = Saturation.model_validate({})
    trials: int = Field(
        1, ge=1, le=20, description="Independent repetitions of each level: their spread is the level's sampling CI."
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @field_validator("slo")
    @classmethod
    def _slo_keys(cls, value: dict[str, float]) -> dict[str, float]:
        for key, limit in value.items():
            match = _SLO_KEY.match(key)
            if not match or match["metric"] not in LATENCY_METRICS or match["stat"] not in LATENCY_STATS:
                raise ValueError(
                    f"unknown SLO metric {key!r}: write <metric>_<stat>_ms with metric one of "
                    f"{', '.join(LATENCY_METRICS)} and stat one of {', '.join(LATENCY_STATS)}, "
                    "e.g. ttft_p95_ms"
                )
            if not limit > 0:
                raise ValueError(f"SLO limit {key} must be > 0 ms, got {limit}")
        return value

    def config_hash(self) -> str:
        """Hash of everything in the scenario that can change a number."""
        # A level run once hashes as before trials existed: stored runs keep matching their scenario files.
        dumped = self.model_dump(mode="json", exclude={"trials"} if self.trials == 1 else None)
        canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def prompts_needed(self) -> int:
        """Requests the scenario sends (warm-up included); duration levels are estimated."""
        total = 0
        for level in self.levels:
            if isinstance(level, ConcurrencyLevel):
                warm = max(self.warmup_requests, level.concurrency) if self.warmup_requests else 0
                # A closed loop's request count over a duration is unknown: prompts cycle after this many.
                count = self.level_requests(level) or 4 * level.concurrency
            else:
                warm = max(self.warmup_requests, min(level.max_concurrency or 16, 16)) if self.warmup_requests else 0
                count = self.level_requests(level) or int(level.rate * (level.duration_s or 0) * 1.2) + 1
            total += (warm + count) * self.trials
        return total

    def level_requests(self, level: ConcurrencyLevel | RateLevel) -> int | None:
        """Measured requests of ``level``, or None when the level runs for a duration."""
        if level.duration_s is not None:
            return None
        return level.requests or self.requests_per_level


def builtin_scenarios() -> dict[str, Path]:
    """Scenarios shipped with the package, by name."""
    folder = resources.files("evals") / "scenarios"
    return {Path(str(entry)).stem: Path(str(entry)) for entry in folder.iterdir() if str(entry).endswith(".yaml")}


def resolve_scenario_path(name_or_path: str | Path, extra_dir: Path | None = None) -> Path:
    """A file path as given, else a scenario name looked up in ``extra_dir`` then in the shipped scenarios."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise ConfigError(f"scenario file {candidate} does not exist")
        return candidate
    name = str(name_or_path)
    if extra_dir is not None:
        for suffix in (".yaml", ".yml"):
            if (extra_dir / f"{name}{suffix}").is_file():
                return extra_dir / f"{name}{suffix}"
    shipped = builtin_scenarios()
    if name not in shipped:
        raise ConfigError(f"unknown scenario {name!r}; known scenarios: {', '.join(sorted(shipped))}")
    return shipped[name]


def load_scenario(name_or_path: str | Path, extra_dir: Path | None = None) -> tuple[Scenario, Path]:
    """Read and validate a scenario; returns it with its file (JSONL prompt paths are relative to it).

    Raises :class:`ConfigError` naming the file, the field and the problem.
    """
    import yaml

    path = resolve_scenario_path(name_or_path, extra_dir)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"scenario {path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"scenario {path}: expected a mapping at the top level, got {type(data).__name__}")
    return parse_scenario(data, source=str(path)), path


def parse_scenario(data: dict[str, Any], *, source: str = "<scenario>") -> Scenario:
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"scenario {source}: {_describe(exc)}") from exc
    if isinstance(scenario.prompts, RagPrompts) and scenario.prompts.context_window is not None:
        from evals.latency.rag import swept_lengths

        swept_lengths(scenario, scenario.prompts.context_window, "prompts.context_window", source=source)
    return scenario


_TAGS = ("concurrency", "rate", "synthetic", "jsonl", "shared_prefix", "multi_turn", "rag")


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        loc = error["loc"]
        where = ""
        for i, part in enumerate(loc):
            if isinstance(part, int):
                where += f"[{part}]"
                continue
            # Union tags (levels[0].concurrency.concurrency) are noise unless they end the location.
            after_index_or_union = i > 0 and (isinstance(loc[i - 1], int) or loc[i - 1] == "prompts")
            if part in _TAGS and after_index_or_union and i < len(loc) - 1:
                continue
            where += f".{part}" if where else str(part)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif "input" in error and not isinstance(error["input"], dict | list):
            message = f"{message} (got {error['input']!r})"
        problems.append(f"{where or '<top>'}: {message}")
    return "; ".join(problems)
