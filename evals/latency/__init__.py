"""Latency evaluation: scenarios, the streaming load generator, metrics, the serving launcher and cost."""

from evals.latency.runner import LatencyResult, run_scenario, run_scenario_async
from evals.latency.scenario import Scenario, load_scenario
from evals.latency.server import ServerHandle, serve

__all__ = [
    "LatencyResult",
    "Scenario",
    "ServerHandle",
    "load_scenario",
    "run_scenario",
    "run_scenario_async",
    "serve",
]
