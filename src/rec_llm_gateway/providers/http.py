"""``HTTPProvider``: the HTTP machinery every HTTP provider shares.

Connection handling, per-provider timeouts, response size caps, transport error mapping, SSE decoding
and upstream timing live here; a provider subclass supplies only the pure translation steps.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import quote

import httpx
import pydantic_core

from ..config import ProviderConfig
from ..embeddings import (
    EmbeddingBatch,
    EmbeddingResult,
    check_dimensions,
    embed_in_batches,
    embedding_response,
    estimate_tokens,
    text_inputs,
)
from ..errors import (
    BadGatewayError,
    GatewayError,
    InvalidModelError,
    UpstreamConnectionError,
    UpstreamTimeoutError,
    UpstreamUnreachableError,
    scrub_secrets,
)
from ..schema import ChatCompletionRequest
from .base import ChatResult, Provider, StreamTranslator, UpstreamCall, parse_json, unsupported_operation
from .shapes import check_chunk, check_completion
from .upstream_body import (  # the stream caps and SSE decoding live beside; re-exported for providers
    _CappedStream,
    _iter_sse_data,
    _read_capped,
    body_parts,
    event_limit,
    event_too_large,
)
from .upstream_errors import error_from_openai_body

if TYPE_CHECKING:
    from ..embeddings import EmbeddingDialect
    from ..schema_embeddings import EmbeddingRequest

__all__ = ["HTTPProvider", "body_parts", "event_limit", "event_too_large", "path_segment"]

_T = TypeVar("_T")

_UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError)
"""What a translator raises on odd but valid JSON from an upstream."""


class HTTPProvider(Provider):
    """A provider reached over HTTP. Subclasses supply the pure translation steps."""

    stream_content_type: ClassVar[str] = "text/event-stream"

    def __init__(self, name: str, settings: ProviderConfig) -> None:
        super().__init__(name, settings)
        timeout = settings.timeout
        # Built once: httpx reads the per-request timeout from request extensions.
        self._timeout = {
            "connect": timeout.connect,
            "read": timeout.read,
            "write": timeout.write,
            "pool": timeout.connect,
        }
        self._configured = {key.lower(): value for key, value in settings.headers.items()}
        self._headers = self.fixed_headers({"content-type": "application/json"})
        """Sent with every request (a subclass sets its own from ``fixed_headers``)."""

    # -- translation: override these -------------------------------------------------------------

    def build_request(self, call: UpstreamCall) -> httpx.Request:
        raise NotImplementedError(f"{type(self).__name__} must override build_request or build_request_async")

    async def build_request_async(self, call: UpstreamCall) -> httpx.Request:
        """Override instead of ``build_request`` when building needs I/O (credentials, images)."""
        return self.build_request(call)

    def parse_response(self, data: Any, call: UpstreamCall) -> ChatResult:
        raise NotImplementedError

    def stream_translator(self, call: UpstreamCall) -> StreamTranslator:
        return StreamTranslator()

    def parse_error(self, status: int, headers: httpx.Headers, body: bytes) -> GatewayError:
        """Turn an upstream error response into the gateway error the client sees."""
        return error_from_openai_body(status, headers, body, self.name)

    async def check_health_with(self, http: httpx.AsyncClient, request: httpx.Request) -> None:
        """Send a cheap request (built by the subclass); raise the mapped error unless it succeeds."""
        request.extensions["timeout"] = self._timeout
        try:
            response = await http.send(request)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        if response.status_code >= 400:
            raise self.scrubbed(self.parse_error(response.status_code, response.headers, response.content))

    # -- shared HTTP -----------------------------------------------------------------------------

    def fixed_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` with the configured ``headers:`` after them (lower-cased: they win)."""
        return {**headers, **self._configured}

    def auth_headers(self) -> dict[str, str]:
        """The credentials of one request (a rotated key); none by default."""
        return {}

    def request_headers(self) -> dict[str, str]:
        """The fixed headers with one request's credentials."""
        return {**self._headers, **self.auth_headers()}

    def post(
        self,
        call: UpstreamCall,
        url: str | httpx.URL,
        payload: Any,
        *,
        auth: dict[str, str] | None = None,
        params: Any = None,
    ) -> httpx.Request:
        """A JSON POST of ``payload`` with the fixed headers and ``auth`` (``auth_headers()`` unless
        given)."""
        headers = self.request_headers() if auth is None else {**self._headers, **auth}
        return self.make_request(call, url, json_body=payload, headers=headers, params=params)

    def make_request(
        self,
        call: UpstreamCall,
        url: str | httpx.URL,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str],
        params: Any = None,
    ) -> httpx.Request:
        """An ``httpx.Request`` with the provider's timeouts and the gateway's extra headers; the
        body is ``content`` as it is, or ``json_body`` as JSON."""
        if call.headers:
            headers = {**headers, **call.headers}
        body = pydantic_core.to_json(json_body) if content is None else content
        return post_request(url, headers, body, self._timeout, params)

    async def open_stream(
        self, call: UpstreamCall, request: httpx.Request, *, content_type: str | None = None
    ) -> httpx.Response:
        """Send ``request`` for an answer read as it arrives; the caller closes the response.

        The wait counts as upstream time; an error status raises the mapped, scrubbed error, and so
        does an answer not of ``content_type`` (when given); the body is capped
        (``limits.max_response_bytes``, ``max_event_bytes``)."""
        started = time.perf_counter()
        try:
            response = await self._send(call, request)
        finally:
            call.upstream_seconds += time.perf_counter() - started
        try:
            if response.status_code >= 400:
                body = await _read_capped(response, 1024 * 1024)
                raise self.scrubbed(self.parse_error(response.status_code, response.headers, body))
            if content_type is not None:
                received = response.headers.get("content-type", "")
                if not received.startswith(content_type):
                    raise BadGatewayError(
                        f"upstream '{self.name}' answered a stream with content type {received[:60]!r}"
                    )
        except BaseException:
            await response.aclose()
            raise
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _CappedStream(response.stream, call.max_response_bytes, call.max_event_bytes)
        return response

    async def upstream_reads(self, call: UpstreamCall, reads: AsyncIterator[_T]) -> AsyncIterator[_T]:
        """``reads`` (events of an open stream), the wait for each counted as upstream time and a
        transport failure raised as its typed error."""
        while True:
            waited = time.perf_counter()
            try:
                item = await reads.__anext__()
            except StopAsyncIteration:
                return
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from None
            finally:
                call.upstream_seconds += time.perf_counter() - waited
            yield item

    async def fetch(self, call: UpstreamCall, request: httpx.Request) -> bytes:
        """Send ``request`` and read the whole answer (capped); an error status raises the mapped,
        scrubbed error. The wait counts as upstream time."""
        body, _ = await self.fetch_with_headers(call, request)
        return body

    async def fetch_with_headers(
        self, call: UpstreamCall, request: httpx.Request
    ) -> tuple[bytes, httpx.Headers]:
        """``fetch``, with the answer's headers (Bedrock counts embedding tokens in one)."""
        started = time.perf_counter()
        try:
            response = await self._send(call, request)
            try:
                body = await _read_capped(response, call.max_response_bytes)
            finally:
                await response.aclose()
        finally:
            call.upstream_seconds += time.perf_counter() - started
        if response.status_code >= 400:
            raise self.scrubbed(self.parse_error(response.status_code, response.headers, body))
        return body, response.headers

    async def complete(self, call: UpstreamCall) -> ChatResult:
        data = parse_json(await self.fetch(call, await self.build_request_async(call)))
        with self.reading():
            result = self.parse_response(data, call)
        if isinstance(call.request, ChatCompletionRequest):  # (native pass-throughs have their own shape)
            check_completion(result.response, self.name)
        return result

    async def embed(self, call: UpstreamCall) -> EmbeddingResult:
        """Embeddings through ``embedding_dialect``: the inputs split into as many upstream calls as
        the dialect allows per call, the vectors put back in input order."""
        request: EmbeddingRequest = call.request  # type: ignore[assignment]  # the embeddings operation's
        dialect = self.embedding_dialect(call.model)
        if dialect is None:
            raise unsupported_operation(self, "embeddings")
        check_dimensions(request, call.model, self.type)
        inputs = self.embedding_inputs(request)

        async def one(batch: Sequence[Any]) -> EmbeddingBatch:
            payload = dialect.payload(request, call.model, batch)
            upstream = await self.embedding_request(call, payload, len(batch))
            body, headers = await self.fetch_with_headers(call, upstream)
            data = parse_json(body)
            with self.reading():
                return dialect.parse(data, len(batch), headers)

        started, waited = time.perf_counter(), call.upstream_seconds
        batches = await embed_in_batches(inputs, dialect.max_batch, one)
        # Batches run side by side: the time spent waiting is at most the time that passed.
        call.upstream_seconds = min(call.upstream_seconds, waited + time.perf_counter() - started)
        estimate = None if request.is_tokens else estimate_tokens(inputs)
        return embedding_response(
            batches, model=call.model, base64_output=request.wants_base64, estimate=estimate
        )

    def embedding_dialect(self, model: str) -> EmbeddingDialect | None:
        """The embeddings wire format for ``model`` (``None``: the provider has none)."""
        return None

    def embedding_inputs(self, request: EmbeddingRequest) -> Sequence[Any]:
        """What the dialect is handed: text only, unless the provider takes token ids (OpenAI's does)."""
        return text_inputs(request, self.name)

    async def embedding_request(
        self, call: UpstreamCall, payload: dict[str, Any], count: int
    ) -> httpx.Request:
        """The upstream request that embeds one batch of ``count`` inputs."""
        raise NotImplementedError

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Around reading an upstream answer: an error it holds is scrubbed, and an answer of the
        wrong shape (a missing key, a string for a list) is a 502, not a crash."""
        try:
            yield
        except GatewayError as exc:  # an error body sent with 200 may quote what it should not
            raise self.scrubbed(exc) from None
        except _UNREADABLE as exc:
            raise self._unreadable(exc) from None

    async def stream(self, call: UpstreamCall) -> AsyncIterator[dict[str, Any]]:
        response = await self.open_stream(
            call, await self.build_request_async(call), content_type=self.stream_content_type
        )
        translator: StreamTranslator | None = None
        try:
            translator = self.stream_translator(call)
            check = check_chunk if isinstance(call.request, ChatCompletionRequest) else _unchecked
            async for data in self.upstream_reads(call, self.iter_events(response)):
                try:
                    chunks = translator.feed(data)
                except GatewayError as exc:
                    raise self.scrubbed(exc) from None
                except _UNREADABLE as exc:  # odd but valid JSON: the client gets an SSE error, not a cut
                    raise self._unreadable(exc) from None
                for chunk in chunks:
                    check(chunk, self.name)
                    yield chunk
                if translator.done:
                    break
            try:
                chunks = translator.finish()
            except _UNREADABLE as exc:
                raise self._unreadable(exc) from None
            for chunk in chunks:
                check(chunk, self.name)
                yield chunk
        finally:
            if translator is not None:
                call.usage = translator.usage
            await response.aclose()

    def iter_events(self, response: httpx.Response) -> AsyncIterator[Any]:
        """The ``data`` of each server-sent event, as bytes. Override for other framing (Bedrock's
        binary event stream); the translator's ``feed`` receives whatever this yields."""
        return _iter_sse_data(response)

    async def _send(self, call: UpstreamCall, request: httpx.Request) -> httpx.Response:
        try:
            if call.transport is not None:
                return await call.transport.handle_async_request(request)
            return await call.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None

    def _transport_error(self, exc: httpx.HTTPError) -> GatewayError:
        kind = type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamTimeoutError(f"upstream '{self.name}' timed out ({kind})")
        if isinstance(exc, httpx.ConnectError):
            return UpstreamUnreachableError(f"could not connect to upstream '{self.name}' ({kind})")
        return UpstreamConnectionError(f"upstream '{self.name}' connection failed ({kind})")

    def _unreadable(self, exc: Exception) -> GatewayError:
        return BadGatewayError(
            f"upstream '{self.name}' returned a response the gateway cannot read ({type(exc).__name__})",
            code="invalid_upstream_response",
        )

    def scrubbed(self, error: GatewayError) -> GatewayError:
        """``error`` with every field the upstream could fill scrubbed of secrets: an upstream echoed
        the auth header in ``param`` (the message alone used to be)."""
        secrets = self._secrets
        error.message = scrub_secrets(str(error.message), secrets)
        error.error_type = scrub_secrets(str(error.error_type), secrets)
        if error.code is not None:
            error.code = scrub_secrets(str(error.code), secrets)
        if error.param is not None:
            error.param = scrub_secrets(str(error.param), secrets)
        error.headers = {name: scrub_secrets(value, secrets) for name, value in error.headers.items()}
        return error


