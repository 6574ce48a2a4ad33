"""The package as a user installs it: a wheel with its configs, one version, light imports, fast --help.

- The built wheel carries the shipped configs and mappings; installed without the source tree it
  loads a config by short name and the COCOA mapping.
- ``import gnnjets`` does not import torch; every command answers ``--help`` and ``--version`` at
  once (heavy imports happen after the arguments are parsed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

import gnnjets

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("detector-sim", "gnnjets-pretrain", "gnnjets-downstream", "gnnjets-embed", "gnnjets-plot", "gnnjets-export")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_package_list_is_complete_and_the_version_has_one_home():
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for package in ("gnnjets", "detector_sim")
             for p in (ROOT / package).rglob("__init__.py")}
    configs = {f"gnnjets.configs.{p.name}" for p in (ROOT / "configs").iterdir() if p.is_dir()}
    assert listed == found | configs
    assert pyproject()["project"]["dynamic"] == ["version"] and "version" not in pyproject()["project"]
    import detector_sim

    assert detector_sim.__version__ == gnnjets.__version__
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    for extra in ("sim", "baselines", "onnx", "tensorboard", "dev"):
        assert extra in pyproject()["project"]["optional-dependencies"]
    assert not any(name.startswith(("pythia8mc", "fastjet", "energyflow")) for name in pyproject()["project"]["dependencies"])


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_import_gnnjets_and_parsing_arguments_do_not_import_torch():
    assert _run("import sys, gnnjets; print('torch' in sys.modules)").strip() == "False"
    for module, argv in (("pretrain", []), ("downstream", ["--task", "qg"]), ("embed", ["c.pt", "x.root", "--out", "e.root"]),
                         ("plot", ["results.json"]), ("export", ["c.pt", "--out", "m.onnx"])):
        code = (f"import sys; from gnnjets.cli import {module} as m; m._parser().parse_args({argv!r}); "
                f"print(sorted(n for n in ('torch', 'torch_geometric', 'uproot', 'matplotlib') if n in sys.modules))")
        assert _run(code).strip() == "[]", module


def test_detector_sim_parses_before_importing_the_simulation():
    code = ("import sys; from detector_sim import cli; cli._parser().parse_args(['info', 'x.root']); "
            "print(sorted(n for n in ('pythia8mc', 'numba', 'awkward', 'uproot', 'torch') if n in sys.modules))")
    assert _run(code).strip() == "[]"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help_and_version_at_once(command):
    executable = Path(sys.executable).parent / command
    for flag, text in (("--help", "usage:"), ("--version", f"gnnjets {gnnjets.__version__}")):
        start = time.perf_counter()
        done = subprocess.run([str(executable), flag], capture_output=True, text=True, timeout=60)
        seconds = time.perf_counter() - start
        assert done.returncode == 0 and text in done.stdout, done.stderr[-1000:]
        assert seconds < 10, f"{command} {flag} took {seconds:.1f} s"  # generous: ~0.1-0.2 s idle
        assert "``" not in done.stdout  # no raw RST in the help


@pytest.mark.slow
def test_the_wheel_installed_without_the_source_tree_loads_its_configs(tmp_path):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("gnnjets-*.whl")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    code = ("import gnnjets, gnnjets.base.resources as r; from gnnjets.io.mapping import load_mapping; "
            "from gnnjets.tasks.config import load_config; "
            "assert gnnjets.__file__.startswith(sys.argv[1]), gnnjets.__file__; "
            "print(r.config_root(), load_mapping('cocoa').tree, load_config('qg', base={'data.train': ['x']}).task, "
            "' '.join(r.shipped_configs('sim')), ' '.join(r.shipped_configs('study')))")
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-c", "import sys; " + code, str(target)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    shipped = [sorted(path.stem for path in (ROOT / "configs" / kind).glob("*.yaml")) for kind in ("sim", "study")]
    assert done.stdout.split() == [str(target / "gnnjets" / "configs"), "Out_Tree", "qg", *shipped[0], *shipped[1]]
