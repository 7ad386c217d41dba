"""The state stores one at a time, in process: the same atomic operations on memory, a real SQLite
file and a real redis-server; the ``state:`` config; ``/usage`` ranges; what an unavailable store does."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from rec_llm_gateway import Gateway, hookimpl
from rec_llm_gateway.errors import ConfigError
from rec_llm_gateway.state import StateConfig, open_store
from rec_llm_gateway.state.base import (
    Admission,
    Batch,
    BucketTake,
    BudgetTake,
    Settlement,
    Store,
    StoreUnavailable,
)
from rec_llm_gateway.state.ledger import Ledger
from rec_llm_gateway.state.sqlite import SQLiteStore
from rec_llm_gateway.state.usage import SharedUsage
from rec_llm_gateway.usage import UsageRecord

from ..routing_support import client
from ..state_support import ADMIN, CHAT, RedisServer, chat_body, free_port
from ..support import gateway_server

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.kill()


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path}/s.db"}.get(request.param)
    if url is None:
        url = request.getfixturevalue("redis_url")
    # A prefix per test: the module's Redis is shared.
    opened = open_store(StateConfig(url=url, key_prefix=f"t{id(request)}:"))
    yield opened
    await opened.aclose()


def _admission(
    id: str, now: float, *buckets: BucketTake, budget: BudgetTake | None = None, ttl: float = 600
) -> Admission:
    return Admission(id, now, buckets, budget, ttl)


# -- the atomic operations, on every store --------------------------------------------------------


async def test_buckets_are_taken_all_or_nothing(store: Store) -> None:
    key = BucketTake("key:a", 2, None, None)
    deployment = BucketTake("deployment:x", 1, None, None)
    assert await store.admit(_admission("1", NOW, key, deployment)) is None
    refusal = await store.admit(_admission("2", NOW + 1, key, deployment))
    assert refusal is not None and (refusal.bucket, refusal.limit) == ("deployment:x", "requests_per_minute")
    assert refusal.wait == pytest.approx(59.0)
    # The refused request took nothing from the key: one more still fits there.
    assert await store.admit(_admission("3", NOW + 2, key)) is None
    refusal = await store.admit(_admission("4", NOW + 3, key))
    assert refusal is not None and refusal.bucket == "key:a"
    assert await store.admit(_admission("5", NOW + 60.5, key)) is None  # the window slid


async def test_concurrency_slots_are_freed_by_the_settlement(store: Store) -> None:
    bucket = BucketTake("key:c", None, None, 1)
    assert await store.admit(_admission("1", NOW, bucket)) is None
    refusal = await store.admit(_admission("2", NOW, bucket))
    assert refusal is not None and refusal.limit == "concurrent_requests"
    await store.write(Batch(settlements=[Settlement("1", (bucket,), None, None)]))
    assert await store.admit(_admission("3", NOW, bucket)) is None


async def test_token_reservations_settle_to_the_real_count(store: Store) -> None:
    reserve = BucketTake("key:t", None, 100, None, tokens=80)
    assert await store.admit(_admission("1", NOW, reserve)) is None
    small = BucketTake("key:t", None, 100, None, tokens=30)
    refusal = await store.admit(_admission("2", NOW + 1, small))
    assert refusal is not None and refusal.limit == "tokens_per_minute"
    assert refusal.wait == pytest.approx(59.0)
    await store.write(Batch(settlements=[Settlement("1", (reserve,), 10, None)]))  # used 10, not 80
    assert await store.admit(_admission("3", NOW + 2, small)) is None


async def test_budget_reservations_hold_a_burst_and_settle_to_the_cost(store: Store) -> None:
    def take(amount: float) -> BudgetTake:
        return BudgetTake("key:b", "2027-01", 1.0, amount)

    assert await store.admit(_admission("1", NOW, budget=take(0.6))) is None
    held = await store.admit(_admission("2", NOW, budget=take(0.6)))
    assert held is not None and held.in_flight and held.limit == "monthly_budget_usd"
    await store.write(Batch(settlements=[Settlement("1", (), None, take(0.6), cost=0.25)]))
    assert await store.spent("key:b", "2027-01") == pytest.approx(0.25)
    assert await store.admit(_admission("3", NOW, budget=take(0.6))) is None  # 0.25 + 0.6 fits
    await store.write(Batch(settlements=[Settlement("3", (), None, take(0.6), cost=0.8)]))
    spent = await store.admit(_admission("4", NOW, budget=take(0.01)))
    assert spent is not None and not spent.in_flight and spent.spent == pytest.approx(1.05)
    assert await store.admit(_admission("5", NOW, budget=BudgetTake("key:b", "2027-02", 1.0, 0.5))) is None


async def test_headroom_is_what_each_bucket_has_used_in_the_window(store: Store) -> None:
    rated = BucketTake("key:h", 10, 1000, 3, tokens=100)
    assert await store.admit(_admission("1", NOW, rated)) is None
    assert await store.admit(_admission("2", NOW + 1, rated)) is None
    await store.write(Batch(settlements=[Settlement("1", (rated,), 40, None)]))  # used 40, slot freed
    idle = BucketTake("key:idle", 5, None, None)
    rows = await store.headroom([rated, idle], NOW + 2)
    assert rows == {
        "key:h": {
            "requests_per_minute": {"limit": 10, "used": 2, "remaining": 8},
            "tokens_per_minute": {"limit": 1000, "used": 140, "remaining": 860},
            "concurrent_requests": {"limit": 3, "used": 1, "remaining": 2},
        },
        "key:idle": {"requests_per_minute": {"limit": 5, "used": 0, "remaining": 5}},
    }
    later = (await store.headroom([rated], NOW + 60.5))["key:h"]  # the first left the window
    assert later["requests_per_minute"]["used"] == 1 and later["tokens_per_minute"]["used"] == 100


async def test_a_dead_process_reservation_expires(store: Store) -> None:
    if not store.shared:
        pytest.skip("the memory store dies with its process")
    take = BudgetTake("key:d", "2027-01", 1.0, 0.9)
    slot = BucketTake("key:d", None, None, 1)
    assert await store.admit(_admission("1", NOW, slot, budget=take, ttl=30)) is None  # never settled
    assert await store.admit(_admission("2", NOW + 10, slot, budget=take)) is not None
    assert await store.admit(_admission("3", NOW + 31, slot, budget=take)) is None


async def test_usage_and_signals_are_summed_and_read_back(store: Store) -> None:
    day = dt.date(2027, 1, 2)
    record = UsageRecord(
        day,
        "p",
        "m",
        "team",
        calls=2,
        errors=1,
        prompt_tokens=3,
        completion_tokens=4,
        total_tokens=7,
        cost_usd=0.5,
        total_latency_ms=10.0,
    )
    unpriced = UsageRecord(day + dt.timedelta(days=1), "p", "m", None, calls=1)
    await store.write(Batch(usage=[record, unpriced], signals={"breaker:p:m": {"state": "open"}}))
    await store.write(Batch(usage=[record], spend={("key:team", "2027-01"): 0.5}))
    rows = sorted(await store.usage(None, None), key=lambda row: row.date)
    assert [(row.calls, row.errors, row.total_tokens, row.cost_usd) for row in rows] == [
        (4, 2, 14, 1.0),
        (1, 0, 0, None),
    ]
    assert rows[0].gateway_key_id == "team" and rows[1].gateway_key_id is None
    assert [row.date for row in await store.usage(day + dt.timedelta(days=1), None)] == [
        day + dt.timedelta(days=1)
    ]
    assert await store.usage(None, day - dt.timedelta(days=1)) == []
    assert await store.spent("key:team", "2027-01") == pytest.approx(0.5)
    assert (await store.signals())["breaker:p:m"] == {"state": "open"}
    # The blocking read (gateway.usage.get_all()), from inside a running event loop, says the same.
    assert sorted(store.usage_blocking(None, None), key=lambda row: row.date) == rows
    assert store.usage_blocking(day + dt.timedelta(days=1), None) == rows[1:]


async def test_a_batch_sent_twice_is_written_once(store: Store) -> None:
    """A write that timed out may have landed: the ledger sends it again as it was, and the store
    applies each batch id once (usage, spend and settlements alike), also inside an admission."""
    if not store.shared:
        pytest.skip("the memory store is written in process: no write is ever in doubt")
    take = BudgetTake("key:w", "2027-01", 10.0, 1.0)
    assert await store.admit(_admission("1", NOW, budget=take)) is None
    record = UsageRecord(dt.date(2027, 1, 2), "p", "m", "w", calls=1, cost_usd=0.25, total_latency_ms=5.0)
    batch = Batch(
        settlements=[Settlement("1", (), None, take, cost=0.25)],
        spend={("key:w", "2027-01"): 0.5},
        usage=[record],
    )
    await store.write(batch)
    await store.write(batch)
    assert await store.admit(_admission("2", NOW, budget=take), batch) is None
    [row] = await store.usage(None, None)
    assert (row.calls, row.cost_usd) == (1, 0.25)
    assert await store.spent("key:w", "2027-01") == pytest.approx(0.75)
    # Once the ledger knows a batch is written it says so with the next one, and the store forgets
    # the id (it keeps only the ids of writes still in doubt).
    await store.write(Batch(usage=[record], written=[batch.id]))
    assert [row.calls for row in await store.usage(None, None)] == [2]
    if isinstance(store, SQLiteStore):
        with contextlib.closing(sqlite3.connect(store.path)) as db:
            remembered = db.execute("SELECT id FROM written").fetchall()
        assert len(remembered) == 1 and remembered[0][0] != batch.id  # the last batch's, until the next


async def test_a_write_that_lands_but_fails_is_counted_once(tmp_path: Path) -> None:
    """The store commits the flush, then the ledger's wait for it fails (a timeout on a loaded
    machine): the retry must not add the usage and spend again."""
    ledger = Ledger(StateConfig(url=f"sqlite:///{tmp_path}/s.db"))
    real_write = ledger.store.write
    calls = 0

    async def lands_then_fails(batch: Batch) -> None:
        nonlocal calls
        calls += 1
        await real_write(batch)
        if calls == 1:
            raise TimeoutError("answered too late")

    ledger.store.write = lands_then_fails  # type: ignore[method-assign]
    ledger.pending.record(provider="p", model="m", usage=None, cost_usd=0.5, latency_ms=1.0, error=False)
    ledger.add_spend("key:w", "2027-01", 0.5)
    assert not await ledger.flush()
    assert await ledger.flush()
    assert [row.calls for row in SharedUsage(ledger).rows()] == [1]
    assert await ledger.store.spent("key:w", "2027-01") == pytest.approx(0.5)
    await ledger.store.aclose()


async def test_the_ledger_sends_a_settlement_only_when_it_changes_the_store(tmp_path: Path) -> None:
    """Requests counted per minute expire with their window: settling them would be a write (a
    second command in the next admission's round trip) that changes nothing."""
    ledger = Ledger(StateConfig(url=f"sqlite:///{tmp_path}/s.db"))
    sent: list[Batch | None] = []
    real_admit = ledger.store.admit

    async def recording(admission: Admission, settled: Batch | None = None) -> Any:
        sent.append(settled)
        return await real_admit(admission, settled)

    ledger.store.admit = recording  # type: ignore[method-assign]
    counted = BucketTake("deployment:p:m", 100, None, None)
    slot = BucketTake("deployment:p:m2", None, None, 1)
    for bucket in (counted, counted, slot, slot):
        admission = _admission(str(len(sent)), NOW, bucket)
        assert await ledger.admit(admission) is None
        ledger.settle(admission, Settlement(admission.id, (bucket,), 12, None))
    assert sent[:3] == [None, None, None]  # nothing to settle until the slot was taken
    assert sent[3] is not None and [s.buckets for s in sent[3].settlements] == [(slot,)]
    await ledger.store.aclose()


async def test_blocking_usage_reads_reuse_one_redis_connection(redis_url: str) -> None:
    store = open_store(StateConfig(url=redis_url, key_prefix="blocking:"))
    await store.write(Batch(usage=[UsageRecord(dt.date(2027, 1, 2), "p", "m", None, calls=1)]))
    admin = redis.Redis.from_url(redis_url)
    before = admin.info("stats")["total_connections_received"]
    for _ in range(5):
        assert [row.calls for row in store.usage_blocking(None, None)] == [1]
    assert admin.info("stats")["total_connections_received"] - before == 1
    admin.close()
    await store.aclose()


async def test_a_locked_sqlite_file_is_retried_then_reported(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"), timeout=0.3)
    assert await store.admit(_admission("1", NOW, BucketTake("k", 5, None, None))) is None
    blocker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreUnavailable, match="locked"):
        await store.admit(_admission("2", NOW, BucketTake("k", 5, None, None)))
    blocker.execute("ROLLBACK")
    assert await store.admit(_admission("3", NOW, BucketTake("k", 5, None, None))) is None
    blocker.close()
    await store.aclose()


async def test_the_sqlite_wal_stays_bounded_under_sustained_writes(tmp_path: Path) -> None:
    """Writes never stop for a checkpoint to catch up: the WAL must still be written from its start
    again (with checkpoints that could never complete it grew by 24 KiB a transaction, for ever)."""
    store = SQLiteStore(str(tmp_path / "s.db"), timeout=0.5)
    bucket = BucketTake("k", 10**9, None, None)
    for n in range(1500):
        await asyncio.gather(*(store.admit(_admission(f"{n}.{i}", NOW, bucket)) for i in range(4)))
    assert store.transactions >= 1500
    assert (tmp_path / "s.db-wal").stat().st_size < 12 * 2**20
    await store.aclose()


# -- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://db/x", "state.url: url: unknown scheme postgres://"),
        ("sqlite://", "sqlite needs a file path"),
        ("nonsense", "unknown scheme (none)"),
    ],
)
def test_a_bad_state_url_names_the_fix(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match="state") as caught:
        Gateway({"state": {"url": url}})
    assert message in str(caught.value)


