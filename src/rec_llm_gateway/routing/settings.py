"""Configuration models for routing: ``models:`` (groups and aliases), ``routing:``, per-provider
``rate_limits`` / ``health_check``, and per-key limits under ``auth.keys``.

They live here rather than in ``config.py`` to keep that module small; ``config.py`` re-exports what
the config tree uses. Cross-references (a deployment naming a provider that is not configured, an
alias cycle) are checked by ``check_references`` once the whole tree is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..errors import CONNECTION_ERROR, TIMEOUT

__all__ = [
    "CONNECTION_ERROR",
    "DEFAULT_RETRY_CODES",
    "STRATEGIES",
    "TIMEOUT",
    "BackoffConfig",
    "BreakerConfig",
    "DeploymentConfig",
    "GatewayKeyConfig",
    "GroupConfig",
    "HealthCheckConfig",
    "LatencyConfig",
    "RateLimitConfig",
    "RoutingConfig",
    "Strategy",
    "check_references",
]

Strategy = Literal["priority", "round_robin", "weighted", "cost", "latency", "least_busy"]
STRATEGIES: Final = ("priority", "round_robin", "weighted", "cost", "latency", "least_busy")
RetryCode = int | Literal["connection_error", "timeout"]
# 529 is Anthropic's "overloaded": the deployment works but sheds load, so another may answer.
DEFAULT_RETRY_CODES: Final[tuple[RetryCode, ...]] = (429, 500, 502, 503, 504, 529, CONNECTION_ERROR, TIMEOUT)
DEFAULT_POLICY_CODES: Final = ("content_policy_violation", "content_filter")


MAX_RETRIES: Final = 100
"""More retries than this is a mistake (a request retried without end), not a policy."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True, defer_build=True)


class RateLimitConfig(_Strict):
    """Limits over a sliding 60-second window (and on requests in flight). ``None``: no limit."""

    requests_per_minute: int | None = Field(
        None, gt=0, validation_alias=AliasChoices("requests_per_minute", "rpm")
    )
    tokens_per_minute: int | None = Field(
        None, gt=0, validation_alias=AliasChoices("tokens_per_minute", "tpm")
    )
    concurrent_requests: int | None = Field(None, gt=0)

    @property
    def limited(self) -> bool:
        return (
            self.requests_per_minute is not None
            or self.tokens_per_minute is not None
            or self.concurrent_requests is not None
        )


class HealthCheckConfig(_Strict):
    """Active health checks of one provider, run in the background while the gateway is open."""

    enabled: bool = True
    interval: float = Field(30.0, gt=0)
    """Seconds between checks."""
    timeout: float = Field(5.0, gt=0)
    """Seconds a check may take before it counts as failed."""
    unhealthy_threshold: int = Field(1, ge=1)
    """Consecutive failed checks that mark the provider unhealthy (its deployments are skipped)."""
    healthy_threshold: int = Field(1, ge=1)
    """Consecutive passed checks that mark it healthy again."""
    path: str | None = Field(None, min_length=1)
    """What to check instead of the provider's own cheap call (OpenAI: ``GET /models``): a path under
    its ``base_url`` (``/health``) or a full http(s) URL, fetched with ``GET`` and no credentials."""


class DeploymentConfig(RateLimitConfig):
    """One deployment in a model group: ``provider:model``, or ``provider`` alone (the requested name,
    through that provider's ``model_map``). A bare string is shorthand for ``{model: ...}``."""

    model: str = Field(min_length=1)
    weight: float = Field(1.0, gt=0)
    """Share of traffic under the ``weighted`` strategy."""
    priority: int = 0
    """Lower goes first; higher tiers are used only when the lower ones cannot take the request."""
    context_window: int | None = Field(None, gt=0)
    """Overrides the catalog's context window (tokens) for context-window fallbacks."""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"model": value} if isinstance(value, str) else value


