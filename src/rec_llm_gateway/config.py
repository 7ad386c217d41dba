"""Configuration: one pydantic model tree, loaded from a dict or a YAML/TOML/JSON file.

Strings may refer to the environment: ``${VAR}`` (an error when unset) or ``${VAR:-default}``;
``$${`` is a literal ``${``. Secrets are ``SecretStr`` and never appear in a repr, log or response.
Every error names the path and the fix, e.g. ``providers.azure.api_version: required for type 'azure'``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from .config_checks import MASK, REVEAL, check_base_url, check_headers
from .config_files import load_config_file
from .envvars import expand_env
from .errors import ConfigError
from .responses.settings import ResponsesConfig
from .routing.settings import (
    GatewayKeyConfig,
    GroupConfig,
    HealthCheckConfig,
    RateLimitConfig,
    RoutingConfig,
    check_references,
)
from .state.settings import StateConfig

__all__ = [
    "AuthConfig",
    "CorsConfig",
    "GatewayConfig",
    "GatewayKeyConfig",
    "GroupConfig",
    "HealthCheckConfig",
    "HttpConfig",
    "LimitsConfig",
    "PluginSpec",
    "PriceConfig",
    "ProviderConfig",
    "RateLimitConfig",
    "RoutingConfig",
    "StateConfig",
    "TelemetryConfig",
    "TimeoutConfig",
    "expand_env",
    "load_config_file",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True)


class TimeoutConfig(_Strict):
    """Per-provider timeouts in seconds.

    ``read`` bounds the wait for the first byte and between stream chunks; ``total`` bounds a whole
    non-streaming call and a stream's wait for its first chunk. A bare number sets ``read`` and ``total``.
    """

    connect: float = Field(10.0, gt=0)
    read: float = Field(120.0, gt=0)
    write: float = Field(30.0, gt=0)
    total: float = Field(600.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"connect": min(float(value), 10.0), "read": value, "total": value}
        return value


_SECRET_NAME = re.compile(r"key|secret|token|password|credential", re.IGNORECASE)


class ProviderConfig(BaseModel):
    """Settings common to every provider. Type-specific fields are checked by the provider's own model."""

    model_config = ConfigDict(extra="allow", validate_default=True, defer_build=True)

    type: str | None = None
    enabled: bool = True
    api_key: SecretStr | None = None
    api_keys: list[SecretStr] = Field(default_factory=list)
    base_url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: TimeoutConfig = Field(default_factory=TimeoutConfig)
    models: list[str] = Field(default_factory=list)
    model_map: dict[str, str] = Field(default_factory=dict)
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig)
    """Limits for the provider as a whole (every deployment and direct request on it)."""
    health_check: HealthCheckConfig | None = None
    """Background health checks (``GET /providers/{name}/health`` checks on demand without them)."""
    prices_from: str | None = None
    """The genai-prices provider whose prices apply (``openai``, ``anthropic``, ``google``, ...), for
    an endpoint at a custom ``base_url`` that charges another provider's prices (a proxy in front of
    OpenAI). Without it such an endpoint is priced by its URL, or not at all: never a guess."""

    @field_validator("base_url")
    @classmethod
    def _valid_base_url(cls, url: str | None) -> str | None:
        return check_base_url(url)

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        return check_headers(headers)

    @model_serializer(mode="wrap")
    def _without_secrets(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """``model_dump`` masks what may be secret (header values, extras named like secrets, URL
        credentials), as ``SecretStr`` fields are; ``settings_dict`` is the gateway's unmasked copy."""
        data = handler(self)
        if not isinstance(data, dict) or (info.context or {}).get("reveal_secrets"):
            return data
        if isinstance(data.get("base_url"), str):
            data["base_url"] = url_without_secrets(data["base_url"])
        if isinstance(data.get("headers"), dict):
            data["headers"] = dict.fromkeys(data["headers"], MASK)
        for name in self.model_extra or {}:
            if name in data and data[name] is not None and _SECRET_NAME.search(name):
                data[name] = MASK
        return data

    def settings_dict(self) -> dict[str, Any]:
        """The settings as given (``exclude_unset``), secrets included: to validate them again as a
        provider type's own settings model."""
        return self.model_dump(exclude_unset=True, context=REVEAL)

    def __repr_args__(self) -> Any:
        # base_url and header values are not secrets by contract (keys belong in api_key), but users
        # sometimes put one there anyway: keep reprs free of URL credentials and header values.
        # Type-specific settings (aws_secret_access_key, ...) are plain extras here, not yet the
        # SecretStr their provider's settings model makes of them: mask the ones named like secrets.
        extra = self.model_extra or {}
        for name, value in super().__repr_args__():
            if name == "base_url" and isinstance(value, str):
                value = url_without_secrets(value)
            elif name == "headers" and isinstance(value, dict):
                value = dict.fromkeys(value, "***")
            elif name in extra and value is not None and _SECRET_NAME.search(name):
                value = "**********"
            yield name, value

    def secret_values(self) -> list[str]:
        """Every secret in these settings, for scrubbing error text."""
        values = [key.get_secret_value() for key in self.api_keys]
        if self.api_key is not None:
            values.append(self.api_key.get_secret_value())
        for value in (self.model_extra or {}).values():
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
        return [value for value in values if value]

    def keys(self) -> list[str]:
        """The API keys to rotate through, in order (``api_key`` first)."""
        keys = [self.api_key.get_secret_value()] if self.api_key is not None else []
        keys += [key.get_secret_value() for key in self.api_keys]
        return [key for key in keys if key]

    @property
    def has_empty_key(self) -> bool:
        """An ``api_key`` set to an empty string (typically ``${VAR:-}`` with VAR unset)."""
        configured = ([self.api_key] if self.api_key is not None else []) + list(self.api_keys)
        return bool(configured) and not self.keys()


class AuthConfig(_Strict):
    """Gateway keys. Absent or empty: the gateway does not check keys.

    ``api_keys`` are plain keys; ``keys`` are keys with a name (the key id plugins see), rate limits
    and a monthly budget. Both may be used together.
    """

    api_keys: list[SecretStr] = Field(default_factory=list)
    keys: list[GatewayKeyConfig] = Field(default_factory=list)
    admin_keys: list[SecretStr] = Field(default_factory=list)
    unpriced: Literal["allow", "deny"] = "deny"
    """Whether keys with a ``monthly_budget_usd`` may use models with no known price (each key may
    say otherwise): ``deny`` refuses with 400 ``unpriced_model`` instead of letting spend stand still."""

    @field_validator("keys")
    @classmethod
    def _unique_names(cls, keys: list[GatewayKeyConfig]) -> list[GatewayKeyConfig]:
        names = [key.name for key in keys if key.name]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"key names must be unique; {', '.join(map(repr, duplicates))} repeats")
        return keys

    @model_validator(mode="after")
    def _unique_key_values(self) -> AuthConfig:
        """One key value, one entry: with two, the last one's limits and budget applied silently."""
        seen: dict[str, str] = {}
        entries = [(f"api_keys[{i}]", key) for i, key in enumerate(self.api_keys)]
        entries += [(f"keys[{i}].key", entry.key) for i, entry in enumerate(self.keys)]
        for where, key in entries:
            value = key.get_secret_value()
            if value in seen:
                raise ValueError(f"{where} is the same key as {seen[value]}; give each key once")
            seen[value] = where
        return self


