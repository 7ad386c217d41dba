"""Bedrock test helpers: an isolated AWS environment, event-stream frames, a Bedrock-speaking fake
upstream, and SigV4 verification by re-signing with botocore."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from rec_llm_gateway.providers.bedrock.eventstream import encode_frame

from .support import Recorded, Reply

# Distinctive fake credentials: tests grep responses and logs for them.
ACCESS_KEY = "AKIDFAKEBEDROCKTEST01"
SECRET_KEY = "fake-Bedrock-SECRET-key-0123456789abcdef"
SESSION_TOKEN = "fake-Bedrock-SESSION-token-fedcba9876543210"
API_KEY = "bedrock-api-key-FAKE-ABSK0123456789"
REGION = "us-east-1"
EVENTSTREAM = "application/vnd.amazon.eventstream"

# A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def isolate_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real AWS configuration, credentials or metadata service can be reached from a test."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def provider_config(base_url: str, **extra: Any) -> dict[str, Any]:
    """A bedrock provider with explicit fake keys pointing at a fake upstream."""
    return {
        "type": "bedrock",
        "region": REGION,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "base_url": base_url,
        "control_plane_url": base_url,
        "timeout": 5,
        **extra,
    }


# -- frames -----------------------------------------------------------------------------------------


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, json.dumps({**payload, "p": "abcdefgh"}).encode())


def exception_frame(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return encode_frame(headers, json.dumps({"message": message}).encode())


def usage(prompt: int = 10, completion: int = 5, **extra: int) -> dict[str, int]:
    return {"inputTokens": prompt, "outputTokens": completion, "totalTokens": prompt + completion, **extra}


def text_frames(words: list[str], stop: str = "end_turn", prompt: int = 10) -> list[bytes]:
    frames = [event("messageStart", {"role": "assistant"})]
    frames += [
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": word}}) for word in words
    ]
    frames += [
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": stop}),
        event("metadata", {"usage": usage(prompt, len(words)), "metrics": {"latencyMs": 12}}),
    ]
    return frames


def tool_frames(calls: list[tuple[str, str, str]], text: str = "Let me check.") -> list[bytes]:
    """A stream with a text block, then one toolUse block per (id, name, arguments JSON)."""
    frames = [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}}),
        event("contentBlockStop", {"contentBlockIndex": 0}),
    ]
    for block, (call_id, name, arguments) in enumerate(calls, start=1):
        frames.append(
            event(
                "contentBlockStart",
                {"contentBlockIndex": block, "start": {"toolUse": {"toolUseId": call_id, "name": name}}},
            )
        )
        frames.append(
            event("contentBlockDelta", {"contentBlockIndex": block, "delta": {"toolUse": {"input": ""}}})
        )
        middle = len(arguments) // 2
        for fragment in (arguments[:middle], arguments[middle:]):
            frames.append(
                event(
                    "contentBlockDelta",
                    {"contentBlockIndex": block, "delta": {"toolUse": {"input": fragment}}},
                )
            )
        frames.append(event("contentBlockStop", {"contentBlockIndex": block}))
    frames += [
        event("messageStop", {"stopReason": "tool_use"}),
        event("metadata", {"usage": usage(30, 20), "metrics": {"latencyMs": 12}}),
    ]
    return frames


def converse(content: list[dict[str, Any]], stop: str = "end_turn", **usage_values: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": usage(**usage_values) if usage_values else usage(),
        "metrics": {"latencyMs": 42},
    }


# -- the fake Bedrock ---------------------------------------------------------------------------------


def _answer(body: dict[str, Any]) -> tuple[str, list[tuple[str, str, str]]]:
    """What the fake model says: (text, tool calls) for a Converse body."""
    last = body["messages"][-1]["content"]
    results = [block["toolResult"] for block in last if "toolResult" in block]
    if results:
        return "The tool said: " + " | ".join(part["text"] for r in results for part in r["content"]), []
    images = [block["image"] for block in last if "image" in block]
    if images:
        return " ".join(
            f"image:{image['format']}:{len(base64.b64decode(image['source']['bytes']))}" for image in images
        ), []
    tools = (body.get("toolConfig") or {}).get("tools") or []
    text = " ".join(block["text"] for block in last if "text" in block)
    if tools:
        name = tools[0]["toolSpec"]["name"]
        return "", [("tooluse_fake01", name, json.dumps({"city": text or "Paris"}))]
    return text, []


def bedrock_handler(request: Recorded) -> Reply:
    """Default behaviour of the fake Bedrock: echo text, call the first tool, describe images."""
    if request.path.startswith("/images/"):
        return Reply(body=PNG, content_type="image/png")
    if request.path.endswith("/foundation-models"):
        return Reply(json={"modelSummaries": []})
    body = request.json
    text, calls = _answer(body)
    if request.path.endswith("/converse-stream"):
        frames = tool_frames(calls, text or "Checking.") if calls else text_frames(text.split(" "))
        return Reply(sse=list(frames), content_type=EVENTSTREAM)
    if calls:
        content = [{"toolUse": {"toolUseId": i, "name": n, "input": json.loads(a)}} for i, n, a in calls]
        return Reply(json=converse(content, "tool_use"))
    return Reply(json=converse([{"text": text}]))


def bedrock_error(status: int, error_type: str, message: str, **headers: str) -> Reply:
    return Reply(
        status=status,
        json={"message": message},
        headers={
            "x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            **headers,
        },
    )


# -- SigV4 -------------------------------------------------------------------------------------------


def expected_signature(
    method: str, url: str, headers: dict[str, str], body: bytes, *, session_token: str | None = None
) -> str:
    """Re-sign a recorded request with botocore (same date, same signed headers); the signature."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    authorization = headers["authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    request = AWSRequest(
        method=method, url=url, data=body, headers={name: headers[name] for name in signed if name != "host"}
    )
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, session_token), "bedrock", REGION)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))
