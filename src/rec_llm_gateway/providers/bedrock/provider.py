"""AWS Bedrock through its native Converse and ConverseStream APIs.

- ``POST {base}/model/{modelId}/converse`` and ``/converse-stream``; the model id is URL-encoded
  (ids contain ``:``, ARNs contain ``/``); ``base`` is ``https://bedrock-runtime.{region}.amazonaws.com``
  unless ``base_url`` overrides it.
- Auth: a Bedrock API key (``api_key`` / ``api_keys``, or ``AWS_BEARER_TOKEN_BEDROCK``) is sent as
  ``Authorization: Bearer``; otherwise requests are SigV4-signed (signing name ``bedrock``) with
  explicit keys, a profile, or the standard AWS credential chain (``auth``).
- Translation is pure (``request``, ``messages``, ``response``); streams
  are binary AWS event streams (``eventstream``), not SSE.

Building a request needs I/O (credentials may need a refresh, http image URLs are downloaded), so
``build_request_async`` does the work and ``complete``/``stream`` hand its result to the shared HTTP
machinery through a context variable read by ``build_request``.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import urlsplit

import httpx
import pydantic_core
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from ...config import ProviderConfig
from ...errors import GatewayError
from ..base import ChatResult, StreamTranslator, UpstreamCall
from ..http import HTTPProvider, body_parts, path_segment
from .embeddings import bedrock_embeddings
from .errors import error_from_bedrock
from .eventstream import EventStreamDecoder
from .images import ImageFetchSettings, fetch_images
from .messages import image_urls
from .request import build_converse_body, json_tool_name
from .response import parse_converse_response
from .stream import ConverseStreamTranslator

if TYPE_CHECKING:
    from ...embeddings import EmbeddingDialect

__all__ = ["BedrockProvider", "BedrockSettings"]

BEARER_ENV: Final = "AWS_BEARER_TOKEN_BEDROCK"
_REGION: Final = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


class BedrockSettings(ProviderConfig):
    model_config = ConfigDict(extra="forbid")

    region: str
    """The AWS region, e.g. ``us-east-1``."""
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    aws_profile: str | None = None
    """A profile from the shared AWS config files (instead of explicit keys)."""
    control_plane_url: str | None = None
    """Base of the Bedrock control plane, used by the health check (default
    ``https://bedrock.{region}.amazonaws.com``)."""
    image_fetch: ImageFetchSettings = Field(default_factory=ImageFetchSettings)

    @field_validator("region")
    @classmethod
    def _check_region(cls, region: str) -> str:
        if not _REGION.fullmatch(region):
            raise ValueError(f"{region!r} is not an AWS region name (for example 'us-east-1')")
        return region

    @model_validator(mode="after")
    def _check_credentials(self) -> BedrockSettings:
        key_id, secret = _secret(self.aws_access_key_id), _secret(self.aws_secret_access_key)
        if bool(key_id) != bool(secret):
            raise ValueError("aws_access_key_id and aws_secret_access_key must be set together")
        if _secret(self.aws_session_token) and not key_id:
            raise ValueError("aws_session_token needs aws_access_key_id and aws_secret_access_key")
        if key_id and self.aws_profile:
            raise ValueError("set either explicit AWS keys or aws_profile, not both")
        if (self.api_key is not None or self.api_keys) and (key_id or self.aws_profile):
            raise ValueError("set either api_key (a Bedrock API key) or AWS credentials, not both")
        return self

    def secret_values(self) -> list[str]:
        values = super().secret_values()
        for secret in (self.aws_access_key_id, self.aws_secret_access_key, self.aws_session_token):
            if _secret(secret):
                values.append(_secret(secret))
        return values


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


class BedrockProvider(HTTPProvider):
    type_name = "bedrock"
    settings_model: ClassVar[type[ProviderConfig]] = BedrockSettings
    otel_provider_name = "aws.bedrock"
    family_prefixes: tuple[str, ...] = (
        "anthropic.", "amazon.", "meta.", "mistral.", "cohere.", "ai21.", "deepseek.", "openai.",
        "qwen.", "writer.", "us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.", "in.",
        "arn:aws:bedrock:", "arn:aws-us-gov:bedrock:",
    )  # fmt: skip
    default_base_url: str | None = None
    price_provider: str | None = "aws"
    stream_content_type: ClassVar[str] = "application/vnd.amazon.eventstream"

    settings: BedrockSettings

    def __init__(self, name: str, settings: ProviderConfig) -> None:
        super().__init__(name, settings)
        region = self.settings.region
        runtime = self.settings.base_url or f"https://bedrock-runtime.{region}.amazonaws.com"
        control = self.settings.control_plane_url or f"https://bedrock.{region}.amazonaws.com"
        self.base_url, self._control_url = runtime.rstrip("/"), control.rstrip("/")
        parsed = urlsplit(self.base_url)  # the base class saw no base_url: the default is per region
        self.server_address = parsed.hostname
        self.server_port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._signer: Any = None
        if not self.settings.keys():
            env_key = os.environ.get(BEARER_ENV, "")
            uses_aws_keys = bool(_secret(self.settings.aws_access_key_id) or self.settings.aws_profile)
            if env_key and not uses_aws_keys:
                self._keys = itertools.cycle([env_key])
                self._secrets = (*self._secrets, env_key)
            else:
                from .auth import AWSSigner  # imports botocore: only for SigV4 deployments

                self._signer = AWSSigner(
                    region,
                    access_key=_secret(self.settings.aws_access_key_id) or None,
                    secret_key=_secret(self.settings.aws_secret_access_key) or None,
                    session_token=_secret(self.settings.aws_session_token) or None,
                    profile=self.settings.aws_profile,
                )
        self._headers = self.fixed_headers({"content-type": "application/json", "accept": "application/json"})
        self._stream_headers = self.fixed_headers(
            {**self._headers, "accept": "application/vnd.amazon.eventstream"}
        )

    # -- catalog and description -----------------------------------------------------------------

    def catalog_models(self) -> list[str]:
        from ...catalog.bedrock import invocable_ids

        return invocable_ids(self.settings.region)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "region": self.settings.region}

    # -- requests --------------------------------------------------------------------------------

    def url(self, model: str, stream: bool) -> str:
        return f"{self.base_url}/model/{path_segment(model)}/{'converse-stream' if stream else 'converse'}"

    async def build_request_async(self, call: UpstreamCall) -> httpx.Request:
        """The signed Converse request for ``call``: fetches image URLs and credentials as needed."""
        images = {}
        urls = image_urls(call.request.messages)
        if urls:
            started = time.perf_counter()
            try:
                images = await fetch_images(urls, call.http, self.settings.image_fetch)
            finally:
                call.upstream_seconds += time.perf_counter() - started
        body = build_converse_body(call.request, call.model, images=images)
        headers = self._stream_headers if call.stream else self._headers
        return await self.signed_request(call, self.url(call.model, call.stream), headers, body)

    def embedding_dialect(self, model: str) -> EmbeddingDialect:
        return bedrock_embeddings(model)

    async def embedding_request(
        self, call: UpstreamCall, payload: dict[str, Any], count: int
    ) -> httpx.Request:
        """``InvokeModel``, signed like Converse."""
        return await self.signed_request(
            call, f"{self.base_url}/model/{path_segment(call.model)}/invoke", self._headers, payload
        )

    async def signed_request(
        self, call: UpstreamCall, url: str, headers: dict[str, str], payload: Any
    ) -> httpx.Request:
        """A POST of ``payload`` to ``url``, authorised (signed over the exact body bytes)."""
        body = pydantic_core.to_json(payload)
        headers = dict(headers)
        headers.update(await self.signed_headers("POST", url, headers, body))
        # make_request adds the trace context after signing, so it is left unsigned
        return self.make_request(call, url, content=body, headers=headers)

    async def signed_headers(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> dict[str, str]:
        if self._signer is None:
            return {"authorization": f"Bearer {self.next_key()}"}
        credentials = await self._signer.credentials()
        signed: dict[str, str] = self._signer.sign(method, url, headers, body, credentials)
        return signed

    # -- responses -------------------------------------------------------------------------------

    def parse_response(self, data: Any, call: UpstreamCall) -> ChatResult:
        call.response_model = call.model
        return parse_converse_response(
            data,
            model=call.model,
            response_id=f"chatcmpl-{call.request_id}",
            created=int(time.time()),
            json_tool=json_tool_name(call.request),
        )

    def stream_translator(self, call: UpstreamCall) -> StreamTranslator:
        call.response_model = call.model
        return ConverseStreamTranslator(
            model=call.model,
            response_id=f"chatcmpl-{call.request_id}",
            created=int(time.time()),
            json_tool=json_tool_name(call.request),
            provider=self.name,
        )

    async def iter_events(self, response: httpx.Response) -> AsyncIterator[Any]:
        """Decoded event-stream frames ``(headers, payload)``; a CRC mismatch is a 502."""
        decoder = EventStreamDecoder()
        async for data in body_parts(response):
            for frame in decoder.feed(data):
                yield frame
        decoder.close()

    def parse_error(self, status: int, headers: httpx.Headers, body: bytes) -> GatewayError:
        return error_from_bedrock(status, headers, body, self.name)

    # -- health ----------------------------------------------------------------------------------

    async def check_health(self, http: httpx.AsyncClient) -> None:
        """A signed ``ListFoundationModels`` on the control plane: proves the credentials work."""
        url = f"{self._control_url}/foundation-models?byOutputModality=TEXT"
        headers = {"accept": "application/json"}
        headers.update(await self.signed_headers("GET", url, headers, b""))
        await self.check_health_with(http, httpx.Request("GET", url, headers=headers))
