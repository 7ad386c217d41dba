"""Google Gemini (the Generative Language API) and Vertex AI: the same wire format at two doors.

- ``gemini``: ``{base_url}/models/{model}:generateContent`` (streams: ``:streamGenerateContent?alt=sse``),
  key in the ``x-goog-api-key`` header (rotated when several are configured).
- ``vertex``: ``https://{location}-aiplatform.googleapis.com/v1beta1/projects/{project}/locations/
  {location}/publishers/google/models/{model}:generateContent`` (``aiplatform.googleapis.com`` for
  ``location: global``), with an OAuth2 bearer token from a credentials file or application default
  credentials (see ``auth``).

Translation lives in ``messages`` / ``request`` / ``schema`` (request),
``response`` (response, stream) and ``errors``; this module only knows URLs, headers
and credentials. The provider guide is ``docs/providers/gemini.md``.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import ConfigDict, Field, field_validator, model_validator

from ...config import ProviderConfig
from ...errors import BadGatewayError, ConfigError, GatewayError
from ..base import ChatResult, StreamTranslator, UpstreamCall
from ..http import HTTPProvider
from .auth import GoogleCredentials, TokenCache, read_credentials_file, require_google_auth
from .embeddings import GEMINI_EMBEDDINGS, gemini_embed_method, vertex_embeddings
from .errors import google_error
from .request import build_body
from .response import translate_response
from .stream import GeminiStreamTranslator

if TYPE_CHECKING:
    from ...embeddings import EmbeddingDialect

__all__ = ["GeminiProvider", "GeminiSettings", "VertexProvider", "VertexSettings"]


_SSE = {"alt": "sse"}  # without it streamGenerateContent answers one long JSON array


class GeminiSettings(ProviderConfig):
    model_config = ConfigDict(extra="forbid")

    tool_schema: Literal["json_schema", "openapi"] = "json_schema"
    """How tool parameters and ``response_format`` schemas are sent: ``json_schema`` passes the
    client's JSON Schema untouched (``parametersJsonSchema`` / ``responseJsonSchema``);
    ``openapi`` rewrites it into the OpenAPI subset (``parameters`` / ``responseSchema``) for
    models that do not take JSON Schema."""
    safety_settings: list[dict[str, Any]] = Field(default_factory=list)
    """Gemini ``safetySettings`` sent with every request (a request's ``safety_settings`` wins)."""


class GeminiProvider(HTTPProvider):
    type_name = "gemini"
    settings_model: ClassVar[type[ProviderConfig]] = GeminiSettings
    otel_provider_name = "gcp.gemini"
    family_prefixes: tuple[str, ...] = ("gemini-",)
    default_base_url: str | None = "https://generativelanguage.googleapis.com/v1beta"
    price_provider: str | None = "google"

    settings: GeminiSettings

    def __init__(self, name: str, settings: ProviderConfig) -> None:
        super().__init__(name, settings)
        self._safety = self.settings.safety_settings or None

    def catalog_models(self) -> list[str]:
        from ...catalog import models_for

        return [info.id for info in models_for(self.type_name)]

    # -- what differs between the Gemini API and Vertex ------------------------------------------

    def model_url(self, model: str) -> str:
        """The model's resource URL; ``:generateContent`` and friends are appended to it."""
        name = model.removeprefix("models/")
        if name.startswith("tunedModels/"):
            return f"{self.base_url}/tunedModels/{quote(name[12:], safe='')}"
        return f"{self.base_url}/models/{quote(name, safe='')}"

    def auth_headers(self) -> dict[str, str]:
        key = self.next_key()
        return {"x-goog-api-key": key} if key else {}

    # -- translation -----------------------------------------------------------------------------

    def build_request(self, call: UpstreamCall) -> httpx.Request:
        return self.gemini_request(call, self.auth_headers())

    def gemini_request(self, call: UpstreamCall, auth: dict[str, str]) -> httpx.Request:
        """The ``generateContent`` (or stream) request for ``call``, with ``auth`` headers."""
        body = build_body(
            call.request, call.model, schema_mode=self.settings.tool_schema, safety_settings=self._safety
        )
        method = "streamGenerateContent" if call.stream else "generateContent"
        url = f"{self.model_url(call.model)}:{method}"
        return self.post(call, url, body, auth=auth, params=_SSE if call.stream else None)

    def embedding_dialect(self, model: str) -> EmbeddingDialect:
        return GEMINI_EMBEDDINGS

    async def embedding_request(
        self, call: UpstreamCall, payload: dict[str, Any], count: int
    ) -> httpx.Request:
        return self.embedding_request_with(call, payload, count, self.auth_headers())

    def embedding_request_with(
        self, call: UpstreamCall, payload: dict[str, Any], count: int, auth: dict[str, str]
    ) -> httpx.Request:
        method = gemini_embed_method(count) if self.type_name == "gemini" else "predict"
        url = f"{self.model_url(call.model)}:{method}"
        return self.post(call, url, payload, auth=auth)

    def parse_response(self, data: Any, call: UpstreamCall) -> ChatResult:
        result = translate_response(data, call.model, single_call=call.request.parallel_tool_calls is False)
        model = data.get("modelVersion")
        call.response_model = model if isinstance(model, str) and model else None
        return result

    def stream_translator(self, call: UpstreamCall) -> StreamTranslator:
        return GeminiStreamTranslator(call, self.name, single_call=call.request.parallel_tool_calls is False)

    def parse_error(self, status: int, headers: httpx.Headers, body: bytes) -> GatewayError:
        return google_error(status, headers, body, self.name)

    async def check_health(self, http: httpx.AsyncClient) -> None:
        """List one model: the cheapest call that proves the key works."""
        request = httpx.Request(
            "GET",
            f"{self.base_url}/models",
            params={"pageSize": 1},
            headers=self.request_headers(),
        )
        await self.check_health_with(http, request)


_HEALTH_MODEL = "gemini-2.5-flash"
_LOCATION = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:_-]*")


