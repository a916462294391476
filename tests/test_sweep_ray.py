"""neuro sweep on a local Ray (one session for the module): a worker killed mid-trial, retries, failures,
resume, the serial run's table, and Bayesian optimisation. The trials run the tiny simulate config."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from neuro.cli import main
from neuro.sweep.plan import plan_units
from neuro.sweep.spec import parse_spec

SPEC = {"command": "simulate", "config": "configs/sweep/tiny_network.yaml",
        "metrics": {"rate": "populations.exc.mean_rate_hz",
                    "silent": {"path": "populations.exc.silent_fraction", "better": "lower"}},
        "seeds": [0, 1]}


@pytest.fixture(scope="module")
def ray_session():
    import ray

    from neuro.sweep.runner import init_kwargs

    ray.init(**init_kwargs(2))
    yield
    ray.shutdown()


def write_spec(folder: Path, **changes) -> tuple[str, list[dict]]:
    raw = {**SPEC, **changes}
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path), plan_units(parse_spec(raw))


class Killer(threading.Thread):
    """SIGKILL the Ray worker running ``attempts`` of one unit, once its command has started."""

    def __init__(self, folder: Path, attempts=(1,), timeout: float = 180.0):
        super().__init__(daemon=True)
        self.folder, self.attempts, self.timeout, self.killed = folder, attempts, timeout, []

    def run(self):
        end = time.monotonic() + self.timeout
        for k in self.attempts:
            work = self.folder / "attempts" / str(k)
            while not (work / "log.txt").exists() and time.monotonic() < end:
                time.sleep(0.02)
            if time.monotonic() >= end:
                return
            time.sleep(0.3)  # the command is importing: mid-trial
            pid = int((work / "worker.pid").read_text())
            os.kill(pid, signal.SIGKILL)
            self.killed.append((pid, str(work)))


def commands_running(work: str) -> list[int]:
    """Processes whose command line names the attempt folder ``work`` (orphans of a killed worker)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if work in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


def without_timing(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "wall_time_s"}


def test_killed_worker_is_retried_and_the_table_equals_the_serial_run(ray_session, tmp_path):
    spec, units = write_spec(tmp_path, grid={"projections.1.weight.mean": [0.01, 0.03]})
    victim = units[1]
    killer = Killer(tmp_path / "par" / "trials" / victim["name"])
    killer.start()
    assert main(["sweep", spec, "--workers", "2", "--out", str(tmp_path / "par")]) == 0
    killer.join()
    assert len(killer.killed) == 1
    time.sleep(0.5)
    assert commands_running(killer.killed[0][1]) == []  # the command died with its worker
    results = {u["name"]: json.loads((tmp_path / "par/trials" / u["name"] / "result.json").read_text())
               for u in units}
    assert {n: r["attempts"] for n, r in results.items()} == {u["name"]: 1 + (u is victim) for u in units}
    assert not (tmp_path / "par/trials" / victim["name"] / "attempts").exists()

    assert main(["sweep", spec, "--workers", "1", "--out", str(tmp_path / "ser")]) == 0
    par, ser = (json.loads((tmp_path / d / "aggregate.json").read_text()) for d in ("par", "ser"))
    assert par == ser and par["records"] == 4 and par["failed"] == []
    assert [c["rate"]["n"] for c in par["cells"]] == [2, 2]
    for ext in ("csv", "md", "png"):
        assert (tmp_path / "par" / f"aggregate.{ext}").read_bytes() == (tmp_path / "ser" / f"aggregate.{ext}"
                                                                        ).read_bytes() or ext == "png"

    # the same trial run one by one, as the plain command: the same outputs
    trial = tmp_path / "par/trials" / victim["name"]
    assert main(["simulate", str(trial / "config.yaml"), "--seed", str(victim["seed"]), "--no-progress",
                 "--out", str(tmp_path / "alone")]) == 0
    alone = json.loads((tmp_path / "alone/summary.json").read_text())
    assert without_timing(alone) == without_timing(json.loads((trial / "out/summary.json").read_text()))


