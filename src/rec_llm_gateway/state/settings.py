"""The ``state:`` section: where limits, budgets, usage and breakers are kept (see ``state/__init__``)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["StateConfig"]

_SCHEMES = ("memory", "sqlite", "redis", "rediss")


class StateConfig(BaseModel):
    """Where the state every process of one deployment must agree on lives.

    ``url``: ``memory://`` (default: this process only), ``sqlite:///path/to/gateway.db`` (every
    worker on one machine; survives restarts), ``redis://host:port/db`` or ``rediss://...`` (many
    machines; needs ``pip install 'rec-llm-gateway[redis]'``).
    """

    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True)

    url: SecretStr = SecretStr("memory://")
    """A secret: a Redis URL may carry a password."""
    key_prefix: str = Field("rec_llm:", max_length=64)
    """Prefix of every Redis key (several gateways may share one Redis)."""
    timeout_seconds: float = Field(0.5, gt=0, le=30)
    """How long one store operation may take before the store counts as unavailable."""
    on_unavailable: Literal["open", "closed"] = "open"
    """``open``: limits fall back to this process, usage is buffered; ``closed``: 503
    ``state_unavailable``."""
    flush_seconds: float = Field(0.25, gt=0, le=1)
    """Usage and spend are written in batches at most this long after a request ends."""
    sync_seconds: float = Field(0.5, gt=0, le=1)
    """How often breakers, cooldowns and health are read from the store (shared stores only)."""
    reservation_seconds: float = Field(3900.0, gt=0)
    """Budget reservations and concurrency slots of a process that died expire after this long."""
    buffer_limit: int = Field(10_000, gt=0)
    """Settlements kept while the store is down (usage and spend are summed, so they stay small)."""

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: SecretStr) -> SecretStr:
        text = url.get_secret_value()
        scheme = urlsplit(text).scheme
        if scheme not in _SCHEMES:
            raise ValueError(
                f"url: unknown scheme {scheme + '://' if scheme else '(none)'}; use memory://, "
                "sqlite:///path/to/gateway.db, redis://host:6379/0 or rediss://..."
            )
        if scheme == "sqlite" and not sqlite_path(text):
            raise ValueError("url: sqlite needs a file path, e.g. sqlite:///var/lib/gateway/state.db")
        if scheme in ("redis", "rediss"):
            try:
                import redis.asyncio  # noqa: F401
            except ImportError:
                raise ValueError(
                    "url: a redis store needs redis-py: pip install 'rec-llm-gateway[redis]'"
                ) from None
        return url

    @property
    def scheme(self) -> str:
        return urlsplit(self.url.get_secret_value()).scheme


def sqlite_path(url: str) -> str:
    """``sqlite:///rel.db`` -> ``rel.db``; ``sqlite:////abs/x.db`` -> ``/abs/x.db``."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    return rest[1:] if rest.startswith("/") else rest
