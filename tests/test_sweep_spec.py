"""neuro sweep without Ray: SPEC checks, the plan of units, the aggregate's statistics."""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from neuro.cli import build_parser, main
from neuro.io import ConfigError
from neuro.lnp.compare import aggregate as lnp_aggregate
from neuro.sweep.aggregate import aggregate, searches, stats
from neuro.sweep.dotted import get_dotted
from neuro.sweep.plan import label, make_unit, plan_units, random_sets
from neuro.sweep.report import to_csv, to_markdown
from neuro.sweep.runner import StudySearcher, trial_env
from neuro.sweep.spec import load_spec, parse_spec
from neuro.sweep.trial import read_metrics, read_result, run_unit

TINY = "configs/sweep/tiny_network.yaml"
GOOD = {"command": "simulate", "config": TINY, "metrics": {"rate": "populations.exc.mean_rate_hz"},
        "seeds": [0, 1]}

BAD = [  # (changes to GOOD, words the error must contain)
    ({"command": "fly"}, "'command' must be one of"),
    ({"colour": 1}, "unknown key(s) ['colour']"),
    ({"config": None}, "'config' is required for command simulate"),
    ({"config": "nowhere.yaml"}, "config file not found: nowhere.yaml"),
    ({"method": "granet"}, "'method' is only for command compat"),
    ({"metrics": None}, "'metrics' must map names"),
    ({"metrics": {"rate": {"path": "x", "better": "up"}}}, "metrics.rate.better must be lower or higher"),
    ({"seeds": [0, "1"]}, "'seeds' must be a non-empty list of integers"),
    ({"seeds": [1, 1]}, "'seeds' has repeated values"),
    ({"seeds": {"start": 3}}, "seeds needs either 'values' or 'start' and 'count'"),
    ({"seeds": {"count": 0}}, "seeds.count a positive one"),
    ({"grid": {"run.steps": []}}, "grid.run.steps must be a non-empty list"),
    ({"grid": {"populations.7.size": [1]}}, "'populations.7.size': populations is a list of 2 item(s)"),
    ({"grid": {"run.steps.x": [1]}}, "run.steps is a int, not a mapping"),
    ({"grid": {"run.steps": [1]}, "random": {"samples": 2, "space": {"dt": {"uniform": [0, 1]}}}},
     "give one of 'grid', 'random' and 'bayes'"),
    ({"random": {"samples": 0, "space": {"dt": {"uniform": [0, 1]}}}}, "'samples' must be a positive integer"),
    ({"random": {"samples": 2, "space": {"dt": {"normal": [0, 1]}}}}, "random.space.dt must be one of"),
    ({"random": {"samples": 2, "space": {"dt": {"uniform": [1, 0]}}}}, "must be [low, high] with low < high"),
    ({"random": {"samples": 2, "space": {"dt": {"loguniform": [0, 1]}}}}, "and low > 0"),
    ({"random": {"samples": 2, "space": {"dt": {"randint": [0.5, 3]}}}}, "(integers)"),
    ({"bayes": {"samples": 2, "space": {"dt": {"uniform": [0.1, 1]}}}}, "'bayes' needs 'objective'"),
    ({"objective": {"metric": "speed", "mode": "min"}}, "objective.metric must be one of the metrics ['rate']"),
    ({"objective": {"metric": "rate", "mode": "best"}}, "objective.mode must be min or max"),
    ({"compare": {"axis": "run.steps", "reference": 1}}, "compare.axis must be a grid key or a rows axis"),
    ({"grid": {"run.steps": [100, 200]}, "compare": {"axis": "run.steps", "reference": 300}},
     "compare.reference 300 is not among grid.run.steps"),
    ({"rows": {"from": "compare.json"}}, "rows.from must be FILE:KEY"),
    ({"rows": {"from": "c.json:rows"}, "objective": {"metric": "rate", "mode": "min"},
      "bayes": {"samples": 2, "space": {"dt": {"uniform": [0.1, 1]}}}}, "it does not take 'rows'"),
    ({"versus": "random", "random": {"samples": 2, "space": {"dt": {"uniform": [0.1, 1]}}}},
     "'versus' takes 'random' (random search at the same budget), with 'bayes'"),
    ({"versus": "grid", "objective": {"metric": "rate", "mode": "min"},
      "bayes": {"samples": 2, "space": {"dt": {"uniform": [0.1, 1]}}}}, "'versus' takes 'random'"),
    ({"random": {"samples": 2, "repeats": 0, "space": {"dt": {"uniform": [0.1, 1]}}}},
     "'repeats' must be a positive integer"),
    ({"criteria": {"speed": {"min": 1}}}, "criteria.speed: not one of the metrics ['rate']"),
    ({"criteria": {"rate": {"above": 1}}}, "criteria.rate: unknown key(s) ['above']"),
    ({"criteria": {"rate": {"min": "1"}}}, "criteria.rate: bounds must be numbers"),
    ({"metrics": {"r": {"path": "a", "minus": "b", "over": "c"}}}, "metrics.r takes 'minus' or 'over', not both"),
    ({"args": ["--seed", "3"]}, "'args' must not set --out or the seed"),
    ({"retries": -1}, "'retries' must be an integer >= 0"),
    ({"set": ["run.steps", 3]}, "'set' must map dotted config keys to values"),
    ({"set": {"populations.x.size": 3}}, "set.populations.x.size: populations is a list of 2 item(s)"),
    ({"cpus_per_trial": 0}, "'cpus_per_trial' must be a positive integer"),
]


