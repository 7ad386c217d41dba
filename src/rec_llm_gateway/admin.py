"""The gateway's admin and discovery routes: health, models, providers, usage, the OpenAPI document.

Built once per gateway (like the chat handler); ``GatewayParts.__call__`` dispatches every route that is
not a chat completion here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs

import pydantic_core

from .asgi.response import send_json
from .asgi.types import Scope, Send
from .config import url_without_secrets
from .errors import GatewayError, InvalidRequestError, NotFoundError, ServiceUnavailableError
from .routes import ENDPOINTS, Endpoint
from .usage import merge_keys

if TYPE_CHECKING:
    from .parts import GatewayParts
    from .providers.base import Provider

__all__ = ["AdminRoutes", "mount_path"]


class AdminRoutes:
    """Serves the routes of ``routes.ENDPOINTS`` that have a ``handler``: one method each (here, or
    on one of ``others``), returning the JSON body. Holds no per-request state."""

    def __init__(self, gateway: GatewayParts, *others: object) -> None:
        """``others``: objects holding the handlers of other endpoints (stored responses, ...)."""
        self.gateway = gateway
        self._handlers: dict[str, Callable[[Scope, dict[str, str], dict[str, str]], Awaitable[Any]]] = {}
        for endpoint in ENDPOINTS:
            if endpoint.handler:
                owner = next(o for o in (self, *others) if hasattr(o, endpoint.handler))
                self._handlers[endpoint.handler] = getattr(owner, endpoint.handler)

    async def __call__(
        self,
        endpoint: Endpoint,
        params: dict[str, str],
        scope: Scope,
        headers: dict[str, str],
        send: Send,
        response_headers: list[tuple[bytes, bytes]],
    ) -> None:
        auth = self.gateway.auth
        if endpoint.access == "key":
            auth.authenticate(headers)
        elif endpoint.access == "admin":
            auth.authenticate_admin(headers)
        body = await self._handlers[endpoint.handler](scope, headers, params)
        await send_json(
            send, 200, body if isinstance(body, bytes) else pydantic_core.to_json(body), response_headers
        )

    # -- the handlers (``Endpoint.handler``) ------------------------------------------------------

    async def health(self, scope: Scope, headers: dict[str, str], params: dict[str, str]) -> Any:
        return {"status": "ok", "providers": len(self.gateway.providers)}

    async def list_models(self, scope: Scope, headers: dict[str, str], params: dict[str, str]) -> Any:
        return {"object": "list", "data": self._model_list()}

    async def retrieve_model(self, scope: Scope, headers: dict[str, str], params: dict[str, str]) -> Any:
        return self._model(params["id"])

    async def list_providers(self, scope: Scope, headers: dict[str, str], params: dict[str, str]) -> Any:
        gateway = self.gateway
        data = [self._describe(provider) for provider in gateway.providers.values()]
        states = [gateway.router.providers[entry["name"]] for entry in data]
        shared = await gateway.ledger.headroom([state.bucket for state in states if state.bucket])
        now = gateway.router.clock()
        for entry, state in zip(data, states, strict=True):
            entry["health"] = state.health.status
            if state.limiter is not None:
                entry["limits"] = state.limiter.headroom(now)
            elif state.bucket is not None:
                entry["limits"] = shared.get(state.bucket.name, {}) if shared is not None else _UNAVAILABLE
        data += [
            {"name": name, "enabled": False, "reason": reason}
            for name, reason in gateway.disabled_providers.items()
        ]
        return {"object": "list", "data": data}

    async def provider_health(self, scope: Scope, headers: dict[str, str], params: dict[str, str]) -> Any:
        return await self._provider_health(self._provider(params["name"]))

    async def provider_stats(self, scope: Scope, headers: dict[str, str], params: dict[str, str]) -> Any:
        return await self._provider_stats(self._provider(params["name"]))

    async def usage(self, scope: Scope, headers: dict[str, str], params: dict[str, str]) -> Any:
        return await self._usage_report(scope, self._usage_scope(headers))

    async def openapi(self, scope: Scope, headers: dict[str, str], params: dict[str, str]) -> Any:
        from .openapi import openapi_json  # lazily: the description is built on first use

        return openapi_json(mount_path(scope))

    # -- what they share --------------------------------------------------------------------------

    def _provider(self, name: str) -> Provider:
        provider = self.gateway.providers.get(name)
        if provider is None:
            raise NotFoundError(f"Unknown provider: {name}", param="name")
        return provider

    def _model_list(self) -> list[dict[str, Any]]:
        from .catalog import lookup
        from .catalog.embeddings import lookup_embedding

        # Client-facing names under `models:` first (groups and aliases), owned by the gateway.
        entries = [
            {"id": name, "object": "model", "created": 0, "owned_by": "rec-llm-gateway"}
            for name in self.gateway.router.group_names()
        ]
        for provider in self.gateway.providers.values():
            for model in provider.model_ids():
                entry: dict[str, Any] = {
                    "id": f"{provider.name}:{model}",
                    "object": "model",
                    "created": 0,
                    "owned_by": provider.name,
                }
                upstream = provider.upstream_model(model)
                info = lookup_embedding(upstream, provider.type) or lookup(upstream, provider.type)
                if info is not None:
                    entry.update(info.describe())  # with its kind: "chat" or "embedding"
                entries.append(entry)
        return entries

    def _model(self, model_id: str) -> dict[str, Any]:
        """The listed entry, else any name the chat route would route (through a provider's
        ``models``, a family prefix, the ``default`` route or ``default_provider``): the route table
        and this answer agree."""
        for entry in self._model_list():
            if entry["id"] == model_id:
                return entry
        try:
            deployments = self.gateway.router.plan(model_id).group.deployments
        except GatewayError:
            deployments = ()
        if not deployments:
            raise NotFoundError(
                f"The model '{model_id}' does not exist.", code="model_not_found", param="model"
            )
        entry = {"id": model_id, "object": "model", "created": 0, "owned_by": "rec-llm-gateway"}
        if len(deployments) == 1:
            from .catalog import lookup

            route = deployments[0].route
            entry["owned_by"] = route.provider.name
            info = lookup(route.model, route.provider.type)
            if info is not None:
                entry.update(info.describe())
        return entry

    @staticmethod
    def _describe(provider: Provider) -> dict[str, Any]:
        description = provider.describe()
        if description.get("base_url"):
            description["base_url"] = url_without_secrets(description["base_url"])
        description["enabled"] = True
        return description

    async def _provider_health(self, provider: Provider) -> dict[str, Any]:
        """The last background check, or a check now when there is none."""
        status = self.gateway.router.providers[provider.name].health
        if provider.name not in self.gateway.health.configured or status.last_check is None:
            status = await self.gateway.health.check(provider.name, self.gateway.http_client())
        return status.to_dict(provider.name)

    async def _provider_stats(self, provider: Provider) -> dict[str, Any]:
        stats: dict[str, Any] = {"name": provider.name}
        try:
            records = [
                record for record in await self.gateway.usage.arows() if record.provider == provider.name
            ]
        except ServiceUnavailableError:  # the shared store is down: routing's own state still tells
            stats.update(requests=None, errors=None, total_tokens=None, avg_latency_ms=None)
        else:
            calls = sum(record.calls for record in records)
            stats.update(
                requests=calls,
                errors=sum(record.errors for record in records),
                total_tokens=sum(record.total_tokens for record in records),
                avg_latency_ms=round(sum(record.total_latency_ms for record in records) / calls, 3)
                if calls
                else None,
            )
        stats.update(self.gateway.router.describe_provider(provider.name))
        await self._shared_headroom(provider.name, stats)
        return stats

    async def _shared_headroom(self, name: str, stats: dict[str, Any]) -> None:
        """Limits kept in a shared state store: what every process has used, read from the store."""
        state = self.gateway.router.providers[name]
        own = {
            deployment.name: bucket
            for deployment in state.deployments
            for bucket in deployment.buckets
            if bucket.name.startswith("deployment:")
        }
        buckets = [*own.values(), *([state.bucket] if state.bucket else [])]
        if not buckets:
            return
        rows = await self.gateway.ledger.headroom(buckets)
        if state.bucket is not None:
            stats["limits"] = rows.get(state.bucket.name, {}) if rows is not None else _UNAVAILABLE
        for entry in stats["deployments"]:
            bucket = own.get(entry["deployment"])
            if bucket is not None:
                entry["limits"] = rows.get(bucket.name, {}) if rows is not None else _UNAVAILABLE

    def _usage_scope(self, headers: dict[str, str]) -> str | None:
        """Whose usage the caller may read: ``""`` for everything, else its own gateway key id.

        With admin keys configured only admins read usage (all of it); without them a gateway key
        reads its own usage and never another key's; with no keys at all there is nobody to tell
        apart (protect the route with admin keys).
        """
        if self.gateway.config.auth.admin_keys or not self.gateway.auth.enabled:
            self.gateway.auth.authenticate_admin(headers)
            return ""
        return self.gateway.auth.authenticate(headers)

    async def _usage_report(self, scope: Scope, key_id: str | None) -> dict[str, Any]:
        """``?date=``, or ``?from=`` / ``?to=`` (inclusive), ``?provider=``, ``?operation=``; admins may
        add ``?key=``."""
        # Blank values kept: `?date=` is a bad date, not "no filter".
        query = parse_qs((scope.get("query_string") or b"").decode("latin-1"), keep_blank_values=True)
        start, end = _date(query, "from"), _date(query, "to")
        if "date" in query:
            start = end = _date(query, "date")
        records = await self.gateway.usage.arows(start, end)
        if key_id == "" and "key" in query:
            key_id = query["key"][0]
        if key_id == "":
            records = merge_keys(records)  # everything, summed over keys
        else:
            records = [record for record in records if record.gateway_key_id == key_id]
        if "provider" in query:
            records = [record for record in records if record.provider == query["provider"][0]]
        if "operation" in query:
            records = [record for record in records if record.operation == query["operation"][0]]
        return {
            "object": "list",
            "data": [record.to_dict() for record in records],
            "totals": self.gateway.usage.totals(records),
        }


def _date(query: dict[str, list[str]], name: str) -> dt.date | None:
    if name not in query:
        return None
    # Only YYYY-MM-DD: fromisoformat alone also takes "20240101" and week dates such as "2024-W01-1"
    # (found by schemathesis).
    try:
        if not _ISO_DATE.fullmatch(query[name][0]):
            raise ValueError
        return dt.date.fromisoformat(query[name][0])
    except ValueError:
        raise InvalidRequestError(f"{name} must be YYYY-MM-DD", param=name) from None


def mount_path(scope: Scope) -> str:
    """Where the gateway is mounted, as clients address it: Starlette-style mounts grow
    ``root_path``; Litestar-style ones rewrite ``path``, so the prefix is what ``raw_path`` has more."""
    root: str = scope.get("root_path") or ""
    if root:
        return root
    path: str = (scope.get("path") or "").rstrip("/")  # Litestar adds a trailing slash to `path`
    raw = (scope.get("raw_path") or b"").decode("latin-1").rstrip("/")
    return raw[: -len(path)] if path and len(raw) > len(path) and raw.endswith(path) else ""


_UNAVAILABLE: Final = {"unavailable": "the state store did not answer"}
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
