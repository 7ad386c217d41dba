"""Raw ASGI plumbing, no framework (the gateway is called as ``app(scope, receive, send)`` by whatever
hosts it): ``types``, the ``request`` side (path, headers, body), the ``response`` side (JSON,
errors), gateway-key ``auth`` and ``cors``."""

from __future__ import annotations

from .auth import GatewayAuth, key_id
from .cors import Cors
from .request import ClientDisconnected, read_body, redacted, request_headers, request_id_from, route_path
from .response import JSON_CONTENT_TYPE, send_error, send_json
from .types import ASGIApp, Headers, Message, Receive, Scope, Send

__all__ = [
    "JSON_CONTENT_TYPE",
    "ASGIApp",
    "ClientDisconnected",
    "Cors",
    "GatewayAuth",
    "Headers",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "key_id",
    "read_body",
    "redacted",
    "request_headers",
    "request_id_from",
    "route_path",
    "send_error",
    "send_json",
]
