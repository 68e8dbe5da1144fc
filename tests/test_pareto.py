"""Return against energy of deployed policies: `neurodeploy report` on a sop_budget sweep
(issue 21, item 3).

A real sweep folder: the manifest the sweep writes and every trial trained by the sweep's own
trial function (``runner.run_trial``, what each Ray task runs), without Ray. The report must
export each trial, count it with bench-energy on the emulator and draw those numbers; a second
report reuses them; a sweep with one budget gets none of it.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neurodeploy.errors import ConfigError
from neurodeploy.export.bundle import sha256
from neurodeploy.hardware import energy as E
from neurodeploy.hardware.bench import bench_energy
from neurodeploy.sweep.pareto import BUNDLE, SIMULATED, wants_pareto
from neurodeploy.sweep.report import write_report
from neurodeploy.sweep.runner import run_trial
from neurodeploy.sweep.spec import SweepSpec, parse_grid, write_manifest

NEURODEPLOY = str(Path(sys.executable).parent / "neurodeploy")
PROFILES = ["loihi", "loihi2"]
STORED = ("manifest.json", "policy.net", "energy.json")  # the export's and bench-energy's

# 300 random steps, then 100 updates of small networks.
TINY = {
    "steps": 400,
    "start_steps": 300,
    "checkpoint_every": 200,
    "eval_every": 100,
    "eval_episodes": 1,
    "proxy_hidden": [32, 32],
    "batch_size": 32,
    "critic_hidden": 32,
    "timesteps": 3,
}
# Two budgets of a 16-16 PT-LIF and the 256-256 ANN (bench-energy's ANN counterpart's size).
GRID = ["neuron:sop_budget:hidden=lif:0:[16,16],lif:300:[16,16],ann:0:[256,256]"]
LIF0 = "neuron=lif,sop_budget=0,hidden=16x16/seed0"
LIF300 = "neuron=lif,sop_budget=300,hidden=16x16/seed0"
ANN = "neuron=ann,sop_budget=0,hidden=256x256/seed0"


def build_sweep(out: Path, grid: list[str], seeds=(0,)) -> Path:
    spec = SweepSpec("pendulum", list(seeds), parse_grid(grid), dict(TINY))
    _, configs = write_manifest(out, spec)
    for trial, cfg in configs:
        run_trial(cfg.to_dict(), str(out / trial.name), trial.name)
    return out


@pytest.fixture(scope="module")
def budget_sweep(tmp_path_factory):
    return build_sweep(tmp_path_factory.mktemp("pareto") / "sweep", GRID)


def test_which_grids_get_the_picture():
    assert wants_pareto(parse_grid(["sop_budget=0,2000,5000"]))
    assert wants_pareto(parse_grid(["hidden=[64,64],[256,256]"]))
    assert wants_pareto(parse_grid(["neuron:sop_budget=lif:0,lif:300,ann:0"]))
    assert not wants_pareto(parse_grid(["sop_budget=2000", "neuron=lif,ann"]))
    assert not wants_pareto(parse_grid(["hidden=[64,64]"]))
    assert not wants_pareto({})
    # the Pareto grid: list values of hidden crossed with the budgets
    grid = parse_grid(["sop_budget=0,2000,5000", "hidden=[64,64],[256,256]"])
    assert grid == {"sop_budget": [0.0, 2000.0, 5000.0], "hidden": [[64, 64], [256, 256]]}
    names = [t.name for t in SweepSpec("pendulum", [0, 1], grid).trials()]
    assert names[:2] == ["sop_budget=0,hidden=64x64/seed0", "sop_budget=0,hidden=256x256/seed0"]
    assert len(names) == 12 and "sop_budget=5000,hidden=256x256/seed1" in names


@pytest.mark.slow  # exports and counts a deployed policy (~1-1.5 min): make test under 15 min
def test_report_draws_return_against_bench_energy_of_each_deployed_policy(budget_sweep, tmp_path):
    out = subprocess.run(
        [NEURODEPLOY, "report", str(budget_sweep), "--hardware", "loihi,loihi2",
         "--energy-episodes", "1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (budget_sweep / "pareto.png").stat().st_size > 0
    report = json.loads((budget_sweep / "report.json").read_text())
    pareto = report["pareto"]
    assert pareto["profiles"] == PROFILES and pareto["not_measured"] == {}

    # one row per grid point, in the grid's order; the spiking ones measured on their bundle
    labels = [g["label"] for g in pareto["groups"]]
    assert labels == [g["label"] for g in report["groups"]] and len(labels) == 3
    trials = {t["name"]: t for t in pareto["trials"]}
    assert set(trials) == {LIF0, LIF300, ANN}
    for name in (LIF0, LIF300):
        assert (budget_sweep / name / BUNDLE / "energy.json").is_file()
        kept = json.loads((budget_sweep / name / "energy.json").read_text())
        assert kept["policy_sha256"] == sha256(budget_sweep / name / "policy.pt")
        assert trials[name]["bundle"] == f"{name}/{BUNDLE}"
    assert not (budget_sweep / ANN / BUNDLE).exists()  # an ANN has nothing to deploy

    # the numbers are bench-energy's on that trial's exported bundle: counted afresh for one
    # trial (the same code path serves both), read from the other's kept report
    for name in (LIF0, LIF300):
        if name == LIF300:
            fresh = bench_energy(
                budget_sweep / name / BUNDLE, PROFILES, episodes=1, seed=0,
                out=tmp_path / "e", latency_episodes=1,
            )  # fmt: skip
        else:
            fresh = json.loads((budget_sweep / name / "energy.json").read_text())
            assert (fresh["episodes"], fresh["seed"], fresh["latency_episodes"]) == (1, 0, 1)
        for p in PROFILES:
            assert trials[name]["nj"][p] == fresh["profiles"][p]["snn_nj"]
            assert trials[name]["snn_over_ann"][p] == fresh["profiles"][p]["snn_over_ann"]
        assert trials[name]["sops_per_action"] == fresh["ops"]["sops"]
        assert trials[name]["deployed_return"] == fresh["return_mean"]
        # Lava against torch on the same episodes; Lava fixed point = the emulator's count
        torch_, lava = (fresh["simulation_latency"][b]["return_mean"] for b in SIMULATED)
        assert trials[name]["loihi2-sim_return"] == lava == fresh["return_mean"]
        assert trials[name]["torch_return"] == torch_
        assert trials[name]["sim_gap"] == pytest.approx(abs(lava - torch_) / abs(torch_))
    assert trials[LIF0]["nj"] != trials[LIF300]["nj"]  # two different policies

    groups = {g["label"]: g for g in pareto["groups"]}
    for name in (LIF0, LIF300, ANN):
        g = groups[name.split("/")[0]]
        for p in PROFILES:
            nj = g["nj"][p]
            assert nj["n"] == 1 and nj["mean"] == trials[name]["nj"][p] and nj["mean"] > 0
        assert g["final_return"]["mean"] == trials[name]["final_return"]
        assert g["sim_gap"] == trials[name]["sim_gap"]  # one seed: the gap of the means
        assert g["sim_gap_worst"] == trials[name]["sim_gap"]  # and the worst seed's

    # the ANN: MACs x (MAC + weight read); it is the reference's size, so its return is the line's
    (ref,) = pareto["ann_reference"]
    macs = E.ann_macs(3, 1)
    assert ref["env"] == "Pendulum-v1" and ref["macs"] == macs
    assert trials[ANN]["macs_per_action"] == macs
    for p in PROFILES:
        profile = E.load_profile(p)
        want = macs * (profile.get("mac_pj") + profile.get("ann_weight_read_pj")) / 1e3
        assert ref["nj"][p] == pytest.approx(want, rel=1e-12)
        assert groups[ANN.split("/")[0]]["nj"][p]["mean"] == pytest.approx(want, rel=1e-12)
        assert trials[ANN]["snn_over_ann"][p] == pytest.approx(1.0)
    assert ref["final_return"]["mean"] == trials[ANN]["final_return"]

    # the markdown table: the three grid points and the ANN reference, with finite nJ
    md = (budget_sweep / "report.md").read_text()
    section = md.split("## Return against energy per inference")[1]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[0][2:] for r in rows[:3]] == labels
    assert rows[3].startswith("| ANN reference, Pendulum-v1 (256-256, 66,560 MACs)")
    loihi2 = groups[LIF0.split("/")[0]]["nj"]["loihi2"]["mean"]
    assert f"{loihi2:.4g}" in rows[0] and "![return against energy" in section
    assert "pareto.png" in out.stdout

    # a second report reads what the first stored: nothing is exported or counted again
    kept = [budget_sweep / n / BUNDLE / f for n in (LIF0, LIF300) for f in STORED]
    kept += [budget_sweep / n / "energy.json" for n in (LIF0, LIF300)]
    stamps = {f: f.stat().st_mtime_ns for f in kept}
    again = write_report(budget_sweep, hardware=PROFILES, energy_episodes=1)
    assert again["pareto"] == pareto
    assert {f: f.stat().st_mtime_ns for f in stamps} == stamps

    # committed results keep each trial's energy.json, not its bundle: the same table, no export
    bare = tmp_path / "bare"
    shutil.copytree(budget_sweep, bare, ignore=shutil.ignore_patterns(BUNDLE, "report.*"))
    assert write_report(bare, hardware=PROFILES, energy_episodes=1)["pareto"] == pareto
    assert not list(bare.glob(f"*/*/{BUNDLE}"))


@pytest.mark.slow  # two exports and two bench-energy runs, ~45 s on a 2-core machine
def test_other_counting_options_export_and_count_again(budget_sweep, tmp_path):
    """Committed results keep energy.json, not the bundle: counting with other options (here
    2 episodes) needs the deployed policy again, so each trial is exported and counted anew."""
    measured = tmp_path / "measured"  # counted with 1 episode (or read, if counted before)
    shutil.copytree(budget_sweep, measured)
    write_report(measured, hardware=PROFILES, energy_episodes=1)
    bare = tmp_path / "bare"
    shutil.copytree(measured, bare, ignore=shutil.ignore_patterns(BUNDLE, "report.*"))
    first = write_report(bare, hardware=PROFILES, energy_episodes=1)["pareto"]
    assert first["energy_episodes"] == 1 and not list(bare.glob(f"*/*/{BUNDLE}"))
    other = write_report(bare, hardware=PROFILES, energy_episodes=2)["pareto"]
    assert other["energy_episodes"] == 2 and len(list(bare.glob(f"*/*/{BUNDLE}"))) == 2


def test_a_sweep_over_one_budget_has_no_pareto_outputs(budget_sweep, tmp_path):
    sweep = tmp_path / "one"
    spec = SweepSpec("pendulum", [0], parse_grid(["sop_budget=0"]), dict(TINY, hidden=[16, 16]))
    write_manifest(sweep, spec)
    shutil.copytree(
        budget_sweep / LIF0, sweep / "sop_budget=0" / "seed0", ignore=shutil.ignore_patterns(BUNDLE)
    )
    report = write_report(sweep)
    assert "pareto" not in report
    assert sorted(p.name for p in sweep.glob("*.*")) == ["curves.png", "report.json",
                                                         "report.md", "sweep.json"]  # fmt: skip
    assert not (sweep / "sop_budget=0" / "seed0" / BUNDLE).exists()
    assert "Return against energy" not in (sweep / "report.md").read_text()


def test_energy_options_are_checked(budget_sweep, tmp_path):
    with pytest.raises(ConfigError, match="unknown hardware profile 'loihi3'"):
        write_report(budget_sweep, out=tmp_path, hardware=["loihi3"])
    with pytest.raises(ConfigError, match="--energy-episodes must be at least 1"):
        write_report(budget_sweep, out=tmp_path, energy_episodes=0)
    assert list(tmp_path.iterdir()) == []


def test_a_bundle_a_user_exported_from_another_policy_is_kept(budget_sweep, tmp_path):
    """`neurodeploy export TRIAL/best.pt` lands in TRIAL/bundle-loihi2: the report leaves
    that bundle as it is and lists the trial as not measured, naming why."""
    from neurodeploy.export.bundle import export_bundle

    sweep = tmp_path / "copy"
    shutil.copytree(budget_sweep, sweep, ignore=shutil.ignore_patterns(BUNDLE, "report.*"))
    (sweep / LIF0 / "energy.json").unlink(missing_ok=True)  # never measured by the report
    users = export_bundle(sweep / LIF300 / "policy.pt", "loihi2", sweep / LIF0 / BUNDLE,
                          observations=8)  # fmt: skip
    before = {f: f.read_bytes() for f in users.iterdir()}
    pareto = write_report(sweep, hardware=PROFILES, energy_episodes=1)["pareto"]
    assert "exported from another policy" in pareto["not_measured"][LIF0]
    assert {f: f.read_bytes() for f in users.iterdir()} == before


@pytest.mark.slow
def test_a_trial_trained_further_is_exported_and_counted_again(budget_sweep, tmp_path):
    """A bundle exported from an earlier policy.pt is replaced: here the trial's policy.pt
    becomes the other budget's, so its numbers must become that trial's."""
    sweep = tmp_path / "copy"
    shutil.copytree(budget_sweep, sweep)
    before = write_report(sweep, hardware=PROFILES, energy_episodes=1)["pareto"]
    shutil.copy(sweep / LIF300 / "policy.pt", sweep / LIF0 / "policy.pt")
    after = write_report(sweep, hardware=PROFILES, energy_episodes=1)["pareto"]
    trials = {t["name"]: t for t in after["trials"]}
    old = {t["name"]: t for t in before["trials"]}
    assert trials[LIF0]["nj"] == old[LIF300]["nj"] != old[LIF0]["nj"]
    manifest = json.loads((sweep / LIF0 / BUNDLE / "manifest.json").read_text())
    assert manifest["files"]["policy.pt"] == sha256(sweep / LIF300 / "policy.pt")


def test_a_gap_that_is_not_a_number_is_no_gap():
    """A NaN return gives no gap (None, which fails the 5 % check) rather than NaN, which
    max() over the seeds could skip and so pass."""
    from neurodeploy.sweep.pareto import _gap

    assert _gap(-100.0, -110.0) == pytest.approx(10 / 110)
    assert _gap(float("nan"), -110.0) is None
    assert _gap(-100.0, float("nan")) is None
    assert _gap(-100.0, 0.0) is None
