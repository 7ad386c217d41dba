"""The shared stores under concurrency: the admissions of a burst share SQLite transactions (group
commit) and Redis pipelines, stay exact and never fall back to per-process counting, in one process
(more admissions at once than Redis's connection pool holds) and over two ``serve`` processes; a
locked SQLite file is waited for; an admission that timed out is released in the store; a Redis
that stops answering is waited for no longer than the timeout."""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import redis

from rec_llm_gateway import Gateway
from rec_llm_gateway.state import StateConfig, open_store
from rec_llm_gateway.state.base import (
    Admission,
    Batch,
    BucketTake,
    BudgetTake,
    Refusal,
    Settlement,
    StoreUnavailable,
)
from rec_llm_gateway.state.ledger import Ledger
from rec_llm_gateway.state.memory import MemoryStore
from rec_llm_gateway.state.redis_batch import AdmissionPipeline
from rec_llm_gateway.state.sqlite import SQLiteStore

from ..routing_support import client
from ..state_support import CHAT, chat_body, gateways, post_all, redis_server, write_config
from ..telemetry_support import Otel

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

NOW = 1_800_000_000.0
KEY = {"x-api-key": "burst-key-00001"}


def _admission(id: str, *buckets: BucketTake) -> Admission:
    return Admission(id, NOW, buckets, None, 600)


async def test_admissions_queued_behind_a_locked_file_share_one_transaction(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"), timeout=15)  # the wait for the lock: up to 15 s
    bucket = BucketTake("key:k", 40, None, None)
    assert await store.admit(_admission("first", bucket)) is None
    blocker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    before = store.transactions
    tasks = [asyncio.create_task(store.admit(_admission(str(n), bucket))) for n in range(64)]
    await asyncio.sleep(0)  # every admission is grouped now ...
    await asyncio.sleep(0)  # ... and the group found the file locked: it tries again each millisecond
    blocker.execute("ROLLBACK")  # the lock comes free while they wait: retried, not reported
    answers = await asyncio.gather(*tasks)
    assert answers.count(None) == 39  # exactly the limit (one was taken before)
    assert all(isinstance(answer, Refusal) for answer in answers[39:])
    assert store.transactions == before + 1  # all 64 in one transaction
    blocker.close()
    await store.aclose()


async def test_one_failing_operation_is_undone_alone(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "s.db"), timeout=5)
    slot = BucketTake("key:k", None, None, 5)
    assert await store.admit(_admission("a", slot)) is None
    # The same admission id twice fails on the primary key, inside the batch of the others.
    answers = await asyncio.gather(
        store.admit(_admission("b", slot)),
        store.admit(_admission("a", slot)),
        store.admit(_admission("c", slot)),
        return_exceptions=True,
    )
    assert answers[0] is None and answers[2] is None
    assert isinstance(answers[1], Exception)
    with pytest.raises(StoreUnavailable, match="UNIQUE"):  # alone in its transaction: rolled back whole
        await store.admit(_admission("b", slot))
    # b and c hold their slots, a holds one: two are left of five.
    assert [await store.admit(_admission(f"x{n}", slot)) for n in range(2)] == [None, None]
    refused = await store.admit(_admission("x3", slot))
    assert refused is not None and refused.limit == "concurrent_requests"
    await store.aclose()


@pytest.mark.parametrize("count", [64, 200])
async def test_a_burst_in_one_process_admits_exactly_the_limit_and_never_falls_back(
    store_url: str, count: int, caplog: pytest.LogCaptureFixture
) -> None:
    limit = count // 2
    otel = Otel()
    config = {
        "providers": {"echo": {}},
        "auth": {"keys": [{"key": KEY["x-api-key"], "name": "burst", "requests_per_minute": limit}]},
        "state": {"url": store_url},
    }
    gateway = Gateway(config, **otel.kwargs)
    with caplog.at_level(logging.WARNING, logger="rec_llm_gateway.state"):
        async with client(gateway) as http:
            responses = await asyncio.gather(
                *(http.post(CHAT, json=chat_body(), headers=KEY) for _ in range(count))
            )
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == limit
    assert statuses.count(429) == count - limit
    assert "rec_llm.gateway.state.fallbacks" not in otel.metrics()
    assert not any((span.attributes or {}).get("rec_llm.state.fallback") for span in otel.spans())
    assert not [record for record in caplog.records if "unavailable" in record.getMessage()]


