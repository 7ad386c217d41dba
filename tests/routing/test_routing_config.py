"""Routing configuration: the shapes it accepts, errors that name the path and the fix, and how model
names resolve with groups, aliases and the default route (resolve.py's rules still hold)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from rec_llm_gateway import ConfigError, Gateway

from ..routing_support import chat, client, provider
from ..support import Reply


def providers(*names: str) -> dict[str, Any]:
    return {name: {"type": "echo"} for name in names}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"models": {"g": ["nope:gpt-4o"]}},
            r"models\.g\.deployments\[0\]\.model: provider 'nope' is not configured \(configured: a, b\); "
            r"write 'provider:model' or 'provider'",
        ),
        ({"models": {"g": ["a:"]}}, r"models\.g\.deployments\[0\]\.model: 'a:': write 'provider:model'"),
        ({"models": {"g": []}}, r"models\.g: give either 'deployments' \(a non-empty list\) or 'alias'"),
        ({"models": {"x": "y", "y": "x"}}, r"models\.x\.alias: aliases form a cycle \(x -> y -> x\)"),
        ({"models": {"a:b": ["a:m"]}}, r"models\.'a:b': a model name must be non-empty, without ':'"),
        (
            {"models": {"g": [{"model": "a:m", "weight": 0}]}},
            r"models\.g\.deployments\[0\]\.weight: Input should",
        ),
        ({"models": {"g": [{"model": "a:m", "rpm": -1}]}}, r"models\.g\.deployments\[0\]\.rpm: Input should"),
        ({"models": {"g": {"deployments": ["a:m"], "strategy": "fastest"}}}, r"models\.g\.strategy: Input"),
        ({"models": {"g": {"deployments": ["a:m"], "retries": 2}}}, r"models\.g\.retries: unknown setting"),
        (
            {"routing": {"strategy": "random"}},
            r"routing\.strategy: Input should be 'priority', 'round_robin'",
        ),
        ({"routing": {"retry_codes": [200]}}, r"routing\.retry_codes: 200 is not an HTTP error status"),
        (
            {"routing": {"breaker": {"timeout": 0}}},
            r"routing\.breaker\.timeout: Input should be greater than 0",
        ),
        ({"routing": {"breaker": {"thresold": 1}}}, r"routing\.breaker\.thresold: unknown setting"),
        (
            {"routing": {"fallbacks": {"g": ["zz:model"]}}},
            r"routing\.fallbacks\.g\[0\]: 'zz:model': provider 'zz' is not configured",
        ),
        (
            {"providers": {"a": {"type": "echo", "rate_limits": {"requests_per_minute": 0}}}},
            r"providers\.a\.rate_limits\.requests_per_minute: Input should be greater than 0",
        ),
        (
            {"providers": {"a": {"type": "echo", "health_check": {"interval": -1}}}},
            r"providers\.a\.health_check\.interval: Input should be greater than 0",
        ),
        (
            {"auth": {"keys": [{"key": "k1", "name": "n"}, {"key": "k2", "name": "n"}]}},
            r"auth\.keys: key names must be unique; 'n' repeats",
        ),
        ({"auth": {"keys": [{"name": "n"}]}}, r"auth\.keys\[0\]\.key: required"),
    ],
)
def test_errors_name_the_path_and_the_fix(config: dict[str, Any], message: str) -> None:
    config = {"providers": providers("a", "b"), **config}
    with pytest.raises(ConfigError, match=message):
        Gateway(config)


def test_names_that_resolve_only_at_build_time_are_checked_then() -> None:
    with pytest.raises(
        ConfigError, match=r"routing\.fallbacks\.g\[0\]: 'mystery' does not resolve: The model"
    ):
        Gateway({"providers": providers("a", "b"), "routing": {"fallbacks": {"g": ["mystery"]}}})
    with pytest.raises(ConfigError, match=r"models\.x\.alias: 'mystery' does not resolve"):
        Gateway({"providers": providers("a", "b"), "models": {"x": "mystery"}})


def test_shorthands_and_aliases_of_settings() -> None:
    gateway = Gateway(
        {
            "providers": providers("a", "b"),
            "models": {
                "g": ["a:m", {"model": "b:m", "rpm": 5, "tpm": 100, "weight": 2, "priority": 1}],
                "h": {"deployments": [{"model": "a:x", "requests_per_minute": 7, "tokens_per_minute": 9}]},
                "alias": "g",
            },
        }
    )
    g = gateway.config.models["g"]
    assert g.deployments[0].model == "a:m"
    assert (g.deployments[1].requests_per_minute, g.deployments[1].tokens_per_minute) == (5, 100)
    assert gateway.config.models["h"].deployments[0].requests_per_minute == 7
    assert gateway.config.models["alias"].alias == "g"
    assert gateway.router.plan("alias").group is gateway.router.plan("g").group


def test_the_example_in_docs_routing_md_loads(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "routing.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BACKUP_KEY",
        "AZURE_EU_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
    ):
        monkeypatch.setenv(name, f"sk-{name.lower()}-0123456789")
    monkeypatch.setenv("TEAM_A_KEY", "team-a-key-0123")
    monkeypatch.setenv("BATCH_KEY", "batch-key-0123")
    (tmp_path / "gateway.yaml").write_text(example)
    gateway = Gateway.from_file(tmp_path / "gateway.yaml")  # anthropic/gemini types may come later
    plan = gateway.router.plan("gpt4")
    assert [(d.name, d.weight, d.priority) for d in plan.group.deployments] == [
        ("azure-eu:gpt-4o", 3.0, 0),
        ("openai:gpt-4o", 1.0, 0),
        ("openai-backup:gpt-4o", 1.0, 1),
    ]
    assert plan.fallbacks["errors"] == ("claude-sonnet-4", "gemini-2.5-pro")
    assert [d.name for d in gateway.router.plan("fast").group.deployments] == [
        "local:llama-3.1-8b",
        "azure-eu:gpt-4o-mini",
    ]
    assert [d.name for d in gateway.router.plan("my-model").group.deployments] == [
        "openai:my-model",
        "openai-backup:my-model",
    ]
    assert [key_id for key_id, _ in gateway.auth.named] == ["team-a", "batch"]


def test_a_yaml_file_with_everything(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_KEY", "team-key-123456")
    (tmp_path / "gateway.yaml").write_text(
        """
