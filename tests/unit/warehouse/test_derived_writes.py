"""Warehouse.write_derived: a night's derived rows (comparisons, change points) of many runs in one commit."""

from pathlib import Path

import pytest
from factories import all_tables, publish_run, run_record

from evals.analysis.compare import compare_night
from evals.errors import RunNotFound
from evals.schemas import arrow_schema
from evals.warehouse import Warehouse
from evals.warehouse.views import connect


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(f"file://{tmp_path / 'wh'}")


def _publish(wh: Warehouse, model: str, day: int) -> str:
    record = run_record(model, day, revision=f"{day}{model[-1]}".ljust(40, "0"))
    return publish_run(wh, record, all_tables(record)).run_id


def _commits(wh: Warehouse, table: str) -> int:
    """Commits to ``table`` since its creation: each writes one new metadata file (an overwrite of existing rows is
    one commit of two snapshots, a delete and an append)."""
    found = wh.tables.existing(table, "published")
    return 0 if found is None else len(found.metadata.metadata_log)


def _stored(wh: Warehouse) -> dict[str, int]:
    with connect(wh) as con:
        return dict(con.execute("select run_id, count(*) from comparisons group by 1").fetchall())


def test_a_night_of_comparisons_is_one_commit_and_a_rerun_replaces_it(wh: Warehouse) -> None:
    for model in ("org/a", "org/b", "org/c"):
        _publish(wh, model, 1)
    tonight = [_publish(wh, model, 2) for model in ("org/a", "org/b", "org/c")]

    rows = compare_night(tonight, warehouse=wh)
    assert _commits(wh, "comparisons") == 1
    expected = {run: sum(1 for r in rows if r["run_id"] == run) for run in tonight}
    assert _stored(wh) == expected and all(expected.values())

    compare_night(tonight, warehouse=wh)  # the same night again: replaced, not doubled
    assert _commits(wh, "comparisons") == 2
    assert _stored(wh) == expected


def test_a_run_not_published_fails_the_whole_write_or_is_left_out(wh: Warehouse) -> None:
    published = _publish(wh, "org/a", 1)
    quarantined = run_record("org/q", 1)
    wh.write_run(quarantined, all_tables(quarantined), status="quarantined")
    rows = compare_night([published], warehouse=wh, write=False)
    frames = {published: rows, quarantined.run_id: [{**r, "run_id": quarantined.run_id} for r in rows]}
    day = quarantined.eval_date

    with pytest.raises(RunNotFound, match=quarantined.run_id):
        wh.write_derived("comparisons", frames, eval_dates=[day])
    assert _commits(wh, "comparisons") == 0  # nothing of the published run was written either

    written = wh.write_derived("comparisons", frames, eval_dates=[day], skip_unpublished=True)
    assert written == {published: len(rows)}
    assert _stored(wh) == {published: len(rows)}


def test_an_empty_frame_clears_that_runs_rows_only(wh: Warehouse) -> None:
    runs = [_publish(wh, model, 1) for model in ("org/a", "org/b")]
    compare_night(runs, warehouse=wh)
    before = _stored(wh)

    empty = arrow_schema("comparisons").empty_table()
    written = wh.write_derived("comparisons", {runs[0]: empty}, eval_dates=[run_record("org/a", 1).eval_date])
    assert written == {runs[0]: 0}
    assert _stored(wh) == {runs[1]: before[runs[1]]}
