"""``GET /openapi.json``: the gateway's own routes, described; schemathesis holds the gateway to it.

Schemathesis generates requests from the description (valid ones and deliberately invalid ones) and
checks every answer: no 5xx, a documented status and content type, a body matching its schema,
invalid input refused, 405s naming the allowed method. It runs in-process against the ASGI app
(the gateway on the built-in ``echo`` provider, so no network). The case count is printed in the
"generated cases" summary.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings

from rec_llm_gateway import Gateway
from rec_llm_gateway.openapi import openapi_document

from ..fuzz_support import RANDOM, SCALE, Answer, check_response
from ..support import HOST_KINDS, count_cases, gateway_server

schemathesis = pytest.importorskip("schemathesis")

CONFIG = {"providers": {"echo": {}}, "limits": {"max_body_bytes": 256 * 1024}}


# What a schema-valid request may still be refused for, by the provider its model routes to (README:
# legacy completions on a native provider; an embedding size the model does not give).
PROVIDER_REFUSALS = frozenset({"unsupported_parameter", "unsupported_dimensions"})

GATEWAY = Gateway(CONFIG)
# Loaded from the document the gateway serves (test_the_description_is_served_at_every_mount checks
# they are the same), so that collecting the suite makes no request; the gateway's lifespan starts
# on schemathesis' own event-loop thread at the first case.
schema = schemathesis.openapi.from_dict(openapi_document())
schema.app = GATEWAY


@schema.parametrize()
@settings(
    max_examples=max(1, int(20 * SCALE)),
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_gateway_conforms_to_its_openapi_description(case: Any) -> None:
    count_cases("openapi: schemathesis")
    response = case.call()
    case.validate_response(response, excluded_checks=[schemathesis.checks.positive_data_acceptance])
    headers = {name.lower(): values[0] for name, values in response.headers.items()}
    check_response(Answer(response.status_code, headers, response.content, method=case.method.upper()))
    if response.status_code == 400 and case.meta is not None and case.meta.generation.mode.is_positive:
        # Schemathesis' own acceptance check, less one case: JSON Schema calls 10.0 an integer, but
        # the gateway (like OpenAI) refuses a whole number written with a decimal point where an
        # integer belongs (a token id in embeddings' input included).
        error = json.loads(response.content)["error"]
        if error["code"] in PROVIDER_REFUSALS:
            return
        if case.path == "/v1/responses" and str(error["param"]).endswith(".call_id"):
            return  # a function_call_output answering no call: what a schema cannot say
        value = case.body.get(error["param"]) if isinstance(case.body, dict) else None
        assert error["code"] == "invalid_type" and _integral_float(value), (
            f"schema-valid request refused: {response.content!r} for {case.body!r}"
        )


def _integral_float(value: Any) -> bool:
    """Whether ``value`` is, or (as a token id in a list) holds, a whole number written as a float."""
    if isinstance(value, list):
        return any(_integral_float(item) for item in value)
    return isinstance(value, float) and value.is_integer()


@pytest.mark.parametrize("kind", HOST_KINDS)
def test_the_description_is_served_at_every_mount(kind: str) -> None:
    with gateway_server({"providers": {"echo": {}}}, kind) as (url, _):
        response = httpx.get(f"{url}/openapi.json")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        document = response.json()
        assert document["openapi"].startswith("3.1")
        assert document["servers"] == [{"url": "/llm"}]
        assert document == {**openapi_document(), "servers": [{"url": "/llm"}]}
        assert set(document["paths"]) == {
            "/v1/chat/completions",
            "/v1/embeddings",
            "/v1/completions",
            "/v1/models",
            "/v1/models/{id}",
            "/health",
            "/providers",
            "/providers/{name}/health",
            "/providers/{name}/stats",
            "/usage",
            "/v1/responses",
            "/v1/responses/{id}",
        }
        assert httpx.post(f"{url}/openapi.json").status_code == 405


def test_the_description_needs_no_key_and_is_built_once() -> None:
    from rec_llm_gateway import openapi

    gateway = Gateway(
        {"providers": {"echo": {}}, "auth": {"api_keys": ["k-123456"], "admin_keys": ["a-123456"]}}
    )
    transport = httpx.ASGITransport(app=gateway)

    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.get("/openapi.json")

    import asyncio

    first = asyncio.run(fetch())
    assert first.status_code == 200
    assert json.loads(first.content)["paths"]
    assert openapi.openapi_json("") is openapi.openapi_json("")


def test_openapi_is_not_imported_with_the_package() -> None:
    import subprocess
    import sys

    code = "import sys, rec_llm_gateway; print('rec_llm_gateway.openapi' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
