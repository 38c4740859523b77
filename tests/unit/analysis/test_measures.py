"""The derived numbers on hand-made rows: what a hosted model's served token costs at the SLO."""

import pytest

from evals.analysis.measures import levels_at_slo


def _sample(ttft_s: float, tokens: int = 10) -> dict[str, object]:
    return {"load_type": "concurrency", "load": 1.0, "ok": True, "sent_s": 0.0, "first_token_s": ttft_s,
            "finished_s": ttft_s + 0.5, "output_tokens": tokens, "itl_ms": None}  # fmt: skip


def _level(**price: object) -> dict[str, object]:
    return {"load_type": "concurrency", "load": 1.0, "goodput": 0.5, "output_tokens_per_s": 4.0, "duration_s": 10.0,
            "slo": '{"ttft_p95_ms": 500}', "ttft_p95_ms": 900.0, "e2e_p95_ms": 1400.0, "gpu_hour_usd": None,
            "gpu_count": None, "usd_per_1m_output_tokens": None, **price}  # fmt: skip


def test_a_hosted_model_pays_for_every_token_but_serves_only_those_within_the_slo() -> None:
    samples = [_sample(0.1)] * 2 + [_sample(0.9)] * 2  # 40 tokens in 10 s, 20 of them within 500 ms TTFT
    (level,) = levels_at_slo([_level(usd_per_1m_output_tokens=2.0)], samples).values()
    assert level.slo_tokens_per_s == pytest.approx(2.0)
    assert level.usd_per_1m_at_slo == pytest.approx(2.0 * 4.0 / 2.0)  # price x all tokens / served tokens


def test_a_self_hosted_model_is_priced_by_the_gpu_hour() -> None:
    samples = [_sample(0.1)] * 2 + [_sample(0.9)] * 2
    (level,) = levels_at_slo([_level(gpu_hour_usd=3.6, gpu_count=1)], samples).values()
    assert level.usd_per_1m_at_slo == pytest.approx(3.6 / (2.0 * 3600) * 1e6)


def test_no_price_no_cost() -> None:
    (level,) = levels_at_slo([_level()], [_sample(0.1)]).values()
    assert level.usd_per_1m_at_slo is None
