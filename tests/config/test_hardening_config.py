"""Issue 16 (items 10, 15): configuration accepted without a word, and configuration that leaked.

Each case used to load silently (and then fail every request, or apply the wrong limits); now it is
a ``ConfigError`` naming the path, and no message or dump shows a secret from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rec_llm_gateway import Gateway, GatewayConfig
from rec_llm_gateway.cli import main
from rec_llm_gateway.config import load_config_file
from rec_llm_gateway.errors import ConfigError

from ..conftest import PROVIDER_KEY, SECOND_KEY


def refused(config: dict[str, Any], match: str) -> str:
    with pytest.raises(ConfigError, match=match) as raised:
        GatewayConfig.load(config)
    message = str(raised.value)
    assert PROVIDER_KEY not in message and SECOND_KEY not in message
    return message


def openai(**settings: Any) -> dict[str, Any]:
    return {"providers": {"openai": {"api_key": "k", **settings}}}


# -- duplicate keys in files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("gateway.yaml", "providers:\n  openai: {api_key: a}\n  openai: {api_key: b}\n"),
        ("gateway.yaml", "auth:\n  api_keys: [x]\nauth:\n  api_keys: [y]\n"),
        ("gateway.json", '{"providers": {"openai": {"api_key": "a", "api_key": "b"}}}'),
    ],
)
def test_a_key_given_twice_in_a_file_is_an_error(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match="appears twice"):
        load_config_file(path)


def test_yaml_anchors_and_merges_still_load(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "base: &base {api_key: a}\nproviders:\n  openai: *base\n  other: {<<: *base, type: openai}\n"
    )
    assert load_config_file(path)["providers"]["other"] == {"api_key": "a", "type": "openai"}


def test_check_config_does_not_print_the_offending_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inline_key = "sk-inline0123456789"  # short: PyYAML's snippet would cut a long line
    path = tmp_path / "gateway.yaml"
    path.write_text(f"providers:\n  openai: {{api_key: {inline_key}, ]\n")
    assert main(["check-config", str(path)]) == 2
    out = capsys.readouterr()
    assert "line 2" in out.err
    assert inline_key not in out.err + out.out


# -- auth.keys -------------------------------------------------------------------------------------


def test_the_same_key_value_twice_is_an_error() -> None:
    keys = [{"key": PROVIDER_KEY, "name": "a"}, {"key": PROVIDER_KEY, "name": "b", "requests_per_minute": 1}]
    refused({"auth": {"keys": keys}}, r"keys\[1\]\.key is the same key as keys\[0\]\.key")
    refused({"auth": {"api_keys": [PROVIDER_KEY], "keys": [{"key": PROVIDER_KEY}]}}, "same key as api_keys")


# -- headers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"x-team": "a\r\nx-injected: 1"},
        {"x-team": "a\nb"},
        {"x-team": "a\x00"},
        {"x-te\r\nam": "a"},
        {"x team": "a"},
        {"": "a"},
    ],
)
def test_a_header_with_a_line_break_or_a_bad_name_is_an_error(headers: dict[str, str]) -> None:
    refused(openai(headers=headers), r"providers\.openai\.headers")


# -- base_url ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "match"),
    [
        (f"https://user:{PROVIDER_KEY}@api.example.com/v1", "user:password@"),
        (f"https://{PROVIDER_KEY}@api.example.com/v1", "user:password@"),
        (f"https://api.example.com/v1?key={PROVIDER_KEY}", "query string"),
        ("ftp://api.example.com/v1", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("api.example.com/v1", "http:// or https://"),
        ("https:///v1", "no host"),
        ("https://api.example.com:99999/v1", "not a valid URL"),
    ],
)
def test_a_base_url_with_credentials_a_query_or_another_scheme_is_an_error(base_url: str, match: str) -> None:
    refused(openai(base_url=base_url), rf"providers\.openai\.base_url: .*{match}")


def test_plain_base_urls_still_load() -> None:
    for base_url in ("http://localhost:8000/v1", "https://api.example.com", "https://[::1]:8443/v1/"):
        GatewayConfig.load(openai(base_url=base_url))


# -- max_retries ------------------------------------------------------------------------------------


def test_max_retries_has_a_bound() -> None:
    refused({"routing": {"max_retries": 10**9}}, r"routing\.max_retries")
    models = {"m": {"deployments": ["openai:gpt-4o"], "max_retries": 10**6}}
    refused({**openai(), "models": models}, r"models\.m\.max_retries")
    GatewayConfig.load({"routing": {"max_retries": 100}})


# -- model_dump -------------------------------------------------------------------------------------


def test_model_dump_shows_no_secret_and_the_gateway_still_works() -> None:
    config = {
        "providers": {
            "openai": {"api_key": PROVIDER_KEY, "headers": {"x-secret": SECOND_KEY}},
            "bedrock": {
                "region": "us-east-1",
                "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
                "aws_secret_access_key": PROVIDER_KEY,
                "aws_session_token": SECOND_KEY,
            },
        }
    }
    loaded = GatewayConfig.load(config)
    for dump in (str(loaded.model_dump()), loaded.model_dump_json(), str(loaded.model_dump(mode="json"))):
        assert PROVIDER_KEY not in dump and SECOND_KEY not in dump
    gateway = Gateway(loaded)  # providers are built from the real values
    assert gateway.providers["openai"].settings.headers == {"x-secret": SECOND_KEY}
