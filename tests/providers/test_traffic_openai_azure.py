"""Recorded OpenAI and Azure traffic replays through the gateway intact.

For every recording: the recorded request, sent by a client through the gateway, reaches the fake
upstream with the same meaning; the recorded answer reaches the client with content, tool calls,
finish reasons and usage intact. Skipped when REC_LLM_TRAFFIC_DIR is not set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..support import FakeUpstream, Reply, gateway_server, traffic_dir

TRAFFIC = traffic_dir()
pytestmark = pytest.mark.skipif(
    TRAFFIC is None,
    reason="no recorded traffic (support.traffic_dir)",
)


def recordings(provider: str) -> list[str]:
    if TRAFFIC is None:
        return []
    return sorted(
        path.name.removesuffix(".request.json") for path in (TRAFFIC / provider).glob("*.request.json")
    )


def load(provider: str, name: str) -> tuple[dict[str, Any], Reply, Any]:
    """(recorded request, the Reply that replays the recorded answer, the parsed answer)."""
    assert TRAFFIC is not None
    folder = TRAFFIC / provider
    request = json.loads((folder / f"{name}.request.json").read_text())
    sse = folder / f"{name}.response.sse"
    if sse.exists():
        raw = sse.read_text()
        frames = [block + "\n\n" for block in raw.replace("\r\n", "\n").split("\n\n") if block.strip()]
        return (
            request,
            Reply(sse=frames),
            [block.removeprefix("data: ") for block in raw.split("\n\n") if block.strip()],
        )
    recorded = json.loads((folder / f"{name}.response.json").read_text())
    return request, Reply(status=recorded["_status"], json=recorded["body"]), recorded["body"]


def sse_data(text: str) -> list[Any]:
    data = [block.removeprefix("data: ") for block in text.split("\n\n") if block.strip()]
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]


def without_extension(chunk: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in chunk.items() if key != "x_rec_llm"}


@pytest.fixture
def fake(upstream: FakeUpstream) -> FakeUpstream:
    return upstream


@pytest.mark.parametrize("name", recordings("openai"))
def test_openai_recording(fake: FakeUpstream, name: str) -> None:
    recorded_request, reply, answer = load("openai", name)
    body = recorded_request["body"]
    config = {"providers": {"openai": {"api_key": "sk-test-replay-000000", "base_url": f"{fake.url}/v1"}}}
    with gateway_server(config) as (url, _):
        fake.reply(reply)
        client_body = {**body, "model": f"openai:{body['model']}"}
        response = httpx.post(f"{url}/v1/chat/completions", json=client_body, timeout=10)

    # the upstream saw the recorded request (plus the usage the gateway always asks for in streams)
    sent = fake.last.json
    expected = dict(body)
    if body.get("stream"):
        expected["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    assert sent == expected

    if reply.sse is not None:
        chunks = sse_data(response.text)
        recorded_chunks = [json.loads(item) for item in answer if item != "[DONE]"]
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if not wants_usage:
            recorded_chunks = [chunk for chunk in recorded_chunks if chunk.get("choices")]
            for chunk in recorded_chunks:
                chunk.pop("usage", None)
        assert [without_extension(chunk) for chunk in chunks] == recorded_chunks
        assert "x_rec_llm" in chunks[-1]
        assert_tool_arguments_parse(chunks)
    elif reply.status >= 400:
        assert response.status_code == reply.status
        assert response.json()["error"]["message"] == answer["error"]["message"]
        assert response.json()["error"]["code"] == answer["error"]["code"]
    else:
        assert response.status_code == 200
        data = response.json()
        assert without_extension(data) == answer
        assert data["x_rec_llm"]["provider"] == "openai"
        for choice in data["choices"]:
            for call in choice["message"].get("tool_calls") or []:
                json.loads(call["function"]["arguments"])


@pytest.mark.parametrize("name", recordings("azure"))
def test_azure_recording(fake: FakeUpstream, name: str) -> None:
    recorded_request, reply, answer = load("azure", name)
    body = recorded_request["body"]
    api_version = httpx.URL(recorded_request["uri"]).params["api-version"]
    deployment = recorded_request["uri"].split("/deployments/")[1].split("/")[0]
    if name.startswith("azure_prompt_content_filter_error"):
        reply.status = 400  # recorded as 200 by the cassette; Azure answers this with a 400
    config = {
        "providers": {
            "azure": {
                "api_key": "azure-test-key-00000000",
                "base_url": fake.url,
                "api_version": api_version,
                "deployments": {"my-model": deployment},
            }
        }
    }
    with gateway_server(config) as (url, _):
        fake.reply(reply)
        response = httpx.post(
            f"{url}/v1/chat/completions", json={**body, "model": "azure:my-model"}, timeout=10
        )

    sent = fake.last
    assert sent.path == f"/openai/deployments/{deployment}/chat/completions"
    assert sent.query == f"api-version={api_version}"
    assert sent.headers["api-key"] == "azure-test-key-00000000"
    assert "authorization" not in sent.headers
    assert {k: v for k, v in sent.json.items() if k not in ("model", "stream_options")} == {
        k: v for k, v in body.items() if k != "model"
    }

    if reply.sse is not None:
        chunks = sse_data(response.text)
        recorded_chunks = [json.loads(item) for item in answer if item != "[DONE]"]
        # the prompt-filter frame (no id, no choices) is dropped; everything else arrives intact
        expected = [chunk for chunk in recorded_chunks if chunk.get("id")]
        assert len(expected) == len(recorded_chunks) - 1
        assert [without_extension(chunk) for chunk in chunks] == expected
        text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks)
        assert len(text) > 20
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    elif reply.status >= 400:
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "content_filter"
        assert error["param"] == "prompt"
        assert "content management policy" in error["message"].lower()
    else:
        data = response.json()
        choice = data["choices"][0]
        recorded_choice = answer["choices"][0]
        assert choice["finish_reason"] == recorded_choice["finish_reason"]
        assert data["usage"] == answer["usage"]
        if recorded_choice["finish_reason"] == "content_filter":
            # Azure sends no message for a filtered choice; clients get an empty one
            assert choice["message"] == {"role": "assistant", "content": None, "refusal": None}
            assert choice["content_filter_results"]["hate"]["filtered"] is True
        else:  # refusal: null is added where an older api-version left it out (OpenAI's spec needs it)
            assert choice["message"] == {"refusal": None, **recorded_choice["message"]}
        assert data["x_rec_llm"]["cost_usd"] is not None or data["model"] == "gpt-35-turbo"


def assert_tool_arguments_parse(chunks: list[dict[str, Any]]) -> None:
    arguments: dict[tuple[int, int], str] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            for call in choice["delta"].get("tool_calls") or []:
                key = (choice["index"], call["index"])
                arguments[key] = arguments.get(key, "") + (call.get("function", {}).get("arguments") or "")
    for text in arguments.values():
        json.loads(text)


def test_recordings_exist() -> None:
    assert TRAFFIC is not None
    assert len(recordings("openai")) >= 8
    assert len(recordings("azure")) >= 5
    assert Path(TRAFFIC / "SOURCES.md").exists()
