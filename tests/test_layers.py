"""The import rule: packages import only from lower layers (STYLE.md, DESIGN.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "flotilla"

# rank of each top-level unit; a unit may import only units of strictly lower rank (or itself)
RANKS = {
    "_atomic": 0,
    "_durations": 0,
    "errors": 0,
    "types": 0,
    "settings": 0,
    "clock": 0,
    "signature": 0,
    "registry": 1,
    "runtimes": 1,
    "records": 1,
    "audit": 1,
    "monitoring": 2,
    "portfolio": 2,
    "testing": 2,
    "evaluation": 3,
    "workspace": 3,
    "gateway": 4,
    "quickstart": 4,
    "dashboard": 5,
    "cli": 6,
    "__main__": 7,
}
BASE = {"_atomic", "_durations", "errors", "types", "settings", "clock", "signature"}


def _unit(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if rel.parts else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "flotilla" and len(parts) > 1 and parts[1] in RANKS:
                found.append((node.lineno, parts[1]))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_downwards(path: Path) -> None:
    unit = _unit(path)
    assert unit in RANKS, f"{unit} has no layer in tests/test_layers.py; add it"
    for lineno, target in _imports(path):
        if target == unit:
            continue
        if unit in BASE and target in BASE:
            continue
        assert RANKS[target] < RANKS[unit], (
            f"{path.relative_to(SRC)}:{lineno} imports flotilla.{target} "
            f"(layer {RANKS[target]}) from layer {RANKS[unit]} ({unit}); dependencies must "
            "point downwards"
        )


def test_errors_imports_only_the_standard_library() -> None:
    tree = ast.parse((SRC / "errors.py").read_text(encoding="utf-8"))
    mods = {
        (n.module or "") if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [n])
    }
    assert mods <= {"__future__"}


def test_core_import_pulls_no_heavy_library() -> None:
    code = (
        "import sys, flotilla, flotilla.runtimes, flotilla.registry, flotilla.cli.main\n"
        "heavy = [m for m in ('sklearn', 'onnxruntime', 'lightgbm', 'skl2onnx', 'skops', "
        "'onnxmltools', 'torch') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing flotilla pulled in heavy optional libraries: {out}"
