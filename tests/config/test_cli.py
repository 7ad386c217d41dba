"""The command line: check-config and serve."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rec_llm_gateway.cli import main


def test_check_config_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("providers:\n  echo: {}\n  openai:\n    api_key: ${NOPE_KEY:-}\n")
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out
    assert "provider echo (type echo)" in out
    assert "provider openai: disabled (its api_key is empty)" in out


def test_check_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[providers.azure]\nbase_url = "https://x.openai.azure.com"\n')
    assert main(["check-config", str(config)]) == 2
    assert "providers.azure.api_version: required for type 'azure'" in capsys.readouterr().err
    config.write_text('[providers.x]\ntype = "martian"\n')
    assert main(["check-config", str(config)]) == 2
    assert "unknown provider type 'martian'" in capsys.readouterr().err


def test_serve_runs_the_gateway_standalone(tmp_path: Path) -> None:
    config = tmp_path / "gateway.json"
    config.write_text('{"providers": {"echo": {}}}')
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    process = subprocess.Popen(
        [sys.executable, "-m", "rec_llm_gateway.cli", "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    json={"model": "echo:x", "messages": [{"role": "user", "content": "standalone"}]},
                )
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert response.json()["choices"][0]["message"]["content"] == "standalone"
    finally:
        process.terminate()
        process.wait(10)
