"""``rec-llm-gateway``: run the gateway standalone, or check a config file.

rec-llm-gateway serve --config gateway.yaml [--host 127.0.0.1] [--port 8000] [--workers N]
rec-llm-gateway check-config gateway.yaml
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Final

from .errors import ConfigError
from .gateway import Gateway

__all__ = ["main"]

CONFIG_ENV: Final = "REC_LLM_GATEWAY_CONFIG"
"""How ``serve --workers N`` tells each worker process which config file to load."""
LOG_LEVEL_ENV: Final = "REC_LLM_GATEWAY_LOG_LEVEL"
_LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes on the one port (share limits and usage with state.url: sqlite or redis)",
    )
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
    logging.basicConfig(level=args.log_level.upper(), format=_LOG_FORMAT)
    if args.workers > 1:
        if not gateway.ledger.shared:
            logging.getLogger("rec_llm_gateway").warning(
                "%d workers with state.url memory://: each worker keeps its own limits, budgets and usage; "
                "set state.url to sqlite:///... or redis://... to share them",
                args.workers,
            )
        # Workers are separate processes that import the app: they load the config from the environment.
        os.environ[CONFIG_ENV] = os.path.abspath(args.config)
        os.environ[LOG_LEVEL_ENV] = args.log_level.upper()
        uvicorn.run(
            "rec_llm_gateway.cli:worker_app",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            lifespan="on",
        )
        return 0
    uvicorn.run(gateway, host=args.host, port=args.port, log_level=args.log_level, lifespan="on")
    return 0


def worker_app() -> Gateway:
    """The gateway of one ``serve --workers N`` worker process."""
    logging.basicConfig(level=os.environ.get(LOG_LEVEL_ENV, "INFO"), format=_LOG_FORMAT)
    return Gateway.from_file(os.environ[CONFIG_ENV])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
