"""Model names as metric attributes: only names the gateway knows, everything else is ``other``.

A client chooses the model name (``openai:anything``) and an upstream chooses the response model;
as metric attributes they would make a new series each, and after 2,000 the OpenTelemetry SDK
overflows and real models lose their series. A name reaches a metric as itself when the config
names it (``models``, ``model_map``, model groups and deployments), as its catalog entry when the
catalog knows it (``gpt-4o-2024-08-06`` -> ``gpt-4o``), and as ``other`` otherwise. Spans keep the
exact names: they are per request, not series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .config import GatewayConfig
    from .providers.base import Provider

__all__ = ["OTHER", "ModelLabels"]

OTHER: Final = "other"


class ModelLabels:
    """``label(name)``: the metric attribute value for a model name."""

    def __init__(self, config: GatewayConfig, providers: Mapping[str, Provider]) -> None:
        self.known = frozenset(_configured_names(config, providers))
        # The catalog lookup walks every entry; remember answers (bounded: names are client-chosen).
        self.label = lru_cache(maxsize=4096)(self._label)

    def _label(self, model: str) -> str:
        if model in self.known:
            return model
        from .catalog import lookup

        info = lookup(model)
        return info.id if info is not None else OTHER


def _configured_names(config: GatewayConfig, providers: Mapping[str, Provider]) -> Iterable[str]:
    for provider in providers.values():
        yield from provider.settings.models
        yield from provider.settings.model_map
        yield from provider.settings.model_map.values()
    for name, group in config.models.items():
        yield name
        if group.alias is not None:
            yield group.alias.partition(":")[2] or group.alias
        for deployment in group.deployments:
            yield deployment.model.partition(":")[2] or name
