"""python -m examples.fastapi_app [--host 127.0.0.1] [--port 8000]"""

from __future__ import annotations

import argparse

import uvicorn

parser = argparse.ArgumentParser(description="Run the FastAPI demo with the gateway at /llm")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8000)
args = parser.parse_args()
print(f"demo: http://{args.host}:{args.port}/   gateway: http://{args.host}:{args.port}/llm/v1")
uvicorn.run("examples.fastapi_app.app:app", host=args.host, port=args.port)
