"""The base layer: close matches, argument checks, typed configs, atomic outputs, CLI conventions."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

import numpy as np
import pytest

from gnnjets.base.checks import check_bool, check_int, check_number, is_int, is_number
from gnnjets.base.cli import EXIT_USAGE, add_common_arguments, run_command
from gnnjets.base.config import ConfigError, apply_overrides, from_dict, read_config_file
from gnnjets.base.errors import GnnjetsError
from gnnjets.base.hints import check_choice, check_known_keys, close_matches
from gnnjets.base.outputs import OutputPathError, atomic_output, check_output_path, remove_stale_temporaries


def test_close_matches_and_known_keys():
    assert close_matches("cell_en", ["cell_e", "track_pt"]) == "; did you mean 'cell_e'?"
    assert close_matches("zzz", ["cell_e"]) == "."
    with pytest.raises(KeyError, match=r"unknown model key 'hiden'; did you mean 'hidden'\? Allowed: hidden, layers"):
        check_known_keys(["hiden"], ["hidden", "layers"], "model", KeyError)
    with pytest.raises(ValueError, match="'kind' must be one of linear, mlp, not 'liner'; did you mean 'linear'"):
        check_choice("kind", "liner", ("linear", "mlp"))


def test_number_checks_refuse_bools_and_name_the_argument():
    assert is_int(np.int64(3)) and not is_int(True) and not is_int(3.0)
    assert is_number(np.float32(0.5)) and not is_number(float("nan")) and not is_number(False)
    assert check_int("batch_size", np.int32(4), 1) == 4
    with pytest.raises(ValueError, match=r"'batch_size' must be an int >= 1, not True"):
        check_int("batch_size", True, 1)
    with pytest.raises(ValueError, match=r"'rate' must be a finite number in \(0, 1\], not 0"):
        check_number("rate", 0, 0, 1, exclusive_minimum=True)
    with pytest.raises(TypeError, match="'shuffle' must be True or False"):
        check_bool("shuffle", 1)


@dataclass
class Inner:
    lr: float = 1e-3
    steps: int = 10
    files: list[str] = field(default_factory=list)
    name: str | None = None


@dataclass
class Outer:
    optim: Inner = field(default_factory=Inner)
    flag: bool = False


def test_typed_config_from_dict_and_overrides():
    data = apply_overrides({"optim": {"steps": 3}}, ["optim.lr=0.1", "optim.files=[a.root, b.root]", "flag=true"])
    config = from_dict(Outer, data)
    assert config.optim.lr == 0.1 and config.optim.steps == 3 and config.optim.files == ["a.root", "b.root"]
    assert config.flag is True and config.optim.name is None
    with pytest.raises(ConfigError, match=r"unknown key 'config.optim.stesp'; did you mean 'steps'\?"):
        from_dict(Outer, {"optim": {"stesp": 1}})
    with pytest.raises(ConfigError, match="config.optim.steps must be an integer, not 1.5"):
        from_dict(Outer, {"optim": {"steps": 1.5}})
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        apply_overrides({}, ["optim.lr"])
    assert isinstance(ConfigError("x"), GnnjetsError) and isinstance(ConfigError("x"), ValueError)


def test_read_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"does not exist; give a path or the name of a shipped one \(none; configs/x/\)"):
        read_config_file(tmp_path / "none.yaml", folder="configs/x/", example="a: ...")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed")
    with pytest.raises(ConfigError, match="is not valid YAML at line 1"):
        read_config_file(bad, folder="configs/x/", example="a: ...")
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"must hold a mapping \(a: ...\), not list"):
        read_config_file(bad, folder="configs/x/", example="a: ...")


def test_atomic_output_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.json"
    with atomic_output(target) as tmp:
        tmp.write_text("one")
    assert target.read_text() == "one"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "one" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    target = tmp_path / "jets.root"
    dead = 2**22 + 12345  # above the default pid_max of 4194304: no such process
    stale = [tmp_path / f"jets.root.tmp-{dead}", tmp_path / f"jets.tmp-{dead}.root"]
    alive = tmp_path / f"jets.root.tmp-{os.getppid()}"
    other = tmp_path / f"other.root.tmp-{dead}"
    for path in stale + [alive, other]:
        path.write_text("x")
    assert sorted(remove_stale_temporaries(target)) == sorted(stale)
    assert alive.exists() and other.exists() and not any(p.exists() for p in stale)


def test_check_output_path(tmp_path):
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_path(tmp_path)
    with pytest.raises(OutputPathError, match=r"must be a \.root file"):
        check_output_path(tmp_path / "x.csv")
    with pytest.raises(OutputPathError, match="folder .* does not exist"):
        check_output_path(tmp_path / "no" / "x.root")
    (tmp_path / "x.root").write_text("")
    with pytest.raises(OutputPathError, match="exists; remove it, choose another path, or pass --overwrite"):
        check_output_path(tmp_path / "x.root", overwrite=False)
    assert check_output_path(tmp_path / "x.root") == tmp_path / "x.root"


def test_run_command_maps_user_errors_to_one_line(capsys):
    parser = argparse.ArgumentParser(prog="tool")
    add_common_arguments(parser)

    def fails(args):
        raise ConfigError("config.x: wrong\nsecond line")

    assert run_command("tool", fails, parser.parse_args([])) == EXIT_USAGE
    assert capsys.readouterr().err == "tool: error: config.x: wrong second line\n"

    def bug(args):
        raise KeyError("a bug keeps its traceback")

    with pytest.raises(KeyError):
        run_command("tool", bug, parser.parse_args(["-q"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--version"])
    assert "gnnjets" in capsys.readouterr().out
