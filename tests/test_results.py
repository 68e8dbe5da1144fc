"""The committed training results: `neurodeploy report results/<env>` rebuilds their tables."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NEURODEPLOY = str(Path(sys.executable).parent / "neurodeploy")
RESULTS = Path(__file__).resolve().parent.parent / "results"
ENVS = sorted(p.parent.name for p in RESULTS.glob("*/sweep.json"))


def test_results_are_committed():
    assert ENVS, "results/<env>/sweep.json: no committed training results"


@pytest.mark.parametrize("env", ENVS)
def test_report_rebuilds_the_committed_table(env, tmp_path):
    """From the committed artefacts alone (config.toml, metrics.csv, trial.json, and for an
    energy sweep energy.json, per trial): the same groups, seeds, returns (and energy) as the
    committed report.json."""
    committed = json.loads((RESULTS / env / "report.json").read_text())
    copy = tmp_path / env
    shutil.copytree(RESULTS / env, copy,
                    ignore=shutil.ignore_patterns("report.*", "*.png", "bundle-*"))  # fmt: skip
    args = [NEURODEPLOY, "report", str(copy)]
    for base in committed["baselines"]:
        args += ["--baseline", base]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rebuilt = json.loads((copy / "report.json").read_text())
    assert rebuilt["groups"] == committed["groups"]
    assert rebuilt["apg"] == committed["apg"]
    # an energy sweep: the same return-against-energy table, from each trial's kept energy.json
    assert rebuilt.get("pareto") == committed.get("pareto")
    assert not list(copy.glob("*/*/bundle-*"))  # nothing was exported again
    assert (copy / "curves.png").stat().st_size > 0
    assert "| group | seeds | final return |" in out.stdout


def test_the_short_idp_recipe_is_what_the_idp_lr_results_trained():
    """train/idp-50k.toml resolves to the settings of results/idp-lr's PT-LIF trials (every
    option but the seed), so the recipe a user runs is the one measured there."""
    from neurodeploy.train.config import read_config, resolve

    cfg, _ = resolve("idp-50k", {})
    trials = sorted((RESULTS / "idp-lr" / "algo=pt-td3,neuron=lif").glob("seed*/config.toml"))
    assert trials
    for path in trials:
        trained = read_config(path)
        assert {**trained.to_dict(), "seed": 0} == {**cfg.to_dict(), "seed": 0}, path


def _training_results():
    sys.path.insert(0, str(RESULTS.parent / "benchmarks"))
    import training_results

    return training_results


def test_a_fresh_machine_gets_the_published_trials_back_and_publish_keeps_them(tmp_path):
    """On a machine without runs/, `training_results.py restore hopper` puts every published
    trial (the reference runs too) back; the sweep then counts them as finished, a second
    restore overwrites nothing, and publishing from there keeps every published trial."""
    from neurodeploy.sweep.spec import SweepSpec, parse_grid, trial_finished, write_manifest

    results_py = _training_results()
    results, runs = tmp_path / "results", tmp_path / "runs"
    shutil.copytree(RESULTS / "hopper", results / "hopper",
                    ignore=shutil.ignore_patterns("report.*", "*.png"))  # fmt: skip
    published = sorted(p.relative_to(results / "hopper").as_posix()
                       for p in (results / "hopper").glob("*/seed*"))  # fmt: skip
    assert any(name.startswith("reference/") for name in published)

    assert sorted(results_py.restore("hopper", runs, results)) == published
    ref = runs / "reference" / "hopper" / "seed0" / "metrics.csv"
    assert ref.read_bytes() == (results / "hopper" / "reference/seed0/metrics.csv").read_bytes()
    grid = parse_grid(["algo:neuron=pt-td3:lif,td3:lif,td3:ann"])
    spec = SweepSpec("hopper", [0, 1, 2], grid, {"steps": 100_000})
    _, configs = write_manifest(runs / "sweeps" / "hopper", spec)  # the same sweep: accepted
    finished = [
        t.name for t, _ in configs if trial_finished(runs / "sweeps/hopper" / t.name, 100_000)
    ]
    assert sorted(finished) == [n for n in published if not n.startswith("reference/")]

    newer = runs / "sweeps" / "hopper" / finished[0] / "metrics.csv"
    kept = newer.read_bytes()
    newer.write_text("a run here is newer than results/\n")
    assert results_py.restore("hopper", runs, results) == []
    assert newer.read_text() == "a run here is newer than results/\n"
    newer.write_bytes(kept)

    extra = results_py.reference_runs("hopper", runs)
    results_py.publish_sweep(runs / "sweeps" / "hopper", results / "hopper", extra)
    again = sorted(p.relative_to(results / "hopper").as_posix()
                   for p in (results / "hopper").glob("*/seed*"))  # fmt: skip
    assert again == published


def test_publish_refuses_to_drop_a_published_trial_whose_run_is_missing(tmp_path):
    """Publishing from runs/ that lack a published reference run (a fresh machine, not
    restored) refuses in one line and leaves results/ as it was."""
    results_py = _training_results()
    results, runs = tmp_path / "results", tmp_path / "runs"
    shutil.copytree(RESULTS / "hopper", results / "hopper",
                    ignore=shutil.ignore_patterns("report.*", "*.png"))  # fmt: skip
    results_py.restore("hopper", runs, results)
    shutil.rmtree(runs / "reference" / "hopper" / "seed1")
    before = sorted(str(p) for p in (results / "hopper").rglob("*"))
    extra = results_py.reference_runs("hopper", runs)
    with pytest.raises(SystemExit, match=r"reference/seed1 .*has no run.*restore hopper"):
        results_py.publish_sweep(runs / "sweeps" / "hopper", results / "hopper", extra)
    assert sorted(str(p) for p in (results / "hopper").rglob("*")) == before


def _energy_results():
    sys.path.insert(0, str(RESULTS.parent / "benchmarks"))
    import energy_results

    return energy_results


def test_every_budgeted_point_has_a_row_in_issue_21s_checks():
    """A budget with no finished seed is a row that says "not measured ... no", not a
    missing row that makes the table look complete."""
    report = json.loads((RESULTS / "pendulum-pareto" / "report.json").read_text())
    budgeted = [g["label"] for g in report["groups"] if g["point"].get("sop_budget")]
    unmeasured = budgeted[0]  # as if none of its seeds had finished
    pareto = report["pareto"]
    pareto["groups"] = [g for g in pareto["groups"] if g["label"] != unmeasured]
    table = _energy_results().acceptance(report)
    rows = {row.split(" | ")[0][2:]: row for row in table.splitlines() if row.startswith("| sop")}
    assert list(rows) == budgeted
    assert "not measured" in rows[unmeasured] and rows[unmeasured].endswith("| no |")


def test_a_borrowed_trial_needs_the_same_settings(tmp_path):
    """The training results' ANN stands beside the Pareto sweep (its return is the reference
    line's) only when trained with the same settings as every trial there, the swept keys
    aside; an option an older config does not name counts at its default."""
    energy = _energy_results()
    shutil.copytree(RESULTS / "pendulum", tmp_path / "pendulum",
                    ignore=shutil.ignore_patterns("*.png", "policy.pt"))  # fmt: skip
    sweep = RESULTS / "pendulum-pareto"
    pairs = energy.borrowed("pendulum-pareto", tmp_path, [0, 1, 2])
    assert [(item["dir"], item["point"]) for item, _ in pairs] == [
        (f"ann/seed{s}", {"algo": "td3", "neuron": "ann"}) for s in range(3)
    ]
    energy.check_borrowed(sweep, pairs)
    config = tmp_path / "pendulum" / "algo=td3,neuron=ann" / "seed0" / "config.toml"
    text = config.read_text()
    config.write_text(text.replace('lr_schedule = "constant"\n', ""))
    energy.check_borrowed(sweep, pairs)  # lr_schedule at its default: the same settings
    config.write_text(text.replace("steps = 15000", "steps = 30000"))
    with pytest.raises(SystemExit, match="other steps than .* would train at algo=td3,neuron=ann"):
        energy.check_borrowed(sweep, pairs)
    sized = text.replace("\nhidden = [\n    256,\n    256,\n]", "\nhidden = [64, 64]")
    assert sized != text
    config.write_text(sized)
    with pytest.raises(SystemExit, match="other hidden than"):  # a size the grid sweeps
        energy.check_borrowed(sweep, pairs)


def test_every_borrowed_copy_is_its_source():
    """A published borrowed trial is a copy of the training results' trial it names."""
    results_py = _training_results()
    found = 0
    for manifest in RESULTS.glob("*/sweep.json"):
        for item in json.loads(manifest.read_text())["trials"]:
            if results_py.BORROWED in item:
                source = RESULTS.parent / item[results_py.BORROWED]
                for name in results_py.KEEP:
                    copy = manifest.parent / item["dir"] / name
                    assert copy.read_bytes() == (source / name).read_bytes(), copy
                found += 1
    assert found >= 5  # pendulum-pareto's ANN seeds 0-2, hopper-budget's two


