"""python -m benchmarks.compare BEFORE [AFTER] [--runs N]

The in-process CPU figures of ``benchmarks.pipeline`` for two commits of the gateway, measured in
alternation (before, after, before, after, ...) in fresh processes, so a machine that gets busier or
quieter during the run weighs on both sides alike. Prints each figure's best round per side, the
ratio after / before, and the medians. AFTER defaults to the working tree. The harness (this
folder) is the working tree's for both sides: only the package under test changes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .harness import ROOT

_PROBE = (
    "import json, sys; from benchmarks import pipeline; "
    "print(json.dumps(pipeline.measure_rounds(30, sys.argv[1] == 'all', size=0.1)))"
)


def _export(commit: str, into: Path) -> Path:
    """The package's source at ``commit``, unpacked under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "src"], check=True, capture_output=True
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def _measure(source: Path, routes: str) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, routes], env=env, check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("before", help="a commit (e.g. main, HEAD~1)")
    parser.add_argument("after", nargs="?", help="a commit; default: the working tree")
    parser.add_argument("--runs", type=int, default=5, help="processes per side (default 5)")
    parser.add_argument("--chat-only", action="store_true", help="skip the /v1/responses figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        sides = {"before": _export(args.before, Path(scratch) / "before")}
        if args.after:
            sides["after"] = _export(args.after, Path(scratch) / "after")
        else:
            sides["after"] = ROOT / "src"
        figures: dict[str, list[dict[str, list[float]]]] = {"before": [], "after": []}
        for run in range(args.runs):
            for side, source in sides.items():
                figures[side].append(_measure(source, "chat" if args.chat_only else "all"))
            print(f"run {run + 1}/{args.runs} done", file=sys.stderr, flush=True)
    # The least disturbed round of each side is the headline (CPU time still grows when another
    # process shares the core's caches); the medians of all rounds are shown beside it.
    print(f"{'figure (us CPU)':<42}{'before':>10}{'after':>10}{'ratio':>8}{'medians':>20}")
    for key in figures["before"][0]:
        before = [value for run in figures["before"] for value in run[key]]
        after = [value for run in figures["after"] for value in run[key]]
        medians = f"{statistics.median(before):.1f} / {statistics.median(after):.1f}"
        print(
            f"{key:<42}{min(before):>10.2f}{min(after):>10.2f}{min(after) / min(before):>8.2f}{medians:>20}"
        )


if __name__ == "__main__":
    main()
