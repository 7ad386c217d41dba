"""Fetching http(s) image URLs for Bedrock, which only accepts image bytes (or S3 locations).

The gateway downloads each image itself, on the shared HTTP client, with limits: http and https
only, a size cap, a timeout for the whole download, a bounded number of images and redirects, and
(by default) only hosts whose addresses are public, checked once and connected to as checked (see
``egress.py``), so a client cannot make the gateway read the instance metadata service or other
internal endpoints. Every failure is the client's 400.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ...errors import GatewayError, InvalidRequestError
from ..egress import Resolver, pinned, resolve
from .messages import IMAGE_FORMATS, ImageBlock

__all__ = ["ImageFetchSettings", "fetch_images"]

# Magic numbers, for servers that label images application/octet-stream.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)


class ImageFetchSettings(BaseModel):
    """``providers.<name>.image_fetch``: how the gateway downloads http(s) image URLs for Bedrock."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    """Off: http(s) image URLs are a 400 (data: URLs always work)."""
    max_bytes: int = Field(3_750_000, gt=0)
    """Largest image accepted (Bedrock's own limit is 3.75 MB per image)."""
    timeout: float = Field(10.0, gt=0)
    """Seconds for one whole download, redirects included."""
    max_images: int = Field(20, gt=0)
    """Most distinct image URLs fetched for one request (Bedrock takes at most 20 images)."""
    max_redirects: int = Field(3, ge=0)
    allow_private_networks: bool = False
    """Allow hosts that resolve to loopback, private, link-local or otherwise non-public addresses."""


def _refuse(message: str, code: str = "invalid_image_url") -> InvalidRequestError:
    return InvalidRequestError(message, param="messages", code=code)


def _shown(url: httpx.URL) -> str:
    """The URL without user info and query (signed URLs carry credentials there) for error messages."""
    return str(url.copy_with(userinfo=b"", query=None, fragment=None))


async def fetch_images(
    urls: list[str], http: httpx.AsyncClient, settings: ImageFetchSettings, resolver: Resolver = resolve
) -> dict[str, ImageBlock]:
    """Download every URL; ``{url: image block}``. Raises a 400 for the first one that fails."""
    if not urls:
        return {}
    if not settings.enabled:
        raise _refuse("Image URLs are not fetched for this Bedrock provider; send images as data: URLs.")
    if len(urls) > settings.max_images:
        raise _refuse(f"Too many image URLs ({len(urls)}); at most {settings.max_images} per request.")
    if len(urls) == 1:
        return {urls[0]: await fetch_image(urls[0], http, settings, resolver)}
    try:
        async with asyncio.TaskGroup() as group:
            tasks = {url: group.create_task(fetch_image(url, http, settings, resolver)) for url in urls}
    except BaseExceptionGroup as failures:
        first = failures.exceptions[0]
        raise (
            first if isinstance(first, GatewayError) else _refuse("An image URL could not be fetched.")
        ) from None
    return {url: task.result() for url, task in tasks.items()}


async def fetch_image(
    url: str, http: httpx.AsyncClient, settings: ImageFetchSettings, resolver: Resolver = resolve
) -> ImageBlock:
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):  # 0177.0.0.1, full-width digits, a NUL byte: the client's 400
        raise _refuse("An image URL is not a valid URL.") from None
    timeouts = dict.fromkeys(("connect", "read", "write", "pool"), settings.timeout)
    try:
        async with asyncio.timeout(settings.timeout):
            for _ in range(settings.max_redirects + 1):
                if target.scheme not in ("http", "https") or not target.host:
                    raise _refuse(f"Image URL {_shown(target)} must be http or https.")
                connect_to: httpx.URL = target
                headers: dict[str, str] = {"accept": "image/*"}
                extensions: dict[str, Any] = {"timeout": timeouts}
                if not settings.allow_private_networks:
                    connect_to, host, sni = await _check_public(target, resolver)
                    headers.update(host)
                    extensions.update(sni)
                request = http.build_request("GET", connect_to, headers=headers, extensions=extensions)
                response = await http.send(request, stream=True, follow_redirects=False)
                try:
                    if response.is_redirect and "location" in response.headers:
                        target = target.join(response.headers["location"])
                        continue
                    return await _read_image(response, target, settings)
                finally:
                    await response.aclose()
            raise _refuse(f"Image URL {_shown(httpx.URL(url))} redirects too many times.")
    except (TimeoutError, httpx.TimeoutException):
        raise _refuse(
            f"Timed out fetching image URL {_shown(target)} (limit {settings.timeout:g}s).",
            "image_fetch_timeout",
        ) from None
    except (httpx.InvalidURL, ValueError):  # a redirect to something unparseable
        raise _refuse(f"Image URL {_shown(target)} redirects to an invalid URL.") from None
    except httpx.HTTPError as exc:
        raise _refuse(f"Could not fetch image URL {_shown(target)} ({type(exc).__name__}).") from None


async def _read_image(response: httpx.Response, url: httpx.URL, settings: ImageFetchSettings) -> ImageBlock:
    if response.status_code != 200:
        raise _refuse(f"Image URL {_shown(url)} answered HTTP {response.status_code}.")
    too_big = _refuse(
        f"The image at {_shown(url)} is larger than {settings.max_bytes} bytes.", "image_too_large"
    )
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.max_bytes:
        raise too_big
    data = bytearray()
    async for part in response.aiter_bytes():
        data += part
        if len(data) > settings.max_bytes:
            raise too_big
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    image_format = IMAGE_FORMATS.get(content_type) or _sniff(data)
    if image_format is None:
        raise _refuse(
            f"The URL {_shown(url)} did not return a png, jpeg, gif or webp image "
            f"(content type {content_type or 'none'!r}).",
            "invalid_image_format",
        )
    return {"format": image_format, "source": {"bytes": base64.b64encode(data).decode("ascii")}}


def _sniff(data: bytes | bytearray) -> str | None:
    for signature, image_format in _SIGNATURES:
        if data.startswith(signature):
            return image_format
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


async def _check_public(
    url: httpx.URL, resolver: Resolver = resolve
) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """Refuse hosts with a non-public address; the pinned URL, headers and extensions to connect with
    (the name is resolved once and the connection goes to the address checked: no DNS rebinding)."""
    try:
        return await pinned(url, resolver)
    except LookupError:
        raise _refuse(f"Could not resolve the host of image URL {_shown(url)}.") from None
    except PermissionError:
        raise _refuse(f"Image URL {_shown(url)} points to a non-public address; it is not fetched.") from None