def test_hopper_budget_borrows_the_unbudgeted_pt_lif_and_restore_leaves_it(tmp_path):
    """hopper-budget's point sop_budget=0 is results/hopper's PT-LIF seed 0 (and its ANN is
    results/hopper's): published beside the sweep's trials (named as borrowed), refused when
    trained with other settings, and never restored into runs/ (the sweep would not know it)."""
    energy, results_py = _energy_results(), _training_results()
    sweep_dir = tmp_path / "runs" / "sweeps" / "hopper-budget"
    source = RESULTS / "hopper" / "algo=pt-td3,neuron=lif" / "seed0"
    manifest = {"format": "neurodeploy-sweep/1", "recipe": "hopper", "recipe_name": "hopper",
                "grid": {"sop_budget": [75000.0]}, "seeds": [0], "overrides": {"steps": 100000},
                "trials": [{"name": "sop_budget=75000/seed0", "dir": "sop_budget=75000/seed0",
                            "point": {"sop_budget": 75000.0}, "seed": 0}]}  # fmt: skip
    own = sweep_dir / "sop_budget=75000" / "seed0"
    own.mkdir(parents=True)
    (sweep_dir / "sweep.json").write_text(json.dumps(manifest))
    trained = (source / "config.toml").read_text()
    (own / "config.toml").write_text("sop_budget = 75000.0\n" + trained)  # unfinished
    pairs = energy.borrowed("hopper-budget", RESULTS, [0])
    assert [(item["dir"], item["point"], run) for item, run in pairs] == [
        ("unbudgeted/seed0", {"sop_budget": 0}, source),
        (
            "ann/seed0",
            {"algo": "td3", "neuron": "ann"},
            source.parent.parent / "algo=td3,neuron=ann/seed0",
        ),
    ]
    energy.check_borrowed(sweep_dir, pairs)  # the same settings
    dest = tmp_path / "results" / "hopper-budget"
    results_py.publish_sweep(sweep_dir, dest, pairs)
    assert (dest / "unbudgeted" / "seed0" / "policy.pt").read_bytes() == (
        source / "policy.pt"
    ).read_bytes()
    published = json.loads((dest / "sweep.json").read_text())
    assert [t[results_py.BORROWED] for t in published["trials"] if results_py.BORROWED in t] == [
        "results/hopper/algo=pt-td3,neuron=lif/seed0",
        "results/hopper/algo=td3,neuron=ann/seed0",
    ]
    fresh = tmp_path / "fresh"
    assert results_py.restore("hopper-budget", fresh, tmp_path / "results") == []
    kept = json.loads((fresh / "sweeps" / "hopper-budget" / "sweep.json").read_text())
    assert [t["dir"] for t in kept["trials"]] == ["sop_budget=75000/seed0"]
    # borrowed no more (its source withdrawn): withdrawn here too, not refused as lost
    results_py.publish_sweep(sweep_dir, dest, pairs[:1])
    assert not (dest / "ann").exists() and (dest / "unbudgeted" / "seed0").is_dir()
    # a point the sweep trains itself cannot be borrowed: its seeds would count twice
    twice = [({**pairs[0][0], "point": {"sop_budget": 75000.0}}, pairs[0][1])]
    with pytest.raises(SystemExit, match="borrowed as sop_budget=75000, a point .* trains itself"):
        energy.check_borrowed(sweep_dir, twice)
    # the sweep's own trial off today's recipe: nothing can be checked against it
    (own / "config.toml").write_text(trained.replace("batch_size = 256", "batch_size = 128"))
    with pytest.raises(SystemExit, match="differs in batch_size, sop_budget from recipe 'hopper'"):
        energy.check_borrowed(sweep_dir, pairs)


