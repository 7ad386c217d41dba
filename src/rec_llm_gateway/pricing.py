"""Cost of a call in USD: config ``pricing:`` overrides first, then the ``genai-prices`` table.

``genai-prices`` takes ~200 ms to import and ~100 us per ``calc_price`` (Decimal arithmetic), so the
gateway imports it off the request path (``warm_up`` at start, in a thread) and caches one
``_Rates`` per (provider, model): flat per-token rates are then priced with float arithmetic in well
under a microsecond. Tiered prices (long-context surcharges) keep going through ``genai-prices``.
An unknown model costs ``None``, never a guess, and is logged once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from .config import PriceConfig
from .usage import TokenUsage

__all__ = ["PriceTable"]

logger = logging.getLogger("rec_llm_gateway.pricing")

_PER_MILLION = 1_000_000.0

FREE = "free"
"""A ``price_provider`` for providers that cost nothing (``echo``)."""


@dataclass(frozen=True, slots=True)
class _Rates:
    """USD per token. ``table`` is a genai-prices ModelPrice when rates are tiered (slow path)."""

    input: float = 0.0
    output: float = 0.0
    cached_input: float | None = None
    cache_write: float | None = None
    table: Any = None

    def cost(self, usage: TokenUsage) -> float:
        if self.table is not None:
            return _genai_cost(self.table, usage)
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
        plain = usage.prompt_tokens - cached - written
        return (
            plain * self.input
            + cached * (self.input if self.cached_input is None else self.cached_input)
            + written * (self.input if self.cache_write is None else self.cache_write)
            + usage.completion_tokens * self.output
        )


class PriceTable:
    """Prices calls. Thread-safe; lookups are cached per (provider name, model)."""

    def __init__(self, overrides: dict[str, PriceConfig] | None = None) -> None:
        self._overrides = {key: _from_config(price) for key, price in (overrides or {}).items()}
        self._cache: dict[tuple[str, str], _Rates | None] = {}
        self._lock = threading.Lock()

    def cost(
        self,
        provider_name: str,
        price_provider: str | None,
        model: str,
        usage: TokenUsage | None,
        base_url: str | None = None,
    ) -> float | None:
        """USD for ``usage`` on ``model`` at ``provider_name``; ``None`` when the price is unknown.

        ``price_provider`` is the genai-prices provider id (``openai``, ``anthropic``, ``google``,
        ...), ``"free"``, or ``None`` to find the provider by ``base_url``.
        """
        if usage is None:
            return None
        key = (provider_name, model)
        try:
            rates = self._cache[key]
        except KeyError:
            rates = self._lookup(provider_name, price_provider, model, base_url)
            with self._lock:
                if len(self._cache) > 4096:  # model names come from clients: keep the cache bounded
                    self._cache.clear()
                self._cache[key] = rates
        return None if rates is None else round(rates.cost(usage), 10)

    def _lookup(
        self, provider_name: str, price_provider: str | None, model: str, base_url: str | None
    ) -> _Rates | None:
        for key in (f"{provider_name}:{model}", model):
            if key in self._overrides:
                return self._overrides[key]
        if price_provider == FREE:
            return _Rates()
        rates = _genai_rates(price_provider, model, base_url)
        if rates is None:
            logger.warning(
                "no price known for %s:%s; its cost is reported as null (add it under 'pricing:')",
                provider_name,
                model,
            )
        return rates


def warm_up() -> None:
    """Import the price table (run in a thread at gateway start so no request pays for it)."""
    try:
        import genai_prices  # noqa: F401
    except ImportError:  # pragma: no cover - a core dependency
        logger.warning("genai-prices is not installed; only 'pricing:' overrides are known")


def _from_config(price: PriceConfig) -> _Rates:
    return _Rates(
        input=price.input / _PER_MILLION,
        output=price.output / _PER_MILLION,
        cached_input=None if price.cached_input is None else price.cached_input / _PER_MILLION,
        cache_write=None if price.cache_write is None else price.cache_write / _PER_MILLION,
    )


def _genai_rates(price_provider: str | None, model: str, base_url: str | None) -> _Rates | None:
    try:
        from decimal import Decimal

        from genai_prices import Usage, calc_price
    except ImportError:  # pragma: no cover - a core dependency
        return None
    # By URL first (an OpenAI-compatible Groq or Together endpoint has its own prices), then by the
    # provider's own table (a proxy in front of OpenAI still charges OpenAI's prices).
    attempts: list[dict[str, str]] = []
    if base_url:
        attempts.append({"provider_api_url": base_url})
    if price_provider is not None:
        attempts.append({"provider_id": price_provider})
    found = None
    for where in attempts:
        try:
            found = calc_price(Usage(input_tokens=1, output_tokens=1), model, **where)  # type: ignore[call-overload]
            break
        except (LookupError, ValueError):
            continue
    if found is None:
        return None
    table = found.model_price
    prices = {
        name: getattr(table, name, None)
        for name in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
    }
    if not all(value is None or isinstance(value, Decimal) for value in prices.values()):
        return _Rates(table=table)

    def per_token(name: str) -> float | None:
        value = prices[name]
        return None if value is None else float(value) / _PER_MILLION

    return _Rates(
        input=per_token("input_mtok") or 0.0,
        output=per_token("output_mtok") or 0.0,
        cached_input=per_token("cache_read_mtok"),
        cache_write=per_token("cache_write_mtok"),
    )


def _genai_cost(table: Any, usage: TokenUsage) -> float:
    from genai_prices import Usage

    priced = table.calc_price(
        Usage(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cache_read_tokens=usage.cached_tokens or None,
            cache_write_tokens=usage.cache_write_tokens or None,
        )
    )
    return float(priced["total_price"])
