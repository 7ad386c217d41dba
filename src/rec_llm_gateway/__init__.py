"""rec-llm-gateway: an OpenAI-compatible LLM gateway that mounts inside your ASGI app.

Example::

    from fastapi import FastAPI
    from rec_llm_gateway import Gateway

    gateway = Gateway.from_file("gateway.yaml")
    app = FastAPI()
    app.mount("/llm", gateway)     # the OpenAI SDK now talks to http://host/llm/v1
"""

from __future__ import annotations

from .config import GatewayConfig
from .errors import ConfigError, GatewayError, RequestRejected
from .gateway import Gateway
from .hooks import CostEvent, FailoverEvent, RequestContext, hookimpl, hookspec
from .middleware import GatewayMiddleware
from .usage import UsageRecord

__all__ = [
    "ConfigError",
    "CostEvent",
    "FailoverEvent",
    "Gateway",
    "GatewayConfig",
    "GatewayError",
    "GatewayMiddleware",
    "RequestContext",
    "RequestRejected",
    "UsageRecord",
    "hookimpl",
    "hookspec",
]

__version__ = "0.1.0"
