"""Image URL fetching for Bedrock, against a real image server on loopback."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from rec_llm_gateway.errors import InvalidRequestError
from rec_llm_gateway.providers.bedrock.images import ImageFetchSettings, _check_public, fetch_images

from ..bedrock_support import PNG
from ..support import FakeUpstream, Recorded, Reply, serve_fake

WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8


def images(request: Recorded) -> Reply:
    path = request.path
    if path == "/cat.png":
        return Reply(body=PNG, content_type="image/png; charset=binary")
    if path == "/cat.webp":
        return Reply(body=WEBP, content_type="application/octet-stream")  # format sniffed
    if path == "/page":
        return Reply(body=b"<html></html>", content_type="text/html")
    if path == "/big":
        return Reply(body=b"\x89PNG" + b"\0" * 5000, content_type="image/png")
    if path == "/big-chunked":
        return Reply(sse=[b"\x89PNG" + b"\0" * 3000, b"\0" * 3000], content_type="image/png")
    if path == "/moved":
        return Reply(status=302, headers={"location": "/cat.png"})
    if path == "/loop":
        return Reply(status=302, headers={"location": "/loop"})
    if path == "/slow":
        return Reply(body=PNG, content_type="image/png", delay=1.0)  # longer than the 0.5 s limit
    return Reply(status=404, json={"error": "no such image"})


@pytest.fixture(scope="module")
def image_server() -> Iterator[FakeUpstream]:
    with serve_fake(images) as fake:
        yield fake


LOOPBACK = ImageFetchSettings(allow_private_networks=True, max_bytes=4096, timeout=0.5)


async def fetch(urls: list[str], settings: ImageFetchSettings = LOOPBACK) -> dict[str, dict]:
    async with httpx.AsyncClient() as http:
        return await fetch_images(urls, http, settings)


async def refused(
    urls: list[str], match: str, settings: ImageFetchSettings = LOOPBACK
) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError, match=match) as caught:
        await fetch(urls, settings)
    assert caught.value.status_code == 400
    return caught.value


async def test_fetches_images_and_takes_the_format_from_the_content_type(image_server: FakeUpstream) -> None:
    png, webp, moved = (f"{image_server.url}/{name}" for name in ("cat.png", "cat.webp", "moved"))
    blocks = await fetch([png, webp, moved])
    assert blocks[png] == {"format": "png", "source": {"bytes": base64.b64encode(PNG).decode()}}
    assert blocks[webp]["format"] == "webp"
    assert blocks[moved] == blocks[png]  # a redirect is followed
    assert image_server.requests[-1].headers["accept"] == "image/*"


async def test_size_cap_with_and_without_content_length(image_server: FakeUpstream) -> None:
    for name in ("big", "big-chunked"):
        error = await refused([f"{image_server.url}/{name}"], "larger than 4096 bytes")
        assert error.code == "image_too_large"


async def test_timeout(image_server: FakeUpstream) -> None:
    error = await refused([f"{image_server.url}/slow"], r"Timed out fetching image URL .*/slow")
    assert error.code == "image_fetch_timeout"


async def test_not_an_image_a_404_and_a_redirect_loop(image_server: FakeUpstream) -> None:
    await refused([f"{image_server.url}/page"], "did not return a png, jpeg, gif or webp image")
    await refused([f"{image_server.url}/missing.png?sig=SECRET123"], r"answered HTTP 404")
    error = await refused([f"{image_server.url}/missing.png?sig=SECRET123"], "404")
    assert "SECRET123" not in error.message  # query strings (signed URLs) are not echoed
    await refused([f"{image_server.url}/loop"], "redirects too many times")


async def test_one_failure_fails_the_request(image_server: FakeUpstream) -> None:
    await refused([f"{image_server.url}/cat.png", f"{image_server.url}/page"], "did not return")


async def test_limits_on_schemes_count_and_switch(image_server: FakeUpstream) -> None:
    await refused(["ftp://example.com/cat.png"], "must be http or https")
    three = [f"{image_server.url}/{index}.png" for index in range(3)]
    await refused(three, "at most 2", ImageFetchSettings(allow_private_networks=True, max_images=2))
    await refused(
        [f"{image_server.url}/cat.png"], "send images as data: URLs", ImageFetchSettings(enabled=False)
    )
    assert await fetch([]) == {}


async def test_private_addresses_are_refused_by_default(image_server: FakeUpstream) -> None:
    before = len(image_server.requests)
    await refused([f"{image_server.url}/cat.png"], "non-public address", ImageFetchSettings())
    port = image_server.url.rsplit(":", 1)[1]
    await refused([f"http://localhost:{port}/cat.png"], "non-public address", ImageFetchSettings())
    assert len(image_server.requests) == before  # never contacted


@pytest.mark.parametrize(
    "host",
    ["169.254.169.254", "10.1.2.3", "192.168.0.1", "[::1]", "[::ffff:127.0.0.1]", "[fd00::1]", "0.0.0.0"],
)
async def test_non_public_addresses(host: str) -> None:
    with pytest.raises(InvalidRequestError, match="non-public"):
        await _check_public(httpx.URL(f"http://{host}/latest/meta-data/"))


async def test_public_addresses_pass_the_check() -> None:
    await _check_public(httpx.URL("https://93.184.216.34/cat.png"))
    await _check_public(httpx.URL("https://[2606:2800:220:1:248:1893:25c8:1946]/cat.png"))
