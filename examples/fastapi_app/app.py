"""A small FastAPI service with the gateway mounted at /llm.

Run it:  python -m examples.fastapi_app        (http://127.0.0.1:8000)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from rec_llm_gateway import Gateway

HERE = Path(__file__).parent

gateway = Gateway.from_file(HERE / "gateway.yaml")


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Mounted apps get no lifespan events of their own: open the gateway's pools here.
    async with gateway:
        yield


app = FastAPI(title="Demo service", lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, str]:
    return {"service": "demo", "llm": "/llm/v1/chat/completions"}


@app.get("/usage-summary")
async def usage_summary() -> dict[str, object]:
    """The service's own route, reading the gateway's usage in-process."""
    return gateway.usage.totals()


app.mount("/llm", gateway)
