"""The simulator's vLLM-named view of its load, read back through prometheus_client's own text parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from evals.latency.simulator_metrics import PREFIX_CHARS, VllmMetrics


def _samples(metrics: VllmMetrics) -> dict[str, float]:
    body = metrics.response().body
    assert isinstance(body, bytes)
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if not sample.labels
    }


def test_running_requests_and_kv_usage_follow_starts_and_finishes() -> None:
    metrics = VllmMetrics()
    for prompt in ("a", "b", "c"):
        metrics.started(prompt)
    metrics.finished()
    samples = _samples(metrics)
    assert samples["vllm:num_requests_running"] == 2
    assert samples["vllm:num_requests_waiting"] == 0
    assert samples["vllm:kv_cache_usage_perc"] == 2 / 64
    assert samples["vllm:request_queue_time_seconds_count"] == 3


def test_a_prefix_hit_needs_a_long_enough_prompt_seen_before() -> None:
    metrics = VllmMetrics()
    long_prompt = "s" * PREFIX_CHARS
    for prompt in (long_prompt, long_prompt + " one", long_prompt + " two", "short", "short"):
        metrics.started(prompt)
        metrics.finished()
    samples = _samples(metrics)
    assert samples["vllm:prefix_cache_queries_total"] == 5
    assert samples["vllm:prefix_cache_hits_total"] == 2  # the short prompt repeats but is below the prefix length
    assert samples["vllm:num_requests_running"] == 0


def test_kv_usage_is_capped_at_one() -> None:
    metrics = VllmMetrics()
    for index in range(100):
        metrics.started(str(index))
    assert _samples(metrics)["vllm:kv_cache_usage_perc"] == 1.0