def test_the_idp_criterion_is_not_decided_while_a_seed_is_unfinished():
    results_py = _training_results()
    group = {"label": "algo=pt-td3,neuron=lif", "seeds": [0], "trials": 3, "finished": 1,
             "max_avg_return": {"values": [9300.0]}}  # fmt: skip
    text = results_py.idp_check("idp", {"groups": [group]})
    assert "holds" not in text and "not decided: 2 seed(s) not finished" in text
    group = {**group, "seeds": [0, 1, 2], "finished": 3,
             "max_avg_return": {"values": [9300.0, 9100.0, 9400.0]}}  # fmt: skip
    assert results_py.idp_check("idp", {"groups": [group]}).endswith(": holds.")


def test_the_reference_criterion_names_unmatched_seeds_and_needs_seed_0():
    """Judged on the seeds both finished; PT-LIF seeds without a reference run are named, and
    without seed 0 (issue 15: "at least seed 0") the verdict is not decided."""
    results_py = _training_results()
    report = json.loads((RESULTS / "hopper" / "report.json").read_text())
    ref = next(g for g in report["groups"] if g["label"].startswith("implementation="))
    assert ref["seeds"] == [0, 1, 2]  # results/hopper: every PT-LIF seed has its reference
    said = results_py.reference_check(report)
    assert "seeds 0, 1, 2:" in said and "no finished reference run" not in said

    def finished_only(*seeds):
        for metric in ("max_avg_return", "final_return"):
            ref[metric]["values"] = [ref[metric]["values"][ref["seeds"].index(s)] for s in seeds]
        ref["seeds"] = list(seeds)

    finished_only(0, 1)  # as if seed 2 had not finished
    said = results_py.reference_check(report)
    assert "seeds 0, 1:" in said and "seed(s) 2 have no finished reference run" in said
    assert "not decided" not in said
    finished_only(1)  # as if only seed 1 had finished
    said = results_py.reference_check(report)
    assert "seeds 1:" in said and "not decided: the criterion needs seed 0" in said


