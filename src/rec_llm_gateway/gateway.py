"""``Gateway``: the ASGI application, its lifecycle and its route table."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from opentelemetry import metrics, trace

from .admin import AdminRoutes
from .asgi.auth import GatewayAuth
from .asgi.cors import Cors
from .asgi.request import request_headers, request_id_from, route_path
from .asgi.types import Receive, Scope, Send
from .config import GatewayConfig, PluginSpec, ProviderConfig, load_config_file
from .errors import ConfigError, GatewayError, NotFoundError
from .hooks import HookRunner, make_plugin_manager
from .pipeline import CHAT, OperationHandler
from .pipeline.endings import send_operation_error
from .pricing import PriceTable, warm_up
from .providers.base import Provider
from .providers.registry import ProviderRegistry
from .responses.routes import StoredResponseRoutes
from .responses.store import open_conversations
from .responses.wire import ResponsesRequest
from .routes import Endpoint, RouteTable
from .routing.health import HealthMonitor
from .routing.key_limits import KeyGuard
from .routing.resolve import ModelResolver
from .routing.router import Router
from .runtime import Runtime
from .schema import ChatCompletion, ChatCompletionRequest
from .state.ledger import Ledger
from .state.signals import RoutingSync
from .state.usage import SharedUsage
from .telemetry import Telemetry
from .usage import TokenUsage, UsageTracker

__all__ = ["Gateway"]

logger = logging.getLogger("rec_llm_gateway")


class Gateway:
    """An OpenAI-compatible LLM gateway; an ASGI application.

    Example::

        gateway = Gateway({"providers": {"openai": {"api_key": "${OPENAI_API_KEY}"}}})
        app.mount("/llm", gateway)                 # FastAPI / Starlette
        async with gateway: ...                    # optional: open pools now, close them after

    Args:
        config: a ``GatewayConfig``, a dict of the same shape (``${VAR}`` expanded), or ``None``.
        plugins: objects with ``@hookimpl`` methods, registered in order.
        tracer_provider: OpenTelemetry tracer provider (default: the global one).
        meter_provider: OpenTelemetry meter provider (default: the global one).
    """

    def __init__(
        self,
        config: GatewayConfig | Mapping[str, Any] | None = None,
        *,
        plugins: Iterable[object] = (),
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.config = GatewayConfig.load(config)
        self.plugins = make_plugin_manager()
        self.telemetry = Telemetry(
            tracer_provider, meter_provider, capture_content=self.config.telemetry.capture_content
        )
        self.ledger = Ledger(self.config.state, on_fallback=self.telemetry.record_state_fallback)
        """The state store (``state.url``) and its write buffer."""
        self.usage: UsageTracker = (
            SharedUsage(self.ledger) if self.ledger.shared else self.ledger.local.usage_records
        )
        self.hooks = HookRunner(self.plugins, on_failure=Telemetry.record_hook_failure)
        self.auth = GatewayAuth(self.config.auth.api_keys, self.config.auth.admin_keys, self.config.auth.keys)
        self.keys = KeyGuard(
            self.auth.named, self.ledger, shared_limits=self.ledger.shared, unpriced=self.config.auth.unpriced
        )
        """Per-key limits and budgets (``auth.keys``)."""
        self.cors = Cors(self.config.cors) if self.config.cors else None
        self.pricing = PriceTable(self.config.pricing)
        self._registry = ProviderRegistry()
        self.providers: dict[str, Provider] = {}
        self.disabled_providers: dict[str, str] = {}
        self._runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Runtime] = (
            weakref.WeakKeyDictionary()
        )
        self._warm_up: asyncio.Future[None] | None = None
        for plugin in plugins:
            self.plugins.register(plugin)
        for spec in self.config.plugins:
            self.plugins.register(
                _load_plugin(spec if isinstance(spec, PluginSpec) else PluginSpec(path=spec))
            )
        if self.config.load_entry_points:
            self.plugins.load_setuptools_entrypoints("rec_llm_gateway")
        self._build_providers(strict=False)
        self.conversations = open_conversations(self.config.state, self.config.responses)
        """Stored responses (``/v1/responses``): kept for ``previous_response_id`` and ``GET``."""
        self.routes = RouteTable()
        self._operations: dict[str, OperationHandler] = {}
        """Route name -> its handler, built when the route is first used (``_handler``)."""
        self._admin = AdminRoutes(self, StoredResponseRoutes(self.conversations))
        _build_validators()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> Gateway:
        """Load a YAML, TOML or JSON config file (``${VAR}`` and ``${VAR:-default}`` expanded)."""
        return cls(load_config_file(path), **kwargs)

    def __repr__(self) -> str:
        return f"Gateway(providers={sorted(self.providers)!r})"

    # -- plugins and providers -------------------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object (``@hookimpl`` methods). Provider types it adds become usable."""
        self.plugins.register(plugin, name=name)
        self._build_providers(strict=False)

    def _build_providers(self, *, strict: bool) -> None:
        """Build every configured provider whose type is known; with ``strict``, all of them."""
        for result in self.plugins.hook.register_providers():
            if inspect.isawaitable(result):
                raise ConfigError("register_providers must return its mapping directly, not a coroutine")
            if result:
                self._registry.register(result)
        pending = False
        problems: list[str] = []  # every provider's, so that check-config reports them all at once
        unknown_types: list[tuple[str, ProviderConfig]] = []
        for name, settings in self.config.providers.items():
            if name in self.providers or name in self.disabled_providers:
                continue
            if not settings.enabled or settings.has_empty_key:
                reason = "enabled: false" if not settings.enabled else "its api_key is empty"
                logger.warning("provider %r is disabled (%s)", name, reason)
                self.disabled_providers[name] = reason
                continue
            unknown = self._registry.get(settings.type or name) is None
            if not strict and unknown:
                pending = True  # maybe a plugin registered later provides the type
                unknown_types.append((name, settings))
                continue
            try:
                self.providers[name] = self._registry.build(name, settings)
            except ConfigError as exc:
                problems.append(str(exc).removeprefix("invalid configuration:\n  "))
        if problems:
            for name, settings in unknown_types:  # the config is reported whole: these too
                try:
                    self._registry.build(name, settings)
                except ConfigError as exc:
                    problems.append(str(exc))
            raise ConfigError.listing(problems)
        self._pending_types = pending
        resolver: ModelResolver | None = getattr(self, "resolver", None)
        if resolver is not None and resolver.providers.keys() == self.providers.keys():
            return  # nothing new: keep what routing has learnt (breakers, limits, latencies)
        default = self.config.default_provider
        if default in self.disabled_providers:
            default = None
        self.resolver = ModelResolver(self.providers, default)
        self.router = Router(
            self.resolver, self.config, pricer=self.price, on_breaker=self._breaker_changed, check=not pending
        )
        self.health = HealthMonitor(self.router, self.providers)
        self.telemetry.know_models(self.config, self.providers)
        self.keys.worst_case = self.router.worst_case
        self._sync = RoutingSync.connect(self.ledger, self.router, self.health)

    def check(self) -> None:
        """Raise ``ConfigError`` for anything that cannot work (an unknown provider type, ...)."""
        if self._pending_types:
            self._build_providers(strict=True)

    def _breaker_changed(self, deployment: str, state: str) -> None:
        log = logger.warning if state == "open" else logger.info
        log("circuit of deployment %s is now %s", deployment, state)
        self.telemetry.record_breaker(deployment, state)
        if self._sync is not None:
            self._sync.breaker_changed(deployment, state)

    def price(self, provider: Provider, model: str, usage: TokenUsage | None) -> float | None:
        """The cost in USD of ``usage`` on ``provider``'s ``model`` (``None`` when unknown)."""
        return self.pricing.cost(
            provider.name, provider.price_provider, model, usage, provider.base_url or None
        )

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open upstream pools and background work on the running event loop (idempotent)."""
        self.check()
        self.runtime()

    async def aclose(self) -> None:
        """Close what ``start`` (or the first request) opened on this event loop.

        New requests are refused with a 503 from now on; requests in flight get
        ``limits.shutdown_grace_seconds`` to finish, then are cancelled; background tasks are
        cancelled and connection pools closed. Usage recorded so far is kept (and written to a
        shared state store).
        """
        loop = asyncio.get_running_loop()
        runtime = self._runtimes.get(loop)
        if runtime is not None:
            await runtime.aclose(self.config.limits.shutdown_grace_seconds)
            self._runtimes.pop(loop, None)
            if self.health.owner is runtime:
                self.health.owner = None
                # Another event loop still serves the gateway: the health checks move there.
                for other_loop, other in list(self._runtimes.items()):
                    if not other_loop.is_closed():
                        other_loop.call_soon_threadsafe(self._start_health, other)
                        break
        await self.ledger.aclose()
        await self.conversations.aclose()
        for provider in self.providers.values():
            await provider.aclose()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def runtime(self) -> Runtime:
        """What is open on the running event loop (opened on first use)."""
        loop = asyncio.get_running_loop()
        runtime = self._runtimes.get(loop)
        if runtime is None:
            runtime = self._runtimes[loop] = Runtime(self.config.http)
            if self._warm_up is None:
                # The price table takes ~200 ms to import: load it now, off the event loop.
                self._warm_up = loop.run_in_executor(None, warm_up)
            self._start_health(runtime)
        return runtime

    def _start_health(self, runtime: Runtime) -> None:
        """Start the background health checks (and the state store's writer) on ``runtime``'s loop
        unless another loop runs them."""
        ledger = self.ledger
        if ledger.shared and ledger.owner is None and runtime in self._runtimes.values():
            ledger.owner = runtime
            runtime.spawn(ledger.run())
        health = self.health
        if health.owner is None and health.configured and runtime in self._runtimes.values():
            health.owner = runtime
            for loop in health.loops(runtime.http):
                runtime.spawn(loop)

    def http_client(self) -> httpx.AsyncClient:
        """The shared upstream client of the running event loop (opened on first use)."""
        return self.runtime().http

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self._lifespan(receive, send)
            elif kind == "websocket":
                await _refuse_websocket(scope, receive, send)
            return
        headers = request_headers(scope)
        # Every response carries x-request-id (the client's when it sent a sane one), errors included.
        request_id = request_id_from(headers)
        response_headers = [(b"x-request-id", request_id.encode())]
        if self.cors is not None:
            response_headers += self.cors.response_headers(headers)
        method: str = scope["method"]
        path = route_path(scope)
        try:
            if method == "OPTIONS" and self.cors is not None and "access-control-request-method" in headers:
                await _preflight(self.cors, headers, send, request_id)
                return
            match = self.routes.match(method, path)
            endpoint = match.endpoint
            if endpoint.operation:
                if self._pending_types:
                    self.check()
                handler = self._operations.get(endpoint.name) or self._handler(endpoint)
                await handler(receive, send, headers, request_id, response_headers)
                return
            await self._admin(endpoint, match.params, scope, headers, send, response_headers)
        except GatewayError as error:
            await self._send_error(path, error, send, response_headers)
        except ConfigError as error:
            logger.error("the gateway configuration is invalid: %s", error)
            misconfigured = GatewayError("The gateway is misconfigured; see its log.")
            await self._send_error(path, misconfigured, send, response_headers)

    async def _send_error(
        self, path: str, error: GatewayError, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> None:
        """``error`` in the envelope of the API served at ``path`` (OpenAI's unless a pipeline route
        with another wire shape is there)."""
        endpoint = self.routes.pipeline_endpoint(path)
        operation = self._handler(endpoint).operation if endpoint is not None else CHAT
        await send_operation_error(send, operation, error, headers)

    def _handler(self, endpoint: Endpoint) -> OperationHandler:
        """The handler of a pipeline route, built on first use: its operation's module is imported
        then (a gateway that serves only chat never loads the Messages or Responses machinery)."""
        handler = self._operations.get(endpoint.name)
        if handler is None:
            handler = OperationHandler(self, endpoint.operation_class().for_gateway(self))
            self._operations[endpoint.name] = handler
        return handler

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """When the gateway is the top-level app (``rec-llm-gateway serve``): open and close with it."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _preflight(cors: Cors, headers: dict[str, str], send: Send, request_id: str) -> None:
    preflight = cors.preflight_headers(headers)
    if preflight is None:
        # A refusal is an error like any other: in the envelope (it was an empty 403).
        raise GatewayError(
            "CORS preflight refused: the origin is not allowed.",
            status_code=403,
            error_type="permission_error",
            code="cors_origin_not_allowed",
        )
    preflight.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": 204, "headers": preflight})
    await send({"type": "http.response.body", "body": b""})


def _build_validators() -> None:
    """The wire models are built lazily (``defer_build``) to keep the import light; build them now,
    at construction, so that the first request does not pay for it."""
    ChatCompletionRequest.model_rebuild()
    ResponsesRequest.model_rebuild()
    ChatCompletion.model_rebuild()


async def _refuse_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    """The gateway has no WebSocket routes. Ignoring the scope left the handshake unanswered, and
    servers replied with a bare 500 (found by the fuzz suite): refuse with a 404 in the envelope where
    the server supports denial responses, else close the handshake (servers answer that with a 403).
    (``GatewayMiddleware`` still passes websocket scopes to the host app.)"""
    if (await receive())["type"] != "websocket.connect":
        return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = NotFoundError("The gateway has no WebSocket routes.").to_json()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


def _load_plugin(spec: PluginSpec) -> object:
    """Import ``package.module:Attribute``; a class is instantiated with the spec's options."""
    module_name, _, attribute = spec.path.partition(":")
    try:
        module = importlib.import_module(module_name)
        plugin = getattr(module, attribute) if attribute else module
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"plugins: cannot import {spec.path!r}: {exc}") from None
    if not inspect.isclass(plugin):
        return plugin
    try:
        return plugin(**spec.options)
    except TypeError as exc:
        raise ConfigError(
            f"plugins: {spec.path!r} does not accept options {sorted(spec.options)}: {exc}"
        ) from None
