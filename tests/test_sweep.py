"""Sweeps on a real local Ray (kill a trial, rerun, resume) and the report's APG arithmetic."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurodeploy.errors import ConfigError, SweepError
from neurodeploy.sweep.report import apg, apg_table, write_report
from neurodeploy.sweep.runner import check_reachable
from neurodeploy.sweep.spec import (
    SweepSpec,
    parse_grid,
    parse_seeds,
    point_label,
    read_trial,
    update_trial,
    write_manifest,
)
from neurodeploy.train.config import TrainConfig, save_config

NEURODEPLOY = str(Path(sys.executable).parent / "neurodeploy")

# Paper Table 1, max average return (Proxy Target, NeurIPS 2025): PT-LIF and ANN TD3.
ENVS = ["InvertedDoublePendulum-v4", "Ant-v4", "HalfCheetah-v4", "Hopper-v4", "Walker2d-v4"]
PT_LIF = dict(zip(ENVS, [9348, 5383, 10103, 3385, 4314], strict=True))
ANN = dict(zip(ENVS, [7503, 4770, 10857, 3410, 4340], strict=True))

# A few hundred steps of tiny networks: 300 random steps, then 100 updates.
TINY = {
    "steps": 400,
    "start_steps": 300,
    "checkpoint_every": 200,
    "eval_every": 100,
    "eval_episodes": 1,
    "hidden": "[16, 16]",
    "proxy_hidden": "[32, 32]",
    "batch_size": 32,
    "critic_hidden": 32,
    "timesteps": 3,
}


def sweep_cmd(out: Path) -> list[str]:
    sets = [a for k, v in TINY.items() if k != "steps" for a in ("--set", f"{k}={v}")]
    return [
        NEURODEPLOY, "sweep", "pendulum", "--seeds", "0-1", "--grid", "neuron=lif,ann",
        "--steps", str(TINY["steps"]), *sets, "--num-cpus", "2", "--out", str(out),
    ]  # fmt: skip


def one_line(text: str) -> str:
    """The CLI's rich console wraps long lines; compare with single spaces."""
    return " ".join(text.split())


# --- the sweep on Ray ----------------------------------------------------------------------


