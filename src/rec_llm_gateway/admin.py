"""The gateway's admin and discovery routes: health, models, providers, usage, the OpenAPI document.

Built once per gateway (like the chat handler); ``Gateway.__call__`` dispatches every route that is
not a chat completion here.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pydantic_core

from .asgi import Scope, Send, send_json
from .config import url_without_secrets
from .errors import GatewayError, InvalidRequestError, NotFoundError
from .usage import merge_keys

if TYPE_CHECKING:
    from .gateway import Gateway
    from .providers.base import Provider

__all__ = ["AdminRoutes", "allow"]


class AdminRoutes:
    """Serves everything but chat completions. Holds no per-request state."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(
        self,
        method: str,
        path: str,
        scope: Scope,
        headers: dict[str, str],
        send: Send,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        if path == "/health":
            allow(method, "GET")
            await self._json(send, {"status": "ok", "providers": len(self.gateway.providers)}, extra)
        elif path in ("/v1/models", "/models"):
            allow(method, "GET")
            self.gateway.auth.authenticate(headers)
            await self._json(send, {"object": "list", "data": self._model_list()}, extra)
        elif path.startswith(("/v1/models/", "/models/")):
            allow(method, "GET")
            self.gateway.auth.authenticate(headers)
            await self._json(send, self._model(path.split("/models/", 1)[1]), extra)
        elif path == "/providers":
            allow(method, "GET")
            self.gateway.auth.authenticate_admin(headers)
            data = [self._describe(provider) for provider in self.gateway.providers.values()]
            for entry in data:
                entry["health"] = self.gateway.router.providers[entry["name"]].health.status
            data += [
                {"name": name, "enabled": False, "reason": reason}
                for name, reason in self.gateway.disabled_providers.items()
            ]
            await self._json(send, {"object": "list", "data": data}, extra)
        elif path.startswith("/providers/") and path.count("/") == 3:
            allow(method, "GET")
            self.gateway.auth.authenticate_admin(headers)
            _, _, name, action = path.split("/")
            provider = self.gateway.providers.get(name)
            if provider is None or action not in ("health", "stats"):
                raise NotFoundError(f"Unknown provider route: {path}")
            body = (
                await self._provider_health(provider)
                if action == "health"
                else await self._provider_stats(provider)
            )
            await self._json(send, body, extra)
        elif path == "/usage":
            allow(method, "GET")
            await self._json(send, await self._usage_report(scope, self._usage_scope(headers)), extra)
        elif path == "/openapi.json":
            allow(method, "GET")
            from .openapi import openapi_json  # lazily: the description is built on first use

            await send_json(send, 200, openapi_json(mount_path(scope)), extra)
        else:
            raise NotFoundError(f"Unknown route: {method} {path}")

    @staticmethod
    async def _json(send: Send, data: Any, headers: list[tuple[bytes, bytes]]) -> None:
        await send_json(send, 200, pydantic_core.to_json(data), headers)

    def _model_list(self) -> list[dict[str, Any]]:
        from .catalog import lookup

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
                info = lookup(provider.upstream_model(model), provider.type)
                if info is not None:
                    entry.update(info.describe())
                entries.append(entry)
        return entries

    def _model(self, model_id: str) -> dict[str, Any]:
        for entry in self._model_list():
            if entry["id"] == model_id:
                return entry
        try:
            route = self.gateway.resolver.resolve(model_id)
        except GatewayError:
            route = None
        if route is not None and route.requested in route.provider.model_ids():
            return {"id": model_id, "object": "model", "created": 0, "owned_by": route.provider.name}
        raise NotFoundError(f"The model '{model_id}' does not exist.", code="model_not_found", param="model")

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
        records = [record for record in await self.gateway.usage.arows() if record.provider == provider.name]
        calls = sum(record.calls for record in records)
        stats: dict[str, Any] = {
            "name": provider.name,
            "requests": calls,
            "errors": sum(record.errors for record in records),
            "total_tokens": sum(record.total_tokens for record in records),
            "avg_latency_ms": round(sum(record.total_latency_ms for record in records) / calls, 3)
            if calls
            else None,
        }
        stats.update(self.gateway.router.describe_provider(provider.name))
        return stats

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
        """``?date=``, or ``?from=`` / ``?to=`` (inclusive), ``?provider=``; admins may add ``?key=``."""
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


def allow(method: str, allowed: str) -> None:
    if method != allowed and not (allowed == "GET" and method == "HEAD"):
        raise GatewayError(
            f"Method {method} not allowed; use {allowed}.",
            status_code=405,
            error_type="invalid_request_error",
            code="method_not_allowed",
            headers={"allow": allowed},
        )


def mount_path(scope: Scope) -> str:
    """Where the gateway is mounted, as clients address it: Starlette-style mounts grow
    ``root_path``; Litestar-style ones rewrite ``path``, so the prefix is what ``raw_path`` has more."""
    root: str = scope.get("root_path") or ""
    if root:
        return root
    path: str = (scope.get("path") or "").rstrip("/")  # Litestar adds a trailing slash to `path`
    raw = (scope.get("raw_path") or b"").decode("latin-1").rstrip("/")
    return raw[: -len(path)] if path and len(raw) > len(path) and raw.endswith(path) else ""


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
