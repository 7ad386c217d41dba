"""``${VAR}`` and ``${VAR:-default}`` in configuration values, expanded from the environment; every
variable that is not set is reported at once (``check-config``)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

__all__ = ["expand_env"]

_ENV_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(data: Any) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of ``data`` (recursively); a
    ``ConfigError`` names every variable that is not set, not just the first."""
    missing: list[str] = []
    expanded = _expand(data, "", missing)
    if missing:
        raise ConfigError.listing(missing)
    return expanded


def _expand(data: Any, path: str, missing: list[str]) -> Any:
    if isinstance(data, str):
        try:
            return _expand_string(data, path)
        except ConfigError as exc:
            missing.append(str(exc))
            return data
    if isinstance(data, Mapping):
        return {
            key: _expand(value, f"{path}.{key}" if path else str(key), missing) for key, value in data.items()
        }
    if isinstance(data, list):
        return [_expand(value, f"{path}[{index}]", missing) for index, value in enumerate(data)]
    return data


def _expand_string(text: str, path: str) -> str:
    if "${" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is not None and (value or default is None):
            return value
        if default is not None:
            return default
        raise ConfigError(
            f"{path or '(top level)'}: environment variable {name} is not set "
            f"(set it, or write ${{{name}:-default}} to fall back)"
        )

    return _ENV_REFERENCE.sub(replace, text)
