"""Plugin hooks (pluggy, project name ``rec_llm_gateway``): every hook, in lifecycle order.

Implementations are marked with ``rec_llm_gateway.hookimpl`` and may be plain functions or
``async def``; the gateway awaits what needs awaiting. Hooks are called with keyword arguments, so an
implementation may accept any subset of a hook's parameters. Implementations run in registration
order (``tryfirst``/``trylast`` move them to the front or back). An exception other than
``RequestRejected`` is logged with the hook and plugin name, recorded on the request's span, and the
request goes on. Sync implementations run on the event loop: make slow ones ``async``.

Example::

    from rec_llm_gateway import Gateway, RequestRejected, hookimpl

    class TenantPolicy:
        @hookimpl
        async def pre_request(self, request, context):
            if context.gateway_key_id == "key-trial" and request.model.startswith("openai:"):
                raise RequestRejected("trial keys cannot use OpenAI", code="model_not_allowed")
            context.metadata["tenant"] = "trial"

        @hookimpl
        def on_cost(self, event):
            print(event.request_id, event.cost_usd)

    gateway = Gateway(config, plugins=[TenantPolicy()])
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy
from pydantic import BaseModel

from .errors import RequestRejected
from .schema import ChatCompletion, ChatCompletionRequest
from .usage import TokenUsage

if TYPE_CHECKING:
    from .errors import GatewayError
    from .providers.base import Provider

__all__ = [
    "PROJECT_NAME",
    "CostEvent",
    "FailoverEvent",
    "GatewayHookSpec",
    "HookRunner",
    "RequestContext",
    "hookimpl",
    "hookspec",
]

PROJECT_NAME = "rec_llm_gateway"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

logger = logging.getLogger("rec_llm_gateway.hooks")

RequestT = TypeVar("RequestT", bound=BaseModel)


@dataclass(slots=True)
class RequestContext:
    """What the gateway knows about one request; handed to hooks as ``context``.

    ``metadata`` is yours: it lives from ``pre_request`` to ``post_response`` / ``on_error``.
    ``headers`` are the inbound headers, lower-cased, with credentials replaced by ``[redacted]``.
    """

    request_id: str
    headers: Mapping[str, str]
    operation: str = "chat"
    """What the client asked for: ``chat``, ``embeddings``, ``text_completion``, ... (the route's
    ``gen_ai.operation.name``)."""
    gateway_key_id: str | None = None
    provider: str | None = None
    """The provider of the current (or last) attempt, once routed."""
    model: str | None = None
    """The provider's model name of the current (or last) attempt, once routed."""
    requested_model: str | None = None
    """The ``model`` the client sent (after ``pre_request``)."""
    stream: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    """Wall-clock start (Unix seconds)."""
    # Filled in before post_response / on_error:
    usage: TokenUsage | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    attempts: int = 0
    status_code: int | None = None
    outcome: str | None = None
    """``success``, ``error``, ``rejected`` or ``client_disconnected``."""


@dataclass(slots=True)
class CostEvent:
    """One priced upstream call (``on_cost``). ``cost_usd`` is ``None`` when the price is unknown."""

    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float | None
    latency_ms: float
    request_id: str
    timestamp: float
    cached_tokens: int = 0
    gateway_key_id: str | None = None
    estimated: bool = False
    """The tokens (and so the cost) are the gateway's estimate: the upstream never reported usage."""


class FailoverEvent(Mapping[str, Any]):
    """The router moved from one deployment to another (``on_failover``).

    Read it as ``event.from_`` / ``event.to`` / ``event.reason`` / ``event.attempt``, or as a
    mapping: ``event["from"]``.
    """

    __slots__ = ("attempt", "from_", "reason", "to")

    def __init__(self, from_: str, to: str, reason: str, attempt: int) -> None:
        self.from_ = from_
        self.to = to
        self.reason = reason
        self.attempt = attempt

    def _asdict(self) -> dict[str, Any]:
        return {"from": self.from_, "to": self.to, "reason": self.reason, "attempt": self.attempt}

    def __getitem__(self, key: str) -> Any:
        return self._asdict()[key]

    def __iter__(self) -> Any:
        return iter(self._asdict())

    def __len__(self) -> int:
        return 4

    def __repr__(self) -> str:
        return f"FailoverEvent({self._asdict()!r})"


