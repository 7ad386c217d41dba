"""python -m examples.rag [--question TEXT] [--config gateway.yaml] [--embedding-model M] [--chat-model M]

Starts the gateway (mounted in a FastAPI app, uvicorn on a free loopback port), embeds the example
documents through it, then answers the question with the closest ones as context. Without
``--config`` the gateway runs on ``echo`` only: no keys, no network."""

from __future__ import annotations

import argparse
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from openai import OpenAI

from rec_llm_gateway import Gateway

from .rag import DOCUMENTS, answer, build_index


@contextlib.contextmanager
def served(gateway: Gateway) -> Iterator[str]:
    """The gateway at /llm in a FastAPI app, served on loopback for as long as the block runs."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        async with gateway:
            yield

    app = FastAPI(lifespan=lifespan)
    app.mount("/llm", gateway)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/llm/v1"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--question", default="How do I mount the gateway in a FastAPI app?")
    parser.add_argument("--config", help="a gateway config file (default: echo only)")
    parser.add_argument("--embedding-model", default="echo:text-embedding-3-small")
    parser.add_argument("--chat-model", default="echo:echo-1")
    args = parser.parse_args(argv)
    gateway = Gateway.from_file(args.config) if args.config else Gateway({"providers": {"echo": {}}})
    with served(gateway) as base_url:
        client = OpenAI(base_url=base_url, api_key="unused")
        index = build_index(client, args.embedding_model, DOCUMENTS)
        print(f"indexed {len(index.documents)} documents ({len(index.vectors[0])} dimensions)")
        reply = answer(client, index, args.embedding_model, args.chat_model, args.question)
        print(f"\nquestion: {args.question}\n\nanswer:\n{reply}\n")
        for record in gateway.usage.get_all():
            print(
                f"usage: {record.provider}:{record.model}: {record.calls} calls, {record.total_tokens} tokens"
            )
    return reply


if __name__ == "__main__":
    main()
