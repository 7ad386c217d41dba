from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .support import FakeUpstream, fresh, openai_echo, serve, serve_fake

# Distinctive fake credentials: tests grep responses, logs and telemetry for them.
PROVIDER_KEY = "sk-test-PROVIDERSECRET-0123456789abcdef"
SECOND_KEY = "sk-test-SECONDSECRET-fedcba9876543210"
GATEWAY_KEY = "gw-test-GATEWAYSECRET-42"


@pytest.fixture(scope="session")
def _upstream_server() -> Iterator[FakeUpstream]:
    with serve_fake() as fake:
        yield fake


@pytest.fixture
def upstream(_upstream_server: FakeUpstream) -> Iterator[FakeUpstream]:
    """A fake OpenAI-compatible upstream on loopback, reset for each test."""
    yield from fresh(_upstream_server)


@pytest.fixture
def openai_config(upstream: FakeUpstream) -> dict[str, Any]:
    """A gateway config with one OpenAI provider pointing at the fake upstream."""
    return {
        "default_provider": "openai",
        "providers": {
            "openai": {
                "api_key": PROVIDER_KEY,
                "base_url": f"{upstream.url}/v1",
                "timeout": 5,
                "models": ["gpt-4o-mini"],
                "prices_from": "openai",  # a stand-in for OpenAI: its prices (README, "Cost")
            },
        },
    }


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every log record at DEBUG (for secret scans)."""
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture(scope="session")
def _upstream_pool() -> Iterator[list[FakeUpstream]]:
    fakes = [FakeUpstream() for _ in range(4)]
    with contextlib.ExitStack() as stack:
        for fake in fakes:
            fake.url = stack.enter_context(serve(fake))
        yield fakes


@pytest.fixture
def upstreams(_upstream_pool: list[FakeUpstream]) -> Iterator[list[FakeUpstream]]:
    """Four fake OpenAI-compatible upstreams on loopback (for routing tests), reset for each test."""
    for fake in _upstream_pool:
        fake.reset()
        fake.default = openai_echo
    yield _upstream_pool
    for fake in _upstream_pool:
        fake.reset()
        fake.default = openai_echo


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print how many cases each generated suite ran (fuzz, fault matrix, disconnects, ...)."""
    from .support import CASE_COUNTS, NOTES

    if CASE_COUNTS or NOTES:
        terminalreporter.section("generated cases")
        for suite, cases in sorted(CASE_COUNTS.items()):
            terminalreporter.write_line(f"{suite}: {cases} cases")
        for line in NOTES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def _wires_server() -> Iterator[FakeUpstream]:
    from .embedding_fakes import embeddings_upstream

    with serve_fake(embeddings_upstream) as fake:
        yield fake


@pytest.fixture
def wires(_wires_server: FakeUpstream) -> Iterator[FakeUpstream]:
    """A loopback upstream that answers in every provider's wire format (``embedding_fakes``):
    embeddings, legacy completions and chat; reset for each test."""
    yield from fresh(_wires_server)


@pytest.fixture(scope="session")
def wires_gateway(_wires_server: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway (FastAPI host, uvicorn) with a provider of every type on ``wires``, and echo
    (the default provider); its base URL."""
    from .embedding_fakes import all_providers
    from .gemini_support import service_account_file
    from .support import gateway_server

    token_uri = f"{_wires_server.url}/token"
    credentials = str(service_account_file(tmp_path_factory.mktemp("vertex"), token_uri))
    config = {
        "providers": all_providers(_wires_server.url, credentials),
        "default_provider": "echo",
        "limits": {"max_embedding_inputs": 5000},
    }
    with gateway_server(config) as (url, _):
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A shared state store for several gateway processes: a SQLite file, then a real redis-server."""
    from .state_support import redis_server

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
        return
    with redis_server(tmp_path) as server:
        yield server.url


@pytest.fixture(autouse=True)
def _root_log_level_restored() -> Iterator[None]:
    """Put the root logger's level back after each test: a Litestar app built with its default
    logging config (the examples) sets it to INFO for the rest of the session, and every later test
    then creates, and pytest keeps, a record for each INFO line (test_disconnects's memory bound)."""
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)