def test_the_paper_ordering_applies_the_tie_rule_to_the_papers_numbers_too():
    """Xu et al., Table 1, Hopper: ANN 3410 and PT-LIF 3385 are 0.7 % apart, so that pair is
    not ordered on the paper's side either; the other two pairs agree with ours."""
    report = json.loads((RESULTS / "hopper" / "report.json").read_text())
    text = _training_results().table1("hopper", report)
    assert "Same order as the paper: PT-LIF vs vanilla LIF; vanilla LIF vs ANN TD3." in text
    assert "PT-LIF vs ANN TD3 (tied in the paper)" in text
    assert "Opposite order" not in text


def test_the_reference_is_held_to_the_protocol_the_sweep_trained(tmp_path):
    """Against the sweep's own trials (config.toml), not today's recipe: a sweep evaluated
    otherwise than the reference run is refused."""
    results_py = _training_results()
    results, runs = tmp_path / "results", tmp_path / "runs"
    shutil.copytree(RESULTS / "hopper", results / "hopper",
                    ignore=shutil.ignore_patterns("report.*", "*.png", "policy.pt"))  # fmt: skip
    results_py.restore("hopper", runs, results)
    assert len(results_py.reference_runs("hopper", runs)) == 3  # the same protocol: accepted
    for config in (runs / "sweeps" / "hopper").glob("*/seed*/config.toml"):
        config.write_text(config.read_text().replace("eval_episodes = 10", "eval_episodes = 5"))
    with pytest.raises(SystemExit, match="eval_episodes = 10, the sweep's trials 5"):
        results_py.reference_runs("hopper", runs)


