"""Claude served natively: the client's Messages body goes to Anthropic, Bedrock or Vertex as sent.

Nothing is translated, so everything Anthropic's API knows (cache_control, thinking blocks and their
signatures, documents, citations, server tools, betas, metadata) survives the trip, and the answer
reaches the client as Anthropic wrote it. The gateway still reads what it needs on the way: the usage
(cache reads and writes included) for cost, limits and telemetry, and the stop reason, by running the
Anthropic provider's own stream translator over the events beside the pass-through.

Where only the envelope differs:

- **Anthropic**: ``POST /v1/messages`` (``/count_tokens``) with the gateway's key; the client's
  ``anthropic-version`` and ``anthropic-beta`` headers win over the provider's (betas are merged).
  The body is the client's bytes, unless the model name changed on the way (``provider:model``,
  aliases, groups, ``model_map``), when only ``model`` is rewritten.
- **Bedrock** (``anthropic.*`` model ids, and inference profiles of them): ``InvokeModel`` /
  ``InvokeModelWithResponseStream``; the body loses ``model`` and ``stream`` and gains
  ``anthropic_version: bedrock-2023-05-31`` (and ``anthropic_beta``); the AWS event stream's chunks
  are Anthropic's events, re-framed as SSE.
- **Vertex** (``claude-*`` models): ``publishers/anthropic/models/{model}:rawPredict`` (or
  ``:streamRawPredict``); the body loses ``model`` and gains ``anthropic_version: vertex-2023-10-16``.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import httpx
import pydantic_core

from ..errors import BadGatewayError, GatewayError
from ..providers.anthropic import AnthropicProvider
from ..providers.anthropic.response import from_anthropic
from ..providers.anthropic.stream import AnthropicStreamTranslator
from ..providers.base import ChatResult, UpstreamCall
from ..providers.http import HTTPProvider, path_segment
from ..providers.upstream_body import body_parts, event_limit, event_too_large

__all__ = ["NATIVE_KEY", "NativeBody", "NativeTarget", "target_for"]

NATIVE_KEY: Final = "x_rec_native_body"
"""Where a native answer's bytes ride in the response dict until the writer takes them out."""

BEDROCK_VERSION: Final = "bedrock-2023-05-31"
VERTEX_VERSION: Final = "vertex-2023-10-16"


@dataclass(slots=True, frozen=True)
class NativeBody:
    """What the client sent, for a native upstream."""

    body: bytes
    model: str
    """The model named in ``body``."""
    version: str | None = None
    """The client's ``anthropic-version`` header."""
    beta: str | None = None
    """The client's ``anthropic-beta`` header."""

    def payload(self, model: str) -> bytes:
        """The body for ``model``: the client's bytes when the name did not change."""
        if model == self.model:
            return self.body
        data = pydantic_core.from_json(self.body)
        data["model"] = model
        return pydantic_core.to_json(data)

    def fields(self) -> dict[str, Any]:
        """The body as an (ordered) dict, for the upstreams that want it rewritten."""
        data: dict[str, Any] = pydantic_core.from_json(self.body)
        return data


