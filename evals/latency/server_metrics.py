"""The server's own view of a load level: its Prometheus ``/metrics`` scraped during the level (vLLM's metric
names), parsed with ``prometheus_client``, reduced to gauge means and counter/histogram deltas (``server_*`` columns).

Scrapes only fetch text during the level (in a thread: no parsing on the event loop that stamps tokens); parsing
happens after the level. A server without ``/metrics`` (404, refused) is asked once and yields null columns.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

# Gauges (mean over scrapes) and where vLLM versions put them; the first name present wins.
_RUNNING = ("vllm:num_requests_running",)
_WAITING = ("vllm:num_requests_waiting",)
_KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
# Counters (delta first -> last scrape) and histograms (delta of _sum / delta of _count).
_PREFIX_QUERIES = "vllm:prefix_cache_queries"
_PREFIX_HITS = "vllm:prefix_cache_hits"
_QUEUE_TIME = "vllm:request_queue_time_seconds"
_TTFT = "vllm:time_to_first_token_seconds"

EMPTY: dict[str, Any] = {
    "server_metrics_scrapes": None,
    "server_requests_running_mean": None,
    "server_requests_waiting_mean": None,
    "server_kv_cache_usage_mean": None,
    "server_prefix_cache_hit_rate": None,
    "server_queue_time_mean_ms": None,
    "server_ttft_mean_ms": None,
}


def _fetch(url: str, timeout_s: float) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return str(response.read().decode("utf-8", errors="replace"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


class Scraper:
    """Fetch ``url`` every ``interval_s`` from :meth:`run` until :meth:`stop`, keeping the raw texts."""

    def __init__(self, url: str, *, interval_s: float = 1.0, timeout_s: float = 5.0) -> None:
        self.url, self.interval_s, self.timeout_s = url, interval_s, timeout_s
        self.texts: list[str] = []
        self.available = True
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while True:
            text = await asyncio.to_thread(_fetch, self.url, self.timeout_s)
            if text is None and not self.texts:
                self.available = False  # no /metrics here; do not keep asking
                return
            if text is not None:
                self.texts.append(text)
            if self._stop.is_set():
                return
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval_s)
            except TimeoutError:
                continue

    def stop(self) -> None:
        """The next fetch is the last: the level's closing values for counter and histogram deltas."""
        self._stop.set()

    def summary(self) -> dict[str, Any]:
        return summarize_scrapes(self.texts)


def _samples(text: str) -> dict[str, float]:
    """Sample name -> value, summed over label sets (engines, models); a name's ``_total`` suffix kept."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_bucket") or sample.name.endswith("_created"):
                continue
            values[sample.name] = values.get(sample.name, 0.0) + float(sample.value)
    return values


def _first(values: dict[str, float], names: Iterable[str]) -> float | None:
    return next((values[name] for name in names if name in values), None)


def _mean(series: list[float | None]) -> float | None:
    present = [value for value in series if value is not None]
    return sum(present) / len(present) if present else None


def _delta(first: dict[str, float], last: dict[str, float], name: str) -> float | None:
    for sample in (name, f"{name}_total"):
        if sample in first and sample in last:
            return last[sample] - first[sample]
    return None


def _histogram_mean_ms(first: dict[str, float], last: dict[str, float], name: str) -> float | None:
    total, count = _delta(first, last, f"{name}_sum"), _delta(first, last, f"{name}_count")
    if total is None or not count:
        return None
    return total / count * 1e3


def summarize_scrapes(texts: list[str]) -> dict[str, Any]:
    """The ``server_*`` columns from the level's scrapes (first and last bound the deltas); nulls without any."""
    if not texts:
        return dict(EMPTY)
    parsed = []
    for text in texts:
        try:
            parsed.append(_samples(text))
        except ValueError as exc:  # not Prometheus text: say so once, keep the level
            log.warning("server /metrics is not Prometheus text (%s); server columns left empty", exc)
            return dict(EMPTY)
    first, last = parsed[0], parsed[-1]
    queries = _delta(first, last, _PREFIX_QUERIES)
    hits = _delta(first, last, _PREFIX_HITS)
    return {
        "server_metrics_scrapes": len(parsed),
        "server_requests_running_mean": _mean([_first(p, _RUNNING) for p in parsed]),
        "server_requests_waiting_mean": _mean([_first(p, _WAITING) for p in parsed]),
        "server_kv_cache_usage_mean": _mean([_first(p, _KV_USAGE) for p in parsed]),
        "server_prefix_cache_hit_rate": hits / queries if queries and hits is not None else None,
        "server_queue_time_mean_ms": _histogram_mean_ms(first, last, _QUEUE_TIME),
        "server_ttft_mean_ms": _histogram_mean_ms(first, last, _TTFT),
    }
