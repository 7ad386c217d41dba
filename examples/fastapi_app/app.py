"""A small FastAPI service with the gateway mounted at /llm.

Run it:  python -m examples.fastapi_app        (http://127.0.0.1:8000)

It registers both shipped plugins (PII redaction, a JSON-lines audit log written to
``$AUDIT_LOG`` or ``audit.jsonl``) and exports traces and metrics (see ``telemetry.py``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from rec_llm_gateway import Gateway
from rec_llm_gateway.plugins.audit import AuditLogPlugin
from rec_llm_gateway.plugins.pii import PIIRedactionPlugin

from . import telemetry

HERE = Path(__file__).parent

tracer_provider, meter_provider = telemetry.setup()
audit = AuditLogPlugin(os.environ.get("AUDIT_LOG", "audit.jsonl"))
gateway = Gateway.from_file(
    HERE / "gateway.yaml",
    plugins=[PIIRedactionPlugin(), audit],
    tracer_provider=tracer_provider,
    meter_provider=meter_provider,
)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Mounted apps get no lifespan events of their own: open the gateway's pools here.
    async with gateway:
        yield
    audit.close()
    tracer_provider.shutdown()
    meter_provider.shutdown()


app = FastAPI(title="Demo service", lifespan=lifespan)


@app.get("/")
async def index() -> dict[str, str]:
    return {"service": "demo", "llm": "/llm/v1/chat/completions"}


@app.get("/usage-summary")
async def usage_summary() -> dict[str, object]:
    """The service's own route, reading the gateway's usage in-process."""
    return gateway.usage.totals()


app.mount("/llm", gateway)
