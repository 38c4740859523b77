import datetime as dt

import pytest

from evals.warehouse import RunRecord, make_run_id

WHEN = dt.datetime(2026, 11, 29, 2, 0, tzinfo=dt.UTC)
ARGS = ("org/m", "a" * 40, "smoke", "1", "smoke", "1", WHEN)


def test_run_id_is_deterministic_and_sensitive_to_every_key() -> None:
    assert make_run_id(*ARGS) == make_run_id(*ARGS)
    ids = {make_run_id(*ARGS)}
    for i, changed in enumerate(["org/n", "b" * 40, "nightly", "2", "chat-slo", "2", WHEN + dt.timedelta(days=1)]):
        args = list(ARGS)
        args[i] = changed
        ids.add(make_run_id(*args))
    assert len(ids) == 8


def test_run_id_same_instant_in_another_timezone() -> None:
    other = WHEN.astimezone(dt.timezone(dt.timedelta(hours=5)))
    assert make_run_id(*ARGS[:-1], other) == make_run_id(*ARGS)


def test_naive_logical_date_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        make_run_id(*ARGS[:-1], WHEN.replace(tzinfo=None))


def test_record_checks_a_given_run_id() -> None:
    record = RunRecord(model_id="org/m", revision="a" * 40, logical_date=WHEN, source="local")
    with pytest.raises(ValueError, match="does not match"):
        RunRecord(model_id="org/m", revision="a" * 40, logical_date=WHEN, source="local", run_id="0" * 32)
    assert RunRecord.from_row(record.to_row()).run_id == record.run_id