class CorsConfig(_Strict):
    allow_origins: list[str] = Field(default_factory=list)
    allow_methods: list[str] = Field(default_factory=lambda: ["GET", "POST", "OPTIONS"])
    allow_headers: list[str] = Field(
        default_factory=lambda: ["authorization", "content-type", "x-api-key", "x-request-id", "traceparent"]
    )
    expose_headers: list[str] = Field(default_factory=lambda: ["x-request-id", "retry-after"])
    allow_credentials: bool = False
    max_age: int = Field(600, ge=0)

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> CorsConfig:
        if self.allow_credentials and "*" in self.allow_origins:
            raise ValueError(
                "allow_origins '*' cannot be combined with allow_credentials: list the origins explicitly"
            )
        return self


class LimitsConfig(_Strict):
    """Safety limits on what a client may send and how long a stream may run."""

    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    body_timeout_seconds: float = Field(60.0, gt=0)
    """How long a client may take to send its whole request body (a stalled upload would hold a slot)."""
    max_messages: int = Field(10_000, gt=0)
    max_embedding_inputs: int = Field(2048, gt=0)
    """Inputs one ``/v1/embeddings`` request may carry (OpenAI's own limit); more is a 400 naming
    ``input``. The gateway splits a request into as many upstream calls as each provider allows."""
    max_stream_seconds: float = Field(3600.0, gt=0)
    max_response_bytes: int = Field(64 * 1024 * 1024, gt=0)
    """Largest upstream answer, counted after decompression (streams too)."""
    max_event_bytes: int = Field(16 * 1024 * 1024, gt=0)
    """Longest single line or event of an upstream stream."""
    shutdown_grace_seconds: float = Field(30.0, ge=0)
    """How long leaving ``async with gateway`` waits for requests in flight before cancelling them."""


