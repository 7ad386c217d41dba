"""A load generator in its own process (so it does not share a core with the system under test).

    python -m benchmarks.loadgen URL CONCURRENCY SECONDS BODY           # throughput, prints JSON
    python -m benchmarks.loadgen --streams URL COUNT TIMEOUT BODY       # COUNT streams at once

Uses aiohttp when installed (the cheapest Python client), else httpx.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any


class _Client:
    """POSTs with aiohttp when installed (the cheapest Python client), else httpx."""

    def __init__(self, limit: int) -> None:
        try:
            import aiohttp

            self._aiohttp: Any = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
            )
            self._httpx: Any = None
        except ImportError:
            import httpx

            self._aiohttp = None
            limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
            self._httpx = httpx.AsyncClient(limits=limits, timeout=120)

    async def post(self, url: str, body: bytes, *, stream: bool) -> bool:
        """True when the answer is a 200 (and, for a stream, ends with ``[DONE]``)."""
        headers = {"content-type": "application/json"}
        if self._aiohttp is not None:
            async with self._aiohttp.post(url, data=body, headers=headers) as response:
                data = b"".join([part async for part in response.content.iter_any()])
                status = response.status
        else:
            async with self._httpx.stream("POST", url, content=body, headers=headers) as response:
                data = b"".join([part async for part in response.aiter_bytes()])
                status = response.status_code
        return status == 200 and (not stream or data.rstrip().endswith(b"data: [DONE]"))

    async def close(self) -> None:
        await (self._aiohttp.close() if self._aiohttp is not None else self._httpx.aclose())


async def throughput(url: str, concurrency: int, seconds: float, body: bytes) -> dict[str, Any]:
    client = _Client(concurrency)
    done = errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        while time.perf_counter() < deadline:
            try:
                ok = await client.post(url, body, stream=False)
            except Exception:
                ok = False
            done += 1
            errors += not ok

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await client.close()
    return {"rps": done / elapsed, "errors": errors, "requests": done}


async def streams(url: str, count: int, timeout: float, body: bytes) -> dict[str, Any]:
    client = _Client(count)
    started = time.perf_counter()

    async def one() -> bool:
        try:
            return await asyncio.wait_for(client.post(url, body, stream=True), timeout)
        except Exception:
            return False

    results = await asyncio.gather(*(one() for _ in range(count)))
    elapsed = time.perf_counter() - started
    await client.close()
    return {"completed": sum(results), "errors": count - sum(results), "seconds": elapsed}


def main() -> None:
    arguments = sys.argv[1:]
    if arguments[0] == "--streams":
        url, count, timeout, body = arguments[1:]
        result = asyncio.run(streams(url, int(count), float(timeout), body.encode()))
    else:
        url, concurrency, seconds, body = arguments
        result = asyncio.run(throughput(url, int(concurrency), float(seconds), body.encode()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
