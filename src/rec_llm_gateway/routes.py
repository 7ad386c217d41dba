"""The route table: every route the gateway serves, declared once as data.

The dispatcher (``Gateway.__call__``), the admin routes (``admin.py``, one method per ``handler``)
and the OpenAPI description (``openapi.py``) all read ``ENDPOINTS``. A route served by the
operation pipeline names its ``Operation``; adding such a route is a line here (plus the operation
and its translations), nothing else.

Paths are relative to where the gateway is mounted. ``{name}`` matches one path segment,
``{name:path}`` the rest of the path (model ids may contain ``/``).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from .errors import MethodNotAllowedError, NotFoundError

if TYPE_CHECKING:
    from .pipeline.operation import Operation

__all__ = ["ENDPOINTS", "Endpoint", "Match", "RouteTable"]

Access = Literal["public", "key", "admin", "usage"]
"""Who may call: anyone; a gateway key (when keys are configured); an admin key (a gateway key when
no admin keys are configured); ``usage``: a key reads its own usage, an admin all of it."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    name: str
    """The OpenAPI ``operationId``."""
    summary: str
    access: Access = "key"
    operation: str = ""
    """Served by the pipeline with this operation, ``module:class`` under ``pipeline/`` (imported
    when the route is first used: a gateway that serves only chat never loads the Messages or
    Responses machinery; one instance per gateway: ``for_gateway``); else by the ``handler`` method
    of ``AdminRoutes`` (or of an object it was given)."""
    handler: str = ""
    aliases: tuple[str, ...] = ()
    """Other paths for the same route (OpenAI clients configured without ``/v1``), undocumented."""
    response: str = ""
    """The OpenAPI schema of a 200 body (admin routes; a pipeline route's comes from its operation)."""
    errors: tuple[int, ...] = (401, 405, 500)
    query: tuple[str, ...] = ()
    parameters: dict[str, str] = field(default_factory=dict)
    """Path parameter -> its description."""
    documented: bool = True

    def operation_class(self) -> type[Operation]:
        """The class named by ``operation`` (its module imported on first use)."""
        module, _, name = self.operation.partition(":")
        found: type[Operation] = getattr(importlib.import_module(f"{__package__}.pipeline.{module}"), name)
        return found


PIPELINE_ERRORS: Final = (400, 401, 403, 404, 405, 408, 413, 429, 500, 502, 503, 504)

ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    Endpoint(
        "POST",
        "/v1/chat/completions",
        "createChatCompletion",
        "OpenAI chat completions, routed to a provider (JSON, or an SSE stream)",
        operation="chat:ChatOperation",
        aliases=("/chat/completions",),
        errors=PIPELINE_ERRORS,
    ),
    Endpoint(
        "POST",
        "/v1/embeddings",
        "createEmbedding",
        "OpenAI embeddings, routed to a provider (floats or base64)",
        operation="embeddings:EmbeddingsOperation",
        aliases=("/embeddings",),
        errors=PIPELINE_ERRORS,
    ),
    Endpoint(
        "POST",
        "/v1/completions",
        "createCompletion",
        "OpenAI legacy text completions (passed through, or a one-message chat on native providers)",
        operation="completions:CompletionsOperation",
        aliases=("/completions",),
        errors=PIPELINE_ERRORS,
    ),
    # OpenAI's Responses API (responses/; ResponsesOperation.describe names its OpenAPI models).
    Endpoint(
        "POST",
        "/v1/responses",
        "createResponse",
        "OpenAI Responses, routed to a provider (JSON, or typed SSE events)",
        operation="responses:ResponsesOperation",
        aliases=("/responses",),
        errors=PIPELINE_ERRORS,
    ),
    # Anthropic's Messages API (messages/): its own wire shapes and error envelope
    # (MessagesOperation.describe says which, for the OpenAPI description).
    Endpoint(
        "POST",
        "/v1/messages",
        "createMessage",
        "Anthropic Messages (JSON, or named SSE events)",
        operation="messages:MessagesOperation",
        errors=PIPELINE_ERRORS,
    ),
    Endpoint(
        "POST",
        "/v1/messages/count_tokens",
        "countMessageTokens",
        "Anthropic's token count of a Messages request",
        operation="messages:CountTokensOperation",
        errors=PIPELINE_ERRORS,
    ),
    Endpoint(
        "GET",
        "/v1/responses/{id}",
        "retrieveResponse",
        "A stored response",
        handler="retrieve_response",
        aliases=("/responses/{id}",),
        response="ResponseObject",
        errors=(401, 404, 405, 500, 503),
        parameters={"id": "A stored response's id."},
    ),
    Endpoint(
        "DELETE",
        "/v1/responses/{id}",
        "deleteResponse",
        "Delete a stored response",
        handler="delete_response",
        aliases=("/responses/{id}",),
        response="DeletedResponse",
        errors=(401, 404, 405, 500, 503),
        parameters={"id": "A stored response's id."},
    ),
    Endpoint(
        "GET",
        "/v1/models",
        "listModels",
        "The models the gateway can route",
        handler="list_models",
        aliases=("/models",),
        response="ModelList",
    ),
    Endpoint(
        "GET",
        "/v1/models/{id:path}",
        "retrieveModel",
        "One model: any name the gateway would route",
        handler="retrieve_model",
        aliases=("/models/{id:path}",),
        response="Model",
        errors=(401, 404, 405, 500),
        parameters={"id": "A model id: provider:model, a group or alias, or a name a provider serves."},
    ),
    Endpoint(
        "GET",
        "/health",
        "health",
        "Liveness of the gateway itself",
        access="public",
        handler="health",
        response="Health",
        errors=(405, 500),
    ),
    Endpoint(
        "GET",
        "/providers",
        "listProviders",
        "Configured providers, never their keys",
        access="admin",
        handler="list_providers",
        response="ProviderList",
        errors=(401, 403, 405, 500),
    ),
    Endpoint(
        "GET",
        "/providers/{name}/health",
        "providerHealth",
        "A live check of one provider",
        access="admin",
        handler="provider_health",
        response="ProviderHealth",
        errors=(401, 403, 404, 405, 500),
        parameters={"name": "A configured provider's name."},
    ),
    Endpoint(
        "GET",
        "/providers/{name}/stats",
        "providerStats",
        "Requests, errors, tokens and latency of one provider",
        access="admin",
        handler="provider_stats",
        response="ProviderStats",
        errors=(401, 403, 404, 405, 500),
        parameters={"name": "A configured provider's name."},
    ),
    Endpoint(
        "GET",
        "/usage",
        "usage",
        "Usage records (a gateway key reads its own; an admin key reads all)",
        access="usage",
        handler="usage",
        response="UsageReport",
        errors=(400, 401, 403, 405, 500),
        query=("date", "from", "to", "provider", "operation", "key"),
    ),
    Endpoint(
        "GET",
        "/openapi.json",
        "openapi",
        "This description",
        access="public",
        handler="openapi",
        documented=False,
    ),
)


