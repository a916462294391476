"""Command-line numbers: a value out of range is one argparse error naming the option, never a silent replacement."""

import pytest

from neuro.cli import main


@pytest.mark.parametrize("argv, option", [
    (["simulate", "configs/simulate_ei.yaml", "--steps", "0"], "--steps"),
    (["simulate", "configs/simulate_ei.yaml", "--steps", "-5"], "--steps"),
    (["simulate", "configs/simulate_ei.yaml", "--seed", "-1"], "--seed"),
    (["verify", "x.npz", "--timeout", "nan"], "--timeout"),
    (["verify", "x.npz", "--rate", "-3"], "--rate"),
    (["verify", "x.npz", "--steps", "1.5"], "--steps"),
    (["deploy", "runs/x", "--chunk", "0"], "--chunk"),
    (["deploy", "runs/x", "--samples", "-2"], "--samples"),
    (["export", "x.npz", "--to", "lava", "--headroom", "0"], "--headroom"),
    (["compat", "rnp", "--threads", "0"], "--threads"),
    (["sweep", "s.yaml", "--workers", "0"], "--workers"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--stop-after", "-1"], "--stop-after"),
    (["continual", "--seeds", "0", "-4"], "--seeds"),
])
def test_out_of_range_numbers_are_one_clear_error(argv, option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert f"argument {option}: must be" in err and "Traceback" not in err, err
