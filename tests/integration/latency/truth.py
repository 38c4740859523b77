"""Truth for the latency tests: what the reference server was told to inject, what it actually did, the budget.

The reference server (``evals.latency.simulator``) sleeps configured delays: request received -> first token after
the TTFT, then each next token after its inter-token gap. Per request it reports the nominal delays it drew, when
each token was due and when it was really written (a system-wide monotonic clock, comparable across processes).

For each metric and percentile the client's reading is held to

    configured truth  -  (server early, ITL/TPOT only)  -  budget  <=  measured  <=  truth + server lateness + budget

where "server lateness" is the same percentile of the server's realized values (its own write times, anchored at
its own receive time, never at the client's ``sent`` stamp) minus the configured one. Everything else — the
request's trip into the server, client-side queueing, the time from a token's write to its timestamp on the client,
mistakes in the metric code — must fit the client budget.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from evals.latency.metrics import percentile

METRICS = ("ttft", "tpot", "itl", "e2e")
STATS = (50, 95)
# TTFT and E2E cannot be read short of the truth unless the client's "sent" stamp is late (taken after the
# request already reached the server): the lower bound for them only allows float noise and clock reads.
_LOWER_SLACK_MS = 0.25


def client_budget_ms(metric: str, stat: int, concurrency: int) -> float:
    """The client error we hold, in ms, on 2 cores shared with the reference server and other busy processes.

    TTFT/E2E: 1.5 + 0.05 x streams at p50, 3.5 + 0.1 x streams at p95; ITL/TPOT: 0.5 + 0.01 x streams at p50,
    1.5 + 0.05 x streams at p95 (1 / 8 / 32 streams: TTFT p50 1.55 / 1.9 / 3.1 ms, p95 3.6 / 4.3 / 6.7 ms).
    Measured 2026-12-02 at load average 5-8 on these 2 cores, 3 runs per level, client error over the server's
    realized values: TTFT p50 +0.2 / +0.2..+0.9 / +0.8..+1.8 ms, p95 up to +2.9 / +2.5 / +3.1 ms; ITL/TPOT
    p50 within ±0.1, p95 up to +0.7 ms. The aiohttp client this replaced read TTFT p50 +1.4..+2.9 ms at 8 streams
    and +4..+10 ms at 32: it fails these bounds. What is left is mostly the machine (another process holding the
    core when a read arrives); at load average 11 every client, the floor too, misses by several ms, and the test
    fails with the figures. The budget grows with concurrency: a closed loop over equal delays sends its streams
    in waves, and a wave of N requests costs N set-ups in a row.
    """
    if metric in ("ttft", "e2e"):
        base, per_stream = (1.5, 0.05) if stat == 50 else (3.5, 0.10)
    else:  # gaps: both ends of a gap are read the same way, most of the delay cancels
        base, per_stream = (0.5, 0.01) if stat == 50 else (1.5, 0.05)
    return base + per_stream * concurrency


@dataclass(frozen=True)
class Check:
    metric: str
    stat: int
    measured: float
    truth: float  # from the configured delays
    realized: float  # from the server's own records: truth + its lateness
    budget: float

    @property
    def lateness(self) -> float:
        return self.realized - self.truth

    @property
    def low(self) -> float:
        slack = _LOWER_SLACK_MS if self.metric in ("ttft", "e2e") else self.budget
        return self.truth - max(0.0, -self.lateness) - slack

    @property
    def high(self) -> float:
        return self.truth + max(0.0, self.lateness) + self.budget

    @property
    def ok(self) -> bool:
        return self.low <= self.measured <= self.high

    def __str__(self) -> str:
        flag = "ok" if self.ok else "OUT"
        return (
            f"{self.metric}_p{self.stat}: measured {self.measured:.2f} truth {self.truth:.2f} "
            f"server lateness {self.lateness:+.2f} client error {self.measured - self.realized:+.2f} "
            f"(allowed {self.low:.2f}..{self.high:.2f}, budget {self.budget:.2f}) {flag}"
        )


def truth_values(records: list[dict[str, Any]]) -> tuple[dict[str, list[float]], dict[str, list[float]], list[float]]:
    """Per-metric configured values, realized values (configured + server lateness), and every token's lateness."""
    nominal: dict[str, list[float]] = {metric: [] for metric in METRICS}
    realized: dict[str, list[float]] = {metric: [] for metric in METRICS}
    lateness: list[float] = []
    for record in records:
        gaps, written = record["nominal_itl_ms"], record["token_times"]
        n = len(written)
        nominal["ttft"].append(record["nominal_ttft_ms"])
        nominal["e2e"].append(record["nominal_ttft_ms"] + sum(gaps))
        nominal["itl"].extend(gaps)
        nominal["tpot"].append(sum(gaps) / (n - 1))
        received = record["received"]
        realized["ttft"].append((written[0] - received) * 1e3)
        realized["e2e"].append((written[-1] - received) * 1e3)
        realized["itl"].extend((b - a) * 1e3 for a, b in itertools.pairwise(written))
        realized["tpot"].append((written[-1] - written[0]) * 1e3 / (n - 1))
        lateness.extend((w - s) * 1e3 for w, s in zip(written, record["scheduled"], strict=True))
    return nominal, realized, lateness


def checks(
    row: dict[str, Any], records: list[dict[str, Any]], concurrency: int, *, budget_scale: float = 1.0
) -> tuple[list[Check], str]:
    """Every (metric, percentile) check of one level's ``latency`` row, and a line on the server's lateness."""
    nominal, realized, lateness = truth_values(records)
    result = [
        Check(
            metric=metric,
            stat=stat,
            measured=row[f"{metric}_p{stat}_ms"],
            truth=percentile(nominal[metric], stat),
            realized=percentile(realized[metric], stat),
            budget=client_budget_ms(metric, stat, concurrency) * budget_scale,
        )
        for metric in METRICS
        for stat in STATS
    ]
    late = "/".join(f"{percentile(lateness, q):.2f}" for q in (50, 95, 99))
    return result, f"server token lateness p50/p95/p99 {late} ms"
