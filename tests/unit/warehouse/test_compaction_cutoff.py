"""The compaction cut-off shared by ``evals warehouse compact`` and the analytics DAG's compact step."""

import datetime as dt

from evals.settings import Settings
from evals.warehouse.compaction import compaction_cutoff


def test_cutoff_is_today_minus_the_setting() -> None:
    settings = Settings(compact_after_days=3)
    assert compaction_cutoff(settings, today=dt.date(2026, 3, 2)) == dt.date(2026, 2, 27)
    assert compaction_cutoff(settings) == dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)