class HttpConfig(_Strict):
    """The shared upstream HTTP client."""

    transport: Literal["auto", "aiohttp", "httpx"] = "auto"
    """``auto``: aiohttp when installed (``rec-llm-gateway[fast]``, much faster under load), else httpx."""
    max_connections: int = Field(1000, gt=0)
    max_keepalive_connections: int = Field(200, gt=0)
    keepalive_expiry: float = Field(60.0, gt=0)
    trust_env: bool = True
    """Honour ``HTTP(S)_PROXY`` / ``NO_PROXY`` from the environment."""

    @model_validator(mode="after")
    def _aiohttp_installed(self) -> HttpConfig:
        if self.transport == "aiohttp":
            try:
                import aiohttp  # noqa: F401
            except ImportError:
                raise ValueError(
                    "transport 'aiohttp' needs aiohttp: pip install 'rec-llm-gateway[fast]'"
                ) from None
        return self


class TelemetryConfig(_Strict):
    capture_content: bool = False


class PriceConfig(_Strict):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)
    cache_write: float | None = Field(None, ge=0)


class PluginSpec(_Strict):
    """A plugin by import path (``package.module:Attribute``); a class is called with ``options``."""

    path: str = Field(pattern=r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$")
    options: dict[str, Any] = Field(default_factory=dict)


class GatewayConfig(_Strict):
    """The whole configuration. ``Gateway(...)`` accepts this, a dict of the same shape, or a file path."""

    default_provider: str | None = None
    include_extensions: bool = True
    auth: AuthConfig = Field(default_factory=AuthConfig)
    cors: CorsConfig | None = None
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    pricing: dict[str, PriceConfig] = Field(default_factory=dict)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    plugins: list[str | PluginSpec] = Field(default_factory=list)
    load_entry_points: bool = False
    models: dict[str, GroupConfig] = Field(default_factory=dict)
    """Client-facing model names: a group of deployments, or an alias (a string) of another name."""
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    """Where limits, budgets, usage and breakers live: ``memory://``, ``sqlite:///file.db``, ``redis://...``."""
    responses: ResponsesConfig = Field(default_factory=ResponsesConfig)
    """``/v1/responses``: conversation retention and built-in tools."""

    @field_validator("providers")
    @classmethod
    def _check_names(cls, providers: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        for name in providers:
            if not name or ":" in name or name != name.strip():
                raise ValueError(
                    f"provider name {name!r} must be non-empty, without ':' or surrounding spaces"
                )
        return providers

    @model_validator(mode="after")
    def _check_references(self) -> GatewayConfig:
        problems = []
        if self.default_provider is not None and self.default_provider not in self.providers:
            known = ", ".join(sorted(self.providers)) or "none configured"
            problems.append(
                ("default_provider", f"{self.default_provider!r} is not a configured provider ({known})")
            )
        check_references(self.models, self.routing, self.providers, problems)  # raises all of them
        return self

    @classmethod
    def load(cls, source: GatewayConfig | Mapping[str, Any] | None) -> GatewayConfig:
        """Validate a dict (environment references expanded) or pass a config through."""
        if isinstance(source, GatewayConfig):
            return source
        data = expand_env(dict(source or {}))
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise config_error(exc) from None


def config_error(exc: ValidationError, prefix: str = "", hint: str = "") -> ConfigError:
    """One readable ConfigError listing every problem as ``path: what to do``."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        parts = [*(prefix.split(".") if prefix else []), *error["loc"]]
        path = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" if index else str(part)
            for index, part in enumerate(parts)
        )
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "config_path":  # the message names its own path
            lines.append(message)
            continue
        if error["type"] == "missing":
            message = f"required{hint}"
        elif error["type"] == "extra_forbidden":
            message = f"unknown setting{hint}"
        lines.append(f"{path or '(top level)'}: {message}")
    return ConfigError("invalid configuration:\n  " + "\n  ".join(lines))


def url_without_secrets(url: str) -> str:
    """``url`` without user info or query string."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
