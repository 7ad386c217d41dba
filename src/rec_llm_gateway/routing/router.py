"""The router: what a model name means (groups, aliases, direct routes, the ``default`` route), the
deployments and their state, and the per-request ``Walk``.

Resolution of a client's ``model``, in order (``resolve.py`` keeps the documented rules):

1. a name under ``models:`` (a group, or an alias of another name);
2. ``provider:model`` (resolve.py rule 1);
3. a provider's ``models`` / ``model_map``, then a family prefix (resolve.py rule 2);
4. the ``default`` entry under ``models:``, when there is one (provider-only deployments in it serve
   the requested name through each provider's ``model_map``);
5. ``default_provider`` (or 404).

Everything a plan needs is built once: group plans at construction, other plans on first use
(cached, bounded). For a plain single-deployment request a decision is a dict lookup, a breaker
check and a ``Lease``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from ..errors import ConfigError, GatewayError
from ..state.base import BucketTake
from ..usage import TokenUsage
from .breaker import ADMIT, CLOSED, CircuitBreaker
from .deployment import Deployment, Lease, ProviderState
from .group import ERRORS, Group, Plan
from .limits import make_limiter, shared_bucket
from .resolve import ModelResolver, Route
from .retry import CONTEXT, POLICY, RetryPolicy
from .settings import DeploymentConfig, GroupConfig, RoutingConfig
from .strategies import make_strategy
from .tokens import CHAT_ESTIMATES, TokenEstimates
from .walk import Walk
from .window import LatencyWindow, summarize

if TYPE_CHECKING:
    from ..config import GatewayConfig
    from ..providers.base import Provider

__all__ = ["DEFAULT_ROUTE", "Router"]

logger = logging.getLogger("rec_llm_gateway.routing")

DEFAULT_ROUTE: Final = "default"
_CACHE_LIMIT: Final = 4096
_PER_MILLION: Final = 1_000_000
_UNKNOWN_PRICE: Final = (math.inf, math.inf)

Pricer = Callable[["Provider", str, TokenUsage], "float | None"]
BreakerListener = Callable[[str, str], None]


class Router:
    """Plans the deployments for each request and keeps what it learns about them.

    ``clock`` (seconds, monotonic), ``sleep`` and ``random`` may be replaced (tests, simulations).
    """

    def __init__(
        self,
        resolver: ModelResolver,
        config: GatewayConfig | None = None,
        *,
        pricer: Pricer | None = None,
        on_breaker: BreakerListener | None = None,
        check: bool = True,
    ) -> None:
        self.resolver = resolver
        self.settings = config.routing if config is not None else RoutingConfig()
        self.policy = RetryPolicy(self.settings)
        self.timeout = self.settings.timeout
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.random = random.Random()  # noqa: S311 - jitter, not cryptography
        self._pricer = pricer
        self._on_breaker = on_breaker
        self.on_cooldown: Callable[[Deployment, float], None] | None = None
        """Told of each 429 cooldown (the state store shares them with other processes)."""
        self.shared_limits = config is not None and config.state.scheme != "memory"
        """Rate limits live in the shared state store (taken per attempt by the pipeline)."""
        self.providers: dict[str, ProviderState] = {}
        for name, provider in resolver.providers.items():
            limits = provider.settings.rate_limits
            if self.shared_limits:
                self.providers[name] = ProviderState(name, None, shared_bucket(f"provider:{name}", limits))
            else:
                self.providers[name] = ProviderState(name, make_limiter(limits, f"provider {name}"))
        self._configs: Mapping[str, GroupConfig] = config.models if config is not None else {}
        self._plans: dict[str, Plan] = {}
        self._static: dict[str, Plan] = {}
        self._adhoc: dict[tuple[Any, ...], Deployment] = {}
        self._default: GroupConfig | None = None
        for name, group in self._configs.items():
            if name == DEFAULT_ROUTE and group.alias is None:
                self._default = group
            elif group.alias is None:
                self._static[name] = Plan(name, self._build_group(name, group, name), self._fallbacks(name))
        for name, group in self._configs.items():
            if group.alias is not None:
                self._alias(name)
        if check:  # not while plugins may still add the provider types fallbacks name
            self._check_fallbacks()

    # -- building -------------------------------------------------------------------------------

    def _build_group(self, name: str, config: GroupConfig, requested: str, *, adhoc: bool = False) -> Group:
        """``adhoc``: built per requested name (the default route), kept with the direct routes."""
        deployments = []
        for index, entry in enumerate(config.deployments):
            where = f"models.{name}.deployments[{index}]"
            deployment = self._build_deployment(entry, requested, index, where, adhoc=adhoc)
            if deployment is not None:
                deployments.append(deployment)
        strategy = config.strategy or self.settings.strategy
        for deployment in deployments:
            # Per-deployment bookkeeping only the strategy that reads it pays for.
            deployment.track_in_flight |= strategy == "least_busy"
            deployment.latency.ranked |= strategy == "latency"
        max_retries = config.max_retries if config.max_retries is not None else self.settings.max_retries
        # Sized by configured position: entries on disabled providers leave gaps in the indexes.
        size = len(config.deployments)
        return Group(name, deployments, make_strategy(strategy, size), max_retries)

    def _build_deployment(
        self, entry: DeploymentConfig, requested: str, index: int, where: str, *, adhoc: bool = False
    ) -> Deployment | None:
        provider_name, colon, model = entry.model.partition(":")
        provider = self.resolver.providers.get(provider_name)
        if provider is None:  # disabled (no key) or its type comes from a plugin not registered yet
            if not adhoc:
                logger.info(
                    "%s: provider %r is not available; the deployment is left out", where, provider_name
                )
            return None
        model = model if colon else requested
        route = Route(provider, provider.upstream_model(model), model)
        if not adhoc:
            return self._deployment(route, entry, index, where)
        key = (DEFAULT_ROUTE, index, route.model)
        deployment = self._adhoc.get(key)
        if deployment is None:
            deployment = self._adhoc[key] = self._deployment(route, entry, index)
        return deployment

    def _deployment(
        self, route: Route, entry: DeploymentConfig | None = None, index: int = 0, where: str = ""
    ) -> Deployment:
        settings = self.settings
        name = f"{route.provider.name}:{route.model}"
        provider = self.providers[route.provider.name]
        buckets: tuple[BucketTake, ...] = ()
        if self.shared_limits:
            # Named by where they are configured: the same in every process.
            own = shared_bucket(f"deployment:{where}", entry) if entry is not None and where else None
            buckets = tuple(bucket for bucket in (own, provider.bucket) if bucket is not None)
            limiter = None
        else:
            limiter = make_limiter(entry, f"deployment {name}") if entry is not None else None
        deployment = Deployment(
            route,
            provider,
            CircuitBreaker(settings.breaker, name, self._on_breaker),
            LatencyWindow(
                settings.latency.window, settings.latency.samples, settings.latency.percentile, ranked=False
            ),
            limiter=limiter,
            weight=entry.weight if entry is not None else 1.0,
            priority=entry.priority if entry is not None else 0,
            index=index,
            context_window=(entry.context_window if entry is not None else None) or _catalog_window(route),
        )
        deployment.buckets = buckets
        deployment.counts_tokens = bool(
            (limiter is not None and limiter.tpm is not None)
            or (provider.limiter is not None and provider.limiter.tpm is not None)
        )
        return deployment

    def _alias(self, name: str) -> Plan:
        built = self._static.get(name)
        if built is not None:
            return built
        target = self._configs[name].alias or ""
        try:
            # Aliases of aliases: build the target first (the config check ruled out cycles).
            target_config = self._configs.get(target)
            plan = self._alias(target) if target_config and target_config.alias else self.plan(target)
        except GatewayError as exc:
            raise ConfigError(f"models.{name}.alias: {target!r} does not resolve: {exc.message}") from None
        plan = self._static[name] = Plan(name, plan.group, {**plan.fallbacks, **self._fallbacks(name)})
        return plan

    def _fallbacks(self, name: str, bare: str | None = None) -> dict[str, tuple[str, ...]]:
        settings = self.settings
        found: dict[str, tuple[str, ...]] = {}
        for kind, table in (
            (ERRORS, settings.fallbacks),
            (CONTEXT, settings.context_window_fallbacks),
            (POLICY, settings.content_policy_fallbacks),
        ):
            names = table.get(name) or (table.get(bare) if bare else None) or table.get("*")
            if names:
                found[kind] = tuple(target for target in names if target != name)
        return found

    def _check_fallbacks(self) -> None:
        problems = []
        for section in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
            for name, targets in getattr(self.settings, section).items():
                for index, target in enumerate(targets):
                    try:
                        self.plan(target)
                    except GatewayError as exc:
                        problems.append(
                            f"routing.{section}.{name}[{index}]: {target!r} does not resolve: {exc.message}"
                        )
        if problems:  # all of them at once (check-config)
            raise ConfigError.listing(problems)

    # -- planning -------------------------------------------------------------------------------

    def candidates(self, request: Any) -> Plan | Sequence[Route]:
        """The plan for ``request`` (a test or plugin may return a plain list of routes instead)."""
        return self.plan(request.model)

    def plan(self, model: str) -> Plan:
        plan = self._static.get(model) or self._plans.get(model)
        if plan is None:
            if len(self._plans) >= _CACHE_LIMIT or len(self._adhoc) >= _CACHE_LIMIT:
                self._forget_adhoc()  # before building, so nothing being built is forgotten
            plan = self._plans[model] = self._plan(model)
        return plan

    def _plan(self, model: str) -> Plan:
        route: Route | None = None
        if self._default is not None and ":" not in model and model and model == model.strip():
            route = self.resolver.claimed(model)
            if route is None:
                group = self._build_group(DEFAULT_ROUTE, self._default, model, adhoc=True)
                return Plan(model, group, self._fallbacks(model, DEFAULT_ROUTE))
        if route is None:
            route = self.resolver.resolve(model)
        return Plan(model, self._single(route), self._fallbacks(model, route.requested))

    def _single(self, route: Route) -> Group:
        key = (route.provider.name, route.model)
        deployment = self._adhoc.get(key)
        if deployment is None:
            deployment = self._adhoc[key] = self._deployment(route)
        strategy = make_strategy("priority", 1)
        return Group(route.model, [deployment], strategy, self.settings.max_retries)

    def _forget_adhoc(self) -> None:
        # Model names come from clients: keep the state of direct routes bounded.
        forgotten = set(map(id, self._adhoc.values()))
        for state in self.providers.values():
            state.deployments = [d for d in state.deployments if id(d) not in forgotten]
        self._adhoc.clear()
        self._plans.clear()

    def group_for(self, name: str) -> Group:
        return self.plan(name).group

    def fast_lease(self, candidates: Plan | Sequence[Route]) -> Lease | None:
        """For a plan with nothing to decide, and its deployment plainly available: the lease for its
        one attempt, without starting a ``Walk`` (the cost of routing a single-deployment model is then
        a lookup and a few attribute reads). ``None``: start a walk."""
        if self.timeout is not None or not isinstance(candidates, Plan):
            return None
        deployment = candidates.fast
        if deployment is None:
            return None
        now = self.clock()
        if (
            deployment.breaker.state is CLOSED
            and deployment.cooldown_until <= now
            and not deployment.provider.unhealthy
        ):
            return Lease(deployment, ADMIT, None, None, now)
        return None

    def walk(
        self,
        candidates: Plan | Sequence[Route],
        request: Any,
        tried: Lease | None = None,
        estimates: TokenEstimates = CHAT_ESTIMATES,
    ) -> Walk:
        """Start one request's walk (``candidates`` as ``candidates()`` returned them); ``tried``: the
        fast path's attempt, which failed (the walk goes on from there); ``estimates``: the token
        estimates of the request's operation."""
        if isinstance(candidates, Plan):
            return Walk(self, candidates, request, tried, estimates)
        if len(self._adhoc) >= _CACHE_LIMIT:
            self._forget_adhoc()
        deployments = [self._adhoc_for(route) for route in candidates]
        group = Group(request.model, deployments, make_strategy("priority", len(deployments)), None)
        return Walk(self, Plan(request.model, group, {}), request, estimates=estimates)

    def _adhoc_for(self, route: Route) -> Deployment:
        key = (route.provider.name, route.model)
        deployment = self._adhoc.get(key)
        if deployment is None:
            deployment = self._adhoc[key] = self._deployment(route)
        return deployment

    # -- what routing knows ---------------------------------------------------------------------

    def price_of(self, deployment: Deployment) -> tuple[float, float] | None:
        """USD per input and output token (looked up once per deployment)."""
        price = deployment.price
        if price is None:
            price = _UNKNOWN_PRICE
            if self._pricer is not None:
                provider, model = deployment.route.provider, deployment.route.model
                per_input = self._pricer(provider, model, TokenUsage(prompt_tokens=_PER_MILLION))
                per_output = self._pricer(provider, model, TokenUsage(completion_tokens=_PER_MILLION))
                if per_input is not None and per_output is not None:
                    price = (per_input / _PER_MILLION, per_output / _PER_MILLION)
            deployment.price = price
        return None if price is _UNKNOWN_PRICE else price

    def worst_case(self, candidates: Plan | Sequence[Route]) -> tuple[float, float, int | None] | None:
        """The highest USD per input and per output token among the deployments of a plan, and the
        largest output any of them allows (for budget reservations); ``None`` when one is unpriced."""
        if isinstance(candidates, Plan):
            deployments = candidates.group.deployments
        else:
            deployments = tuple(self._adhoc_for(route) for route in candidates)
        if not deployments:
            return None
        per_input = per_output = 0.0
        max_output: int | None = 0
        for deployment in deployments:
            price = self.price_of(deployment)
            if price is None:
                return None
            per_input, per_output = max(per_input, price[0]), max(per_output, price[1])
            output = _catalog_max_output(deployment.route)
            max_output = None if output is None or max_output is None else max(max_output, output)
        return per_input, per_output, max_output or None

    def group_names(self) -> list[str]:
        """The client-facing names under ``models:`` (for ``/v1/models``)."""
        return [name for name in self._configs if name != DEFAULT_ROUTE or self._default is None]

    def describe_provider(self, name: str) -> dict[str, Any]:
        """Routing state of one provider for ``GET /providers/{name}/stats``."""
        state = self.providers[name]
        now = self.clock()
        deployments = [deployment.describe(now) for deployment in state.deployments]
        samples = [value for deployment in state.deployments for value in deployment.latency.values(now)]
        data: dict[str, Any] = {
            "latency": summarize(samples),
            "health": state.health.status,
            "deployments": deployments,
        }
        if state.limiter is not None:
            data["limits"] = state.limiter.headroom(now)
        return data


def _catalog_max_output(route: Route) -> int | None:
    from ..catalog import lookup

    info = lookup(route.model, route.provider.type)
    return info.max_output if info is not None else None


def _catalog_window(route: Route) -> int | None:
    from ..catalog import lookup

    info = lookup(route.model, route.provider.type)
    return info.context_window if info is not None else None