def test_spec_errors_name_the_key():
    for change, words in BAD:
        with pytest.raises(ConfigError) as err:
            parse_spec({**GOOD, **change})
        assert words in str(err.value), (change, str(err.value))


def test_bad_spec_on_the_command_line_is_one_error_line(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump({**GOOD, "grid": {"populations.9.size": [5]}}))
    assert main(["sweep", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.strip().startswith("neuro sweep: error:") and "populations.9.size" in err and "Traceback" not in err
    (tmp_path / "notyaml.yaml").write_text("command: [unclosed")
    assert main(["sweep", str(tmp_path / "notyaml.yaml")]) == 1
    assert "malformed config" in capsys.readouterr().err
    assert main(["sweep", str(spec.with_name("missing.yaml"))]) == 1
    assert "config file not found" in capsys.readouterr().err


def test_plan_grid_seeds_and_their_configs():
    spec = parse_spec({**GOOD, "grid": {"run.steps": [100, 300], "populations.1.size": [10, 20, 30]},
                       "set": {"run.trials": 2}})
    units = plan_units(spec)
    assert len(units) == 2 * 3 * 2 and len({u["key"] for u in units}) == len(units)
    u = units[-1]
    assert u["params"] == {"run.steps": 300, "populations.1.size": 30} and u["seed"] == 1
    assert u["config"]["run"] == {"steps": 300, "trials": 2} and u["config"]["populations"][1]["size"] == 30
    assert u["argv"] == ["simulate"] and u["tail"][:2] == ["--seed", "1"] and "--no-progress" in u["tail"]
    assert spec.base["run"]["steps"] == 200  # the base config is not changed
    again = make_unit(spec, dict(u["params"]), 1)
    assert again["key"] == u["key"] and again["name"] == u["name"] == f"s1-{u['key'][:10]}"
    other = copy.deepcopy(spec)
    other.base["dt"] = 2e-3
    assert make_unit(other, u["params"], 1)["key"] != u["key"]  # a changed base config reruns the trial


def test_seed_into_a_config_key_and_compat_default():
    spec = parse_spec({"command": "prune", "metrics": {"n": "pruned.neurons"},
                       "seeds": {"values": [4, 5], "key": "compare.seeds"}})
    unit = plan_units(spec)[1]
    assert unit["config"] == {"compare": {"seeds": [5]}} and "--seed" not in unit["tail"]
    compat = parse_spec({"command": "compat", "method": "granet", "metrics": {"a": "x"}, "seeds": {"start": 7,
                                                                                                 "count": 2}})
    assert compat.seeds == [7, 8] and plan_units(compat)[0]["config"] == {"granet": {"seeds": [7]}}
    assert plan_units(compat)[0]["argv"] == ["compat", "granet"]
    flag = parse_spec({"command": "continual", "metrics": {"a": "x"}, "seeds": [3]})
    assert plan_units(flag)[0]["tail"][:2] == ["--seeds", "3"]


def test_random_search_is_seeded_and_in_bounds():
    raw = {**GOOD, "random": {"samples": 6, "seed": 4, "space": {
        "projections.1.weight.mean": {"loguniform": [0.01, 0.1]}, "run.steps": {"randint": [50, 60]},
        "populations.1.params.v_th": {"choice": [0.8, 1.0]}}}}
    sets = random_sets(parse_spec(raw), 4)
    assert sets == random_sets(parse_spec(raw), 4) and len(sets) == 6
    assert all(0.01 <= s["projections.1.weight.mean"] < 0.1 and 50 <= s["run.steps"] < 60
               and s["populations.1.params.v_th"] in (0.8, 1.0) for s in sets)
    raw["random"]["seed"] = 5
    units = plan_units(parse_spec(raw))
    assert len(units) == 12 and [u["params"] for u in units[::2]] == random_sets(parse_spec(raw), 5) != sets
    assert {u["name"].split("/")[0] for u in units} == {"random-0"}


def test_repeated_searches_are_studies_with_consecutive_search_seeds():
    space = {"projections.1.weight.mean": {"uniform": [0.01, 0.1]}}
    spec = parse_spec({**GOOD, "objective": {"metric": "rate", "mode": "min"}, "versus": "random",
                       "bayes": {"samples": 4, "seed": 7, "repeats": 3, "space": space}})
    assert spec.studies() == [("bayes-0", "bayes", 7), ("bayes-1", "bayes", 8), ("bayes-2", "bayes", 9),
                              ("random-0", "random", 7), ("random-1", "random", 8), ("random-2", "random", 9)]
    units = plan_units(spec)  # only the random studies are planned; Bayesian optimisation proposes as it runs
    assert len(units) == 3 * 4 * 2 and [u["study"] for u in units[::8]] == ["random-0", "random-1", "random-2"]
    assert [u["params"] for u in units[8:16:2]] == random_sets(spec, 8)
    assert all(u["name"] == f"{u['study']}/s{u['seed']}-{u['key'][:10]}" for u in units)
    assert parse_spec({**GOOD, "random": {"samples": 2, "space": space}}).studies() == [("random-0", "random", 0)]
    assert parse_spec(GOOD).studies() == []


def test_searches_table_best_so_far_and_paired_wins():
    spec = parse_spec({**GOOD, "objective": {"metric": "rate", "mode": "min"}, "versus": "random",
                       "bayes": {"samples": 3, "repeats": 2, "space": {"dt": {"uniform": [0.1, 1]}}}})
    objective = {"bayes-0": [5.0, 3.0, 4.0], "bayes-1": [2.0, 6.0, 1.0],
                 "random-0": [4.0, 3.5, 6.0], "random-1": [1.5, 7.0, 8.0]}
    records = []
    for study, values in objective.items():
        for i, value in enumerate(values):
            params = {"dt": 0.1 * (i + 1) + (0.01 if study.startswith("random") else 0.0)}
            for seed, noise in zip(spec.seeds, (-0.5, 0.5)):  # the set's objective is the mean over the seeds
                records.append({"seed": seed, "study": study, "params": label(params), "values": params,
                                "rate": value + noise})
    records = records[:-1]  # random-1's last set lacks a seed: not counted
    table = searches(spec, records)
    by = {s["study"]: s for s in table["studies"]}
    assert by["bayes-0"]["curve"] == [5.0, 3.0, 3.0] and by["bayes-1"]["curve"] == [2.0, 2.0, 1.0]
    assert by["random-1"]["curve"] == [1.5, 1.5] and by["random-1"]["sets"] == 2
    assert by["bayes-1"]["best"] == 1.0 and by["bayes-1"]["best_params"] == {"dt": 0.30000000000000004}
    summary = {e["search"]: e["best"] for e in table["summary"]}
    assert summary["bayes"]["mean"] == pytest.approx(2.0) and summary["random"]["mean"] == pytest.approx(2.5)
    versus = table["versus"]
    assert versus["bayes_minus_random"]["mean"] == pytest.approx((-0.5 - 0.5) / 2)  # 3 - 3.5 and 1 - 1.5
    assert versus["bayes_wins"] == [2, 2]
    maximise = parse_spec({**GOOD, "objective": {"metric": "rate", "mode": "max"},
                           "random": {"samples": 3, "space": {"dt": {"uniform": [0.1, 1]}}}})
    again = [{**r, "study": "random-0"} for r in records if r["study"] == "bayes-0"]
    assert searches(maximise, again)["studies"][0]["curve"] == [5.0, 5.0, 5.0]
    # a random study that drew one (discrete) set twice reads its folder twice: the set still counts
    assert searches(maximise, again + again[:2])["studies"][0]["sets"] == 3


class FakeStudy:
    """A searcher that proposes ``{"x": k}`` for its k-th call and records what it was told."""

    def __init__(self):
        self.calls, self.completed = 0, []

    def suggest(self, trial_id):
        self.calls += 1
        return {"x": self.calls}

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append((trial_id, result))


def test_study_searcher_runs_one_set_per_study_at_a_time():
    a, b = FakeStudy(), FakeStudy()
    searcher = StudySearcher({"a": (a, 2), "b": (b, 1)}, "objective", "min")
    assert searcher.suggest("t1") == {"x": 1, "study": "a"} and searcher.suggest("t2") == {"x": 1, "study": "b"}
    assert searcher.suggest("t3") is None  # both studies busy: wait
    searcher.on_trial_complete("t1", {"objective": 0.5})
    assert a.completed == [("t1", {"objective": 0.5})] and b.completed == []
    assert searcher.suggest("t4") == {"x": 2, "study": "a"}
    assert searcher.suggest("t5") == searcher.FINISHED  # every budget handed out


def test_get_dotted_indexes_lists():
    data = {"a": [{"b": 1}, {"b": 2}]}
    assert get_dotted(data, "a.-1.b", "x") == 2
    with pytest.raises(ConfigError, match="no '2'"):
        get_dotted(data, "a.2.b", "x")
    summary = {"s": {"granet@0.98": {"acc": 0.97}, "dense@0": {"acc": 0.98}}}
    assert get_dotted(summary, "s.granet@0.98.acc", "x") == 0.97 and get_dotted(summary, "s.dense@0.acc", "x") == 0.98
    with pytest.raises(ConfigError, match="no 'granet@0'"):
        get_dotted(summary, "s.granet@0.9.acc", "x")


def test_stats_mean_and_standard_error():
    s = stats([1.0, 2.0, None, 4.0])
    assert s["n"] == 3 and s["mean"] == pytest.approx(7 / 3)
    assert s["sem"] == pytest.approx(np.std([1, 2, 4], ddof=1) / np.sqrt(3))
    assert stats([5.0]) == {"mean": 5.0, "sem": None, "n": 1} and stats([])["n"] == 0


def _lnp_rows(seeds, rng):
    rows = []
    for seed in seeds:
        for task in ("mackey_glass", "digits"):
            rows.append({"seed": seed, "task": task, "method": "dense", "neurons": 100.0})
            for method in ("lnp", "random", "activity"):
                rows.append({"seed": seed, "task": task, "method": method, "neurons": 40.0,
                             "relative_change": float(rng.normal())})
    return rows


def test_compare_matches_compare_methods_paired_difference_and_wins():
    rows = _lnp_rows(range(5), np.random.default_rng(0))
    spec = parse_spec({"command": "prune", "metrics": {"relative_change": {"path": "relative_change",
                                                                           "better": "lower"}},
                       "seeds": list(range(5)), "rows": {"from": "compare.json:rows", "axes": ["task", "method"]},
                       "compare": {"axis": "method", "reference": "lnp"}})
    table = aggregate(spec, rows, [])
    expected = lnp_aggregate(rows)
    for entry in table["compare"]:
        if entry["method"] == "dense":
            assert entry["relative_change"]["n"] == 0  # dense rows carry no relative change
            continue
        want = expected[entry["task"]][entry["method"]]
        got = entry["relative_change"]
        assert [got["mean"], got["sem"]] == pytest.approx(want["lnp_minus_method"], rel=1e-12)
        assert got["wins"] == want["lnp_better_seeds"]
    cells = {(c["task"], c["method"]): c for c in table["cells"]}
    assert cells["digits", "lnp"]["relative_change"]["mean"] == pytest.approx(
        expected["digits"]["lnp"]["relative_change"][0])
    assert set(table["by_axis"]) == {"task", "method"} and len(table["by_axis"]["task"]) == 2
    assert "## paired difference" in to_markdown(table) and "compare,task=digits; method=random" in to_csv(table)


def test_derived_metrics_and_criteria_pass_counts(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.json").write_text('{"a": {"start": 8.0, "end": 0.5}, "hlop": 70.0, "multi": 73.5}')
    metrics = {"ratio": {"path": "a.start", "over": "a.end"}, "gap": {"path": "hlop", "minus": "multi"}}
    assert read_metrics(tmp_path, "report.json", metrics) == [{"ratio": 16.0, "gap": -3.5}]
    spec = parse_spec({"command": "prune", "metrics": {"ratio": {"path": "x", "over": "y"}, "bwt": "z"},
                       "seeds": [0, 1, 2, 3], "criteria": {"ratio": {"min": 10}, "bwt": {"min": 0, "max": 0}}})
    records = [{"seed": 0, "ratio": 16.0, "bwt": 0.0}, {"seed": 1, "ratio": 10.0, "bwt": -0.1},
               {"seed": 2, "ratio": 9.9, "bwt": 0.0}, {"seed": 3, "ratio": None, "bwt": 0.0}]
    cell = aggregate(spec, records, [])["cells"][0]
    assert cell["ratio"]["passes"] == [2, 4] and cell["bwt"]["passes"] == [3, 4]  # no value fails
    assert cell["criteria_met"] == [1, 4]  # only seed 0 meets both
    text = to_markdown(aggregate(spec, records, []))
    assert "ratio >= 10; bwt = 0" in text and "passes 2/4" in text and "| 1/4 |" in text
    assert ",2/4\n" in to_csv(aggregate(spec, records, []))


def test_a_command_error_is_a_failed_record_with_its_message(tmp_path):
    unit = plan_units(parse_spec({**GOOD, "seeds": [0], "grid": {"run.steps": [0]}}))[0]
    record = run_unit(unit, str(tmp_path), ".", trial_env(1))
    assert record["status"] == "failed" and record["attempts"] == 1
    assert "neuro simulate: error:" in record["error"]
    assert record["error"].endswith("steps must be an integer >= 1, got 0")
    assert read_result(tmp_path / unit["name"]) is None  # not finished: a resumed sweep tries it again


def test_every_command_accepts_the_trial_command_line(monkeypatch):
    for raw in ({**GOOD, "args": ["--steps", "50"]}, {"command": "train", "metrics": {"a": "-1.test_acc"}},
                {"command": "prune", "metrics": {"a": "x"}}, {"command": "continual", "metrics": {"a": "x"}},
                {"command": "compat", "method": "rnp", "metrics": {"a": "x"}}):
        unit = plan_units(parse_spec({**raw, "seeds": [3]}))[0]
        argv = [*unit["argv"], "config.yaml", "--out", "o", *unit["tail"]]
        monkeypatch.setattr("sys.argv", ["neuro", *argv])
        args = build_parser().parse_args(argv)  # argparse exits on an unknown flag
        seeds = ({getattr(args, "seed", None)} | set(getattr(args, "seeds", None) or ())
                 | set(unit["config"].get("rnp", {}).get("seeds", ())))  # flag, or compat's config key
        assert args.out == "o" and 3 in seeds, raw["command"]


def test_the_shipped_specs_parse():
    specs = sorted(Path("configs/sweep").glob("*.yaml"))
    parsed = [load_spec(p) for p in specs if "command:" in p.read_text()]
    assert len(parsed) >= 3 and {s.command for s in parsed} >= {"simulate", "prune"}