def test_a_burst_over_two_processes_sharing_the_store_is_exact(store_url: str, tmp_path: Path) -> None:
    keys = [{"key": KEY["x-api-key"], "name": "burst", "requests_per_minute": 50}]
    config = write_config(tmp_path / "gateway.json", store_url, keys=keys)
    with gateways(config, 1, 1) as processes:
        urls = [process.url for process in processes]
        statuses = asyncio.run(post_all(urls, 200, KEY, chat_body()))
        logs = [process.stop() for process in processes]
    assert statuses.count(200) == 50
    for log in logs:
        assert "unavailable" not in log, log  # no admission fell back to per-process counting


async def test_an_admission_answered_after_its_timeout_is_released_in_the_store(tmp_path: Path) -> None:
    class LateStore(MemoryStore):
        """Takes the admission, then answers after the ledger has given up on it."""

        shared = True

        async def admit(self, admission: Admission, settled: Any = None) -> Refusal | None:
            refusal = self.admit_now(admission)
            await asyncio.Event().wait()
            return refusal

    ledger = Ledger(StateConfig(url=f"sqlite:///{tmp_path}/unused.db", timeout_seconds=0.05))
    late = ledger.store = LateStore()
    slot = BucketTake("deployment:p:m", None, None, 1)
    assert await ledger.admit(_admission("a", slot)) is None  # served by the per-process fallback
    assert late.admit_now(_admission("probe", slot)) is not None  # the store still holds a's slot
    assert await ledger.flush()
    assert late.admit_now(_admission("b", slot)) is None  # released with the next write


class _GatedRedis:
    """Stands in for the admission connection: answers a round trip once ``gate`` opens."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[list[Any]] = []

    async def run(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        self.sent.append([command[3] for command in commands])  # EVALSHA sha 0 <first argument>
        await self.gate.wait()
        return [None] * len(commands)  # the admission script's "admitted"


async def test_admissions_queued_behind_a_cancelled_one_are_still_sent_and_answered() -> None:
    redis = _GatedRedis()

    def write(batch: Any) -> tuple[Any, ...]:
        raise AssertionError("nothing to settle")

    pipeline = AdmissionPipeline(redis.run, write)  # type: ignore[arg-type]
    first = asyncio.create_task(pipeline.admit(["first"], None))
    await asyncio.sleep(0)  # it is out
    queued = [asyncio.create_task(pipeline.admit([n], None)) for n in range(3)]
    await asyncio.sleep(0)
    first.cancel()  # its caller timed out while the others waited behind it
    await asyncio.sleep(0)
    redis.gate.set()
    assert await asyncio.gather(*queued) == [None, None, None]
    assert first.cancelled()
    assert redis.sent == [["first"], [0, 1, 2]]  # the three went together, in one pipeline, after it


async def test_redis_that_lost_its_scripts_runs_them_again_once(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        store = open_store(StateConfig(url=server.url))
        bucket = BucketTake("key:s", 100, None, None)
        take = BudgetTake("key:s", "2027-01", 10.0, 1.0)
        nothing = Batch(settlements=[Settlement("none", (), None, None)])  # sent in a pipeline
        assert await store.admit(Admission("1", NOW, (bucket,), take, 600), nothing) is None
        admin = redis.Redis.from_url(server.url)
        admin.script_flush()  # what a restart does to them
        settled = Batch(
            settlements=[Settlement("1", (bucket,), None, take, cost=0.5)], spend={("key:s", "2027-01"): 0.25}
        )
        assert await store.admit(Admission("2", NOW, (bucket,), None, 600), settled) is None
        assert await store.spent("key:s", "2027-01") == pytest.approx(0.75)  # each written once
        admin.close()
        await store.aclose()


async def test_a_redis_that_stops_answering_is_waited_for_no_longer_than_the_timeout(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        assert server.process is not None
        ledger = Ledger(StateConfig(url=server.url, timeout_seconds=0.2))
        bucket = BucketTake("key:hang", 100, None, None)
        assert await ledger.admit(_admission("before", bucket)) is None
        server.process.send_signal(signal.SIGSTOP)  # alive, connected, silent
        try:
            started = asyncio.get_running_loop().time()
            hung = _admission("hung", bucket)
            assert await ledger.admit(hung) is None
            assert hung.fallback  # served by the per-process fallback ...
            assert asyncio.get_running_loop().time() - started < 0.6  # ... after its 0.2 s (the ledger: 0.8)
        finally:
            server.process.send_signal(signal.SIGCONT)
        await asyncio.sleep(1.1)  # the ledger tries the store again after a second
        after = _admission("after", bucket)
        assert await ledger.admit(after) is None
        assert not after.fallback  # a new connection: the late reply was never read as this one's
        admin = redis.Redis.from_url(server.url, decode_responses=True)
        assert {"before", "after"} <= set(admin.zrange("rec_llm:r:key:hang", 0, -1))
        admin.close()
        await ledger.store.aclose()
