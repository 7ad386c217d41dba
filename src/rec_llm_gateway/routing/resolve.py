"""Model resolution: which provider serves a client's ``model`` string, under which name.

1. ``provider:model`` (split on the first colon) goes to that configured provider. A malformed
   name (``invalid::model``, ``:gpt-4``, ``openai:``, blank) is a 400 ``invalid_model``; a provider
   name that is not configured is a 404 ``model_not_found``, unless the whole string is itself a
   model some provider serves (Bedrock ids such as ``anthropic.claude-3-haiku-20240307-v1:0`` and
   Ollama tags such as ``llama3:8b`` contain colons).
2. Without a prefix, in order: a provider whose ``models`` list (or ``model_map``) has the name; a
   well-known family prefix (``gpt-``/``o1``/``o3``/``o4``/``chatgpt-`` -> openai, ``claude-`` ->
   anthropic, ``gemini-`` -> gemini, ...) of a configured provider type; ``default_provider``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InvalidModelError, NotFoundError
from ..providers.base import Provider

__all__ = ["ModelResolver", "Route"]

_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Route:
    """Where one request goes: a provider and the provider's own model name."""

    provider: Provider
    model: str
    """The provider's own model name (after ``model_map`` / Azure deployments)."""
    requested: str
    """The model part the client asked for, without a provider prefix."""


class ModelResolver:
    """Resolves model strings to routes. Results are cached (bounded: names come from clients)."""

    def __init__(self, providers: Mapping[str, Provider], default_provider: str | None) -> None:
        self._providers = dict(providers)
        self._default = providers.get(default_provider) if default_provider else None
        if self._default is None and len(providers) == 1:
            self._default = next(iter(providers.values()))
        self._by_model: dict[str, Provider] = {}
        for provider in providers.values():
            for model in provider.configured_models():
                self._by_model.setdefault(model, provider)
        # Family prefixes, longest first so "o1" does not shadow a longer, more specific prefix.
        families: list[tuple[str, Provider]] = []
        for provider in providers.values():
            # Prefer a provider named like its type (`openai`) over a second one of the same type.
            for prefix in provider.family_prefixes:
                families.append((prefix, provider))
        families.sort(key=lambda item: (-len(item[0]), item[1].name != item[1].type))
        self._families = families
        self._cache: dict[str, Route] = {}

    @property
    def providers(self) -> Mapping[str, Provider]:
        """The providers routes can go to, by configured name."""
        return self._providers

    def claimed(self, model: str) -> Route | None:
        """Rule 2 without its last step: the route for an unprefixed ``model`` that a provider's
        ``models`` / ``model_map`` or a family prefix claims; ``None`` when only the default would."""
        return self._unprefixed(model)

    def resolve(self, model: str) -> Route:
        route = self._cache.get(model)
        if route is None:
            route = self._resolve(model)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[model] = route
        return route

    def _resolve(self, model: str) -> Route:
        if not model or model != model.strip():
            raise InvalidModelError(f"Invalid model name {model!r}.", param="model")
        prefix, colon, rest = model.partition(":")
        if colon:
            if (
                not prefix
                or not rest
                or rest.startswith(":")
                or rest != rest.strip()
                or prefix != prefix.strip()
            ):
                raise InvalidModelError(
                    f"Invalid model name {model!r}: use 'provider:model' with both parts non-empty.",
                    param="model",
                )
            provider = self._providers.get(prefix)
            if provider is not None:
                return Route(provider, provider.upstream_model(rest), rest)
            unprefixed = self._unprefixed(model)
            if unprefixed is not None:
                return unprefixed
            raise NotFoundError(
                f"The model '{model}' does not exist: provider '{prefix}' is not configured "
                f"(configured: {', '.join(self._providers) or 'none'}).",
                code="model_not_found",
                param="model",
            )
        route = self._unprefixed(model)
        if route is None and self._default is not None:
            route = Route(self._default, self._default.upstream_model(model), model)
        if route is None:
            raise NotFoundError(
                f"The model '{model}' does not exist: no provider serves it and no default_provider is set. "
                "Use 'provider:model'.",
                code="model_not_found",
                param="model",
            )
        return route

    def _unprefixed(self, model: str) -> Route | None:
        provider = self._by_model.get(model)
        if provider is None:
            provider = next((owner for prefix, owner in self._families if model.startswith(prefix)), None)
        return None if provider is None else Route(provider, provider.upstream_model(model), model)
