"""No module in ``src/`` over 400 lines (DESIGN: most under 300): a module that grows past it is split
by what it holds."""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
LIMIT = 400


def test_no_module_over_400_lines() -> None:
    sizes = {
        path.relative_to(SRC).as_posix(): len(path.read_text().splitlines()) for path in SRC.rglob("*.py")
    }
    assert len(sizes) > 50
    assert {name: lines for name, lines in sizes.items() if lines > LIMIT} == {}