class VertexSettings(GeminiSettings):
    model_config = ConfigDict(extra="forbid")

    project_id: str | None = None
    """The Google Cloud project; default: ``GOOGLE_CLOUD_PROJECT``, the credentials file's, ADC's."""
    location: str | None = None
    """A region (``europe-west4``) or ``global``; default: ``GOOGLE_CLOUD_LOCATION`` or ``global``."""
    credentials_file: str | None = None
    """A service-account (or other google-auth) JSON file; unset: application default credentials."""
    api_version: Literal["v1", "v1beta1"] = "v1beta1"

    @field_validator("location")
    @classmethod
    def _check_location(cls, value: str | None) -> str | None:
        # It becomes part of the host name: anything else could send the token elsewhere.
        if value is not None and not _LOCATION.fullmatch(value):
            raise ValueError(f"{value!r} is not a Google Cloud location (like 'us-central1' or 'global')")
        return value

    @field_validator("project_id")
    @classmethod
    def _check_project(cls, value: str | None) -> str | None:
        if value is not None and not _PROJECT.fullmatch(value):
            raise ValueError(f"{value!r} is not a Google Cloud project id")
        return value

    @model_validator(mode="after")
    def _no_api_key(self) -> VertexSettings:
        if self.api_key is not None or self.api_keys:
            raise ValueError(
                "type 'vertex' authenticates with OAuth (credentials_file, or application default "
                "credentials), not api_key; for a Gemini API key use type 'gemini'"
            )
        return self


class VertexProvider(GeminiProvider):
    type_name = "vertex"
    settings_model: ClassVar[type[ProviderConfig]] = VertexSettings
    otel_provider_name = "gcp.vertex_ai"
    family_prefixes: tuple[str, ...] = ()
    default_base_url: str | None = None
    price_provider: str | None = "google"

    settings: VertexSettings

    def __init__(self, name: str, settings: ProviderConfig) -> None:
        require_google_auth(f"providers.{name}")
        if not isinstance(settings, VertexSettings):  # built directly rather than by the registry
            settings = VertexSettings.model_validate(settings.settings_dict())
        location = settings.location or os.environ.get("GOOGLE_CLOUD_LOCATION") or "global"
        if not _LOCATION.fullmatch(location):
            raise ConfigError(f"providers.{name}.location: {location!r} is not a Google Cloud location")
        if not settings.base_url:
            host = "aiplatform.googleapis.com"
            if location != "global":
                host = f"{location}-{host}"
            settings = settings.model_copy(update={"base_url": f"https://{host}/{settings.api_version}"})
        super().__init__(name, settings)
        self.location = location
        info = None
        if settings.credentials_file:
            info = read_credentials_file(settings.credentials_file, f"providers.{name}.credentials_file")
        file_project = info.get("project_id") if info else None
        self.project_id: str | None = (
            settings.project_id
            or os.environ.get("GOOGLE_CLOUD_PROJECT")
            or (file_project if isinstance(file_project, str) else None)
        )
        self.credentials = GoogleCredentials(info)
        self.tokens = TokenCache(self.credentials)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "project_id": self.project_id, "location": self.location}

    def build_request(self, call: UpstreamCall) -> httpx.Request:
        raise NotImplementedError("Vertex requests need a token first: use build_request_async")

    async def build_request_async(self, call: UpstreamCall) -> httpx.Request:
        token = await self.authorize(call)
        return self.gemini_request(call, {"authorization": f"Bearer {token}"})

    def embedding_dialect(self, model: str) -> EmbeddingDialect:
        return vertex_embeddings(model)

    async def embedding_request(
        self, call: UpstreamCall, payload: dict[str, Any], count: int
    ) -> httpx.Request:
        token = await self.authorize(call)
        return self.embedding_request_with(call, payload, count, {"authorization": f"Bearer {token}"})

    def model_url(self, model: str) -> str:
        project = self.project_id or self.credentials.project
        if not project:
            raise BadGatewayError(
                f"provider '{self.name}' has no project: set project_id (or GOOGLE_CLOUD_PROJECT)",
                code="provider_misconfigured",
            )
        return (
            f"{self.base_url}/projects/{quote(project, safe=':')}/locations/{self.location}"
            f"/publishers/google/models/{quote(model.removeprefix('models/'), safe='')}"
        )

    async def authorize(self, call: UpstreamCall | None = None) -> str:
        """A fresh access token (cached; fetched in a worker thread when needed)."""
        started = time.perf_counter()
        try:
            return await self.tokens.get()
        finally:
            if call is not None:  # waiting on Google's token endpoint is upstream time, not overhead
                call.upstream_seconds += time.perf_counter() - started

    async def check_health(self, http: httpx.AsyncClient) -> None:
        """A token exchange, then ``countTokens`` (free) on a model: proves credentials and project.

        The model is the first configured one, else a GA model every region serves (not the newest
        catalog entry, which a project or region may not have yet)."""
        token = await self.authorize()
        configured = self.configured_models()
        model = self.upstream_model(configured[0]) if configured else _HEALTH_MODEL
        body = {"contents": [{"role": "user", "parts": [{"text": "ping"}]}]}
        request = httpx.Request(
            "POST",
            f"{self.model_url(model)}:countTokens",
            content=json.dumps(body).encode(),
            headers={**self._headers, "authorization": f"Bearer {token}"},
        )
        await self.check_health_with(http, request)
