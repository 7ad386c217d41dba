"""OAuth2 access tokens for Vertex AI: a credentials file or application default credentials (ADC).

google-auth does the real work (JWT signing for service accounts, the token exchange, ADC discovery:
``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's file, the metadata server). It is the optional
``vertex`` extra, imported only when a token is first needed, and its ``refresh`` is blocking HTTP
(``requests``), so it runs in a worker thread and never on the event loop.

``TokenCache`` keeps one token and fetches a new one ``margin`` seconds before the old one expires,
so no request goes out with a token about to lapse. A lock makes concurrent refreshes (several
event loops, or many requests at the moment of expiry) cost one token exchange.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import json
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ...errors import BadGatewayError, ConfigError

__all__ = [
    "INSTALL_HINT",
    "SCOPE",
    "GoogleCredentials",
    "Token",
    "TokenCache",
    "read_credentials_file",
    "require_google_auth",
]

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
INSTALL_HINT = "pip install 'rec-llm-gateway[vertex]'"


def require_google_auth(where: str) -> None:
    """Raise ``ConfigError`` naming the extra when google-auth (or requests) is not installed.

    ``find_spec`` answers without importing: the import itself waits for the first token."""
    for module in ("google.auth", "requests"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ConfigError(
                f"{where}: type 'vertex' needs google-auth and requests, which are not installed; "
                f"run: {INSTALL_HINT}"
            )


class Token(NamedTuple):
    value: str
    expires_at: float | None
    """Wall-clock seconds (``time.time()``) when the token lapses; ``None``: unknown."""


class TokenCache:
    """One cached access token, refreshed in a worker thread before it expires.

    Example::

        tokens = TokenCache(GoogleCredentials(read_credentials_file("sa.json", "vertex")))
        headers = {"authorization": f"Bearer {await tokens.get()}"}

    Args:
        fetch: blocking callable returning a fresh ``Token``; it runs in a worker thread.
        clock: wall-clock seconds (default ``time.time``); tests pass a controllable one.
        margin: refresh this many seconds before the token expires.
    """

    def __init__(
        self, fetch: Callable[[], Token], *, clock: Callable[[], float] = time.time, margin: float = 300.0
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._token: Token | None = None
        # Threads, not asyncio, serialise the exchange itself: the gateway may run several loops.
        self._lock = threading.Lock()
        # Within one loop, the requests that find the token stale all await one refresh task, so a
        # burst at expiry holds one worker thread instead of filling the default executor (which
        # the loop also needs, e.g. for DNS lookups) with threads waiting on the lock.
        self._refreshing: dict[asyncio.AbstractEventLoop, asyncio.Future[str]] = {}

    def fresh(self) -> bool:
        return self._is_fresh(self._token)

    def _is_fresh(self, token: Token | None) -> bool:
        return token is not None and (
            token.expires_at is None or self._clock() < token.expires_at - self._margin
        )

    async def get(self) -> str:
        """A token valid for at least ``margin`` more seconds (fetched only when needed)."""
        token = self._token
        if token is not None and self._is_fresh(token):
            return token.value
        loop = asyncio.get_running_loop()
        refresh = self._refreshing.get(loop)
        if refresh is None:
            refresh = self._refreshing[loop] = asyncio.ensure_future(asyncio.to_thread(self._refresh))
            refresh.add_done_callback(lambda _: self._refreshing.pop(loop, None))
        try:
            # shield: one waiter giving up (a client gone) must not cancel the others' refresh
            return await asyncio.shield(refresh)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # google-auth's RefreshError, TransportError, OSError, ...
            raise BadGatewayError(
                f"could not get a Vertex AI access token ({type(exc).__name__}: {str(exc)[:300]})",
                code="upstream_auth_failed",
            ) from None

    def _refresh(self) -> str:
        with self._lock:
            token = self._token
            if token is not None and self._is_fresh(token):  # another thread refreshed it meanwhile
                return token.value
            token = self._fetch()
            if not token.value:
                raise RuntimeError("the token endpoint returned no access token")
            self._token = token
            return token.value


CREDENTIAL_TYPES = ("service_account", "authorized_user")


def read_credentials_file(path: str, where: str) -> dict[str, Any]:
    """The JSON of a credentials file, checked to be a type ``GoogleCredentials`` loads.

    Read once, at configuration time, so a wrong path or type fails at start, not on a request."""
    try:
        with open(path, encoding="utf-8") as file:
            info = json.load(file)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot read {path!r} ({type(exc).__name__}: {exc})") from None
    kind = info.get("type") if isinstance(info, dict) else None
    if not isinstance(info, dict) or kind not in CREDENTIAL_TYPES:
        raise ConfigError(
            f"{where}: {path!r} holds credentials of type {kind!r}; credentials_file takes "
            f"{' or '.join(CREDENTIAL_TYPES)} (for other kinds leave credentials_file unset and point "
            "GOOGLE_APPLICATION_CREDENTIALS at the file: application default credentials load them)"
        )
    checked: dict[str, Any] = info
    return checked


class GoogleCredentials:
    """A blocking token fetcher backed by google-auth (for ``TokenCache``).

    Args:
        info: the parsed credentials file (see ``read_credentials_file``); ``None`` uses application
            default credentials.
    """

    def __init__(self, info: dict[str, Any] | None) -> None:
        self._info = info
        self._credentials: Any = None
        self._request: Any = None
        self.project: str | None = None
        """The project the credentials belong to, once loaded (ADC and files may name one)."""

    def __call__(self) -> Token:
        try:
            from google.auth.transport.requests import Request
        except ImportError:
            raise ConfigError(f"Vertex AI needs google-auth and requests; run: {INSTALL_HINT}") from None
        if self._credentials is None:
            self._credentials = self._load()
            self._request = Request()  # one requests session, reused for every refresh
        credentials = self._credentials
        credentials.refresh(self._request)
        expiry = credentials.expiry  # google-auth keeps a naive UTC datetime
        expires_at = expiry.replace(tzinfo=dt.UTC).timestamp() if expiry is not None else None
        return Token(str(credentials.token or ""), expires_at)

    def _load(self) -> Any:
        info = self._info
        if info is None:
            import google.auth

            credentials, self.project = google.auth.default(scopes=[SCOPE])
        elif info["type"] == "service_account":
            from google.oauth2 import service_account

            credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=[SCOPE]
            )
            self.project = info.get("project_id")
        else:
            from google.oauth2 import credentials as user_credentials

            credentials = user_credentials.Credentials.from_authorized_user_info(  # type: ignore[no-untyped-call]
                info, scopes=[SCOPE]
            )
        return credentials
