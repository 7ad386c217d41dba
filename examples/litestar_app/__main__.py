"""python -m examples.litestar_app [--host 127.0.0.1] [--port 8001]"""

from __future__ import annotations

import argparse

import uvicorn

parser = argparse.ArgumentParser(description="Run the Litestar demo with the gateway at /llm")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8001)
args = parser.parse_args()
print(f"demo: http://{args.host}:{args.port}/   gateway: http://{args.host}:{args.port}/llm/v1")
uvicorn.run("examples.litestar_app.app:app", host=args.host, port=args.port)
