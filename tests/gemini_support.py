"""A Gemini-speaking fake upstream (for ``FakeUpstream``) and Vertex credentials for tests.

``gemini_upstream`` answers like the Generative Language API and Vertex AI:

- ``POST /token``: an OAuth token endpoint (for service-account JSON whose ``token_uri`` points here);
- ``GET .../models``: a model list; ``POST ...:countTokens``: a token count;
- ``POST ...:generateContent`` / ``...:streamGenerateContent?alt=sse`` (CRLF framing, no [DONE]):
  - the last user content holds ``functionResponse`` parts -> text naming the results;
  - tools are offered (and mode is not NONE) -> a ``functionCall`` of the first function with a
    ``thoughtSignature`` (as Gemini 3 does), and no call id (as Gemini often does);
  - an ``inlineData`` / ``fileData`` part -> text describing it;
  - a text ``fail <status>`` -> a google.rpc error with that status (429 with ``Retry-After: 7``);
  - otherwise the last user text, echoed (a stream sends it word by word).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .support import Recorded, Reply

SIGNATURE = "c2lnbmF0dXJlIHdpdGggKyBhbmQgLyBpbiBpdA+/AA=="
"""A thought signature in standard base64 with '+', '/' and padding, to test the id alphabet."""

RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def rpc_error(status: int, message: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message or f"fake upstream failure {status}",
            "status": RPC_STATUS.get(status, "UNKNOWN"),
        }
    }


def usage(prompt: int = 7, candidates: int = 3, thoughts: int = 0) -> dict[str, Any]:
    meta = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
    }
    if thoughts:
        meta["thoughtsTokenCount"] = thoughts
    return meta


def sse(events: list[dict[str, Any]]) -> list[bytes | str | dict[str, Any]]:
    """SSE frames the way Gemini frames them: CRLF CRLF, no [DONE]."""
    return [b"data: " + json.dumps(event).encode() + b"\r\n\r\n" for event in events]


def gemini_upstream(request: Recorded) -> Reply:
    path = request.path
    if path.endswith("/token"):
        return Reply(
            json={"access_token": "ya29.fake-access-token", "expires_in": 3599, "token_type": "Bearer"}
        )
    if request.method == "GET" and path.endswith("/models"):
        return Reply(json={"models": [{"name": "models/gemini-2.5-flash"}]})
    if path.endswith(":countTokens"):
        return Reply(json={"totalTokens": 1})
    body = request.json
    stream = path.endswith(":streamGenerateContent")
    contents = body["contents"]
    parts = contents[-1]["parts"]
    meta = {"modelVersion": path.rsplit("/", 1)[-1].split(":")[0], "responseId": "fakeResponse01"}
    results = [part["functionResponse"] for part in parts if "functionResponse" in part]
    tools = body.get("tools")
    mode = (body.get("toolConfig") or {}).get("functionCallingConfig", {}).get("mode")
    media = [part for part in parts if "inlineData" in part or "fileData" in part]
    text = next((part["text"] for part in reversed(parts) if "text" in part), "")
    if text.startswith("fail "):
        status = int(text.split()[1])
        headers = {"retry-after": "7"} if status == 429 else {}
        return Reply(status=status, json=rpc_error(status), headers=headers)
    if results:
        answer = "results: " + "; ".join(f"{item['name']}={json.dumps(item['response'])}" for item in results)
    elif tools and mode != "NONE":
        name = tools[0]["functionDeclarations"][0]["name"]
        call = {"functionCall": {"name": name, "args": {"city": "Paris"}}, "thoughtSignature": SIGNATURE}
        if stream:
            events = [
                {"candidates": [{"content": {"role": "model", "parts": [call]}, "index": 0}], **meta},
                {
                    "candidates": [
                        {"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP"}
                    ],
                    "usageMetadata": usage(thoughts=11),
                    **meta,
                },
            ]
            return Reply(sse=sse(events))
        candidate = {"content": {"role": "model", "parts": [call]}, "finishReason": "STOP", "index": 0}
        return Reply(json={"candidates": [candidate], "usageMetadata": usage(thoughts=11), **meta})
    elif media:
        described = []
        for part in media:
            if "inlineData" in part:
                described.append(f"inline {part['inlineData']['mimeType']} {len(part['inlineData']['data'])}")
            else:
                described.append(f"file {part['fileData']['mimeType']} {part['fileData']['fileUri']}")
        answer = "saw " + ", ".join(described)
    else:
        answer = text
    if stream:
        words = answer.split(" ")
        events = [
            {
                "candidates": [
                    {"content": {"role": "model", "parts": [{"text": (" " if i else "") + word}]}, "index": 0}
                ],
                "usageMetadata": usage(candidates=i + 1),
                **meta,
            }
            for i, word in enumerate(words)
        ]
        events[-1]["candidates"][0]["finishReason"] = "STOP"
        return Reply(sse=sse(events))
    candidate = {
        "content": {"role": "model", "parts": [{"text": answer}]},
        "finishReason": "STOP",
        "index": 0,
    }
    return Reply(json={"candidates": [candidate], "usageMetadata": usage(), **meta})


def service_account_file(directory: Path, token_uri: str, project: str = "test-project") -> Path:
    """A service-account JSON with a fresh RSA key whose ``token_uri`` is ``token_uri``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "test-key-1",
        "private_key": pem,
        "client_email": f"gateway@{project}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path = directory / "service-account.json"
    path.write_text(json.dumps(info))
    return path