class NativeTarget:
    """How one provider type serves Claude natively. Built per attempt (cheap); holds no state."""

    def __init__(self, provider: HTTPProvider) -> None:
        self.provider = provider

    async def build(self, call: UpstreamCall, native: NativeBody, *, count_tokens: bool) -> httpx.Request:
        raise NotImplementedError

    async def frames(self, response: httpx.Response) -> AsyncIterator[list[tuple[bytes, bytes]]]:
        """Per network read: the complete events it finished, as ``(SSE bytes for the client, the
        event's JSON)``. Default: Anthropic's own SSE, passed on byte for byte."""
        # Linear however the bytes arrive (issue 16): the buffer grows in place, only its new part is
        # searched for an event's end, and an event longer than limits.max_event_bytes is a 502.
        limit = event_limit(response)
        pending = bytearray()
        async for received in body_parts(response):
            searched = max(0, len(pending) - 3)  # an event's end may straddle two reads
            pending += received
            events: list[tuple[bytes, bytes]] = []
            start = 0
            while True:
                end = _event_end(pending, max(start, searched))
                if end < 0:
                    break
                raw = bytes(pending[start:end])
                data = _sse_data(raw)
                if data is not None:
                    events.append((raw, data))
                start = end
            if start:
                del pending[:start]
            if len(pending) > limit:
                raise event_too_large(limit)
            if events:
                yield events
        if pending.strip():
            data = _sse_data(bytes(pending))
            if data is not None:
                yield [(bytes(pending), data)]

    # -- the call -------------------------------------------------------------------------------

    async def complete(self, call: UpstreamCall, native: NativeBody) -> ChatResult:
        """A complete answer: its OpenAI form for hooks and telemetry, the upstream's bytes under
        ``NATIVE_KEY`` for the client."""
        body = await self._exchange(call, native, count_tokens=False)
        data = _json(body)
        result = from_anthropic(data)
        response, usage = result.response, result.usage
        call.response_model = response["model"] or None
        response[NATIVE_KEY] = body
        return ChatResult(response=response, usage=usage)

    async def count_tokens(self, call: UpstreamCall, native: NativeBody) -> bytes:
        return await self._exchange(call, native, count_tokens=True)

    async def stream(self, call: UpstreamCall, native: NativeBody) -> AsyncIterator[dict[str, Any]]:
        """Per network read, ``{NATIVE_KEY: bytes, "chunks": [OpenAI chunks]}``: the bytes go to the
        client as they are; the chunks (from the Anthropic provider's translator) tell the gateway
        the usage and the finish, as for any stream."""
        provider = self.provider
        response = await provider.open_stream(call, await self.build(call, native, count_tokens=False))
        try:
            translator = AnthropicStreamTranslator(call, None, provider.name)
            async for events in provider.upstream_reads(call, self.frames(response)):
                chunks: list[dict[str, Any]] = []
                sent: list[bytes] = []
                for raw, data in events:
                    try:
                        chunks.extend(translator.feed(data))
                    except GatewayError as exc:
                        if sent:  # what came before the error event still reaches the client
                            yield {NATIVE_KEY: b"".join(sent), "chunks": chunks}
                        raise provider.scrubbed(exc) from None
                    sent.append(raw)
                    if translator.done:
                        break
                yield {NATIVE_KEY: b"".join(sent), "chunks": chunks}
                if translator.done:
                    break
        finally:
            await response.aclose()

    async def _exchange(self, call: UpstreamCall, native: NativeBody, *, count_tokens: bool) -> bytes:
        return await self.provider.fetch(call, await self.build(call, native, count_tokens=count_tokens))


class AnthropicTarget(NativeTarget):
    provider: AnthropicProvider

    async def build(self, call: UpstreamCall, native: NativeBody, *, count_tokens: bool) -> httpx.Request:
        provider = self.provider
        settings = provider.settings
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if call.stream else "application/json",
            "anthropic-version": native.version or settings.anthropic_version,
        }
        betas = _betas(settings.anthropic_beta, native.beta)
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        headers = {**provider.fixed_headers(headers), **provider.auth_headers()}
        url = provider.count_tokens_url if count_tokens else provider.messages_url
        return provider.make_request(call, url, content=native.payload(call.model), headers=headers)


