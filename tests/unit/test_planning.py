"""Planning contracts that need no model: trigger options, refused entries, dedup, watch-list failures."""

from pathlib import Path

import pytest

from evals.errors import ConfigError
from evals.pipeline import plan as planning
from evals.pipeline import steps as pipeline

TINY = "package:evals-test/tiny-llama"
CONTEXT = {"dag_id": "evals_manual", "dag_run_id": "manual__1", "logical_date": "2026-11-20T02:00:00+00:00"}


def test_options_refuse_unknown_names_and_nothing_to_run() -> None:
    with pytest.raises(ConfigError, match="no-such-suite"):
        planning.Options.from_params({"suite": "no-such-suite"})
    with pytest.raises(ConfigError, match="nothing to run"):
        planning.Options.from_params({"suite": "none", "scenario": "none"})
    options = planning.Options.from_params({"suite": "smoke", "scenario": "none", "limit": 3})
    assert (options.suite, options.scenario, options.limit) == ("smoke", None, 3)


def test_manual_plan_keeps_good_entries_when_one_is_bad(tmp_path: Path) -> None:
    items = planning.plan_manual(
        {"checkpoints": [TINY, str(tmp_path / "missing-dir"), TINY], "suite": "smoke", "scenario": "smoke"}, CONTEXT
    )
    good = [i for i in items if i.ref is not None]
    bad = [i for i in items if i.ref is None]
    assert len(good) == 1  # the duplicate entry is evaluated once
    assert good[0].ref.revision  # pinned at plan time
    assert len(bad) == 1 and "neither a ref" in str(bad[0].error)
    with pytest.raises(ConfigError, match="missing-dir"):
        pipeline.materialize_step(bad[0], CONTEXT)  # its own mapped task fails, the others go on


def test_a_watchlist_entry_that_failed_fails_the_night_but_not_the_other_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evals.warehouse import Warehouse

    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path / 'warehouse'}")
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text(
        "sources:\n"
        "  - source: package\n    model: tiny-llama\n"
        f"  - source: local\n    path: {tmp_path / 'gone'}\n"  # e.g. a mount that went away; the Hub past retries
    )
    items = planning.plan_nightly({"watchlist": str(watchlist), "suite": "smoke", "scenario": "none"}, CONTEXT)
    good = [i for i in items if i.ref is not None]
    bad = [i for i in items if i.ref is None]
    assert [i.ref.model_id for i in good if i.ref] == ["evals-test/tiny-llama"]  # still evaluated
    assert len(bad) == 1 and str(bad[0].entry).startswith("watch-list sources[1]")
    with pytest.raises(pipeline.RunFailures, match=r"watch-list sources\[1\]"):
        pipeline.summarize_step(bad, CONTEXT)
    night = Warehouse.from_settings().latest_discovery()
    assert night is not None and night["logical_date"] == "2026-11-20"
    assert [e["entry"] for e in night["errors"]] == [str(bad[0].entry).removeprefix("watch-list ")]


def test_a_guardrail_suite_is_its_own_run_per_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALS_WAREHOUSE", f"file://{tmp_path / 'warehouse'}")
    watchlist = tmp_path / "watchlist.yaml"
    watchlist.write_text("sources:\n  - source: package\n    model: tiny-llama\n")
    params = {"watchlist": str(watchlist), "suite": "smoke", "scenario": "smoke", "guardrails": "guardrails"}
    items = planning.plan_nightly(params, CONTEXT)
    assert [(i.options.suite, i.options.scenario) for i in items] == [("smoke", "smoke"), ("guardrails", None)]
    assert items[0].ref == items[1].ref and items[1].options.suite_version  # versioned at plan time
    keys = {pipeline.run_record(i.ref, i.options, CONTEXT).run_id for i in items if i.ref}
    assert len(keys) == 2  # two runs, never one overwriting the other
    with pytest.raises(ConfigError, match="no-such-suite"):
        planning.plan_nightly({**params, "guardrails": "no-such-suite"}, CONTEXT)
