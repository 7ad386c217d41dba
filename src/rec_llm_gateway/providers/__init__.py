"""Providers: the ``Provider`` protocol, its HTTP base, and the built-in provider types."""

from __future__ import annotations

from .base import ChatResult, HTTPProvider, Provider, StreamTranslator, UpstreamCall

__all__ = ["ChatResult", "HTTPProvider", "Provider", "StreamTranslator", "UpstreamCall"]
