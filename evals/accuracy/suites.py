"""Accuracy suites: the versioned YAML files in evals/suites/, their model, and task-name checks against lm-eval."""

from __future__ import annotations

import difflib
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evals.errors import ConfigError

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

PACKAGE_DIR = Path(__file__).resolve().parent.parent
SUITES_DIR = PACKAGE_DIR / "suites"
TASKS_DIR = PACKAGE_DIR / "tasks"

# lm-eval output types that score text by its log-probability: a server must return prompt logprobs for them.
LOGPROB_OUTPUT_TYPES = frozenset({"multiple_choice", "loglikelihood", "loglikelihood_rolling"})


class Seeds(BaseModel):
    """The four seeds simple_evaluate takes (lm-eval's own defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    random: int = 0
    numpy: int = 1234
    torch: int = 1234
    fewshot: int = 1234


class Suite(BaseModel):
    """One versioned list of lm-eval tasks plus everything that decides how they are scored.

    Bump ``version`` whenever a change can move a score: the version keys the request cache and the run id.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    version: str = Field(pattern=r"^\d+(\.\d+){0,2}$", description="e.g. 1.0.0")
    description: str = ""
    tasks: list[str] = Field(min_length=1, description="lm-eval task, group or tag names.")
    include_path: str | None = Field(
        None, description="Folder under evals/tasks/ holding this suite's own task YAMLs (offline tasks)."
    )
    include_defaults: bool = Field(True, description="Whether lm-eval's built-in tasks are visible too.")
    num_fewshot: int | None = Field(None, ge=0, description="Overrides every task's few-shot count; null: task's.")
    limit: int | float | None = Field(None, description="Docs per task (int) or a fraction in (0, 1].")
    batch_size: int | Literal["auto"] = 8
    max_batch_size: int | None = Field(None, ge=1)
    apply_chat_template: bool = False
    fewshot_as_multiturn: bool = False
    system_instruction: str | None = None
    gen_kwargs: dict[str, str | int | float | bool] = Field(default_factory=dict)
    seeds: Seeds = Field(default_factory=Seeds)
    bootstrap_iters: int = Field(100_000, ge=0, description="Bootstrap resamples for non-mean metric stderr.")

    @field_validator("limit")
    @classmethod
    def _limit_range(cls, value: int | float | None) -> int | float | None:
        if value is None:
            return None
        if isinstance(value, int) and value < 1:
            raise ValueError("an integer limit must be >= 1")
        if isinstance(value, float) and not 0 < value <= 1:
            raise ValueError("a fractional limit must be in (0, 1]")
        return value

    @field_validator("batch_size")
    @classmethod
    def _batch_positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("batch_size must be >= 1 or 'auto'")
        return value

    @field_validator("tasks")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        duplicates = sorted({t for t in value if value.count(t) > 1})
        if duplicates:
            raise ValueError(f"tasks listed twice: {', '.join(duplicates)}")
        return value

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def include_dir(self) -> Path | None:
        """Absolute folder of the suite's own task YAMLs, or None."""
        if self.include_path is None:
            return None
        path = (TASKS_DIR / self.include_path).resolve()
        if not path.is_dir() or TASKS_DIR.resolve() not in path.parents:
            raise ConfigError(f"suite {self.ref}: include_path {self.include_path!r} is not a folder of {TASKS_DIR}")
        return path

    def score_config(self) -> dict[str, Any]:
        """Every suite field that can change a score (the description cannot)."""
        return self.model_dump(mode="json", exclude={"description"})

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.score_config(), sort_keys=True).encode()).hexdigest()


def available_suites() -> list[str]:
    """Names of the shipped suites."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def load_suite(name_or_path: str | Path) -> Suite:
    """A shipped suite by name (``smoke``) or any suite YAML by path. Errors list the suites that exist."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = SUITES_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(
                f"unknown suite {str(name_or_path)!r}; shipped suites: {', '.join(available_suites())} "
                "(or pass the path of a suite YAML)"
            )
    elif not path.is_file():
        raise ConfigError(f"suite file {path} does not exist")
    return parse_suite(path.read_text(), source=str(path))


def parse_suite(text: str, *, source: str = "<string>") -> Suite:
    """Validate suite YAML text; every problem is reported with its field path."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"suite {source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"suite {source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise ConfigError(f"suite {source}: {problems}") from exc


@lru_cache(maxsize=8)
def _task_manager(include_dir: str | None, include_defaults: bool) -> TaskManager:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_dir, include_defaults=include_defaults)


def task_manager(suite: Suite) -> TaskManager:
    """lm-eval's task index for this suite (the built-in one takes seconds to build, so it is kept)."""
    include = suite.include_dir()
    return _task_manager(str(include) if include else None, suite.include_defaults)


def validate_tasks(suite: Suite, manager: TaskManager | None = None) -> None:
    """Every task name of the suite exists in lm-eval's registry (plus the suite's own folder), or ConfigError."""
    manager = manager or task_manager(suite)
    known = set(manager.all_tasks)
    unknown = [t for t in suite.tasks if t not in known]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
        hints.append(f"{name!r}" + (f" (did you mean: {', '.join(close)}?)" if close else ""))
    listing = (
        f"known tasks: {', '.join(sorted(known))}"
        if len(known) <= 50
        else f"{len(known)} tasks are known; list them with `lm-eval ls tasks`"
    )
    raise ConfigError(f"suite {suite.ref}: unknown task(s) {', '.join(hints)}; {listing}")


def output_types(suite: Suite, manager: TaskManager | None = None) -> dict[str, set[str]]:
    """Per suite task, the lm-eval output types of its leaf tasks, read from the YAML index (no data loaded).

    A Python-defined task has no declared type and maps to ``{"unknown"}``.
    """
    manager = manager or task_manager(suite)
    index = manager.task_index
    return {name: _leaf_types(name, index, depth=0) for name in suite.tasks}


def _leaf_types(name: str, index: dict[str, Any], depth: int) -> set[str]:
    entry = index.get(name)
    if entry is None or depth > 10:
        return {"unknown"}
    kind = getattr(entry.kind, "name", str(entry.kind))
    cfg = entry.cfg or {}
    if kind == "TAG":
        members = [n for n, e in index.items() if name in (e.tags or set())]
        return set().union(*(_leaf_types(m, index, depth + 1) for m in members)) if members else {"unknown"}
    if kind == "GROUP":
        children = cfg.get("task") or []
        types: set[str] = set()
        for child in children if isinstance(children, list) else [children]:
            if isinstance(child, dict):
                types.add(str(child.get("output_type", "unknown")))
            else:
                types |= _leaf_types(str(child), index, depth + 1)
        return types or {"unknown"}
    if kind == "PY_TASK":
        return {"unknown"}
    return {str(cfg.get("output_type", "generate_until"))}  # lm-eval's TaskConfig default
