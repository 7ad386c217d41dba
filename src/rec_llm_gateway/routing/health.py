"""Active health checks: one background task per provider with ``health_check`` configured.

The tasks run on the event loop of the gateway's first runtime (``Gateway.start()`` or the first
request) and are cancelled by ``aclose()``; when that loop's runtime closes while another loop still
serves the gateway, the checks move there. A check is the provider's ``check_health`` (OpenAI-family
providers: ``GET /models``) under ``timeout``.

Background results feed routing: ``unhealthy_threshold`` consecutive failures mark the provider
unhealthy and open the circuit of each of its deployments (they are skipped); ``healthy_threshold``
passes mark it healthy again, close the circuits the checks opened and let the others probe at once
(half-open). ``GET /providers/{name}/health`` reports the last result, or checks on demand when no
background check is configured; an on-demand check only reports: one failing check must not take a
provider out of routing (with nothing checking again, it stayed out for good).

An answer means the upstream is up: a 404 or 405 from the check endpoint (a server without
``/models``) is healthy, as is any answer below 500 but 429 from a configured ``path``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Final

from ..errors import GatewayError
from .deployment import HEALTHY, UNHEALTHY, HealthStatus, ProviderState
from .settings import HealthCheckConfig

if TYPE_CHECKING:
    import httpx

    from ..providers.base import Provider
    from .router import Router

__all__ = ["HealthMonitor"]

logger = logging.getLogger("rec_llm_gateway.routing")

ON_DEMAND_TIMEOUT: Final = 10.0
_ANSWERED: Final = frozenset({404, 405})
"""Statuses from a provider's own check that still prove the upstream is up."""


async def _check_path(provider: Provider, http: httpx.AsyncClient, path: str) -> None:
    """``GET`` the configured check endpoint; raise unless the upstream answered (below 500, not 429)."""
    import httpx

    from ..errors import BadGatewayError

    url = path if path.startswith(("http://", "https://")) else f"{provider.base_url}/{path.lstrip('/')}"
    try:
        response = await http.get(url)
    except httpx.HTTPError as exc:
        raise BadGatewayError(f"health check of {provider.name!r} failed ({type(exc).__name__})") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise BadGatewayError(f"health check of {provider.name!r} answered HTTP {response.status_code}")


class HealthMonitor:
    """Checks providers and records what it finds on the router's provider state."""

    def __init__(self, router: Router, providers: Mapping[str, Provider]) -> None:
        self.router = router
        self.providers = providers
        self.configured: dict[str, HealthCheckConfig] = {
            name: provider.settings.health_check
            for name, provider in providers.items()
            if provider.settings.health_check is not None and provider.settings.health_check.enabled
        }
        self.owner: object | None = None
        """The runtime whose event loop runs the background checks."""
        self.on_record: Callable[[str, HealthStatus], None] | None = None
        """Told each check's result (the state store shares it with other processes)."""

    def loops(self, http: httpx.AsyncClient) -> list[Coroutine[Any, Any, None]]:
        """The background check loops to start (one per configured provider)."""
        return [self._loop(name, config, http) for name, config in self.configured.items()]

    async def _loop(self, name: str, config: HealthCheckConfig, http: httpx.AsyncClient) -> None:
        while True:
            await self.check(name, http, config.timeout, source="background")
            await asyncio.sleep(config.interval)

    async def check(
        self, name: str, http: httpx.AsyncClient, limit: float | None = None, *, source: str = "on_demand"
    ) -> HealthStatus:
        """Check provider ``name`` once (within ``limit`` seconds) and record the result."""
        provider = self.providers[name]
        timeout = min(provider.total_timeout, ON_DEMAND_TIMEOUT) if limit is None else limit
        started = time.perf_counter()
        error: str | None = None
        config = self.configured.get(name) or provider.settings.health_check
        try:
            async with asyncio.timeout(timeout):
                if config is not None and config.path:
                    await _check_path(provider, http, config.path)
                else:
                    await provider.check_health(http)
        except TimeoutError:
            error = f"health check timed out after {timeout:g}s"
        except GatewayError as exc:
            if exc.status_code not in _ANSWERED:
                error = exc.message
        except Exception as exc:  # a provider bug must not kill the loop
            logger.exception("health check of provider %r raised", name)
            error = type(exc).__name__
        status = HealthStatus(
            status=UNHEALTHY if error else HEALTHY,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            last_check=time.time(),
            error=error,
            source=source,
        )
        state = self.router.providers[name]
        if source == "background":
            self.record(state, status, self.configured.get(name))
        elif name not in self.configured:
            state.health = status  # reported by /providers; routing is left alone
        return status

    def record(self, state: ProviderState, result: HealthStatus, config: HealthCheckConfig | None) -> None:
        """Apply one check's result (thresholds from ``config``; 1 and 1 without one)."""
        now = self.router.clock()
        previous = state.health.status
        if result.status == UNHEALTHY:
            state.failed_checks += 1
            state.passed_checks = 0
            unhealthy = state.failed_checks >= (config.unhealthy_threshold if config else 1)
            status = UNHEALTHY if unhealthy or previous == UNHEALTHY else previous
        else:
            state.passed_checks += 1
            state.failed_checks = 0
            healthy = state.passed_checks >= (config.healthy_threshold if config else 1)
            status = HEALTHY if healthy or previous != UNHEALTHY else UNHEALTHY
        result.status = status
        state.health = result
        if self.on_record is not None:
            self.on_record(state.name, result)
        state.unhealthy = status == UNHEALTHY
        for deployment in list(state.deployments):
            if status == UNHEALTHY:
                deployment.breaker.force_open(now)
            else:
                deployment.breaker.recover(now)
        if status != previous and UNHEALTHY in (status, previous):
            log = logger.warning if status == UNHEALTHY else logger.info
            log("provider %r is now %s (%s)", state.name, status, result.error or "check passed")