def test_a_trial_that_keeps_dying_is_reported_and_rerun_on_resume(ray_session, tmp_path, capsys):
    spec, units = write_spec(tmp_path, retries=1)
    out = tmp_path / "out"
    killer = Killer(out / "trials" / units[0]["name"], attempts=(1, 2))
    killer.start()
    assert main(["sweep", spec, "--workers", "2", "--out", str(out)]) == 1  # failed, the sweep went on
    killer.join()
    assert len(killer.killed) == 2
    table = json.loads((out / "aggregate.json").read_text())
    assert [f["trial"] for f in table["failed"]] == [units[0]["name"]] and table["records"] == 1
    assert "Failed trials" in (out / "aggregate.md").read_text()
    done = out / "trials" / units[1]["name"] / "result.json"
    stamp = done.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["sweep", spec, "--out", str(out), "--plan"]) == 0
    listed = capsys.readouterr().out
    assert f"{units[0]['name']}  seed 0    -  to run" in listed
    assert f"{units[1]['name']}  seed 1    -  finished" in listed

    assert main(["sweep", spec, "--workers", "2", "--out", str(out)]) == 0
    assert "2 trial(s), 1 already finished" in capsys.readouterr().out
    assert done.stat().st_mtime_ns == stamp  # the finished trial was not rerun
    assert json.loads((out / "aggregate.json").read_text())["records"] == 2

    assert main(["sweep", spec, "--out", str(out)]) == 0
    assert "2 trial(s), 2 already finished" in capsys.readouterr().out


def test_bayesian_optimisation_resumes_with_its_evaluated_points(ray_session, tmp_path, capsys):
    bayes = {"samples": 3, "seed": 0, "space": {"projections.1.weight.mean": {"uniform": [0.005, 0.05]}}}
    spec, _ = write_spec(tmp_path, seeds=[0], bayes=bayes, objective={"metric": "rate", "mode": "min"})
    out = tmp_path / "out"
    assert main(["sweep", spec, "--workers", "2", "--out", str(out)]) == 0
    first = json.loads((out / "aggregate.json").read_text())
    assert first["records"] == 3 and len(first["cells"]) == 3
    rates = [c["rate"]["mean"] for c in first["cells"]]
    assert rates == sorted(rates) and first["best"] == first["cells"][0]  # sorted by the objective
    capsys.readouterr()
    spec, _ = write_spec(tmp_path, seeds=[0], bayes={**bayes, "samples": 4},
                         objective={"metric": "rate", "mode": "min"})
    assert main(["sweep", spec, "--workers", "2", "--out", str(out)]) == 0
    assert "3 set(s) already finished" in capsys.readouterr().out
    assert json.loads((out / "aggregate.json").read_text())["records"] == 4


def test_repeated_bayesian_studies_propose_the_same_sets_on_one_or_two_workers(ray_session, tmp_path):
    bayes = {"samples": 3, "seed": 0, "repeats": 2,
             "space": {"projections.1.weight.mean": {"uniform": [0.005, 0.05]}}}
    objective = {"metric": "rate", "mode": "min"}
    spec, _ = write_spec(tmp_path, seeds=[0], bayes=bayes, objective=objective, versus="random")
    assert main(["sweep", spec, "--workers", "2", "--out", str(tmp_path / "two")]) == 0
    table = json.loads((tmp_path / "two" / "aggregate.json").read_text())
    assert table["records"] == 12 and [s["study"] for s in table["searches"]["studies"]] == [
        "bayes-0", "bayes-1", "random-0", "random-1"]
    assert all(s["sets"] == 3 for s in table["searches"]["studies"])
    assert table["searches"]["versus"]["bayes_wins"][1] == 2
    assert (tmp_path / "two" / "trials" / "bayes-1").is_dir() and (tmp_path / "two" / "aggregate.png").is_file()

    spec, _ = write_spec(tmp_path, seeds=[0], bayes=bayes, objective=objective)  # the Bayesian studies alone
    assert main(["sweep", spec, "--workers", "1", "--out", str(tmp_path / "one")]) == 0
    one = json.loads((tmp_path / "one" / "aggregate.json").read_text())["searches"]["studies"]
    assert [s["objective"] for s in one] == [s["objective"] for s in table["searches"]["studies"][:2]]
