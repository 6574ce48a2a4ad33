"""The layout rules of the code base, checked: who may import whom, file sizes, self-contained docs.

- ``detector_sim`` imports from ``gnnjets`` only the dependency-free base and the ROOT schema;
  ``gnnjets`` never imports ``detector_sim``.
- ``gnnjets.base`` imports nothing heavy (standard library, numpy, PyYAML) and nothing of
  ``gnnjets`` outside itself (but the package version).
- ``gnnjets.nn`` never imports ``gnnjets.io``; ``gnnjets.train`` never imports ``gnnjets.embed``
  or ``gnnjets.cli``; ``gnnjets.graphs`` never imports ``gnnjets.data``.
- No source file is over 400 lines.
- The README, docs/, configs/ and the code point to no document outside the repository.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for package in ("gnnjets", "detector_sim") for p in (ROOT / package).rglob("*.py"))
MAX_LINES = 400


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth of the file (functions included), fully qualified."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def violations(prefix: str, allowed, forbidden) -> list[str]:
    found = []
    for path in SOURCES:
        module = package_of(path)
        if not (module == prefix or module.startswith(prefix + ".")):
            continue
        for name in sorted(imports_of(path)):
            if forbidden(name) and not allowed(name):
                found.append(f"{module} imports {name}")
    return found


def test_detector_sim_imports_only_the_base_and_the_schema():
    def allowed(name):
        return (name in ("gnnjets", "gnnjets.io", "gnnjets.io.schema", "gnnjets.__version__")
                or name.startswith("gnnjets.base"))
    assert violations("detector_sim", allowed, lambda name: name.split(".")[0] == "gnnjets") == []


def test_gnnjets_never_imports_detector_sim():
    assert violations("gnnjets", lambda name: False, lambda name: name.split(".")[0] == "detector_sim") == []


def test_base_is_dependency_free():
    stdlib = set(sys.stdlib_module_names)

    def allowed(name):
        top = name.split(".")[0]
        return (top in stdlib or top in ("numpy", "yaml") or name.startswith("gnnjets.base")
                or name in ("gnnjets", "gnnjets.__version__", "torch"))  # torch: only reached with a tensor
    assert violations("gnnjets.base", allowed, lambda name: True) == []


@pytest.mark.parametrize("package, forbidden", [
    ("gnnjets.nn", ("gnnjets.io",)),
    ("gnnjets.train", ("gnnjets.embed", "gnnjets.cli")),
    ("gnnjets.graphs", ("gnnjets.data", "gnnjets.train", "gnnjets.embed")),
    ("gnnjets.io", ("gnnjets.graphs", "gnnjets.data", "gnnjets.nn", "gnnjets.train", "torch")),
])
def test_arrows_point_one_way(package, forbidden):
    def is_forbidden(name):
        return any(name == f or name.startswith(f + ".") for f in forbidden)
    assert violations(package, lambda name: False, is_forbidden) == []


def test_no_source_file_over_400_lines():
    long = [f"{path.relative_to(ROOT)} ({n})" for path in SOURCES
            if (n := len(path.read_text().splitlines())) > MAX_LINES]
    assert long == []


def test_nothing_points_outside_the_repository():
    texts = [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("configs/**/*.yaml"), *SOURCES,
             *ROOT.glob("benchmarks/*.py"), *ROOT.glob("examples/*.py"), *ROOT.glob("data/*.md")]
    outside = re.compile(r"\.\./sh[a]red|\bseeds?/0\d\d|\bseed\s00\d|DESIGN\s§|DESIGN\.md|STYLE\.md")  # spelt so it does not match itself
    link = re.compile(r"\]\((\.\./[^)]*)\)")
    found = []
    for path in texts:
        text = path.read_text()
        for pattern in (outside, link):
            found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in pattern.finditer(text)]
    assert found == []
