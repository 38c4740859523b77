from pathlib import Path

import pytest

from evals.accuracy.progress import ProgressHook, install
from evals.accuracy.runner import AccuracyOOM, _batch_size, _raise_classified, request_cache_path
from evals.accuracy.suites import load_suite
from evals.errors import TerminalError
from evals.settings import get_settings


def test_cache_path_is_keyed_by_revision_suite_version_and_lm_eval(tmp_path: Path) -> None:
    settings = get_settings(cache_dir=tmp_path)
    smoke = load_suite("smoke")
    path = request_cache_path(settings, revision="a" * 40, suite=smoke, backend="hf", dtype="float32")
    assert path.is_relative_to(tmp_path)
    assert {"a" * 40, "smoke@1.0.0", "hf-float32"} <= set(path.parts)
    assert any(part.startswith("lm_eval-0.") for part in path.parts)
    bumped = smoke.model_copy(update={"version": "1.0.1"})
    assert request_cache_path(settings, revision="a" * 40, suite=bumped, backend="hf", dtype="float32") != path


def test_oom_is_transient_once_with_half_the_batch(tmp_path: Path) -> None:
    suite = load_suite("smoke")
    settings = get_settings(cache_dir=tmp_path)
    oom = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(AccuracyOOM) as err:
        _raise_classified(oom, batch_size=16, cache=tmp_path, suite=suite)
    assert err.value.retryable and err.value.next_batch_size == 8
    assert _batch_size(settings, suite, tmp_path) == 8  # the retry reads the marker
    with pytest.raises(TerminalError, match="already the reduced size"):
        _raise_classified(oom, batch_size=8, cache=tmp_path, suite=suite)


def test_other_errors_are_left_alone(tmp_path: Path) -> None:
    _raise_classified(ValueError("bad doc"), batch_size=16, cache=tmp_path, suite=load_suite("smoke"))
    assert not (tmp_path / "oom.json").exists()


class _FakeLM:
    def __init__(self) -> None:
        self.cache_hook: object = None

    def set_cache_hook(self, hook: object) -> None:
        self.cache_hook = hook


class _Inner:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def add_partial(self, attr: str, req: object, res: object) -> None:
        self.seen.append(attr)


def test_progress_hook_stores_first_then_calls_back() -> None:
    lm, inner, order = _FakeLM(), _Inner(), []
    hook = ProgressHook(
        None, every_s=3600, log_lines=True, on_request=lambda attr, n: order.append((attr, n, len(inner.seen)))
    )
    install(lm, hook)
    lm.set_cache_hook(inner)  # what simple_evaluate's use_cache does
    assert lm.cache_hook is hook
    hook.add_partial("loglikelihood", ("ctx", "cont"), (-1.0, True))
    hook.add_partial("generate_until", ("ctx", {}), "x")
    assert order == [("loglikelihood", 1, 1), ("generate_until", 2, 2)]
    assert hook.model_calls == 2
