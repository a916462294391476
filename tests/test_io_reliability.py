"""Atomic files and folders, strict JSON, umask, clear config-file errors, Ctrl-C at the command line."""

import json

import pytest
import yaml

from neuro import io as nio
from neuro.cli import main
from neuro.io import ConfigError, load_config, remove_stale_temps, staged_folder, write_json

OWNED = ("a.txt", "b.txt")


def _result(folder, tag):
    for name in OWNED:
        (folder / name).write_text(tag)


def _contents(folder):
    return {p.name: p.read_text() for p in folder.iterdir()}


@pytest.mark.parametrize("exchange", [True, False])
def test_a_staged_folder_replaces_the_old_result_whole(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(nio, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    with staged_folder(out, OWNED) as stage:
        _result(stage, "old")
    with staged_folder(out, OWNED) as stage:
        assert _contents(out) == {"a.txt": "old", "b.txt": "old"}  # untouched while the new one is written
        _result(stage, "new")
    assert _contents(out) == {"a.txt": "new", "b.txt": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_run_leaves_the_old_result_and_no_staging(tmp_path):
    out = tmp_path / "out"
    with staged_folder(out, OWNED) as stage:
        _result(stage, "old")
    with pytest.raises(KeyboardInterrupt), staged_folder(out, OWNED) as stage:
        (stage / "a.txt").write_text("half")
        raise KeyboardInterrupt
    assert _contents(out) == {"a.txt": "old", "b.txt": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_leftovers_of_killed_runs_are_repaired_or_removed(tmp_path):
    out = tmp_path / "out"
    (tmp_path / ".out.staging-abc").mkdir()  # killed while computing
    old = tmp_path / ".out.old-xyz"  # killed between the two renames of the fallback swap
    old.mkdir()
    _result(old, "old")
    with staged_folder(out, OWNED) as stage:
        assert _contents(out) == {"a.txt": "old", "b.txt": "old"}
        _result(stage, "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_folder_with_other_files_is_refused_not_emptied(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    with pytest.raises(ValueError, match="did not write.*thesis.tex"), staged_folder(out, OWNED):
        pass
    assert (out / "thesis.tex").read_text() == "mine"
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="not a folder"), staged_folder(tmp_path / "file", OWNED):
        pass


def test_json_is_strict_and_files_honour_the_umask(tmp_path):
    import numpy as np

    path = write_json(tmp_path / "r.json", {"x": float("nan"), "y": np.array([1.0, np.inf]), "z": np.float32(2)})
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(c)) == \
        {"x": None, "y": [1.0, None], "z": 2.0}
    assert path.stat().st_mode & 0o777 == 0o666 & ~nio._UMASK
    (tmp_path / ".r.json.abcdefgh.json").write_text("")
    (tmp_path / ".r.json.keep").write_text("")
    assert [p.name for p in remove_stale_temps(tmp_path, ["r.json"])] == [".r.json.abcdefgh.json"]


def test_config_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="bin.yaml: cannot be read"):
        load_config(bad)


def test_ctrl_c_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    import neuro.commands.simulate as simulate

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(simulate, "run", interrupted)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"populations": [{"name": "a", "size": 2}]}))
    assert main(["simulate", str(cfg)]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err
