"""The simulator's own Prometheus view of its load, under vLLM's metric names (what the server scrape reads)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

PREFIX_CHARS = 200
_KV_CAPACITY_REQUESTS = 64  # "KV-cache usage" = running requests / this, capped at 1


class VllmMetrics:
    """Requests running/waiting, KV-cache usage, prefix-cache queries/hits, queue time and TTFT histograms.

    A prefix-cache hit is a prompt whose first ``PREFIX_CHARS`` characters were seen before; the simulator never
    queues, so waiting stays 0 and every queue time is 0.
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.running = Gauge("vllm:num_requests_running", "Requests streaming.", registry=self.registry)
        self.waiting = Gauge("vllm:num_requests_waiting", "Requests queued (never, here).", registry=self.registry)
        self.kv_usage = Gauge("vllm:kv_cache_usage_perc", "Running / capacity.", registry=self.registry)
        self.prefix_queries = Counter("vllm:prefix_cache_queries", "Requests looked up.", registry=self.registry)
        self.prefix_hits = Counter("vllm:prefix_cache_hits", "Prefix seen before.", registry=self.registry)
        self.queue_time = Histogram("vllm:request_queue_time_seconds", "Queue time.", registry=self.registry)
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "Time to first token.", registry=self.registry)
        self.prefixes: set[str] = set()
        self.in_flight = 0

    def started(self, prompt: str) -> None:
        self.in_flight += 1
        self._running()
        self.queue_time.observe(0.0)
        self.prefix_queries.inc()
        key = prompt[:PREFIX_CHARS]
        if len(prompt) >= PREFIX_CHARS and key in self.prefixes:
            self.prefix_hits.inc()
        self.prefixes.add(key)

    def finished(self) -> None:
        self.in_flight -= 1
        self._running()

    def _running(self) -> None:
        self.running.set(self.in_flight)
        self.kv_usage.set(min(1.0, self.in_flight / _KV_CAPACITY_REQUESTS))

    def response(self) -> web.Response:
        """The exposition, as ``GET /metrics`` answers it."""
        from aiohttp import web
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
