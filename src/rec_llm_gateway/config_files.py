"""Config files: ``load_config_file`` (YAML, TOML or JSON; ``${VAR}`` is expanded later, ``envvars.py``).

A key given twice in one mapping is an error (YAML and JSON kept the last one silently; TOML refuses
it itself), and a parse error says where without quoting the line, which may hold an inline key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

__all__ = ["load_config_file"]


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML, TOML or JSON file into a dict (environment references are expanded later)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(file)!r}: {exc.strerror}") from None
    suffix = file.suffix.lower()
    kind: Literal["yaml", "toml", "json"] = (
        "toml" if suffix == ".toml" else "json" if suffix == ".json" else "yaml"
    )
    try:
        if kind == "toml":
            import tomllib

            data: Any = tomllib.loads(text)
        elif kind == "json":
            data = _load_json_strictly(text)
        else:
            data = _load_yaml_strictly(text)
    except Exception as exc:
        # YAML's message quotes the offending line, which may hold an inline key: say where instead
        problem = _yaml_problem(exc) if kind == "yaml" else str(exc)
        raise ConfigError(f"{file.name}: not valid {kind.upper()}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file.name}: the top level must be a mapping, not {type(data).__name__}")
    return data


def _load_yaml_strictly(text: str) -> Any:
    """``yaml.safe_load`` that refuses a key given twice in one mapping (the last one silently won)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then overriding a merged key is the point of merging
            key = loader.construct_object(key_node)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (again on line {line})"
                )
            seen.add(key)
        return loader.construct_mapping(node)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)


def _yaml_problem(exc: Exception) -> str:
    """A YAML error without the snippet of the offending line (it may hold an inline key)."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or type(exc).__name__
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"


def _load_json_strictly(text: str) -> Any:
    """``json.loads`` that refuses a key given twice in one object."""
    import json

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise ValueError(f"key {key!r} appears twice in one object")
            result[key] = value
        return result

    return json.loads(text, object_pairs_hook=pairs)
