"""What every table's suite is built from: GX's expectations (imported on first use) and the checks all tables share."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from evals.schemas import column_names

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

# The largest finite float: an upper bound that lets every finite value through and stops inf.
FINITE_MAX = sys.float_info.max


def gx_expectations() -> Any:
    """``great_expectations.expectations``, imported on first use with GX's chatter quieted."""
    from evals.validation.runtime import quiet_gx

    quiet_gx()
    import great_expectations.expectations as gxe

    return gxe


def not_null(table: str, columns: list[str]) -> list[Expectation]:
    """Each of ``columns`` of ``table`` present (not null, not NaN) in every row."""
    gxe = gx_expectations()
    return [
        gxe.ExpectColumnValuesToNotBeNull(column=column, description=f"{column} is present (not null/NaN)")
        for column in columns
    ]


def common(table: str, keys: list[str]) -> list[Expectation]:
    """What every table of a run satisfies: all its columns, some rows, ``keys`` present, the run's model and
    revision (expectation parameters, so runs share one suite)."""
    gxe = gx_expectations()
    return [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=column_names(table), exact_match=False, description=f"every {table} column is present"
        ),
        gxe.ExpectTableRowCountToBeBetween(min_value=1, description=f"{table} has rows"),
        *not_null(table, keys),
        gxe.ExpectColumnValuesToBeInSet(
            column="model_id", value_set={"$PARAMETER": "model_ids"}, description="model_id is the run's model"
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="revision", value_set={"$PARAMETER": "revisions"}, description="revision is the run's revision"
        ),
    ]
