"""Gateway keys: who may call the gateway (``auth.api_keys``, ``auth.keys``) and its admin routes
(``auth.admin_keys``)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import SecretStr

from ..errors import AuthenticationError, PermissionDeniedError

if TYPE_CHECKING:
    from ..routing.settings import GatewayKeyConfig

__all__ = ["GatewayAuth", "key_id"]


class GatewayAuth:
    """Checks gateway keys (``Authorization: Bearer`` or ``x-api-key``) in constant time.

    Keys are kept only as SHA-256 digests; every stored digest is compared on every request so the
    time taken does not reveal which key (or how much of one) matched. The key id reported to
    plugins is the key's ``name`` (``auth.keys``), else ``key-`` plus the first 8 hex digits of the
    digest: stable, and not the key.
    """

    def __init__(
        self,
        keys: list[SecretStr],
        admin_keys: list[SecretStr] | None = None,
        named: Sequence[GatewayKeyConfig] = (),
    ) -> None:
        self._keys = self._digests([(key, None) for key in keys] + [(key.key, key.name) for key in named])
        self._admin_keys = self._digests([(key, None) for key in admin_keys or []])
        self.named = [(key_id(key.key.get_secret_value(), key.name), key) for key in named]
        """``(key id, settings)`` of every ``auth.keys`` entry (for per-key limits)."""

    @staticmethod
    def _digests(keys: list[tuple[SecretStr, str | None]]) -> list[tuple[bytes, str]]:
        digests = []
        for key, name in keys:
            value = key.get_secret_value()
            if value:
                digests.append((hashlib.sha256(value.encode()).digest(), key_id(value, name)))
        return digests

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def authenticate(self, headers: dict[str, str]) -> str | None:
        """The key id of the presented gateway key; ``None`` when auth is off."""
        if not self._keys:
            return None
        return self._match(headers, self._keys)

    def authenticate_admin(self, headers: dict[str, str]) -> str | None:
        """Admin routes take an admin key when admin keys are configured, else a gateway key.

        A valid gateway key where an admin key is needed is a 403 that says so, not a 401 that
        calls the key invalid (it is valid, just not enough)."""
        if not self._admin_keys:
            return self.authenticate(headers)
        try:
            return self._match(headers, self._admin_keys)
        except AuthenticationError as refused:
            if refused.code == "missing_api_key" or not self._keys:
                raise
            try:
                self._match(headers, self._keys)
            except AuthenticationError:
                raise refused from None
            raise PermissionDeniedError(
                "This route needs an admin key (auth.admin_keys); the key sent is a gateway key.",
                code="admin_key_required",
            ) from None

    def _match(self, headers: dict[str, str], keys: list[tuple[bytes, str]]) -> str:
        presented = _presented_key(headers)
        if presented is None:
            raise AuthenticationError(
                "Missing gateway API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
                code="missing_api_key",
            )
        digest = hashlib.sha256(presented.encode()).digest()
        found: str | None = None
        for stored, key_id in keys:
            if hmac.compare_digest(stored, digest):
                found = key_id
        if found is None:
            raise AuthenticationError("Invalid gateway API key.")
        return found


def key_id(key: str, name: str | None = None) -> str:
    """The id plugins see for a gateway key: its name, or ``key-`` and 8 hex digits of its digest."""
    return name or "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


def _presented_key(headers: dict[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None