class BedrockClaude(NativeTarget):
    """Claude on Bedrock through ``InvokeModel``: the body is Anthropic's, the framing AWS's."""

    async def build(self, call: UpstreamCall, native: NativeBody, *, count_tokens: bool) -> httpx.Request:
        from ..providers.bedrock import BedrockProvider

        provider = self.provider
        assert isinstance(provider, BedrockProvider)
        fields = native.fields()
        fields.pop("model", None)
        fields.pop("stream", None)
        fields["anthropic_version"] = BEDROCK_VERSION
        betas = _betas(None, native.beta)
        if betas:
            fields["anthropic_beta"] = betas
        body = pydantic_core.to_json(fields)
        if count_tokens:
            # CountTokens takes the InvokeModel body it would count, base64-encoded.
            fields.setdefault("max_tokens", 1)
            invoke = base64.b64encode(pydantic_core.to_json(fields)).decode()
            body = pydantic_core.to_json({"input": {"invokeModel": {"body": invoke}}})
            action = "count-tokens"
        else:
            action = "invoke-with-response-stream" if call.stream else "invoke"
        url = f"{provider.base_url}/model/{path_segment(call.model)}/{action}"
        headers = {"content-type": "application/json"}
        headers["accept"] = "application/vnd.amazon.eventstream" if call.stream else "application/json"
        headers = provider.fixed_headers(headers)
        headers.update(await provider.signed_headers("POST", url, headers, body))
        return provider.make_request(call, url, content=body, headers=headers)

    async def count_tokens(self, call: UpstreamCall, native: NativeBody) -> bytes:
        """Bedrock answers ``{"inputTokens": N}``: given to the client the way Anthropic says it."""
        data = _json(await super().count_tokens(call, native))
        count = data.get("inputTokens") if isinstance(data, dict) else None
        if not isinstance(count, int):
            raise BadGatewayError("Bedrock's CountTokens answer has no inputTokens")
        return pydantic_core.to_json({"input_tokens": count})

    async def frames(self, response: httpx.Response) -> AsyncIterator[list[tuple[bytes, bytes]]]:
        from ..providers.bedrock.errors import stream_exception
        from ..providers.bedrock.eventstream import EventStreamDecoder

        decoder = EventStreamDecoder()
        async for received in body_parts(response):
            events: list[tuple[bytes, bytes]] = []
            for headers, payload in decoder.feed(received):
                if headers.get(":message-type") != "event":
                    raise stream_exception(headers, payload, self.provider.name)
                chunk = _json(payload)
                encoded = chunk.get("bytes") if isinstance(chunk, dict) else None
                if not isinstance(encoded, str):
                    continue
                data = base64.b64decode(encoded)
                event = _json(data)
                kind = event.get("type") if isinstance(event, dict) else None
                if isinstance(kind, str):
                    events.append((b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n", data))
            if events:
                yield events
        decoder.close()


class VertexClaude(NativeTarget):
    """Claude on Vertex AI: Anthropic's body and stream at Google's address."""

    async def build(self, call: UpstreamCall, native: NativeBody, *, count_tokens: bool) -> httpx.Request:
        from ..providers.gemini import VertexProvider

        provider = self.provider
        assert isinstance(provider, VertexProvider)
        fields = native.fields()
        fields["anthropic_version"] = VERTEX_VERSION
        fields.pop("model", None)
        base = provider.model_url(call.model).replace("/publishers/google/", "/publishers/anthropic/")
        if count_tokens:
            # count-tokens is one endpoint for every Claude model; the model goes in the body
            fields["model"] = call.model
            url = base.rsplit("/models/", 1)[0] + "/models/count-tokens:rawPredict"
        else:
            url = f"{base}:{'streamRawPredict' if call.stream else 'rawPredict'}"
        token = await provider.authorize(call)
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        betas = _betas(None, native.beta)
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        return provider.make_request(
            call, url, content=pydantic_core.to_json(fields), headers=provider.fixed_headers(headers)
        )


def target_for(provider: object, model: str) -> NativeTarget | None:
    """The native way to reach ``model`` on ``provider``, or ``None`` when it is translated."""
    if isinstance(provider, AnthropicProvider):
        return AnthropicTarget(provider)
    if not isinstance(provider, HTTPProvider):
        return None
    # By type name: importing the Bedrock and Vertex modules only to ask would cost every request.
    if provider.type_name == "bedrock" and _bedrock_claude(model):
        return BedrockClaude(provider)
    if provider.type_name == "vertex" and model.startswith("claude-"):
        return VertexClaude(provider)
    return None


def _bedrock_claude(model: str) -> bool:
    # anthropic.claude-..., and cross-region inference profiles: us.anthropic.claude-..., global.anthropic...
    return model.startswith("anthropic.claude") or ".anthropic.claude" in model


def _betas(configured: str | list[str] | None, sent: str | None) -> list[str]:
    betas = [configured] if isinstance(configured, str) else list(configured or ())
    betas = [beta.strip() for item in betas for beta in item.split(",") if beta.strip()]
    if sent:
        betas += [beta.strip() for beta in sent.split(",") if beta.strip()]
    return list(dict.fromkeys(betas))


def _event_end(buffer: bytes | bytearray, start: int) -> int:
    """Where the event starting at ``start`` ends (after its blank line), or -1. Anthropic frames
    with LF; CRLF is accepted as the SSE rules allow."""
    lf = buffer.find(b"\n\n", start)
    crlf = buffer.find(b"\r\n\r\n", start)
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf + 4
    return lf + 2 if lf >= 0 else -1


def _sse_data(raw: bytes) -> bytes | None:
    """The ``data`` of one SSE event (several ``data:`` lines joined), or ``None``."""
    lines = [line.rstrip(b"\r") for line in raw.split(b"\n")]
    data = [line[6:] if line[5:6] == b" " else line[5:] for line in lines if line.startswith(b"data:")]
    return b"\n".join(data) if data else None


def _json(body: bytes) -> Any:
    try:
        return pydantic_core.from_json(body)
    except ValueError:
        raise BadGatewayError("the upstream returned a body that is not valid JSON") from None