@pytest.mark.slow  # ~1-2 min (Ray and four trials, twice): keeps make test under 15 min
def test_sweep_on_local_ray_resumes_a_killed_trial_and_skips_finished_ones(tmp_path):
    out = tmp_path / "sweep"
    proc = subprocess.Popen(
        sweep_cmd(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        victim = _kill_a_trial_after_its_first_checkpoint(out, proc)
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:  # the driver shuts its Ray down on Ctrl-C
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    # The killed trial fails the sweep at the end, by name; the other three finished.
    assert proc.returncode == 1, stderr
    assert f"1 of 4 trials failed: {victim}" in one_line(stderr) and "Traceback" not in stderr
    assert read_trial(out / victim)["status"] == "failed"
    trials = json.loads((out / "sweep.json").read_text())["trials"]
    names = [t["name"] for t in trials]
    assert names == ["neuron=lif/seed0", "neuron=ann/seed0", "neuron=lif/seed1", "neuron=ann/seed1"]
    others = [n for n in names if n != victim]
    before = {n: (out / n / "trial.json").stat().st_mtime_ns for n in others}
    for name in others:
        assert read_trial(out / name)["status"] == "done"
        # the driver's niceness (this process's), not Ray's default of 15 more
        assert read_trial(out / name)["nice"] == os.nice(0)

    # Rerun: only the killed trial runs, from its checkpoint.
    rerun = subprocess.run(sweep_cmd(out), capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    assert "3 finished before, 1 to run" in one_line(rerun.stderr)
    record = read_trial(out / victim)
    assert record["status"] == "done" and record["attempts"] == 2
    assert record["resumed_from_step"] >= 200  # the first checkpoint, not a fresh start
    steps = [r.split(",")[0] for r in (out / victim / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == ["100", "200", "300", "400"]
    for name in others:
        assert (out / name / "trial.json").stat().st_mtime_ns == before[name]
        assert read_trial(out / name)["attempts"] == 1

    # Every trial is an ordinary run directory: `neurodeploy run` works on it.
    ran = subprocess.run(
        [NEURODEPLOY, "run", str(out / victim), "--episodes", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["episodes"] == 1

    report = write_report(out, "neuron=ann")
    for name in ("report.md", "report.json", "curves.png"):
        assert (out / name).stat().st_size > 0
    lif, ann = report["groups"]
    assert (lif["label"], lif["finished"], ann["finished"]) == ("neuron=lif", 2, 2)
    assert 0 < lif["firing_rate"]["mean"] < 1 and lif["sops_per_action"]["mean"] > 0
    assert ann["firing_rate"] is None and ann["macs_per_action"]["mean"] > 0
    assert lif["max_avg_return"]["n"] == 2
    # Pendulum returns are negative: the APG ratio is meaningless and is not reported.
    assert report["apg"][0]["methods"][0]["apg"] is None


def _kill_a_trial_after_its_first_checkpoint(out: Path, proc) -> str:
    """SIGKILL the Ray worker of the first trial that is running past its first checkpoint.

    The kill waits for the checkpoint and the evaluation row of step 200 (the row is logged
    first). The deadline is generous: on a loaded 2-core machine Ray and four trials are slow.
    """
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        for ckpt in sorted(out.glob("*/seed*/checkpoint/state.pt")):
            run_dir = ckpt.parent.parent
            record = read_trial(run_dir)
            rows = (
                (run_dir / "metrics.csv").read_text() if (run_dir / "metrics.csv").exists() else ""
            )
            if record.get("status") == "running" and record.get("pid") and "\n200," in rows:
                os.kill(record["pid"], signal.SIGKILL)
                return str(run_dir.relative_to(out))
        time.sleep(0.05)
    pytest.fail(f"no trial was seen running after a checkpoint (sweep exit {proc.poll()})")


# --- the report's arithmetic, on the paper's numbers ---------------------------------------


def test_apg_of_pt_lif_against_ann_is_the_papers():
    gain = apg(PT_LIF, ANN)
    assert round(100 * gain, 2) == 5.83  # the paper prints 5.84 % from unrounded returns
    with pytest.raises(ValueError):
        apg({"Hopper-v4": -3.0}, {"Hopper-v4": -2.0})
    with pytest.raises(ValueError):
        apg({"Hopper-v4": 3.0}, {"Ant-v4": 2.0})

    # negative returns (Pendulum): no APG and no ratio, whose order would be reversed
    def row(neuron, returns):  # one group of a report: its seeds' max average returns
        values = list(returns.values())
        stats = {"mean": sum(values) / len(values), "values": values}
        return {"point": {"neuron": neuron}, "seeds": list(returns), "max_avg_return": stats}

    rows = [row("lif", {0: -150.0}), row("ann", {0: -300.0})]
    (method,) = apg_table(rows, {"neuron": "ann"})["methods"]
    assert method["apg"] is None and method["ratios"] == {"(all)": None}
    # an extra seed on one side is not compared with the other's fewer: seed 0 only
    rows = [row("lif", {0: 400.0, 1: 100.0}), row("ann", {0: 200.0})]
    (method,) = apg_table(rows, {"neuron": "ann"})["methods"]
    assert method["apg"] == pytest.approx(1.0) and method["seeds"] == {"(all)": [0]}


def test_an_option_a_config_does_not_name_counts_at_its_default():
    from neurodeploy.sweep.report import mixed_settings

    default = TrainConfig().to_dict()
    older = {k: v for k, v in default.items() if k != "sop_budget"}  # written before it existed
    assert mixed_settings([default, older]) == []
    assert mixed_settings([{**default, "sop_budget": 5000.0}, older]) == ["sop_budget"]
    assert mixed_settings([{**default, "proxy": 1}, default]) == []  # not a training option
    # without --steps each trial counts at its own budget: seeds trained for two are mixed
    assert mixed_settings([{**default, "steps": 100}, {**default, "steps": 200}]) == ["steps"]


def fake_run(run_dir: Path, cfg: TrainConfig, best: float) -> None:
    """A run directory in the real format: config.toml and three evaluations, best in the
    middle."""
    save_config(cfg, run_dir / "config.toml")
    rows = [(cfg.steps // 3, 0.5 * best), (2 * cfg.steps // 3, best), (cfg.steps, 0.9 * best)]
    (run_dir / "metrics.csv").write_text(
        "step,episode_return,eval_return_mean,eval_return_std,steps_per_s\n"
        + "".join(f"{s},{r},{r},1.0,100\n" for s, r in rows)
    )


def table1_fixture(sweep_dir: Path) -> SweepSpec:
    """PT-LIF and ANN TD3 on the paper's five envs, 2 seeds; best evaluation = Table 1."""
    methods = parse_grid(["algo:neuron=pt-td3:lif,td3:ann"])  # PT-LIF and ANN TD3, linked
    spec = SweepSpec(None, [0, 1], {"env": ENVS, **methods}, {"steps": 3000, "start_steps": 1000})
    write_manifest(sweep_dir, spec)
    for trial in spec.trials():
        env, neuron = trial.point["env"], trial.point["neuron"]
        best = (PT_LIF if neuron == "lif" else ANN)[env] + (50 if trial.seed else -50)
        cfg = TrainConfig(env=env, algo=trial.point["algo"], neuron=neuron, steps=3000)
        fake_run(sweep_dir / trial.name, cfg, best)
    return spec


def test_report_on_a_table1_fixture(tmp_path):
    """Run directories in the real format whose best evaluation is the paper's return."""
    table1_fixture(tmp_path)
    out = subprocess.run(
        [NEURODEPLOY, "report", str(tmp_path), "--baseline", "algo=td3,neuron=ann"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    (method,) = report["apg"][0]["methods"]
    assert method["method"] == "algo=pt-td3,neuron=lif"
    assert round(method["apg_percent"], 2) == 5.83
    assert method["ratios"]["env=Hopper-v4"] == pytest.approx(3385 / 3410)
    groups = {g["label"]: g for g in report["groups"]}
    hopper = groups["env=Hopper-v4,algo=pt-td3,neuron=lif"]
    assert hopper["max_avg_return"]["mean"] == pytest.approx(3385)
    assert hopper["max_avg_return"]["std"] == pytest.approx(50)
    assert hopper["final_return"]["mean"] == pytest.approx(0.8 * 3385)  # mean of the last 3
    md = (tmp_path / "report.md").read_text()
    assert "+5.83 %" in md and "| algo=pt-td3,neuron=lif | 9348 ± 50 | 5383 ± 50 |" in md
    assert (tmp_path / "curves.png").stat().st_size > 0


@pytest.mark.slow  # three report subprocesses (~20 s): keeps make test under 15 min
def test_a_rebuild_keeps_its_apg_and_counts_trials_at_the_sweeps_budget(tmp_path):
    spec = table1_fixture(tmp_path)
    report = [NEURODEPLOY, "report", str(tmp_path)]
    for args in (["--baseline", "algo=td3,neuron=ann"], []):  # the rebuild names no baseline
        out = subprocess.run(report + args, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        rebuilt = json.loads((tmp_path / "report.json").read_text())
        assert round(rebuilt["apg"][0]["methods"][0]["apg_percent"], 2) == 5.83
    # a reference implementation beside a Table 1 grid: its own group, no env column
    manifest = json.loads((tmp_path / "sweep.json").read_text())
    ref = {"name": "reference/seed0", "dir": "reference/seed0", "point": {"implementation": "ref"}}
    manifest["trials"].append({**ref, "seed": 0})
    (tmp_path / "sweep.json").write_text(json.dumps(manifest))
    fake_run(tmp_path / "reference/seed0", TrainConfig(env="Hopper-v4", steps=3000), 3000.0)
    out = subprocess.run(report, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert "| implementation=ref | 1/1 |" in (tmp_path / "report.md").read_text()
    # one seed trained with another learning rate: the report says so
    odd = TrainConfig(env="Hopper-v4", algo="pt-td3", neuron="lif", steps=3000, actor_lr=1e-3)
    fake_run(tmp_path / "env=Hopper-v4,algo=pt-td3,neuron=lif/seed1", odd, 3000.0)
    mixed = {g["label"]: g["mixed_settings"] for g in write_report(tmp_path)["groups"]}
    assert mixed.pop("env=Hopper-v4,algo=pt-td3,neuron=lif") == ["actor_lr"]
    assert not any(mixed.values())
    assert "were trained with different actor_lr" in (tmp_path / "report.md").read_text()
    # the sweep extended to 6000 steps: a trial counts again only once it reaches them
    write_manifest(tmp_path, SweepSpec(None, [0, 1], spec.grid, {**spec.overrides, "steps": 6000}))
    resumed = spec.trials()[0]
    fake_run(tmp_path / resumed.name, TrainConfig(env="InvertedDoublePendulum-v4", steps=6000), 1.0)
    rebuilt = write_report(tmp_path)
    counted = [g for g in rebuilt["groups"] if g["finished"]]
    assert [g["label"] for g in counted] == [point_label(resumed.point)]
    assert len(rebuilt["unfinished"]) == 2 * len(ENVS) * 2 - 1  # the sweep's other trials
    # its trial.json still holds the 3000-step policy's cost (the run was killed before its
    # new measurement): the 6000-step returns are shown without it, never beside it
    stale = {"status": "running", "steps": 3000, "sops_per_action": 123.0, "firing_rate": 0.2}
    update_trial(tmp_path / resumed.name, **stale)
    (row,) = [g for g in write_report(tmp_path)["groups"] if g["finished"]]
    assert row["sops_per_action"] is None and row["firing_rate"] is None
    update_trial(tmp_path / resumed.name, status="done", steps=6000)  # measured at 6000
    (row,) = [g for g in write_report(tmp_path)["groups"] if g["finished"]]
    assert row["sops_per_action"]["values"] == [123.0]


# --- errors a user can cause ---------------------------------------------------------------


def test_seeds_and_grid_syntax():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    grid = parse_grid(["neuron=lif,ann", "hidden=[64, 64],[256,256]", "actor_lr=3e-4,1e-3"])
    assert grid == {
        "neuron": ["lif", "ann"],
        "hidden": [[64, 64], [256, 256]],
        "actor_lr": [3e-4, 1e-3],
    }
    names = [t.name for t in SweepSpec("pendulum", [0], grid).trials()]
    assert names[0] == "neuron=lif,hidden=64x64,actor_lr=0.0003/seed0" and len(names) == 8
    for bad in ("a-b", "4-0", ""):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)
    with pytest.raises(ConfigError, match="unknown option 'nueron'"):
        parse_grid(["nueron=lif,ann"])
    with pytest.raises(ConfigError, match="--seeds"):
        parse_grid(["seed=1,2"])
    with pytest.raises(ConfigError, match="KEY=V1,V2"):
        parse_grid(["neuron"])
    linked = parse_grid(["algo:neuron=pt-td3:lif,td3:ann", "env=Hopper-v4,Ant-v4"])
    points = SweepSpec("pendulum", [0], linked).points()
    assert points[1] == {"algo": "pt-td3", "neuron": "lif", "env": "Ant-v4"} and len(points) == 4
    with pytest.raises(ConfigError, match="needs 2 value"):
        parse_grid(["algo:neuron=pt-td3:lif,td3"])
    with pytest.raises(ConfigError, match="neuron must be one of"):
        SweepSpec("pendulum", [0], parse_grid(["neuron=lif,lfi"])).resolve()


def test_address_and_report_errors_are_one_clear_line(tmp_path):
    with pytest.raises(ConfigError, match="no Ray cluster answers there"):
        check_reachable("127.0.0.1:1")
    with pytest.raises(ConfigError, match="HOST:PORT"):
        check_reachable("headnode")
    out = subprocess.run(
        [NEURODEPLOY, "report", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "not a sweep directory (no sweep.json)" in one_line(out.stderr)
    spec = SweepSpec("pendulum", [0, 1], {"neuron": ["lif", "ann"]})
    write_manifest(tmp_path, spec)
    with pytest.raises(SweepError, match="no trial has finished"):
        write_report(tmp_path)
    with pytest.raises(ConfigError, match="another sweep"):
        write_manifest(tmp_path, SweepSpec("pendulum", [0, 1, 2], spec.grid))
    two = tmp_path / "two-keys"
    write_manifest(
        two, SweepSpec("pendulum", [0], parse_grid(["neuron=lif,ann", "actor_lr=3e-4,1e-3"]))
    )
    with pytest.raises(ConfigError, match="another sweep"):  # other directory names
        write_manifest(
            two, SweepSpec("pendulum", [0], parse_grid(["actor_lr=3e-4,1e-3", "neuron=lif,ann"]))
        )
    (tmp_path / "neuron=ann" / "seed0").mkdir(parents=True)
    save_config(TrainConfig(steps=100), tmp_path / "neuron=ann" / "seed0" / "config.toml")
    (tmp_path / "neuron=ann" / "seed0" / "metrics.csv").write_text("step,eval_return_mean\n100,5\n")
    with pytest.raises(ConfigError, match="neuron has no value 'snn'"):
        write_report(tmp_path, "neuron=snn")
    with pytest.raises(ConfigError, match="not a grid key"):
        write_report(tmp_path, "env=Hopper-v4")


def test_a_rerun_after_the_recipe_changed_refuses_and_keeps_the_manifest(tmp_path):
    spec = SweepSpec("pendulum", [0, 1], {"neuron": ["lif", "ann"]}, {"steps": 6000})
    write_manifest(tmp_path, spec)
    path = tmp_path / "sweep.json"
    manifest = json.loads(path.read_text())
    # as if the pendulum recipe had said actor_lr = 0.002 when the sweep started
    manifest["configs"]["neuron=ann/seed1"]["actor_lr"] = 0.002
    manifest["configs"]["neuron=ann/seed1"]["an_option_removed_since"] = 1
    del manifest["configs"]["neuron=lif/seed0"]["sop_budget"]  # an option added since
    path.write_text(json.dumps(manifest))
    before = path.read_text()
    with pytest.raises(ConfigError, match=r"trial neuron=ann/seed1 .* actor_lr \(0.002 there"):
        write_manifest(tmp_path, SweepSpec("pendulum", [0, 1], spec.grid, {"steps": 9000}))
    assert path.read_text() == before
    manifest["configs"]["neuron=ann/seed1"]["actor_lr"] = spec.resolve()[1][3][1].actor_lr
    path.write_text(json.dumps(manifest))
    write_manifest(tmp_path, SweepSpec("pendulum", [0, 1], spec.grid, {"steps": 9000}))
    assert json.loads(path.read_text())["overrides"] == {"steps": 9000}
    # a finished trial trained 9000 steps: a rerun at fewer refuses before sweep.json changes
    update_trial(tmp_path / "neuron=lif" / "seed0", status="done", steps=9000)
    before = path.read_text()
    with pytest.raises(ConfigError, match=r"neuron=lif/seed0 has trained 9,000 steps; --steps"):
        write_manifest(tmp_path, SweepSpec("pendulum", [0, 1], spec.grid, {"steps": 6000}))
    assert path.read_text() == before


def test_a_finished_trial_without_its_checkpoint_is_not_extended_over_its_results(tmp_path):
    from dataclasses import replace

    from neurodeploy.errors import CheckpointError
    from neurodeploy.sweep.runner import run_trial

    tiny = {k: v for k, v in TINY.items() if k not in ("hidden", "proxy_hidden")}
    cfg = TrainConfig(env="Pendulum-v1", hidden=[16, 16], proxy_hidden=[32, 32], **tiny)
    run = tmp_path / "seed0"
    assert run_trial(cfg.to_dict(), str(run), "seed0")["status"] == "done"
    shutil.rmtree(run / "checkpoint")  # it holds the replay buffer: tempting to delete
    kept = {n: (run / n).read_bytes() for n in ("metrics.csv", "policy.pt")}
    with pytest.raises(CheckpointError, match="finished at 400 steps and has no checkpoint/"):
        run_trial(replace(cfg, steps=600).to_dict(), str(run), "seed0")
    assert {n: (run / n).read_bytes() for n in kept} == kept
