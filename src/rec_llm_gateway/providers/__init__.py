"""Providers: the ``Provider`` protocol, its HTTP base, and the built-in provider types."""

from __future__ import annotations

from .base import ChatResult, Provider, StreamTranslator, UpstreamCall
from .http import HTTPProvider

__all__ = ["ChatResult", "HTTPProvider", "Provider", "StreamTranslator", "UpstreamCall"]
