"""AWS credentials and SigV4 signing for Bedrock, through botocore (the ``bedrock`` extra).

Credentials come from the settings (explicit keys, or a named profile) or botocore's standard chain
(environment, shared files, SSO, container and instance metadata, ...). Resolving or refreshing
them can block for a long time (the EC2 metadata service, SSO, a credential process), so it runs in
a worker thread and the result is cached: a request only goes to a thread when botocore says the
cached credentials are due for refresh.

botocore is imported here, and this module is imported only when a SigV4-signed Bedrock provider
is built, so ``import rec_llm_gateway`` stays light.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

from ...errors import ConfigError, ServiceUnavailableError, scrub_secrets

__all__ = ["AWSSigner", "import_botocore"]

INSTALL_HINT = "pip install 'rec-llm-gateway[bedrock]'"


class _RedactSessionToken(logging.Filter):
    """botocore logs each canonical request at DEBUG, and with temporary credentials it holds the
    session token (the ``x-amz-security-token`` header is signed): blank its value out.

    A filter on botocore's own ``botocore.auth`` logger, so it costs nothing unless that logger is
    enabled for DEBUG, and the host's logging configuration is left alone."""

    _TOKEN = re.compile(r"(x-amz-security-token:)[^\n]*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "x-amz-security-token" in message.lower():
            record.msg, record.args = self._TOKEN.sub(r"\1[redacted]", message), None
        return True


_AUTH_LOGGER = logging.getLogger("botocore.auth")
if not any(isinstance(existing, _RedactSessionToken) for existing in _AUTH_LOGGER.filters):
    _AUTH_LOGGER.addFilter(_RedactSessionToken())


def import_botocore() -> Any:
    """``botocore.auth``, or a ConfigError naming the extra to install."""
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
    except ImportError:
        raise ConfigError(
            f"AWS Bedrock with SigV4 (AWS credentials) needs botocore: {INSTALL_HINT}"
        ) from None
    return botocore.auth


class AWSSigner:
    """Signs Bedrock requests with SigV4 (signing name ``bedrock``). Safe to share across event loops.

    Args:
        region: the AWS region the requests go to.
        access_key, secret_key, session_token: explicit credentials (all optional).
        profile: a profile from the shared AWS config files (when no explicit keys).
    """

    def __init__(
        self,
        region: str,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        profile: str | None = None,
    ) -> None:
        import_botocore()
        from botocore.credentials import Credentials

        self.region = region
        self._profile = profile
        self._lock = threading.Lock()
        self._source: Any = None
        """botocore Credentials (possibly refreshable) once resolved."""
        self._frozen: Any = None
        if access_key and secret_key:
            self._source = Credentials(access_key, secret_key, session_token or None)
            self._frozen = self._source.get_frozen_credentials()

    async def credentials(self) -> Any:
        """Current ``ReadOnlyCredentials``; resolves or refreshes them in a thread when needed."""
        source = self._source
        if self._frozen is not None and not _refresh_due(source):
            return self._frozen
        return await asyncio.to_thread(self._resolve)

    def _resolve(self) -> Any:
        with self._lock:  # one resolution at a time; later callers reuse its result
            if self._source is None:
                from botocore.session import Session

                try:
                    session = Session(profile=self._profile) if self._profile else Session()
                    self._source = session.get_credentials()
                except Exception as exc:  # a missing profile, a broken config file, a failed SSO login
                    raise ServiceUnavailableError(
                        f"could not load AWS credentials for Bedrock: {_describe(exc)}",
                        code="aws_credentials_unavailable",
                    ) from None
                if self._source is None:
                    where = (
                        f"profile '{self._profile}'" if self._profile else "the standard AWS credential chain"
                    )
                    raise ServiceUnavailableError(
                        f"no AWS credentials found in {where} for Bedrock",
                        code="aws_credentials_unavailable",
                    )
            if self._frozen is None or _refresh_due(self._source):
                try:
                    self._frozen = self._source.get_frozen_credentials()
                except Exception as exc:
                    raise ServiceUnavailableError(
                        f"could not refresh AWS credentials for Bedrock: {_describe(exc)}",
                        code="aws_credentials_unavailable",
                    ) from None
            return self._frozen

    def sign(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        credentials: Any,
        service: str = "bedrock",
    ) -> dict[str, str]:
        """The SigV4 headers (``authorization``, ``x-amz-date``, ``x-amz-security-token``) for a request."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(credentials, service, self.region).add_auth(request)
        signed = {
            "authorization": request.headers["Authorization"],
            "x-amz-date": request.headers["X-Amz-Date"],
        }
        token = request.headers.get("X-Amz-Security-Token")
        if token:
            signed["x-amz-security-token"] = token
        return signed


def _describe(exc: Exception) -> str:
    return scrub_secrets(f"{type(exc).__name__}: {exc}"[:300])


def _refresh_due(source: Any) -> bool:
    """True when botocore would refresh (within its advisory window): that may block, so do it in a thread."""
    refresh_needed = getattr(source, "refresh_needed", None)
    return bool(refresh_needed()) if refresh_needed is not None else False