providers:
  openai: {api_key: sk-x, rate_limits: {requests_per_minute: 500}, health_check: {interval: 30}}
  azure-eu: {type: openai, base_url: "http://azure.invalid/v1", model_map: {smart: gpt-4o}}
models:
  gpt-4o:
    strategy: weighted
    max_retries: 2
    deployments:
      - openai:gpt-4o
      - {model: azure-eu:gpt-4o, weight: 3, rpm: 600, tpm: 200000}
  smart: [azure-eu, openai]
  gpt4: gpt-4o
routing:
  strategy: latency
  retry_codes: [429, 500, 503, connection_error, timeout]
  backoff: {initial: 0.25, max: 4}
  timeout: 60
  fallbacks: {gpt-4o: [smart]}
  breaker: {failure_threshold: 3, timeout: 15}
auth:
  keys:
    - {key: "${TEAM_KEY}", name: team, requests_per_minute: 60, monthly_budget_usd: 25}
"""
    )
    gateway = Gateway.from_file(tmp_path / "gateway.yaml")
    plan = gateway.router.plan("gpt4")
    assert [d.name for d in plan.group.deployments] == ["openai:gpt-4o", "azure-eu:gpt-4o"]
    assert plan.group.strategy.name == "weighted"
    assert plan.fallbacks == {"errors": ("smart",)}
    smart = gateway.router.plan("smart").group
    assert [d.name for d in smart.deployments] == ["azure-eu:gpt-4o", "openai:smart"]
    assert smart.strategy.name == "latency"
    assert gateway.auth.named[0][0] == "team"
    assert gateway.keys.active


# -- resolution -----------------------------------------------------------------------------------


@pytest.fixture
def resolving() -> Gateway:
    return Gateway(
        {
            "default_provider": "local",
            "providers": {
                "openai": {"type": "openai"},
                "local": {"type": "echo", "models": ["shared"]},
                "a": {"type": "echo", "model_map": {"fast": "a-fast-model"}},
                "b": {"type": "echo", "model_map": {"fast": "b-fast-model"}},
            },
            "models": {
                "shared": ["a:shared-on-a"],  # a group beats a provider's models list
                "fast": ["a", "b"],  # provider-only: each provider's own name for "fast"
                "default": ["b", "a"],  # names nothing else claims
            },
        }
    )


@pytest.mark.parametrize(
    ("model", "deployments"),
    [
        ("shared", ["a:shared-on-a"]),
        ("local:shared", ["local:shared"]),  # provider:model goes straight to the provider
        ("fast", ["a:a-fast-model", "b:b-fast-model"]),
        ("gpt-4o", ["openai:gpt-4o"]),  # the family prefix still claims it before the default route
        ("something-else", ["b:something-else", "a:something-else"]),  # the default route
        ("b:fast", ["b:b-fast-model"]),
    ],
)
def test_resolution_order(resolving: Gateway, model: str, deployments: list[str]) -> None:
    assert [d.name for d in resolving.router.plan(model).group.deployments] == deployments


def test_resolution_rules_of_resolve_py_still_hold(resolving: Gateway) -> None:
    from rec_llm_gateway.errors import InvalidModelError, NotFoundError

    for bad in ("invalid::model", ":gpt-4", "openai:", " x"):
        with pytest.raises(InvalidModelError):
            resolving.router.plan(bad)
    with pytest.raises(NotFoundError, match="provider 'azure' is not configured"):
        resolving.router.plan("azure:gpt-4o")


def test_without_a_default_route_the_default_provider_takes_the_rest() -> None:
    gateway = Gateway({"default_provider": "b", "providers": providers("a", "b"), "models": {"g": ["a:m"]}})
    assert [d.name for d in gateway.router.plan("whatever").group.deployments] == ["b:whatever"]


async def test_the_default_route_serves_the_requested_name(upstreams) -> None:
    a, b, *_ = upstreams
    config = {"providers": {"a": provider(a), "b": provider(b)}, "models": {"default": ["a", "b"]}}
    a.reply(Reply(status=503, json={"error": {"message": "busy"}}))
    async with client(Gateway(config)) as http:
        response = await http.post("/v1/chat/completions", json=chat("my-local-model"))
    assert response.json()["x_rec_llm"]["provider"] == "b"
    assert b.last.json["model"] == "my-local-model"


async def test_groups_of_disabled_providers_answer_503(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    config = {
        "providers": {"off": {"type": "echo", "enabled": False}, "on": {"type": "echo"}},
        "models": {"g": ["off:m"], "h": ["off:m", "on:m"]},
    }
    gateway = Gateway(config)
    assert [d.name for d in gateway.router.plan("h").group.deployments] == ["on:m"]
    assert "models.g.deployments[0]: provider 'off' is not available" in caplog.text
    async with client(gateway) as http:
        response = await http.post("/v1/chat/completions", json=chat("g"))
    assert response.status_code == 503
    assert "No deployment is available for 'g'" in response.json()["error"]["message"]


def test_state_for_client_chosen_names_stays_bounded() -> None:
    gateway = Gateway({"providers": providers("a", "b"), "models": {"default": ["a", "b"]}})
    router = gateway.router
    for index in range(10_000):
        router.plan(f"model-{index}")  # the default route: a deployment per name and provider
        router.plan(f"a:direct-{index}")  # a direct route: a deployment per name
    assert len(router._plans) <= 4096
    assert len(router._adhoc) <= 4096 + 2
    assert len(router.providers["a"].deployments) <= 4096 + 2
    plan = router.plan("model-9999")
    assert all(
        deployment in router.providers[deployment.provider.name].deployments
        for deployment in plan.group.deployments
    )


def test_check_config_lists_model_groups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rec_llm_gateway.cli import main

    config = tmp_path / "gateway.yaml"
    config.write_text(
        "providers: {a: {type: echo}, b: {type: echo}}\n"
        "models:\n  g: {strategy: weighted, deployments: [a:m, b:m]}\n  alias: g\n"
    )
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "model g (weighted): a:m, b:m" in out
    assert "model alias (weighted): a:m, b:m" in out


def test_registering_a_plugin_keeps_what_routing_learnt() -> None:
    gateway = Gateway({"providers": providers("a"), "models": {"g": ["a:m"]}})
    router = gateway.router
    gateway.register(object())
    assert gateway.router is router
