"""Sweeps on a real local Ray (kill a trial, rerun, resume) and the report's APG arithmetic."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurodeploy.errors import ConfigError, SweepError
from neurodeploy.sweep.report import apg, write_report
from neurodeploy.sweep.runner import check_reachable
from neurodeploy.sweep.spec import SweepSpec, parse_grid, parse_seeds, read_trial, write_manifest
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


def test_report_on_a_table1_fixture(tmp_path):
    """Run directories in the real format whose best evaluation is the paper's return."""
    methods = parse_grid(["algo:neuron=pt-td3:lif,td3:ann"])  # PT-LIF and ANN TD3, linked
    spec = SweepSpec(None, [0, 1], {"env": ENVS, **methods}, {"steps": 3000})
    write_manifest(tmp_path, spec, "table1")
    for trial in spec.trials():
        run_dir = tmp_path / trial.name
        env, neuron = trial.point["env"], trial.point["neuron"]
        best = (PT_LIF if neuron == "lif" else ANN)[env] + (50 if trial.seed else -50)
        cfg = TrainConfig(env=env, algo=trial.point["algo"], neuron=neuron, steps=3000)
        save_config(cfg, run_dir / "config.toml")
        rows = [(1000, 0.5 * best), (2000, best), (3000, 0.9 * best)]
        (run_dir / "metrics.csv").write_text(
            "step,episode_return,eval_return_mean,eval_return_std,steps_per_s\n"
            + "".join(f"{s},{r},{r},1.0,100\n" for s, r in rows)
        )
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
    write_manifest(tmp_path, spec, "pendulum")
    with pytest.raises(SweepError, match="no trial has finished"):
        write_report(tmp_path)
    with pytest.raises(ConfigError, match="another sweep"):
        write_manifest(tmp_path, SweepSpec("pendulum", [0, 1, 2], spec.grid), "pendulum")
    (tmp_path / "neuron=ann" / "seed0").mkdir(parents=True)
    save_config(TrainConfig(steps=100), tmp_path / "neuron=ann" / "seed0" / "config.toml")
    (tmp_path / "neuron=ann" / "seed0" / "metrics.csv").write_text("step,eval_return_mean\n100,5\n")
    with pytest.raises(ConfigError, match="neuron has no value 'snn'"):
        write_report(tmp_path, "neuron=snn")
    with pytest.raises(ConfigError, match="not a grid key"):
        write_report(tmp_path, "env=Hopper-v4")
