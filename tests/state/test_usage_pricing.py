"""Usage aggregation and pricing."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from rec_llm_gateway.config import PriceConfig
from rec_llm_gateway.pricing import PriceTable
from rec_llm_gateway.usage import TokenUsage, UsageTracker


def test_usage_aggregates_per_day_provider_model() -> None:
    tracker = UsageTracker()
    day = dt.date(2026, 1, 2)
    usage = TokenUsage(prompt_tokens=10, completion_tokens=5, total_tokens=15)
    tracker.record(
        provider="openai", model="gpt-4o", usage=usage, cost_usd=0.5, latency_ms=100, error=False, day=day
    )
    tracker.record(
        provider="openai", model="gpt-4o", usage=usage, cost_usd=None, latency_ms=300, error=False, day=day
    )
    tracker.record(
        provider="openai", model="gpt-4o", usage=None, cost_usd=None, latency_ms=50, error=True, day=day
    )
    tracker.record(provider="echo", model="x", usage=usage, cost_usd=None, latency_ms=1, error=False, day=day)
    [record] = tracker.get_by_provider("openai")
    assert (record.calls, record.errors, record.prompt_tokens, record.total_tokens) == (3, 1, 20, 30)
    assert record.cost_usd == 0.5
    assert record.avg_latency_ms == 150
    assert tracker.get_by_provider("echo")[0].cost_usd is None  # never priced: null, not 0
    assert len(tracker.get_by_date(day)) == 2
    assert len(tracker.get_by_date("2026-01-02")) == 2
    assert tracker.get_by_date(dt.date(2026, 1, 3)) == []
    data = record.to_dict()
    assert data["date"] == "2026-01-02"
    assert data["avg_latency_ms"] == 150


def test_usage_records_are_snapshots() -> None:
    tracker = UsageTracker()
    tracker.record(provider="p", model="m", usage=None, cost_usd=None, latency_ms=1, error=False)
    snapshot = tracker.get_all()[0]
    tracker.record(provider="p", model="m", usage=None, cost_usd=None, latency_ms=1, error=False)
    assert snapshot.calls == 1
    assert tracker.get_all()[0].calls == 2


def test_usage_is_exact_under_concurrency() -> None:
    tracker = UsageTracker()
    usage = TokenUsage(prompt_tokens=1, completion_tokens=1, total_tokens=2)

    def hammer() -> None:
        for _ in range(2000):
            tracker.record(provider="p", model="m", usage=usage, cost_usd=0.001, latency_ms=1, error=False)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [record] = tracker.get_all()
    assert record.calls == 16000
    assert record.total_tokens == 32000
    assert record.cost_usd == pytest.approx(16.0)


def test_pricing_overrides_and_cached_tokens() -> None:
    table = PriceTable(
        {
            "local:llama": PriceConfig(input=1.0, output=2.0, cached_input=0.5),
            "free-model": PriceConfig(input=0, output=0),
        }
    )
    usage = TokenUsage(
        prompt_tokens=1_000_000, completion_tokens=1_000_000, total_tokens=2_000_000, cached_tokens=400_000
    )
    # 600k plain input at $1, 400k cached at $0.50, 1M output at $2
    assert table.cost("local", None, "llama", usage) == pytest.approx(0.6 + 0.2 + 2.0)
    assert table.cost("anything", None, "free-model", usage) == 0.0
    assert table.cost("local", None, "llama", None) is None


def test_pricing_from_the_table_matches_genai_prices() -> None:
    from decimal import Decimal

    from genai_prices import Usage, calc_price

    table = PriceTable()
    usage = TokenUsage(prompt_tokens=12_345, completion_tokens=678, total_tokens=13_023, cached_tokens=2_000)
    ours = table.cost("openai", "openai", "gpt-4o", usage)
    theirs = calc_price(
        Usage(input_tokens=12_345, output_tokens=678, cache_read_tokens=2_000), "gpt-4o", provider_id="openai"
    )
    assert ours == pytest.approx(float(theirs.total_price), rel=1e-9)
    assert Decimal(str(ours)) > 0


def test_unknown_model_costs_null_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    table = PriceTable()
    usage = TokenUsage(prompt_tokens=1, completion_tokens=1, total_tokens=2)
    assert table.cost("local", None, "my-finetune-xyz", usage, "http://localhost:9/v1") is None
    assert table.cost("local", None, "my-finetune-xyz", usage, "http://localhost:9/v1") is None
    assert caplog.text.count("no price known for local:my-finetune-xyz") == 1


def test_free_provider_costs_zero() -> None:
    assert (
        PriceTable().cost("echo", "free", "gpt-4o", TokenUsage(prompt_tokens=5, completion_tokens=5)) == 0.0
    )


def test_openai_usage_parsing() -> None:
    usage = TokenUsage.from_openai(
        {
            "prompt_tokens": 10,
            "completion_tokens": 4,
            "total_tokens": 14,
            "prompt_tokens_details": {"cached_tokens": 3},
            "completion_tokens_details": {"reasoning_tokens": 2},
        }
    )
    assert usage == TokenUsage(10, 4, 14, cached_tokens=3, reasoning_tokens=2)
    assert TokenUsage.from_openai(None) is None
    assert TokenUsage.from_openai({"prompt_tokens": "x", "completion_tokens": -3}) == TokenUsage(0, 0, 0)
