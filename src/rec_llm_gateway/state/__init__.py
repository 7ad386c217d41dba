"""Shared, durable state: rate-limit windows, budgets, usage, breakers, cooldowns and health.

``state.url`` picks the store: ``memory://`` (one process), ``sqlite:///file.db`` (the workers of
one machine), ``redis://`` / ``rediss://`` (many machines). ``base.py`` is the interface,
``ledger.py`` the gateway's side of it (buffering, fallback), ``signals.py`` what routing shares.
"""

from __future__ import annotations

from .base import Store
from .settings import StateConfig, sqlite_path

__all__ = ["StateConfig", "Store", "open_store"]


def open_store(config: StateConfig) -> Store:
    """The store ``config.url`` names (connections open on first use)."""
    url = config.url.get_secret_value()
    scheme = config.scheme
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        return SQLiteStore(sqlite_path(url), config.timeout_seconds)
    if scheme in ("redis", "rediss"):
        from .redis import RedisStore

        return RedisStore(url, config.key_prefix, config.timeout_seconds)
    from .memory import MemoryStore

    return MemoryStore()
