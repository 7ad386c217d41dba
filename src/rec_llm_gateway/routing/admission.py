"""Before each attempt: take what the request needs from the state store (``KeyGuard.take``), and
when the chosen deployment's shared limits are full, pass it over like any other full deployment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .deployment import Lease

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..parts import GatewayParts
    from ..pipeline.exchange import Exchange
    from .group import Plan
    from .resolve import Route
    from .walk import Walk

__all__ = ["admitted"]


async def admitted(
    gateway: GatewayParts,
    exchange: Exchange,
    request: Any,
    routes: Plan | Sequence[Route],
    walk: Walk | None,
    lease: Lease,
) -> tuple[Lease, Walk | None]:
    """The lease to attempt (``lease`` or a later one) and the walk, once the store admitted it.
    Raises the key's refusal, or the walk's error when no deployment is left."""
    ticket = exchange.ticket
    assert ticket is not None
    while True:
        try:
            skipped = await gateway.keys.take(ticket, lease)
        except BaseException:
            lease.release(cancelled=True)
            if walk is not None:
                walk.abandoned(lease)
            raise
        if skipped is None:
            return lease, walk
        lease.release(cancelled=True)
        if walk is None:
            walk = exchange.walk = gateway.router.walk(routes, request, tried=lease)
        walk.abandoned(lease)
        walk.skip(lease.deployment, *skipped)
        step = walk.next()
        while not isinstance(step, Lease):
            await gateway.router.sleep(step)  # backoff before a revisit
            step = walk.next()
        lease = step