class GroupConfig(_Strict):
    """A client-facing model name: a group of deployments, or an alias of another name.

    A bare list is shorthand for ``{deployments: [...]}``, a bare string for ``{alias: ...}``.
    """

    deployments: list[DeploymentConfig] = Field(default_factory=list)
    alias: str | None = None
    """Another model name (a group, ``provider:model``, or any name the gateway resolves)."""
    strategy: Strategy | None = None
    """Overrides ``routing.strategy`` for this group."""
    max_retries: int | None = Field(None, ge=0, le=MAX_RETRIES)
    """Overrides ``routing.max_retries`` for this group."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {"deployments": value}
        if isinstance(value, str):
            return {"alias": value}
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> GroupConfig:
        if bool(self.deployments) == (self.alias is not None):
            raise ValueError("give either 'deployments' (a non-empty list) or 'alias' (another model name)")
        return self


class BreakerConfig(_Strict):
    """The circuit breaker every deployment has (closed -> open -> half-open -> closed)."""

    enabled: bool = True
    failure_threshold: int = Field(5, ge=1)
    """Consecutive failures that open the circuit."""
    failure_rate: float | None = Field(None, gt=0, le=1)
    """Also open when this share of the calls in ``window`` failed (at least ``min_requests`` calls)."""
    window: float = Field(60.0, gt=0)
    min_requests: int = Field(10, ge=1)
    timeout: float = Field(30.0, gt=0)
    """Seconds the circuit stays open before letting probes through (half-open)."""
    success_threshold: int = Field(1, ge=1)
    """Successful probes that close it again."""
    half_open_requests: int = Field(1, ge=1)
    """Probes allowed in flight at once while half-open."""


class BackoffConfig(_Strict):
    """Exponential backoff with full jitter before a deployment is tried again in the same request."""

    initial: float = Field(0.5, ge=0)
    max: float = Field(8.0, ge=0)


class LatencyConfig(_Strict):
    """What the ``latency`` strategy measures: a percentile of the recent calls of each deployment."""

    percentile: float = Field(50.0, gt=0, le=100)
    window: float = Field(300.0, gt=0)
    """Seconds a sample counts for (a deployment without recent samples is tried to measure it)."""
    samples: int = Field(64, ge=1, le=4096)
    """At most this many recent samples per deployment."""


class RoutingConfig(_Strict):
    """How requests are spread over deployments, retried and failed over."""

    strategy: Strategy = "priority"
    max_retries: int | None = Field(None, ge=0, le=MAX_RETRIES)
    """Attempts after the first within a model group, failovers to other deployments included (so
    ``0`` is one attempt, no failover inside the group). ``None``: each deployment once."""
    retry_codes: list[RetryCode] = Field(default_factory=lambda: list(DEFAULT_RETRY_CODES))
    """Upstream statuses (and ``connection_error`` / ``timeout``) that move on to another attempt."""
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    max_retry_wait: float = Field(10.0, ge=0)
    """The longest the gateway waits before one retry (a longer ``Retry-After`` is not waited for)."""
    timeout: float | None = Field(None, gt=0)
    """A deadline for the whole request: every attempt, wait and fallback (seconds)."""
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    """Model -> models to try, in order, when its deployments fail or cannot take the request."""
    context_window_fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    """Model -> larger-context models for requests that do not fit its context window."""
    content_policy_fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    """Model -> models to try when a provider refuses the request on content policy."""
    content_policy_codes: list[str] = Field(default_factory=lambda: list(DEFAULT_POLICY_CODES))
    """Upstream error codes (or types) that mean a content-policy refusal."""
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    latency: LatencyConfig = Field(default_factory=LatencyConfig)

    @field_validator("retry_codes")
    @classmethod
    def _check_codes(cls, codes: list[RetryCode]) -> list[RetryCode]:
        for code in codes:
            if isinstance(code, int) and not 400 <= code <= 599:
                raise ValueError(f"{code} is not an HTTP error status (400-599)")
        return codes


class GatewayKeyConfig(RateLimitConfig):
    """A gateway key with its own name (reported to plugins as the key id), limits and budget."""

    key: SecretStr
    name: str | None = Field(None, min_length=1, max_length=128)
    monthly_budget_usd: float | None = Field(None, ge=0)
    """Refuse the key's requests (429 ``budget_exceeded``) once it has spent this much this UTC month."""
    unpriced: Literal["allow", "deny"] | None = None
    """With a budget: may the key use a model with no known price (its spend would not move)? Default
    ``auth.unpriced`` (``deny``)."""


def check_references(
    models: Mapping[str, GroupConfig],
    routing: RoutingConfig,
    providers: Mapping[str, Any],
    problems: list[tuple[str, str]] | None = None,
) -> None:
    """Raise (a pydantic error naming the paths) for names that cannot refer to anything: every such
    name at once, one per line, after the ``(path, problem)`` pairs already in ``problems``."""
    problems = [] if problems is None else problems
    known = ", ".join(sorted(providers)) or "none configured"
    for name, group in models.items():
        if not name or ":" in name or name != name.strip():
            problems.append(
                (f"models.{name!r}", "a model name must be non-empty, without ':' or surrounding spaces")
            )
            continue
        if group.alias is not None:
            _check_target(problems, f"models.{name}.alias", group.alias, models, providers, known)
            continue
        for index, deployment in enumerate(group.deployments):
            provider, colon, model = deployment.model.partition(":")
            where = f"models.{name}.deployments[{index}].model"
            if provider not in providers:
                problems.append(
                    (
                        where,
                        f"provider {provider!r} is not configured (configured: {known}); "
                        "write 'provider:model' or 'provider'",
                    )
                )
            elif colon and (not model or model != model.strip()):
                problems.append(
                    (where, f"{deployment.model!r}: write 'provider:model' with both parts non-empty")
                )
    _check_aliases(problems, models)
    for section in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        table: dict[str, list[str]] = getattr(routing, section)
        for name, targets in table.items():
            for index, target in enumerate(targets):
                _check_target(
                    problems, f"routing.{section}.{name}[{index}]", target, models, providers, known
                )
    if problems:
        lines = "\n  ".join(f"{path}: {detail}" for path, detail in problems)
        # A custom error type so that config_error prints the paths we name, not "(top level)".
        raise PydanticCustomError("config_path", "{lines}", {"lines": lines})


def _check_target(
    problems: list[tuple[str, str]],
    where: str,
    target: str,
    models: Mapping[str, Any],
    providers: Mapping[str, Any],
    known: str,
) -> None:
    if not target or target != target.strip():
        problems.append((where, f"{target!r} is not a model name"))
        return
    prefix, colon, _ = target.partition(":")
    if colon and target not in models and prefix not in providers and not _listed(target, providers):
        # Other names are resolved when the router is built (they may be a provider's model).
        problems.append((where, f"{target!r}: provider {prefix!r} is not configured (configured: {known})"))


def _listed(model: str, providers: Mapping[str, Any]) -> bool:
    """Whether some provider lists ``model`` (Ollama tags such as ``llama3:8b`` contain colons)."""
    return any(
        model in getattr(settings, "models", ()) or model in getattr(settings, "model_map", {})
        for settings in providers.values()
    )


def _check_aliases(problems: list[tuple[str, str]], models: Mapping[str, GroupConfig]) -> None:
    for start, group in models.items():
        seen = [start]
        target = group.alias
        while target is not None and target in models:
            if target in seen:
                chain = " -> ".join([*seen, target])
                problems.append((f"models.{start}.alias", f"aliases form a cycle ({chain})"))
                break
            seen.append(target)
            target = models[target].alias
