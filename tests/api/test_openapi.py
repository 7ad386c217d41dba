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
    excluded = [schemathesis.checks.positive_data_acceptance]
    if case.path.startswith("/v1/messages"):
        # Described is what every upstream takes; the gateway accepts more (Claude gets unknown blocks
        # and fields natively, and Anthropic judges them), so schema-invalid data may be a 200.
        excluded.append(schemathesis.checks.negative_data_rejection)
    case.validate_response(response, excluded_checks=excluded)
    headers = {name.lower(): values[0] for name, values in response.headers.items()}
    answer = Answer(response.status_code, headers, response.content, method=case.method.upper())
    if case.path.startswith("/v1/messages"):  # Anthropic's API: its own error envelope
        _check_anthropic_answer(
            answer, positive=case.meta is not None and case.meta.generation.mode.is_positive
        )
        return
    check_response(answer)
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


def _check_anthropic_answer(answer: Answer, *, positive: bool) -> None:
    """What ``check_response`` asserts, with Anthropic's error envelope; a schema-valid request is
    refused only for a whole number written as a float (the wire model is strict, like Anthropic)."""
    assert answer.status < 500, f"server error {answer.status}: {answer.text[:500]}"
    content_type = answer.headers.get("content-type", "")
    if answer.status < 300 and content_type.startswith("text/event-stream"):
        return
    assert content_type.startswith("application/json"), (answer.status, content_type, answer.text[:300])
    body = json.loads(answer.body)
    if answer.status >= 400:
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, answer.text[:300]
        assert isinstance(body["error"]["message"], str) and body["error"]["message"], answer.text[:300]
        if positive and answer.status == 400:
            assert (
                "expected an integer" in body["error"]["message"].lower()
                or "valid integer" in body["error"]["message"].lower()
            ), f"schema-valid request refused: {answer.text[:300]}"


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
            "/v1/messages",
            "/v1/messages/count_tokens",
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


def test_every_documented_route_of_the_table_is_described_messages_in_anthropics_shapes() -> None:
    """Every route comes from ``routes.ENDPOINTS`` and its operation's ``describe()``."""
    from rec_llm_gateway.routes import ENDPOINTS

    document = openapi_document()
    for endpoint in ENDPOINTS:
        if endpoint.documented:
            assert endpoint.method.lower() in document["paths"][endpoint.path.replace(":path}", "}")]

    def ref(model: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{model}"}

    create = document["paths"]["/v1/messages"]["post"]
    assert create["operationId"] == "createMessage"
    assert create["requestBody"]["content"]["application/json"]["schema"] == ref("MessagesCreate")
    answer = create["responses"]["200"]["content"]
    assert answer["application/json"]["schema"] == ref("AnthropicMessage")
    events = answer["text/event-stream"]["schema"]
    assert events["required"] == ["event", "data"]  # named events, no [DONE]
    assert events["properties"]["data"]["contentSchema"]["anyOf"] == [
        ref("AnthropicStreamEvent"),
        ref("AnthropicError"),
    ]
    for status in ("400", "401", "429", "503"):
        assert create["responses"][status]["content"]["application/json"]["schema"] == ref("AnthropicError")

    count = document["paths"]["/v1/messages/count_tokens"]["post"]
    assert count["requestBody"]["content"]["application/json"]["schema"] == ref("CountTokensCreate")
    assert set(count["responses"]["200"]["content"]) == {"application/json"}
    assert count["responses"]["200"]["content"]["application/json"]["schema"] == ref("TokenCount")

    schemas = document["components"]["schemas"]
    assert schemas["MessagesCreate"]["required"] == ["model", "messages", "max_tokens"]
    assert "pattern" in schemas["MessagesCreate"]["properties"]["model"]
    assert schemas["AnthropicError"]["properties"]["type"]["const"] == "error"
    # /v1/responses from the table too: named events, the dropped-tools header, OpenAI's envelope
    responses = document["paths"]["/v1/responses"]["post"]["responses"]
    assert set(responses["200"]["headers"]) == {"x-request-id", "x-rec-llm-dropped-tools"}
    assert responses["200"]["content"]["text/event-stream"]["schema"]["required"] == ["event", "data"]
    assert responses["400"]["content"]["application/json"]["schema"] == ref("ErrorResponse")
    stored = document["paths"]["/v1/responses/{id}"]
    assert stored["get"]["responses"]["200"]["content"]["application/json"]["schema"] == ref("ResponseObject")
    assert stored["delete"]["responses"]["200"]["content"]["application/json"]["schema"] == ref(
        "DeletedResponse"
    )
    # the OpenAI-shaped routes keep OpenAI's envelope
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert chat["responses"]["400"]["content"]["application/json"]["schema"] == ref("ErrorResponse")