@dataclass(frozen=True, slots=True)
class Match:
    endpoint: Endpoint
    params: dict[str, str]


_NO_PARAMS: Final[dict[str, str]] = {}
_PARAMETER = re.compile(r"\{(\w+)(:path)?\}")


class RouteTable:
    """Finds the endpoint for a method and path: static paths by one dict lookup (the chat route
    costs nothing more), parameterised ones by a short scan."""

    def __init__(self, endpoints: tuple[Endpoint, ...] = ENDPOINTS) -> None:
        self.endpoints = endpoints
        # Matches of static paths are built once: dispatching the chat route allocates nothing.
        self._static: dict[str, dict[str, Match]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Endpoint]]] = []
        patterns: dict[str, dict[str, Endpoint]] = {}
        for endpoint in endpoints:
            for path in (endpoint.path, *endpoint.aliases):
                if endpoint.method in self._static.get(path, patterns.get(path, {})):
                    raise ValueError(f"route {endpoint.method} {path} is declared twice")
                if "{" in path:
                    patterns.setdefault(path, {})[endpoint.method] = endpoint
                else:
                    self._static.setdefault(path, {})[endpoint.method] = Match(endpoint, _NO_PARAMS)
        for path, methods in patterns.items():
            self._patterns.append((_compile(path), methods))

    def match(self, method: str, path: str) -> Match:
        """The endpoint and its path parameters; ``NotFoundError`` / ``MethodNotAllowedError``."""
        static = self._static.get(path)
        if static is not None:
            found = static.get(method) or (static.get("GET") if method == "HEAD" else None)
            if found is None:
                raise MethodNotAllowedError(method, ", ".join(static))
            return found
        for pattern, methods in self._patterns:
            matched = pattern.fullmatch(path)
            if matched is not None:
                endpoint = methods.get(method) or (methods.get("GET") if method == "HEAD" else None)
                if endpoint is None:
                    raise MethodNotAllowedError(method, ", ".join(methods))
                return Match(endpoint, matched.groupdict())
        raise NotFoundError(f"Unknown route: {method} {path}")

    def pipeline_endpoint(self, path: str) -> Endpoint | None:
        """The pipeline route at ``path``, if there is one (its errors use its API's envelope)."""
        for found in self._static.get(path, {}).values():
            if found.endpoint.operation:
                return found.endpoint
        return None


def _compile(path: str) -> re.Pattern[str]:
    parts = []
    position = 0
    for found in _PARAMETER.finditer(path):
        parts.append(re.escape(path[position : found.start()]))
        parts.append(f"(?P<{found.group(1)}>.+)" if found.group(2) else f"(?P<{found.group(1)}>[^/]+)")
        position = found.end()
    parts.append(re.escape(path[position:]))
    return re.compile("".join(parts))
