"""CORS from ``cors:``: preflights answered by the gateway, allowed origins echoed on responses."""

from __future__ import annotations

from ..config import CorsConfig
from .types import Headers

__all__ = ["Cors"]


class Cors:
    """CORS from config. Preflights are answered here; an origin is echoed only if it is allowed."""

    def __init__(self, config: CorsConfig) -> None:
        self._any = "*" in config.allow_origins
        self._origins = frozenset(origin.rstrip("/") for origin in config.allow_origins)
        self._credentials = config.allow_credentials
        self._preflight_headers: Headers = [
            (b"access-control-allow-methods", ", ".join(config.allow_methods).encode()),
            (b"access-control-allow-headers", ", ".join(config.allow_headers).encode()),
            (b"access-control-max-age", str(config.max_age).encode()),
        ]
        self._expose = ", ".join(config.expose_headers).encode()

    def _allow(self, origin: str) -> Headers:
        if self._any and not self._credentials:
            return [(b"access-control-allow-origin", b"*")]
        if origin.rstrip("/") in self._origins:
            headers: Headers = [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"vary", b"origin"),
            ]
            if self._credentials:
                headers.append((b"access-control-allow-credentials", b"true"))
            return headers
        return []

    def response_headers(self, headers: dict[str, str]) -> Headers:
        origin = headers.get("origin")
        if not origin:
            return []
        allowed = self._allow(origin)
        if allowed and self._expose:
            allowed.append((b"access-control-expose-headers", self._expose))
        return allowed

    def preflight_headers(self, headers: dict[str, str]) -> Headers | None:
        """Headers for a preflight; ``None`` when the origin is not allowed."""
        origin = headers.get("origin")
        if not origin:
            return None
        allowed = self._allow(origin)
        return allowed + self._preflight_headers if allowed else None
