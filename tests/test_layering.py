"""Imports flow one way: tracker <- model <- embedder, training <- pipeline <- benchmarks <- scale <- cli.

Read from the source with ``ast`` (nothing is imported), so a new module that reaches up a layer
fails here whether or not a test happens to import it. ``io`` (formats, paths, errors) serves all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fmtrack"

# Layer of each top-level part of the package: a module may import only from its own part or from
# parts of a strictly lower layer. Parts missing here fail the test, so each new one is placed.
LAYERS = {
    "io": 0,
    "tracker": 1,
    "scores": 1,
    "camera_motion": 1,
    "video": 1,
    "model": 2,
    "embedder": 3,
    "training": 3,
    "pipeline": 4,
    "integrations": 5,
    "benchmarks": 5,
    "scale": 6,
    "cli": 7,
    "__init__": 8,
    "__main__": 8,
}


def _part(module_path: Path) -> str:
    relative = module_path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def _imported_parts(module_path: Path) -> set[str]:
    """The fmtrack parts a module imports, at module level or inside functions."""
    tree = ast.parse(module_path.read_text(), filename=str(module_path))
    package_parts = module_path.relative_to(PACKAGE).parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names = [node.module or ""]
            else:
                base = package_parts[:len(package_parts) - (node.level - 1)] if node.level > 1 else package_parts
                target = list(base) + ([node.module] if node.module else [])
                names = [".".join(["fmtrack", *target])] if node.module else \
                    [".".join(["fmtrack", *base, alias.name]) for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "fmtrack" and len(parts) > 1:
                found.add(parts[1])
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_has_a_layer():
    unknown = sorted({_part(m) for m in MODULES} - set(LAYERS))
    assert not unknown, f"place these parts of fmtrack in LAYERS: {unknown}"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: str(m.relative_to(PACKAGE)))
def test_imports_point_down(module):
    own = _part(module)
    upward = sorted(part for part in _imported_parts(module) - {own}
                    if part in LAYERS and LAYERS[part] >= LAYERS[own])
    assert not upward, f"{module.relative_to(PACKAGE)} ({own}, layer {LAYERS[own]}) imports {upward}"


def test_the_check_sees_relative_imports(tmp_path):
    """The parser resolves ``from ..x import y`` and ``from . import z`` to fmtrack parts."""
    fake = PACKAGE / "embedder" / "fmvae.py"
    parts = _imported_parts(fake)
    assert "model" in parts and "training" not in parts
