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
