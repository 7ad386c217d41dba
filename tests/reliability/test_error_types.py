"""Errors as types: routing classifies upstream failures by class, each class declares what the
upstream did (``upstream_status``), and ``Retry-After`` is written and read in one place."""

from __future__ import annotations

import email.utils
import inspect
import time

import httpx
import pytest

import rec_llm_gateway.errors as errors_module
from rec_llm_gateway.errors import (
    CONNECTION_ERROR,
    TIMEOUT,
    BadGatewayError,
    GatewayError,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamOverloadedError,
    UpstreamStatusError,
    UpstreamTimeoutError,
    UpstreamTruncatedError,
    UpstreamUnreachableError,
    parse_retry_after,
    retry_after_header,
)
from rec_llm_gateway.providers.upstream_errors import upstream_status_error
from rec_llm_gateway.routing.retry import FATAL, RETRY, RetryPolicy, is_connection_error, is_unreachable
from rec_llm_gateway.routing.settings import RoutingConfig


def test_the_docstring_draws_every_error_class() -> None:
    doc = errors_module.__doc__ or ""
    classes = [
        name
        for name, value in vars(errors_module).items()
        if inspect.isclass(value)
        and issubclass(value, (GatewayError, ValueError))
        and value.__module__ == errors_module.__name__
    ]
    assert len(classes) >= 20
    for name in classes:
        assert f" {name} " in doc or f"── {name} " in doc, name


@pytest.mark.parametrize(
    ("error", "status", "upstream"),
    [
        (UpstreamConnectionError("reset"), 502, CONNECTION_ERROR),
        (UpstreamUnreachableError("refused"), 502, CONNECTION_ERROR),
        (UpstreamTruncatedError("cut"), 502, CONNECTION_ERROR),
        (UpstreamTimeoutError("slow"), 504, TIMEOUT),
        (UpstreamOverloadedError("busy"), 503, 529),
        (UpstreamStatusError("boom", upstream_status=503), 502, 503),
        (UpstreamError("no", status_code=404), 404, 404),
        (BadGatewayError("garbage"), 502, None),
    ],
)
def test_each_class_declares_the_upstream_status(error: GatewayError, status: int, upstream: object) -> None:
    assert error.status_code == status
    assert error.upstream_status == upstream
    if not isinstance(error, (UpstreamStatusError, UpstreamError)):  # these two carry the upstream's own
        assert "upstream_status" not in vars(error)  # declared on the class, never set on an instance


def test_codes_stay_what_clients_saw() -> None:
    assert UpstreamUnreachableError("x").code == "upstream_unreachable"
    assert UpstreamConnectionError("x").code == "upstream_connection_error"
    assert UpstreamTruncatedError("x").code == "upstream_stream_truncated"
    assert UpstreamStatusError("x", upstream_status=500).code == "upstream_error"
    assert UpstreamOverloadedError("x").code == "upstream_overloaded"


def test_routing_classifies_by_class_not_by_code_string() -> None:
    """A code string alone no longer makes a connection error (it did when routing matched codes)."""
    impostor = BadGatewayError("garbage", code="upstream_unreachable")
    assert not is_connection_error(impostor)
    assert not is_unreachable(impostor)
    assert is_connection_error(UpstreamTruncatedError("cut"))
    assert is_unreachable(UpstreamUnreachableError("refused"))
    assert not is_unreachable(UpstreamConnectionError("reset"))
    policy = RetryPolicy(RoutingConfig(retry_codes=[CONNECTION_ERROR]))
    assert policy.classify(UpstreamConnectionError("reset")) == RETRY
    assert policy.classify(impostor) == FATAL  # 502 is not in this retry_codes


def test_upstream_statuses_map_to_classes() -> None:
    assert type(upstream_status_error(500, "x", provider="p")) is UpstreamStatusError
    assert upstream_status_error(502, "x", provider="p").upstream_status == 502
    overloaded = upstream_status_error(529, "x", provider="p", retry_after="7")
    assert isinstance(overloaded, UpstreamOverloadedError) and isinstance(overloaded, ServiceUnavailableError)
    assert (overloaded.retry_after, overloaded.headers["retry-after"]) == (7.0, "7")
    limited = upstream_status_error(429, "x", provider="p", retry_after="2.5")
    assert isinstance(limited, RateLimitError)
    assert (limited.retry_after, limited.headers["retry-after"]) == (2.5, "3")


async def test_a_connection_cut_is_a_connection_error_not_unreachable() -> None:
    """(A refused connection is ``UpstreamUnreachableError``: test_providers_openai_family.py.)"""
    from rec_llm_gateway import Gateway

    from ..providers.test_providers_openai_family import make_call  # a call over a mock transport

    gateway = Gateway({"providers": {"openai": {"api_key": "sk-test-key-123456"}}})

    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("reset", request=request)

    with pytest.raises(UpstreamConnectionError) as raised:
        await gateway.providers["openai"].complete(make_call("m", {}, reset))
    assert not isinstance(raised.value, UpstreamUnreachableError)


@pytest.mark.parametrize(
    ("seconds", "header"), [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (59.5, "60"), (3600, "3600")]
)
def test_retry_after_header_rounds_up_to_whole_seconds(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header
    assert RateLimitError("x", retry_after=seconds).headers["retry-after"] == header


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert 100 < (parse_retry_after(future) or 0) <= 121
    past = email.utils.formatdate(time.time() - 120, usegmt=True)
    assert parse_retry_after(past) == 0.0
