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