class GatewayHookSpec:
    """The hook specifications. Signatures are what the gateway passes (all as keywords)."""

    # -- start-up -------------------------------------------------------------------------------

    @hookspec
    def register_providers(self) -> Mapping[str, type[Provider]] | None:
        """Add custom provider types. Fires when the gateway builds its providers (at construction,
        and again for plugins registered later).

        Return a mapping of type name -> a subclass of ``rec_llm_gateway.providers.Provider``;
        config can then say ``type: <name>``. May be ``async``.
        """

    # -- per request ----------------------------------------------------------------------------

    @hookspec
    def pre_request(
        self, request: ChatCompletionRequest, context: RequestContext
    ) -> ChatCompletionRequest | None:
        """Fires after auth and validation, before routing.

        Args:
            request: the validated OpenAI request (``.model``, ``.messages``, ``.stream``, unknown
                fields in ``.model_extra``). Editing it in place changes what is sent.
            context: the request's ``RequestContext`` (``metadata`` is yours to fill).

        Returns:
            A request (``ChatCompletionRequest`` or a dict of the same shape) to replace it, or
            ``None`` to keep it. Raise ``RequestRejected(message, status_code=..., code=...)`` to
            refuse it with that status and OpenAI's error envelope.
        """

    @hookspec
    def post_response(
        self, request: ChatCompletionRequest, response: ChatCompletion, context: RequestContext
    ) -> None:
        """Fires once after a complete response has been sent; for streams once at the end, with the
        response assembled from the chunks (full text, tool calls, finish reasons, usage).

        Args:
            request: the request as sent upstream (after ``pre_request``).
            response: the OpenAI ``chat.completion``; ``response.x_rec_llm`` when extensions are on.
            context: the request's ``RequestContext``.

        The return value is ignored.
        """

    @hookspec
    def on_cost(self, event: CostEvent) -> None:
        """Fires once per upstream call that reported usage, also for a stream the client left
        part way when the upstream reported usage. ``event`` is a ``CostEvent``. Return ignored."""

    @hookspec
    def on_error(self, error: GatewayError, context: RequestContext) -> None:
        """Fires once for a request that ends in an error (any status, also mid-stream), and for a
        client that disconnects before its response is complete (status 499, code
        ``client_disconnected``).

        Args:
            error: the ``GatewayError`` the client receives (``status_code``, ``code``, ``message``).
            context: the request's ``RequestContext``.

        The return value is ignored.
        """

    @hookspec
    def on_failover(self, event: FailoverEvent) -> None:
        """Fires when the router moves from one deployment to another after a failed attempt: to the
        next deployment of a group, to a fallback model, or back to the same deployment for a retry
        (``from`` equals ``to``). ``event`` has ``from``, ``to`` (``provider:model``), ``reason`` (the
        failed attempt's error code) and ``attempt`` (the failed attempt's number, 1-based).
        Return ignored."""


class HookRunner:
    """Runs hook implementations in registration order, awaiting async ones, isolating failures.

    The gateway's own runner rather than pluggy's ``HookCaller`` (``manager.hook.<name>(...)``):
    implementations may be ``async def``, and one that raises must not stop the others or the request.
    """

    def __init__(self, manager: pluggy.PluginManager, on_failure: Any = None) -> None:
        self.manager = manager
        self._on_failure = on_failure

    def implementations(self, name: str) -> list[pluggy.HookImpl]:
        impls: list[pluggy.HookImpl] = getattr(self.manager.hook, name).get_hookimpls()
        if len(impls) < 2:
            return impls
        # pluggy stores impls trylast..normal..tryfirst and calls them newest first; we want
        # registration order with tryfirst in front and trylast at the back.
        return (
            [impl for impl in impls if impl.tryfirst]
            + [impl for impl in impls if not impl.tryfirst and not impl.trylast]
            + [impl for impl in impls if impl.trylast]
        )

    def has(self, name: str) -> bool:
        return bool(getattr(self.manager.hook, name).get_hookimpls())

    async def call(self, name: str, span: Any = None, **kwargs: Any) -> list[Any]:
        """Call every implementation; failures (other than ``RequestRejected``) are isolated."""
        results = []
        for impl in self.implementations(name):
            try:
                result = impl.function(*(kwargs[arg] for arg in impl.argnames if arg in kwargs))
                if inspect.isawaitable(result):
                    result = await result
            except RequestRejected:
                if name != "pre_request":
                    self._failed(
                        name, impl, RuntimeError("RequestRejected is only honoured in pre_request"), span
                    )
                    continue
                raise
            except Exception as exc:
                self._failed(name, impl, exc, span)
                continue
            results.append(result)
        return results

    async def pre_request(
        self,
        request: RequestT,
        context: RequestContext,
        span: Any = None,
        request_model: type[BaseModel] = ChatCompletionRequest,
    ) -> RequestT:
        """Run ``pre_request``; a returned dict is validated as ``request_model`` (the operation's)."""
        for impl in self.implementations("pre_request"):
            arguments = {"request": request, "context": context}
            try:
                result = impl.function(*(arguments[arg] for arg in impl.argnames if arg in arguments))
                if inspect.isawaitable(result):
                    result = await result
                if result is None:
                    continue
                if isinstance(result, dict):
                    result = request_model.model_validate(result)
                if not isinstance(result, request_model):
                    raise TypeError(f"pre_request returned {type(result).__name__}, not a request")
                request = result  # type: ignore[assignment]  # an instance of request_model: RequestT
            except RequestRejected:
                raise
            except Exception as exc:
                self._failed("pre_request", impl, exc, span)
        return request

    def _failed(self, hook: str, impl: pluggy.HookImpl, exc: BaseException, span: Any) -> None:
        plugin = _plugin_label(impl)
        logger.error(
            "hook %s of plugin %r raised %s: %s; the request goes on",
            hook,
            plugin,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        if self._on_failure is not None:
            self._on_failure(span, hook, plugin, exc)


def _plugin_label(impl: pluggy.HookImpl) -> str:
    """The plugin's registered name, or its class when pluggy named it by ``id()``."""
    name = impl.plugin_name
    return type(impl.plugin).__qualname__ if name.isdigit() else name


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, refusing what the gateway's ``HookRunner`` cannot honour."""

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        options = super().parse_hookimpl_opts(plugin, name)
        if options is not None and (options.get("wrapper") or options.get("hookwrapper")):
            # A wrapper is a generator pluggy drives around the other implementations; the gateway
            # calls (and awaits) each implementation itself, so it would never run. Refused at
            # registration rather than silently ignored.
            raise pluggy.PluginValidationError(
                plugin,
                f"{type(plugin).__qualname__}.{name}: @hookimpl(wrapper=True) and hookwrapper=True are "
                "not supported by rec_llm_gateway hooks; use a plain @hookimpl (tryfirst / trylast "
                "order it) and do the work before or after in pre_request / post_response / on_error.",
            )
        return options


def make_plugin_manager() -> pluggy.PluginManager:
    manager = _PluginManager(PROJECT_NAME)
    manager.add_hookspecs(GatewayHookSpec)
    return manager
