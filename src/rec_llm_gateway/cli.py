"""``rec-llm-gateway``: run the gateway standalone, or check a config file.

rec-llm-gateway serve --config gateway.yaml [--host 127.0.0.1] [--port 8000]
rec-llm-gateway check-config gateway.yaml
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .errors import ConfigError
from .gateway import Gateway

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rec-llm-gateway", description="OpenAI-compatible LLM gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="run the gateway as a standalone server (needs the 'server' extra)"
    )
    serve.add_argument("--config", "-c", required=True, help="YAML, TOML or JSON config file")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    check = commands.add_parser("check-config", help="validate a config file and print what it configures")
    check.add_argument("config", help="YAML, TOML or JSON config file")
    args = parser.parse_args(argv)

    try:
        gateway = Gateway.from_file(args.config)
        gateway.check()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if args.command == "check-config":
        print(f"{args.config}: OK")
        for provider in gateway.providers.values():
            models = ", ".join(provider.model_ids()) or "(any model)"
            print(f"  provider {provider.name} (type {provider.type}): {models}")
        for name, reason in gateway.disabled_providers.items():
            print(f"  provider {name}: disabled ({reason})")
        for name in gateway.router.group_names():
            group = gateway.router.plan(name).group
            deployments = ", ".join(deployment.name for deployment in group.deployments) or "(none available)"
            print(f"  model {name} ({group.strategy.name}): {deployments}")
        return 0

    try:
        import uvicorn
    except ImportError:
        print("error: serving needs uvicorn: pip install 'rec-llm-gateway[server]'", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(gateway, host=args.host, port=args.port, log_level=args.log_level, lifespan="on")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