def post_request(
    url: str | httpx.URL,
    headers: dict[str, str],
    body: bytes,
    timeout: Mapping[str, float | None],
    params: Any = None,
) -> httpx.Request:
    """``httpx.Request("POST", url, headers=headers, content=body)`` with the same headers in the
    same order (``Host`` first, ``Content-Length`` last), built for a quarter of the CPU: httpx fills
    ``Host`` and ``Content-Length`` in through ``MutableMapping.setdefault`` and normalises every
    header twice (~16 us a request); given a ``stream``, it takes the headers as they are."""
    if isinstance(url, str):
        url = httpx.URL(url)
    if params is not None:
        url = url.copy_merge_params(params)
    if any(name.lower() in _SET_BY_HTTPX for name in headers):  # the caller's own: httpx's rules
        return httpx.Request("POST", url, headers=headers, content=body, extensions={"timeout": timeout})
    listed = [("Host", url.netloc.decode("ascii")), *headers.items(), ("Content-Length", str(len(body)))]
    request = httpx.Request(
        "POST", url, headers=listed, stream=httpx.ByteStream(body), extensions={"timeout": timeout}
    )
    request.read()  # .content readable at once, as with content=
    return request


_SET_BY_HTTPX = frozenset({"host", "content-length", "transfer-encoding"})


def _unchecked(chunk: Any, provider: str) -> None:
    """Events of a native pass-through (``/v1/responses`` to OpenAI) are not chat chunks."""


def path_segment(value: str) -> str:
    """``value`` (a model or deployment the client chose) as exactly one URL path segment.

    Every reserved character is escaped, so ``/``, ``?``, ``#`` and ``@`` stay inside the segment.
    ``.`` and ``..`` cannot be escaped reliably (URL normalisation resolves them, even from ``%2E``,
    climbing out of the provider's path with the gateway's credentials): they are refused."""
    if value in (".", ".."):
        raise InvalidModelError(f"'{value}' is not a model name", param="model")
    return quote(value, safe="")
