"""Checks on configuration values that used to be accepted without a word (and failed later, or leaked).

Pure functions used by ``config.py``'s validators: CR/LF in a header, a ``base_url`` carrying
credentials, and what ``model_dump`` may show.
No message quotes the offending value: it may be a secret.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "MASK",
    "REVEAL",
    "check_base_url",
    "check_headers",
]

MASK: Final = "**********"
REVEAL: Final = {"reveal_secrets": True}
"""``model_dump(context=REVEAL)``: the real values, for the gateway's own use (building providers)."""

# RFC 9110 token characters: what a header name may contain.
_HEADER_NAME: Final = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_FORBIDDEN_IN_VALUE: Final = re.compile(r"[\r\n\x00]")


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Header names must be tokens and values free of CR, LF and NUL (each request would fail with
    a 500, or a value could smuggle a second header)."""
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"header name {name!r} is not a valid HTTP header name")
        if _FORBIDDEN_IN_VALUE.search(value):
            raise ValueError(f"the value of header {name!r} contains a line break or NUL; remove it")
    return headers


def check_base_url(url: str | None) -> str | None:
    """http(s), a host, no credentials and no query: credentials go in ``api_key`` (a secret, never
    shown) and a query would be lost or doubled when paths are appended."""
    if url is None:
        return url
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises for a port that is not a number)
    except ValueError:
        raise ValueError("base_url is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"base_url must start with http:// or https://, not {parts.scheme or 'nothing'!r}")
    if not parts.hostname:
        raise ValueError("base_url has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("base_url must not carry user:password@; put the credential in api_key or headers")
    if parts.query or parts.fragment:
        raise ValueError("base_url must not have a query string or fragment; use headers (or api_version)")
    return url
