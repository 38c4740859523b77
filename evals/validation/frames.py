"""The frames GX validates: each conformed table as pandas, plus ``check_*`` columns derived across tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from evals.validation.expected import Expected, level_key, sample_key

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from evals.warehouse import RunRecord

# Derived columns start with this prefix; they exist only in the validated frames, never in the warehouse.
CHECK_PREFIX = "check_"


def validation_frames(
    record: RunRecord,
    tables: Mapping[str, pa.Table],
    expected: Expected,
    *,
    bounded_metrics: Sequence[str],
) -> dict[str, pd.DataFrame]:
    """One pandas frame per table to validate (``runs`` always; data tables given or expected).

    GX has no expectation for cross-table counts or ratios, so those are computed here as columns that
    plain GX column expectations then check, and their offending rows show up in the validation result.
    """
    from evals.conformance import conform
    from evals.schemas import arrow_schema

    frames: dict[str, pd.DataFrame] = {"runs": _runs_frame(conform("runs", [record.to_row()]))}
    needed = dict(tables)
    # A table the run was expected to produce but did not is validated empty, so its row checks fail.
    if expected.tasks and "accuracy" not in needed:
        needed["accuracy"] = arrow_schema("accuracy").empty_table()
    if expected.requests and "latency" not in needed:
        needed["latency"] = arrow_schema("latency").empty_table()
    if expected.samples and "accuracy_samples" not in needed:
        needed["accuracy_samples"] = arrow_schema("accuracy_samples").empty_table()
    samples = needed.get("latency_samples")
    sample_frame = _samples_frame(samples) if samples is not None else None
    if "accuracy" in needed:
        frames["accuracy"] = _accuracy_frame(needed["accuracy"], expected, bounded_metrics)
    if "accuracy_samples" in needed:
        frames["accuracy_samples"] = _accuracy_samples_frame(
            needed["accuracy_samples"], needed.get("accuracy"), expected
        )
    if "latency" in needed:
        frames["latency"] = _latency_frame(needed["latency"], expected, sample_frame)
    if sample_frame is not None:
        if "latency" in frames:
            sample_frame[f"{CHECK_PREFIX}level_known"] = sample_frame[f"{CHECK_PREFIX}level"].isin(
                set(frames["latency"][f"{CHECK_PREFIX}level"])
            )
        frames["latency_samples"] = sample_frame
    return frames


def _runs_frame(runs: pa.Table) -> pd.DataFrame:
    frame = runs.to_pandas()
    versions = frame["versions"].iloc[0] or {}
    for key, value in versions.items():
        frame[f"{CHECK_PREFIX}version_{key}"] = [value]
    return frame


def _accuracy_frame(table: pa.Table, expected: Expected, bounded_metrics: Sequence[str]) -> pd.DataFrame:
    frame = table.to_pandas()
    frame[f"{CHECK_PREFIX}task_metric"] = (
        frame["task"].astype("str") + "/" + frame["metric"].astype("str") + "/" + frame["filter"].astype("str")
    )
    frame[f"{CHECK_PREFIX}bounded_value"] = frame["value"].where(frame["metric"].isin(list(bounded_metrics)))
    if expected.n_samples:
        wanted = frame["task"].map(dict(expected.n_samples)).astype("float64")
        # A task the expectations do not name is not checked (rather than failed against NaN).
        frame[f"{CHECK_PREFIX}expected_n_samples"] = wanted.fillna(frame["n_samples"].astype("float64"))
    return frame


def _accuracy_samples_frame(table: pa.Table, accuracy: pa.Table | None, expected: Expected) -> pd.DataFrame:
    """Per sample row: its (task, metric, filter) key, that key's row count and lm-eval's, and — for
    mean-aggregated metrics — how far the mean of the key's values is from the stored aggregate.

    The mean is taken with ``math.fsum`` (exact rounding) so that the 1e-12 tolerance measures the data, not the
    summation order.
    """
    import math

    frame = table.to_pandas()
    key = f"{CHECK_PREFIX}sample_key"
    frame[key] = _str_series(
        [sample_key(*k) for k in zip(frame["task"], frame["metric"], frame["filter"], strict=True)], frame.index
    )
    frame[f"{CHECK_PREFIX}key_rows"] = frame.groupby(key)[key].transform("size").astype("int64")
    if expected.samples:
        wanted = frame[key].map(expected.sample_keys).astype("float64")
        frame[f"{CHECK_PREFIX}expected_rows"] = wanted
    if accuracy is not None:
        acc = accuracy.to_pandas()
        stored = {
            sample_key(t, m, f): v
            for t, m, f, v in zip(acc["task"], acc["metric"], acc["filter"], acc["value"], strict=True)
        }
        means = {name: math.fsum(group) / len(group) for name, group in frame.groupby(key)["value"]}
        frame[f"{CHECK_PREFIX}has_aggregate"] = frame[key].isin(set(stored))
        error = frame[key].map(lambda k: abs(means[k] - stored[k]) if k in stored else float("nan"))
        frame[f"{CHECK_PREFIX}mean_error"] = error.where(frame["aggregation"] == "mean").astype("float64")
    return frame


def _level_column(frame: pd.DataFrame, *, sweep: bool = True) -> pd.Series:
    """Each row's level name: ``concurrency=8``, in a prompt-length sweep ``concurrency=8,input_tokens=2048``
    (``sweep=False``: the load alone, as :class:`Expected` knows the levels issued)."""
    import pandas as pd

    lengths = frame["input_tokens"] if sweep and "input_tokens" in frame else pd.Series(None, index=frame.index)
    keys = list(zip(frame["load_type"], frame["load"], lengths, strict=True))
    names = {
        key: level_key(key[0], key[1]) + ("" if pd.isna(key[2]) else f",input_tokens={int(key[2])}")
        for key in dict.fromkeys(keys)
    }
    return _str_series([names[key] for key in keys], index=frame.index)


def _str_series(values: list[str], index: pd.Index) -> pd.Series:
    import pandas as pd

    return pd.Series(values, index=index, dtype="str")


def _latency_frame(table: pa.Table, expected: Expected, samples: pd.DataFrame | None) -> pd.DataFrame:
    import pandas as pd

    frame = table.to_pandas()
    level = f"{CHECK_PREFIX}level"
    frame[level] = _level_column(frame)
    # n_requests == 0 gives inf/NaN here; the n_requests >= 1 expectation reports that case readably.
    frame[f"{CHECK_PREFIX}failure_rate"] = frame["n_failed"] / frame["n_requests"].where(frame["n_requests"] != 0)
    if samples is not None:
        counts = samples.groupby(level).size()
        failed = (~samples["ok"].astype(bool)).groupby(samples[level]).sum()
        frame[f"{CHECK_PREFIX}sample_rows"] = frame[level].map(counts).fillna(0).astype("int64")
        frame[f"{CHECK_PREFIX}sample_failed"] = frame[level].map(failed).fillna(0).astype("int64")
        # A level run once has no trial labels (one trial); a level of K trials has K distinct labels.
        labels = samples["trial"] if "trial" in samples else pd.Series(pd.NA, index=samples.index)
        trials = labels.groupby(samples[level]).nunique()
        frame[f"{CHECK_PREFIX}sample_trials"] = frame[level].map(trials).fillna(0).clip(lower=1).astype("int64")
        declared = frame["n_trials"] if "n_trials" in frame else pd.Series(1, index=frame.index)
        frame[f"{CHECK_PREFIX}n_trials"] = declared.fillna(1).astype("int64")
    if expected.requests:
        # Expected knows the loads issued; each step of a prompt-length sweep issues that many at its load.
        load_level = f"{CHECK_PREFIX}load_level"
        frame[load_level] = _level_column(frame, sweep=False)
        frame[f"{CHECK_PREFIX}expected_requests"] = frame[load_level].map(expected.levels).astype("float64")
    return frame


def _samples_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    level = f"{CHECK_PREFIX}level"
    frame[level] = _level_column(frame)
    return frame
