"""Shared benchmark plumbing: server processes on loopback, memory readings, percentiles."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Logs, configs and JSON reports go here; created on import so a fresh clone needs no setup step.
RESULTS = ROOT / "benchmarks" / "results"
RESULTS.mkdir(exist_ok=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raise_fd_limit() -> None:  # 1,000 streams need ~4,000 descriptors across the chain
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 16384), hard), hard))


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mib(self) -> float:
        return rss_mib(self.process.pid)


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {port} did not start") from None
            time.sleep(0.05)


@contextlib.contextmanager
def server(
    name: str, *arguments: str, command: Sequence[str] | None = None, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Run ``python -m benchmarks.servers <arguments> --port N`` (or ``command`` with ``{port}``)."""
    port = free_port()
    argv = (
        [part.format(port=port) for part in command]
        if command
        else [sys.executable, "-m", "benchmarks.servers", *arguments, "--port", str(port)]
    )
    log = (RESULTS / f"{name.replace(' ', '_')}.log").open("wb") if command else None
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=log or subprocess.DEVNULL,
        stderr=log,
        preexec_fn=_raise_fd_limit,  # runs before exec, while the child has a single thread
    )
    try:
        wait_for_port(port, process)
        yield Server(name, port, process)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        if log is not None:
            log.close()


def rss_mib(pid: int) -> float:
    """Resident memory of a process (and its children, for multi-process servers), in MiB."""
    total = 0
    for candidate in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            children = (task / "children").read_text().split()
            for child in children:
                found.append(int(child))
                found.extend(_children(int(child)))
    return found


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
