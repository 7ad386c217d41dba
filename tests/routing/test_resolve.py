"""Model resolution exactly as DESIGN.md: provider:model, models lists, family prefixes, default."""

from __future__ import annotations

import pytest

from rec_llm_gateway import Gateway
from rec_llm_gateway.errors import InvalidModelError, NotFoundError


@pytest.fixture
def gateway() -> Gateway:
    return Gateway(
        {
            "default_provider": "local",
            "providers": {
                "openai": {"api_key": "sk-x"},
                "anthropic-proxy": {
                    "type": "openai",
                    "base_url": "http://proxy/v1",
                    "models": ["claude-special"],
                },
                "local": {
                    "type": "openai",
                    "base_url": "http://localhost:8000/v1",
                    "models": ["llama-3-70b"],
                },
                "mapped": {"type": "echo", "model_map": {"fast": "echo-small"}},
                "ollama": {"type": "ollama", "models": ["llama3:8b"]},
            },
        }
    )


@pytest.mark.parametrize(
    ("model", "provider", "upstream_model"),
    [
        ("openai:gpt-4o", "openai", "gpt-4o"),
        ("local:anything", "local", "anything"),
        ("ollama:llama3:8b", "ollama", "llama3:8b"),  # split on the FIRST colon only
        ("llama3:8b", "ollama", "llama3:8b"),  # not a provider prefix, but a listed model
        ("llama-3-70b", "local", "llama-3-70b"),  # a provider's models list
        ("claude-special", "anthropic-proxy", "claude-special"),  # models list beats family prefixes
        ("gpt-4o-mini", "openai", "gpt-4o-mini"),  # family prefix gpt-
        ("o3-mini", "openai", "o3-mini"),
        ("chatgpt-4o-latest", "openai", "chatgpt-4o-latest"),
        ("fast", "mapped", "echo-small"),  # model_map names are served models
        ("mapped:fast", "mapped", "echo-small"),
        ("something-else", "local", "something-else"),  # default_provider
    ],
)
def test_routes(gateway: Gateway, model: str, provider: str, upstream_model: str) -> None:
    route = gateway.resolver.resolve(model)
    assert (route.provider.name, route.model) == (provider, upstream_model)


@pytest.mark.parametrize(
    "model", ["invalid::model", ":gpt-4", "openai:", "", " ", "openai: gpt-4", " gpt-4", "a :b"]
)
def test_invalid_names(gateway: Gateway, model: str) -> None:
    with pytest.raises(InvalidModelError) as error:
        gateway.resolver.resolve(model)
    assert error.value.status_code == 400
    assert error.value.code == "invalid_model"


def test_unknown_provider_prefix_is_404(gateway: Gateway) -> None:
    with pytest.raises(NotFoundError) as error:
        gateway.resolver.resolve("azure:gpt-4o")
    assert error.value.code == "model_not_found"
    assert "'azure' is not configured" in error.value.message


def test_no_default_and_no_owner_is_404() -> None:
    gateway = Gateway(
        {"providers": {"a": {"type": "echo", "models": ["x"]}, "b": {"type": "echo", "models": ["y"]}}}
    )
    with pytest.raises(NotFoundError):
        gateway.resolver.resolve("z")


def test_single_provider_is_the_default() -> None:
    gateway = Gateway({"providers": {"only": {"type": "echo"}}})
    assert gateway.resolver.resolve("whatever").provider.name == "only"


def test_family_prefix_prefers_the_provider_named_like_its_type() -> None:
    gateway = Gateway({"providers": {"work": {"type": "openai"}, "openai": {"type": "openai"}}})
    assert gateway.resolver.resolve("gpt-4o").provider.name == "openai"


def test_resolution_cache_is_bounded(gateway: Gateway) -> None:
    for index in range(5000):
        gateway.resolver.resolve(f"local:model-{index}")
    assert len(gateway.resolver._cache) <= 4096
