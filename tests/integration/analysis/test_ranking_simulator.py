"""Capacity and cost at the SLO against the reference simulator given a known saturation point.

The simulator (evals/latency/simulator.py, driven as is) answers every request after a fixed TTFT; here it is
served behind a gate of ``slots`` concurrent requests, so a closed loop of more than ``slots`` users queues for
a whole service time (~190 ms) before its first token. With an SLO of TTFT ≤ 150 ms the truth is known: the SLO
holds up to concurrency ``slots`` and fails beyond it, so the capacity at SLO is exactly ``slots``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import publish_run as publish
from factories import sha

from evals.analysis.leaderboard import leaderboard
from evals.analysis.ranking import slo_levels
from evals.checkpoints import CheckpointRef
from evals.latency.prompts import Prompt
from evals.latency.runner import run_scenario_async
from evals.latency.scenario import parse_scenario
from evals.latency.server import ServerHandle, free_port, wait_ready
from evals.pipeline.outcome import merge
from evals.pipeline.plan import Options
from evals.pipeline.publish import outcome_record, run_context
from evals.warehouse import Warehouse
from evals.warehouse.views import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TTFT_MS, ITL_MS, TOKENS = 50.0, 20.0, 8  # service time ≈ 50 + 7 × 20 = 190 ms
SLO_TTFT_MS = 150.0  # 100 ms above an unqueued first token, 90 ms below a queued one (≈ 240 ms)
PRICE = 3.0


# The simulator runs in its own process (as in production, the server is not the load generator's process):
# sharing one interpreter would let the generator's work delay the server's tokens.
SERVER = """
import asyncio, sys
from aiohttp import web
from evals.latency.simulator import Simulator, SimulatorConfig


class SlottedSimulator(Simulator):
    \"\"\"The reference simulator serving at most ``slots`` requests at a time; the rest wait their turn.\"\"\"

    def __init__(self, config, slots):
        super().__init__(config)
        self.slots, self.gate = slots, None

    async def complete(self, request):
        if self.gate is None:
            self.gate = asyncio.Semaphore(self.slots)
        async with self.gate:
            return await super().complete(request)


port, slots, ttft, itl = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
sim = SlottedSimulator(SimulatorConfig(ttft_ms=[ttft], itl_ms=[itl], record=False), slots)
web.run_app(sim.app(), host="127.0.0.1", port=port, print=None)
"""


def _serve(slots: int) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-c", SERVER, str(port), str(slots), str(TTFT_MS), str(ITL_MS)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_ready(endpoint, timeout_s=30)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


SCENARIO = {
    "name": "saturation",
    "version": "1",
    "api": "completions",
    "prompts": {"source": "synthetic", "input_tokens": 8},
    "output": {"max_tokens": TOKENS, "ignore_eos": True},
    "levels": [{"concurrency": 1}, {"concurrency": 2}, {"concurrency": 4}],
    "requests_per_level": 30,
    "warmup_requests": 2,
    "timeout_s": 30,
    "slo": {"ttft_p95_ms": SLO_TTFT_MS},
    "gpu_hour_usd": PRICE,
    "saturation": {"stop": False},
}


@pytest.mark.parametrize("slots", [1, 2])
def test_capacity_at_slo_is_the_saturation_point(slots: int, tmp_path: Path) -> None:
    from evals.warehouse import RunRecord

    scenario = parse_scenario(SCENARIO)
    for endpoint in _serve(slots):
        handle = ServerHandle(endpoint=endpoint, model="simulator", backend="simulator", accepts_ignore_eos=True)
        prompts = [Prompt(text=f"prompt {i}") for i in range(200)]
        result = asyncio.run(
            run_scenario_async(
                scenario, handle, prompts, model_id=f"org/slots-{slots}", revision=sha(str(slots)), hardware={}
            )
        )
    wh = Warehouse(f"file://{tmp_path / 'wh'}")
    record = outcome_record(
        CheckpointRef("local", f"org/slots-{slots}", sha(str(slots))),
        Options(suite=None, scenario=scenario.name, scenario_version=scenario.version),
        run_context(dt.datetime(2026, 11, 1, tzinfo=dt.UTC)),
        merge(None, result),
    )
    assert isinstance(record, RunRecord)
    publish(wh, record, result.tables())
    con = connect(wh)
    run = dict(zip(("run_id", "eval_date"), con.execute("select run_id, eval_date from runs").fetchone(), strict=True))  # type: ignore[arg-type]
    levels = slo_levels(con, run)

    goodput = {load: levels[("concurrency", float(load))].goodput for load in (1, 2, 4)}
    print(f"slots {slots}: goodput per concurrency {goodput}")
    for load, share in goodput.items():
        assert (share is not None and share >= 0.9) == (load <= slots), goodput

    (row,) = leaderboard(con, rank_by="capacity", min_goodput=0.9)
    assert row["capacity"] == float(slots)
    assert (row["reference_load_type"], row["reference_load"]) == ("concurrency", 1.0)
    assert row["accuracy"] is None and row["slo_accuracy"] is None

    # Every request met the SLO at capacity (8 tokens each): cost = price / (tokens/s × 3600) × 1e6.
    cap = levels[("concurrency", float(slots))]
    stored = {r["load"]: r for r in result.latency_rows}[float(slots)]
    served = sum(1 for s in result.sample_rows if s["load"] == float(slots) and s["ok"]) * TOKENS
    if cap.goodput == 1.0:
        assert row["usd_per_1m_at_slo"] == pytest.approx(PRICE / (served / stored["duration_s"] * 3600) * 1e6)
    # Beyond capacity only the tokens of requests that met the SLO count: cost at SLO × goodput = list cost.
    over = levels[("concurrency", 4.0)]
    listed = {r["load"]: r for r in result.latency_rows}[4.0]["usd_per_1m_output_tokens"]
    if over.goodput:
        assert over.usd_per_1m_at_slo * over.goodput == pytest.approx(listed, rel=1e-9)  # type: ignore[operator]
    else:
        assert over.usd_per_1m_at_slo is None
