"""The public names are a contract; the import stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import rec_llm_gateway

DESIGN_NAMES = {"Gateway", "GatewayMiddleware", "RequestRejected", "hookimpl"}


def test_all_is_sorted_and_complete() -> None:
    exported = rec_llm_gateway.__all__
    assert list(exported) == sorted(exported)
    assert DESIGN_NAMES <= set(exported)
    public = {name for name in vars(rec_llm_gateway) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(rec_llm_gateway, name)).__name__ == "module"}
    assert public - modules - {"annotations"} == set(exported)
    for name in exported:
        assert getattr(rec_llm_gateway, name) is not None


def test_documented_surface() -> None:
    from rec_llm_gateway import Gateway

    for attribute in ("from_file", "register", "start", "aclose", "__aenter__", "__aexit__", "__call__"):
        assert callable(getattr(Gateway, attribute))
    gateway = Gateway({"providers": {"echo": {}}})
    assert gateway.plugins.project_name == "rec_llm_gateway"
    for method in ("get_all", "get_by_date", "get_by_provider"):
        assert callable(getattr(gateway.usage, method))


def test_import_does_not_pull_heavy_dependencies() -> None:
    code = (
        "import sys, json, rec_llm_gateway; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'genai_prices', 'yaml', 'botocore', 'boto3', 'google', 'litestar', 'fastapi', 'starlette', "
        "'uvicorn', 'openai', 'opentelemetry.sdk', 'aiohttp'})))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(output) == []