def test_the_state_url_is_a_secret_and_memory_is_the_default(tmp_path: Path) -> None:
    config = StateConfig(url="redis://:hunter2-password@127.0.0.1:1/0")
    assert "hunter2" not in repr(config)
    gateway = Gateway({})
    assert not gateway.ledger.shared
    assert Gateway({"state": {"url": f"sqlite:///{tmp_path}/x.db"}}).ledger.shared
    with pytest.raises(ConfigError, match="on_unavailable"):
        Gateway({"state": {"on_unavailable": "maybe"}})


# -- through the gateway ---------------------------------------------------------------------------


def _config(url: str, **state: Any) -> dict[str, Any]:
    return {
        "providers": {"echo": {}},
        "pricing": {"echo:m": {"input": 0, "output": 1000}},
        "auth": {
            "admin_keys": ["admin-key-000001"],
            "keys": [
                {"key": "team-key-000001", "name": "team", "requests_per_minute": 100},
                {"key": "other-key-00001", "name": "other"},
            ],
        },
        "state": {"url": url, **state},
    }


async def test_usage_survives_leaving_async_with_and_reads_by_range_and_key(tmp_path: Path) -> None:
    config = _config(f"sqlite:///{tmp_path}/usage.db", flush_seconds=1)
    gateway = Gateway(config)
    async with client(gateway) as http:
        for key in ("team-key-000001", "team-key-000001", "other-key-00001"):
            assert (await http.post(CHAT, json=chat_body(), headers={"x-api-key": key})).status_code == 200
    # Leaving flushed what was buffered: a new gateway on the same file reads it.
    async with client(Gateway(config)) as http:
        today = dt.datetime.now(dt.UTC).date()
        everything = (await http.get("/usage", headers=ADMIN)).json()
        assert everything["totals"]["calls"] == 3
        assert everything["data"][0]["gateway_key_id"] is None  # summed over keys
        ranged = await http.get(
            "/usage", headers=ADMIN, params={"from": today.isoformat(), "to": today.isoformat()}
        )
        assert ranged.json()["totals"]["calls"] == 3
        tomorrow = (today + dt.timedelta(days=1)).isoformat()
        assert (await http.get("/usage", headers=ADMIN, params={"from": tomorrow})).json()["data"] == []
        by_key = (await http.get("/usage", headers=ADMIN, params={"key": "team"})).json()
        assert by_key["totals"]["calls"] == 2 and by_key["data"][0]["gateway_key_id"] == "team"
        bad = await http.get("/usage", headers=ADMIN, params={"to": "2027-13-01"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "to"
        assert (await http.get("/usage", params={"key": "team"})).status_code == 401
    assert [record.calls for record in Gateway(config).usage.get_all()] == [3]  # the blocking reader


async def test_with_closed_a_store_that_is_down_refuses_with_503(caplog: pytest.LogCaptureFixture) -> None:
    config = _config(f"redis://127.0.0.1:{free_port()}/0", on_unavailable="closed", timeout_seconds=0.2)
    async with client(Gateway(config)) as http:
        response = await http.post(CHAT, json=chat_body(), headers={"x-api-key": "team-key-000001"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "state_unavailable"
        # A key with nothing to check needs no store.
        assert (
            await http.post(CHAT, json=chat_body(), headers={"x-api-key": "other-key-00001"})
        ).status_code == 200


async def test_with_open_a_store_that_is_down_falls_back_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    gateway = Gateway(
        _config(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.2),
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    with caplog.at_level(logging.WARNING, logger="rec_llm_gateway.state"):
        async with client(gateway) as http:
            for _ in range(5):
                response = await http.post(CHAT, json=chat_body(), headers={"x-api-key": "team-key-000001"})
                assert response.status_code == 200
    warnings = [record.getMessage() for record in caplog.records]
    assert len([text for text in warnings if text.startswith("state store (redis) unavailable")]) == 1
    assert "fall back to this process" in warnings[0]
    assert "unavailable at shutdown: buffered usage and spend are lost" in warnings[-1]
    spans = [span for span in exporter.get_finished_spans() if span.name.startswith("gateway chat")]
    assert len(spans) == 5 and all(span.attributes.get("rec_llm.state.fallback") for span in spans)
    metrics = reader.get_metrics_data()
    points = [
        point.value
        for resource in metrics.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "rec_llm.gateway.state.fallbacks"
        for point in metric.data.data_points
    ]
    assert sum(points) == 5


# -- issue 16: a budget never fails open ---------------------------------------------------------


@pytest.mark.parametrize(
    ("key_setting", "global_setting", "allowed"),
    [(None, None, False), ("allow", None, True), (None, "allow", True), ("deny", "allow", False)],
)
async def test_a_budgeted_key_may_not_use_an_unpriced_model_silently(
    upstream: Any, key_setting: str | None, global_setting: str | None, allowed: bool
) -> None:
    key: dict[str, Any] = {"key": "budget-key-00001", "name": "payer", "monthly_budget_usd": 5}
    if key_setting:
        key["unpriced"] = key_setting
    auth: dict[str, Any] = {"keys": [key, {"key": "free-key-000001", "name": "free"}]}
    if global_setting:
        auth["unpriced"] = global_setting
    config = {
        "providers": {"local": {"type": "openai", "api_key": "sk-x", "base_url": f"{upstream.url}/v1"}},
        "auth": auth,
    }
    body = {"model": "local:house-model-without-a-price", "messages": [{"role": "user", "content": "hi"}]}
    async with client(Gateway(config)) as http:
        response = await http.post(CHAT, json=body, headers={"x-api-key": "budget-key-00001"})
        if allowed:
            assert response.status_code == 200
        else:
            assert response.status_code == 400
            error = response.json()["error"]
            assert (error["code"], error["param"]) == ("unpriced_model", "model")
            assert "has no known price" in error["message"] and "unpriced: allow" in error["message"]
            assert upstream.requests == []  # refused before any upstream call
        # A key without a budget is not concerned.
        assert (await http.post(CHAT, json=body, headers={"x-api-key": "free-key-000001"})).status_code == 200


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_sequential_client_finds_its_previous_request_settled(stream: bool) -> None:
    """The budget is settled before the last byte goes out, not after the hooks that follow it."""

    class SlowAfterwards:
        def __init__(self) -> None:
            self.release = threading.Event()

        @hookimpl
        async def post_response(self) -> None:
            await asyncio.to_thread(self.release.wait, 10)

    slow = SlowAfterwards()
    # Each request costs $0.003 (3 output tokens at $0.001): the second fits only once the first
    # holds its cost instead of its reservation.
    config = _config("memory://")
    config["auth"]["keys"] = [{"key": "budget-key-0001", "name": "payer", "monthly_budget_usd": 0.005}]
    body = {**chat_body("one two three", max_tokens=3), "stream": stream}
    with gateway_server(config, "bare", plugins=[slow]) as (url, _):
        try:
            for expected in (200, 200, 429):  # the third finds the budget spent
                response = httpx.post(
                    url + CHAT, json=body, headers={"x-api-key": "budget-key-0001"}, timeout=10
                )
                assert response.status_code == expected, response.text
        finally:
            slow.release.set()


async def test_stats_say_when_the_store_cannot_tell_the_shared_headroom() -> None:
    config = _config(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.2)
    config["providers"] = {"echo": {"rate_limits": {"requests_per_minute": 5}}}
    async with client(Gateway(config)) as http:
        stats = (await http.get("/providers/echo/stats", headers=ADMIN)).json()
        assert stats["limits"] == {"unavailable": "the state store did not answer"}
        assert stats["requests"] is None and stats["health"] == "unknown"  # routing's own state answers
        usage = await http.get("/usage", headers=ADMIN)
        assert usage.status_code == 503 and usage.json()["error"]["code"] == "state_unavailable"
        listing = (await http.get("/providers", headers=ADMIN)).json()["data"]
        assert listing[0]["limits"] == stats["limits"]
