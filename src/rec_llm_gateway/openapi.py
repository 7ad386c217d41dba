"""The gateway's own OpenAPI 3.1 description, served at ``GET /openapi.json`` (relative to the mount).

Request and response bodies come from the pydantic wire models (``schema.py``); the admin routes'
shapes are small pydantic models here, used only for the description. The document is built once
(on the first request for it: this module is imported lazily, so ``import rec_llm_gateway`` stays
light) and cached per mount path, which it names as its server URL.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Literal

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from .responses import openapi as responses_doc
from .routes import ENDPOINTS, Endpoint

if TYPE_CHECKING:
    from .pipeline.operation import OperationDoc

__all__ = ["openapi_document", "openapi_json"]

_VERSION = "0.1.0"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """Every failure, on every route: OpenAI's error envelope."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


class Capabilities(_Doc):
    tools: bool | None = None
    vision: bool | None = None
    json_: bool | None = Field(None, alias="json")
    streaming: bool | None = None
    reasoning: bool | None = None


class Model(_Doc):
    """A model the gateway can route, as ``provider:model`` (catalog fields when known)."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: Capabilities | None = None


class ModelList(_Doc):
    object: Literal["list"]
    data: list[Model]


class Health(_Doc):
    status: Literal["ok"]
    providers: int


class ProviderInfo(_Doc):
    """A configured provider (never its keys), or a disabled one with the reason."""

    name: str
    enabled: bool
    type: str | None = None
    models: list[str] | None = None
    base_url: str | None = None
    health: Literal["healthy", "unhealthy", "unknown"] | None = None
    reason: str | None = None


class ProviderList(_Doc):
    object: Literal["list"]
    data: list[ProviderInfo]


class ProviderHealth(_Doc):
    """The last background check, or one made now."""

    name: str
    status: Literal["healthy", "unhealthy", "unknown"]
    latency_ms: float | None
    last_check: float | None
    error: str | None
    source: Literal["background", "on_demand"] | None = None


class ProviderStats(_Doc):
    """Usage of one provider, with its routing state (latency percentiles, health, deployments)."""

    name: str
    requests: int
    errors: int
    total_tokens: int
    avg_latency_ms: float | None
    latency: dict[str, Any] | None = None
    health: Literal["healthy", "unhealthy", "unknown"] | None = None
    deployments: list[dict[str, Any]] | None = None
    limits: dict[str, Any] | None = None


class UsageRecord(_Doc):
    date: str
    provider: str
    model: str
    gateway_key_id: str | None
    operation: str
    calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float | None
    avg_latency_ms: float


class UsageTotals(_Doc):
    calls: int
    errors: int
    total_tokens: int
    cost_usd: float | None


class UsageReport(_Doc):
    object: Literal["list"]
    data: list[UsageRecord]
    totals: UsageTotals


_ADMIN_MODELS: dict[str, type[BaseModel]] = {
    model.__name__: model
    for model in (
        ModelList,
        Model,
        Health,
        ProviderList,
        ProviderHealth,
        ProviderStats,
        UsageReport,
        responses_doc.ResponseObject,
        responses_doc.DeletedResponse,
    )
}
"""The 200 bodies of the admin routes, by the name ``Endpoint.response`` gives."""
_REF = "#/components/schemas/{model}"
_ERRORS = {
    400: "Invalid request: not JSON, wrong types, a malformed model name, a bad query parameter.",
    401: "Missing or wrong gateway key (only when the gateway is configured with keys).",
    403: "Rejected by a pre_request hook; or a gateway key on a route that needs an admin key.",
    404: "Unknown model, provider or route; a stored response that does not exist (any more).",
    405: "Wrong method (the Allow header names the right one).",
    408: "The body did not fully arrive within limits.body_timeout_seconds.",
    413: "Body larger than limits.max_body_bytes.",
    429: "Rate limited upstream (Retry-After passed on).",
    500: "A bug in the gateway or a provider (details only in the log).",
    502: "Upstream unreachable, 5xx, cut off or answered garbage.",
    503: "No healthy provider, the gateway is shutting down, or the state store is unavailable.",
    504: "Upstream timeout.",
}


def _sse_event(chunk_schema: str, error_schema: str = "ErrorResponse", named: bool = False) -> dict[str, Any]:
    """An event stream, one event at a time (OpenAPI 3.1): each ``data`` is a chunk as JSON, an error
    (after the stream has started), or the closing ``[DONE]``; named events (Anthropic's) carry
    their type in ``event`` and end without ``[DONE]``."""
    data = {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": {
            "anyOf": [{"$ref": _REF.format(model=chunk_schema)}, {"$ref": _REF.format(model=error_schema)}]
        },
    }
    if named:
        return {
            "type": "object",
            "required": ["event", "data"],
            "properties": {"event": {"type": "string"}, "data": data},
        }
    return {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"anyOf": [{"const": "[DONE]"}, data]}},
    }


def _error(status: int, schema: str = "ErrorResponse") -> dict[str, Any]:
    return {
        "description": _ERRORS[status],
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=schema)}}},
    }


def _ok(model: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}},
    }


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": {"type": "string", "minLength": 1},
        }
        for name, description in endpoint.parameters.items()
    ]
    for name in endpoint.query:
        dated = name in ("date", "from", "to")
        schema = {"type": "string", "format": "date"} if dated else {"type": "string"}
        parameters.append({"name": name, "in": "query", "schema": schema})
    return parameters


def _admin_operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.name,
        "summary": endpoint.summary,
        "responses": {"200": _ok(endpoint.response, endpoint.summary)}
        | {str(status): _error(status) for status in endpoint.errors},
    }
    if endpoint.parameters or endpoint.query:
        operation["parameters"] = _parameters(endpoint)
    if endpoint.access == "public":
        operation["security"] = []
    return operation


def _pipeline_operation(endpoint: Endpoint, doc: OperationDoc, description: str) -> dict[str, Any]:
    error = (doc.error or ErrorResponse).__name__
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": _REF.format(model=doc.response.__name__)}}
    }
    if doc.stream_event is not None:
        content["text/event-stream"] = {
            "schema": _sse_event(doc.stream_event.__name__, error, doc.named_events)
        }
    return {
        "operationId": endpoint.name,
        "summary": endpoint.summary,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=doc.request.__name__)}}},
        },
        "responses": {
            "200": {
                "description": description,
                "headers": {name: {"schema": {"type": "string"}} for name in ("x-request-id", *doc.headers)},
                "content": content,
            },
            **{str(status): _error(status, error) for status in endpoint.errors},
        },
    }


def _build() -> dict[str, Any]:
    documented = [endpoint for endpoint in ENDPOINTS if endpoint.documented]
    docs = {
        endpoint.name: endpoint.operation_class().describe() for endpoint in documented if endpoint.operation
    }
    wire_models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = []
    for doc in docs.values():
        wire_models += [(doc.request, "validation"), (doc.response, "serialization")]
        wire_models += [
            (model, "serialization") for model in (doc.stream_event, doc.error) if model is not None
        ]
    wire_models.append((ErrorResponse, "serialization"))
    wire_models += [
        (_ADMIN_MODELS[endpoint.response], "serialization") for endpoint in documented if endpoint.response
    ]
    _, top = models_json_schema(list(dict.fromkeys(wire_models)), ref_template=_REF)
    schemas = top.get("$defs", {})
    responses_doc.patch_schemas(schemas, _REF)
    for request in (
        "ChatCompletionRequest",
        "EmbeddingRequest",
        "CompletionRequest",
        "ResponsesCreate",
        "MessagesCreate",
        "CountTokensCreate",
    ):
        schemas[request]["properties"]["model"].update(
            pattern=_model_pattern(),
            description="A model name, or provider:model (split on the first colon; neither part empty, "
            "no surrounding whitespace). A malformed name is a 400 invalid_model, an unknown provider a 404.",
        )
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in documented:
        path = endpoint.path.replace(":path}", "}")
        paths.setdefault(path, {})[endpoint.method.lower()] = (
            _pipeline_operation(
                endpoint, docs[endpoint.name], endpoint.operation_class().response_description
            )
            if endpoint.operation
            else _admin_operation(endpoint)
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rec-llm-gateway",
            "version": _VERSION,
            "description": "An OpenAI-compatible LLM gateway. Paths are relative to where it is mounted; "
            "every error is OpenAI's envelope.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A gateway key."},
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": "A gateway key.",
                },
            },
        },
        # Keys are needed only when the gateway is configured with them: `{}` makes that optional.
        "security": [{"bearer": []}, {"apiKey": []}, {}],
    }


def _model_pattern() -> str:
    """``routing.resolve``'s rule for well-formed model names, as an ECMA-262 regex.

    "Whitespace" is what Python's ``str.strip`` removes, which is more than ECMA's ``\\s``, so the
    class is spelled out.
    """
    space = "".join(f"\\u{ord(char):04x}" for char in map(chr, range(0x3001)) if char.isspace())
    edge = f"[^:{space}]"  # a character that may start or end a part
    # [\\s\\S], not ".": ECMA's dot stops at line terminators.
    return f"^{edge}(?:[^:]*{edge})?(?::[^:{space}](?:[\\s\\S]*[^{space}])?)?$"


@functools.cache
def _base() -> dict[str, Any]:
    return _build()


def openapi_document(root_path: str = "") -> dict[str, Any]:
    """The description, with the mount path as its server URL."""
    return {**_base(), "servers": [{"url": root_path or "/"}]}


@functools.lru_cache(maxsize=16)
def openapi_json(root_path: str = "") -> bytes:
    """``openapi_document(root_path)`` as JSON bytes (cached per mount path)."""
    return pydantic_core.to_json(openapi_document(root_path))