def test_publish_withdraws_a_trial_trained_on_but_refuses_one_started_over(tmp_path):
    """A run here that trains on past its published copy (a sweep extended) withdraws it;
    one started over behind it, or a different sweep in runs/, is refused; a stray folder
    beside the reference seeds is not read as one."""
    results_py = _training_results()
    results, runs = tmp_path / "results", tmp_path / "runs"
    shutil.copytree(RESULTS / "hopper", results / "hopper",
                    ignore=shutil.ignore_patterns("report.*", "*.png", "policy.pt"))  # fmt: skip
    results_py.restore("hopper", runs, results)
    (runs / "reference" / "hopper" / "seed1.restoring").mkdir()  # left by a killed restore
    assert len(results_py.reference_runs("hopper", runs)) == 3

    sweep = runs / "sweeps" / "hopper"
    trial = "algo=td3,neuron=ann/seed2"
    record = json.loads((sweep / trial / "trial.json").read_text())
    (sweep / trial / "trial.json").write_text(json.dumps({**record, "status": "running"}))
    kept = (sweep / trial / "metrics.csv").read_text()
    head = "\n".join(kept.splitlines()[:3]) + "\n"  # started over: two evaluations in
    (sweep / trial / "metrics.csv").write_text(head)
    before = sorted(str(p) for p in (results / "hopper").rglob("*"))
    extra = results_py.reference_runs("hopper", runs)
    with pytest.raises(SystemExit, match=r"neuron=ann/seed2 .*finished or trains on from it"):
        results_py.publish_sweep(sweep, results / "hopper", extra)
    assert sorted(str(p) for p in (results / "hopper").rglob("*")) == before

    (sweep / trial / "metrics.csv").write_text(kept)  # trains on from the published steps
    results_py.publish_sweep(sweep, results / "hopper", extra)
    assert not (results / "hopper" / trial).exists()  # withdrawn until it finishes again

    manifest = json.loads((sweep / "sweep.json").read_text())
    (sweep / "sweep.json").write_text(json.dumps({**manifest, "seeds": [0, 1]}))
    with pytest.raises(SystemExit, match="is another sweep than .*seeds: .*nothing restored"):
        results_py.restore("hopper", runs, RESULTS)


def test_render_refuses_a_report_another_command_made(monkeypatch):
    """The section names BUDGETS' sweep command above the report: a report swept otherwise
    (here: another actor_lr) is refused, before docs/results.md is touched."""
    results_py = _training_results()
    report = json.loads((RESULTS / "idp-lr" / "report.json").read_text())
    report["overrides"]["actor_lr"] = 3e-4

    def refused(*args):  # a regression must not rewrite the real docs/results.md
        raise AssertionError("render went on to write its section")

    monkeypatch.setattr(results_py, "write_section", refused)
    with pytest.raises(SystemExit, match="idp-lr was swept with overrides .*as BUDGETS says"):
        results_py.render("idp-lr", report)
