"""Fixtures shared by the ``/v1/messages`` suites: the fake upstreams and a gateway in front of them.

Targets, by the model name the client sends:

- native Claude: ``claude-sonnet-4-5`` (Anthropic, by its family prefix), ``bedrock:<Claude id>``
  (InvokeModel), ``vertex:claude-sonnet-4-5`` (rawPredict);
- translated: ``openai:gpt-4o``, ``gemini:gemini-2.5-flash``, ``nova:<Nova id>`` (Bedrock Converse).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from .anthropic_fake import API_KEY
from .bedrock_support import bedrock_handler, isolate_aws, provider_config
from .gemini_support import gemini_upstream, service_account_file
from .messages_support import claude_upstream, openai_upstream
from .support import FakeUpstream, fresh, gateway_server, serve_fake

GATEWAY_KEY = "gk-messages-test-0123456789"
OPENAI_KEY = "sk-fake-openai-messages-0123456789"
CLAUDE = "claude-sonnet-4-5"
BEDROCK_CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "us.amazon.nova-micro-v1:0"

NATIVE = {"anthropic": CLAUDE, "bedrock": f"bedrock:{BEDROCK_CLAUDE}", "vertex": f"vertex:{CLAUDE}"}
TRANSLATED = {"openai": "openai:gpt-4o", "gemini": "gemini:gemini-2.5-flash", "nova": f"nova:{NOVA}"}


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def _upstreams() -> Iterator[dict[str, FakeUpstream]]:
    with (
        serve_fake(claude_upstream) as claude,
        serve_fake(openai_upstream) as openai_fake,
        serve_fake(gemini_upstream) as gemini,
        serve_fake(bedrock_handler) as nova,
    ):
        yield {"claude": claude, "openai": openai_fake, "gemini": gemini, "nova": nova}


@pytest.fixture
def upstreams(_upstreams: dict[str, FakeUpstream]) -> Iterator[dict[str, FakeUpstream]]:
    for fake in _upstreams.values():
        fake.reset()
    yield _upstreams
    for fake in _upstreams.values():
        fake.reset()


@pytest.fixture
def claude(upstreams: dict[str, FakeUpstream]) -> Iterator[FakeUpstream]:
    yield from fresh(upstreams["claude"])


def gateway_config(upstreams: dict[str, FakeUpstream], credentials: str, **extra: Any) -> dict[str, Any]:
    claude_url = upstreams["claude"].url
    return {
        "providers": {
            # Fakes standing in for the real services: their prices (README, "Cost").
            "anthropic": {
                "api_key": API_KEY,
                "base_url": claude_url,
                "timeout": 5,
                "prices_from": "anthropic",
            },
            "bedrock": provider_config(claude_url),
            "vertex": {
                "credentials_file": credentials,
                "location": "europe-west4",
                "project_id": "test-project",
                "base_url": f"{claude_url}/v1",
                "timeout": 5,
            },
            "openai": {
                "api_key": OPENAI_KEY,
                "base_url": f"{upstreams['openai'].url}/v1",
                "timeout": 5,
                "prices_from": "openai",
            },
            "gemini": {
                "api_key": "gm-fake-key",
                "base_url": f"{upstreams['gemini'].url}/v1beta",
                "timeout": 5,
                "prices_from": "google",
            },
            "nova": provider_config(upstreams["nova"].url),
        },
        "auth": {"api_keys": [GATEWAY_KEY]},
        **extra,
    }


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory, _upstreams: dict[str, FakeUpstream]) -> str:
    folder = tmp_path_factory.mktemp("vertex")
    return str(service_account_file(folder, f"{_upstreams['claude'].url}/token"))


@pytest.fixture
def gateway_url(upstreams: dict[str, FakeUpstream], credentials: str) -> Iterator[str]:
    with gateway_server(gateway_config(upstreams, credentials), "fastapi") as (url, _):
        yield url


def install(namespace: dict[str, Any]) -> None:
    """Make the shared fixtures visible to a test module (pytest finds fixtures among its attributes)."""
    for name in ("_no_real_aws", "_upstreams", "upstreams", "claude", "credentials", "gateway_url"):
        namespace[name] = globals()[name]


def sdk(url: str, key: str = GATEWAY_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)
