"""Configuration: files, environment references, validation errors that name the path and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rec_llm_gateway import ConfigError, Gateway, GatewayConfig
from rec_llm_gateway.config import expand_env

from ..conftest import PROVIDER_KEY

YAML = """
default_provider: ${DEFAULT_PROVIDER:-echo}
providers:
  echo: {}
  openai:
    api_key: "${TEST_OPENAI_KEY}"
    models: [gpt-4o-mini]
pricing:
  "echo:echo-1": {input: 1, output: 2}
"""


def test_yaml_toml_json_files_load_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_OPENAI_KEY", PROVIDER_KEY)
    (tmp_path / "g.yaml").write_text(YAML)
    (tmp_path / "g.toml").write_text(
        'default_provider = "${DEFAULT_PROVIDER:-echo}"\n'
        "[providers.echo]\n"
        '[providers.openai]\napi_key = "${TEST_OPENAI_KEY}"\nmodels = ["gpt-4o-mini"]\n'
        '[pricing."echo:echo-1"]\ninput = 1\noutput = 2\n'
    )
    (tmp_path / "g.json").write_text(
        json.dumps(
            {
                "default_provider": "${DEFAULT_PROVIDER:-echo}",
                "providers": {
                    "echo": {},
                    "openai": {"api_key": "${TEST_OPENAI_KEY}", "models": ["gpt-4o-mini"]},
                },
                "pricing": {"echo:echo-1": {"input": 1, "output": 2}},
            }
        )
    )
    for name in ("g.yaml", "g.toml", "g.json"):
        gateway = Gateway.from_file(tmp_path / name)
        assert gateway.config.default_provider == "echo"
        assert sorted(gateway.providers) == ["echo", "openai"]
        assert gateway.providers["openai"].settings.keys() == [PROVIDER_KEY]
        assert gateway.config.pricing["echo:echo-1"].output == 2


def test_env_expansion_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SET_VAR", "value")
    monkeypatch.setenv("EMPTY_VAR", "")
    monkeypatch.delenv("UNSET_VAR", raising=False)
    assert expand_env("${SET_VAR}") == "value"
    assert expand_env("a-${SET_VAR}-b") == "a-value-b"
    assert expand_env("${UNSET_VAR:-fallback}") == "fallback"
    assert expand_env("${EMPTY_VAR:-fallback}") == "fallback"
    assert expand_env("${EMPTY_VAR}") == ""
    assert expand_env("$${SET_VAR}") == "${SET_VAR}"
    assert expand_env({"list": ["${SET_VAR}", 3]}) == {"list": ["value", 3]}
    with pytest.raises(
        ConfigError, match=r"providers\.openai\.api_key: environment variable UNSET_VAR is not set"
    ):
        expand_env({"providers": {"openai": {"api_key": "${UNSET_VAR}"}}})


def test_errors_name_the_path_and_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"providers\.azure\.api_version: required for type 'azure'"):
        Gateway({"providers": {"azure": {"base_url": "https://x.openai.azure.com"}}})
    with pytest.raises(ConfigError, match=r"providers\.azure\.api_verison: unknown setting for type 'azure'"):
        Gateway(
            {
                "providers": {
                    "azure": {"base_url": "https://x", "api_version": "2024-02-01", "api_verison": "x"}
                }
            }
        )
    with pytest.raises(ConfigError, match=r"providers\.x\.type: unknown provider type 'nope'"):
        Gateway({"providers": {"x": {"type": "nope"}}}).check()
    with pytest.raises(ConfigError, match=r"default_provider: 'ghost' is not a configured provider"):
        Gateway({"default_provider": "ghost", "providers": {"echo": {}}})
    with pytest.raises(ConfigError, match=r"providers\.openai\.timeout\.read"):
        Gateway({"providers": {"openai": {"timeout": {"read": -1}}}})
    with pytest.raises(ConfigError, match=r"(top level)|defaultprovider"):
        Gateway({"defaultprovider": "echo"})
    with pytest.raises(ConfigError, match="cannot be combined with allow_credentials"):
        Gateway({"cors": {"allow_origins": ["*"], "allow_credentials": True}})
    with pytest.raises(ConfigError, match="must be non-empty, without ':'"):
        Gateway({"providers": {"a:b": {"type": "echo"}}})


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        Gateway.from_file(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("providers: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Gateway.from_file(tmp_path / "bad.yaml")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        Gateway.from_file(tmp_path / "list.json")
    (tmp_path / "empty.yaml").write_text("")
    assert Gateway.from_file(tmp_path / "empty.yaml").providers == {}


def test_empty_key_disables_a_provider(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    gateway = Gateway(
        {
            "default_provider": "echo",
            "providers": {
                "echo": {},
                "openai": {"api_key": "${NOT_SET_KEY:-}"},
                "off": {"type": "echo", "enabled": False},
            },
        }
    )
    assert sorted(gateway.providers) == ["echo"]
    assert gateway.disabled_providers == {"openai": "its api_key is empty", "off": "enabled: false"}
    assert "provider 'openai' is disabled" in caplog.text
    # with openai disabled, gpt-* models fall through to the default provider
    assert gateway.resolver.resolve("gpt-4o").provider.name == "echo"


def test_secrets_never_in_reprs() -> None:
    config = GatewayConfig.load(
        {
            "auth": {"api_keys": ["gw-secret-1"]},
            "providers": {"openai": {"api_key": PROVIDER_KEY, "api_keys": ["sk-other-2"]}},
        }
    )
    gateway = Gateway(config)
    for text in (
        repr(config),
        str(config),
        repr(config.providers["openai"]),
        repr(gateway),
        config.model_dump_json(),
    ):
        assert PROVIDER_KEY not in text
        assert "sk-other-2" not in text
        assert "gw-secret-1" not in text


def test_gateway_config_object_is_accepted_as_is() -> None:
    config = GatewayConfig.load({"providers": {"echo": {}}})
    assert Gateway(config).config is config


def test_timeout_shorthand() -> None:
    gateway = Gateway({"providers": {"openai": {"timeout": 30}, "other": {"type": "openai", "timeout": 5}}})
    timeout = gateway.providers["openai"].settings.timeout
    assert (timeout.connect, timeout.read, timeout.total) == (10.0, 30, 30)
    assert gateway.providers["other"].settings.timeout.connect == 5.0
