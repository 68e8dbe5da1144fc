"""Closed-loop runs on every backend (real gymnasium + Lava), operation counts and energy."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from neurodeploy.errors import BundleError, ConfigError
from neurodeploy.export.bundle import export_bundle, seal
from neurodeploy.export.netx import read_netx
from neurodeploy.export.timing import lava_steps_per_action
from neurodeploy.hardware import backends
from neurodeploy.hardware import energy as E
from neurodeploy.hardware.bench import bench_energy
from neurodeploy.hardware.runner import run_policy
from neurodeploy.snn import ActorConfig, build_actor, policy_payload

NEURODEPLOY = str(Path(sys.executable).parent / "neurodeploy")


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    actor = build_actor(ActorConfig(3, 1, [-2.0], [2.0], hidden=[48, 24]))
    torch.save({**policy_payload(actor), "env": "Pendulum-v1"}, run / "policy.pt")
    export_bundle(run, "loihi2", run / "bundle-loihi2", observations=8)
    export_bundle(run, "onnx", run / "bundle-onnx", observations=8)
    return run


def test_loihi2_sim_and_emulator_give_the_same_return(pendulum_run):
    sim = run_policy(pendulum_run, "loihi2-sim", episodes=1, seed=3).summary()
    emu = run_policy(pendulum_run, "emulator", episodes=1, seed=3).summary()
    assert sim["returns"] == emu["returns"]
    assert sim["spikes_per_step"] == emu["spikes_per_step"]
    assert sim["episode_lengths"] == [200]
    assert sim["spikes_per_step"]["hidden0"] > 0


def test_torch_and_onnx_backends_agree(pendulum_run):
    t = run_policy(pendulum_run, "torch", episodes=1, seed=1).summary()
    o = run_policy(pendulum_run / "bundle-onnx", "onnx", episodes=1, seed=1).summary()
    assert t["return_mean"] == pytest.approx(o["return_mean"], rel=1e-4)
    assert t["latency_ms_median"] > 0 and t["latency_ms_p99"] >= t["latency_ms_median"]


def test_a_policy_file_runs_like_its_run_directory(pendulum_run):
    run = run_policy(pendulum_run, "torch", episodes=1, seed=2).summary()
    file = run_policy(pendulum_run / "policy.pt", "torch", episodes=1, seed=2).summary()
    assert file["returns"] == run["returns"]
    with pytest.raises(BundleError, match="export the run first"):
        run_policy(pendulum_run / "policy.pt", "loihi2-sim", episodes=1)


def test_cli_run_json(pendulum_run):
    out = subprocess.run(
        [
            NEURODEPLOY,
            "run",
            str(pendulum_run),
            "--backend",
            "emulator",
            "--episodes",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["backend"] == "emulator" and len(summary["returns"]) == 1


def test_bad_inputs_are_clear_errors(pendulum_run, tmp_path):
    with pytest.raises(BundleError, match="trained on Pendulum-v1, not Hopper-v4"):
        run_policy(pendulum_run, "torch", episodes=1, env_id="Hopper-v4")
    with pytest.raises(BundleError, match="needs policy.onnx"):
        run_policy(pendulum_run / "bundle-loihi2", "onnx", episodes=1)
    with pytest.raises(BundleError, match="unknown backend"):
        run_policy(pendulum_run, "gpu", episodes=1)
    with pytest.raises(ConfigError, match="unknown hardware profile 'tpu'"):
        bench_energy(pendulum_run, ["tpu"])
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in (pendulum_run / "bundle-loihi2").iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "policy.nir").unlink()
    with pytest.raises(BundleError, match="policy.nir is missing"):
        run_policy(broken, "emulator", episodes=1)
    out = subprocess.run(
        [NEURODEPLOY, "bench-energy", str(pendulum_run), "--hardware", "tpu"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "unknown hardware profile" in out.stderr
    assert "Traceback" not in out.stderr


def test_paper_profile_reproduces_table_2_ann_arithmetic():
    macs = E.ann_macs(11, 3)  # Hopper sizes
    assert macs == 69_120
    row = E.energy(
        E.load_profile("paper"),
        {"sops": 0.0, "neuron_updates": 0.0, "spiking_neuron_steps": 0.0},
        macs,
        8,
    )
    assert row["ann_nj"] == pytest.approx(274.4, rel=1e-3)


def test_operation_counts_by_hand():
    w0 = np.array([[1, 0, 2], [0, 0, 3]])  # 3 inputs -> 2 neurons: fan-out 1/3, 0, 2/3... mean 1
    w1 = np.array([[4, 5]])
    ops = E.count_ops([3.0, 2.0, 1.0], [3, 2, 1], [w0, w1], lava_steps=7)
    assert ops["sops_per_layer"] == [3.0 * 1.0, 2.0 * 1.0]
    assert ops["neuron_updates"] == 3 * 7
    loihi = E.energy(E.load_profile("loihi"), ops, macs=10, lava_steps=7)
    spiking = 3.0  # spikes of the two on-chip layers
    assert loihi["snn_nj"] == pytest.approx((5.0 * 23.6 + spiking * 81 + (21 - spiking) * 52) / 1e3)
    assert loihi["latency_us"] == pytest.approx((7 * 465 + 5 * 3.5 + 21 * 8.4) / 1e3)


def test_a_profile_term_counts_on_its_own():
    """A profile that publishes the spiking neuron's update energy but not the silent one's
    is charged for the spiking updates (the silent ones count zero), not for neither."""
    fig = {"status": "measured", "citation": "by hand"}
    figures = {"sop_pj": {**fig, "value": 1.0}, "neuron_update_active_pj": {**fig, "value": 100.0}}
    profile = E.Profile("half", "", figures)
    ops = {"sops": 1000.0, "neuron_updates": 500.0, "spiking_neuron_steps": 50.0}
    assert E.energy(profile, ops, macs=10, lava_steps=7)["snn_nj"] == pytest.approx(6.0)


def test_every_profile_cites_and_states_status():
    for name in ("loihi", "loihi2", "paper", "cmos45nm"):
        profile = E.load_profile(name)
        assert all(v["status"] in E.STATUSES and v["citation"] for v in profile.figures.values())


def test_bench_energy_writes_all_four_files(pendulum_run, tmp_path):
    report = bench_energy(pendulum_run, episodes=1, out=tmp_path / "e")
    for name in ("energy.json", "energy.md", "energy.png", "rates.png"):
        assert (tmp_path / "e" / name).exists()
    assert set(report["profiles"]) == {"loihi", "loihi2", "paper", "cmos45nm"}
    assert set(report["simulation_latency"]) == {"torch", "emulator", "loihi2-sim"}
    assert report["ann_macs"] == 3 * 256 + 256 * 256 + 256 * 1
    assert report["ops"]["sops"] > 0
    # the empty steps after the windows cost SOPs too, and the energy charges them
    outside = report["ops"]["sops_outside_windows"]
    assert outside > 0  # an untrained actor: more than in its windows (its biases drive it)
    neurons = sum(f.size for f in read_netx(pendulum_run / "bundle-loihi2" / "policy.net"))
    empty = report["lava_steps_per_action"] - 5  # T = 5
    assert 0 < report["ops"]["spiking_outside_windows"] <= neurons * empty  # at most all fire
    paper = report["profiles"]["paper"]
    assert paper["snn_nj"] == pytest.approx((report["ops"]["sops"] + outside) * 0.077 / 1e3)


def test_bench_energy_on_a_hopper_pt_lif_bundle(tmp_path):
    torch.manual_seed(0)
    actor = build_actor(ActorConfig(11, 3, [-1.0] * 3, [1.0] * 3))  # PT-LIF actor, paper sizes
    torch.save({**policy_payload(actor), "env": "Hopper-v4"}, tmp_path / "policy.pt")
    bundle = export_bundle(tmp_path, "loihi2", tmp_path / "bundle-loihi2", observations=8)
    report = bench_energy(tmp_path, episodes=1)
    for name in ("energy.json", "energy.md", "energy.png", "rates.png"):
        assert (bundle / name).exists()
    assert report["ann_macs"] == 69_120
    assert report["profiles"]["paper"]["ann_nj"] == pytest.approx(274.4, rel=1e-3)
    assert "274.4" in (bundle / "energy.md").read_text()


# --- issue 20: the backend registry, what each backend runs, the shipped netx file ----------


def test_run_directory_finds_its_onnx_bundle(pendulum_run):
    """`run RUN --backend onnx` after `export RUN --target onnx`: the runner opens the
    bundle that holds policy.onnx, not the first bundle of the run."""
    direct = run_policy(pendulum_run / "bundle-onnx", "onnx", episodes=1, seed=4).summary()
    found = run_policy(pendulum_run, "onnx", episodes=1, seed=4).summary()
    assert found["returns"] == direct["returns"]
    out = subprocess.run(
        [
            NEURODEPLOY,
            "run",
            str(pendulum_run),
            "--backend",
            "onnx",
            "--seed",
            "4",
            "--episodes",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["returns"] == direct["returns"]


def test_every_backend_is_a_registered_class_that_names_its_file():
    assert set(backends.REGISTRY) == {"torch", "onnx", "emulator", "lava", "loihi2-sim"}
    needs = {name: cls.needs for name, cls in backends.REGISTRY.items()}
    assert needs == {
        "torch": None,
        "onnx": "policy.onnx",
        "emulator": "policy.net",
        "lava": "policy.nir",
        "loihi2-sim": "policy.net",
    }


def test_a_new_backend_is_one_class(pendulum_run):
    """Registering a class is all the runner needs: here, the emulator with its actions
    halved (a real policy change the returns show)."""

    @backends.register("emulator-half")
    class HalfEmulator(backends.EmulatorBackend):
        def act(self, obs):
            return super().act(obs) / 2

    try:
        half = run_policy(pendulum_run, "emulator-half", episodes=1, seed=3)
        full = run_policy(pendulum_run, "emulator", episodes=1, seed=3)
        assert half.returns != full.returns and half.backend == "emulator-half"
        assert half.layer_names == full.layer_names
    finally:
        del backends.REGISTRY["emulator-half"]


def shipped_only(bundle: Path, out: Path) -> Path:
    """A copy of a loihi2 bundle without policy.nir: what a Loihi 2 user ships (re-sealed)."""
    shutil.copytree(bundle, out)
    (out / "policy.nir").unlink()
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["files"]["policy.nir"]
    (out / "manifest.json").write_text(json.dumps(seal(manifest)))
    return out


def test_loihi2_sim_runs_the_shipped_netx_file_without_policy_nir(pendulum_run, tmp_path):
    bundle = shipped_only(pendulum_run / "bundle-loihi2", tmp_path / "shipped")
    sim = run_policy(bundle, "loihi2-sim", episodes=1, seed=3).summary()
    emu = run_policy(pendulum_run, "emulator", episodes=1, seed=3).summary()
    assert sim["returns"] == emu["returns"] and sim["output_mismatches"] == 0
    assert sim["spikes_per_step"] == emu["spikes_per_step"]
    with pytest.raises(BundleError, match="backend 'lava' needs policy.nir"):
        run_policy(bundle, "lava", episodes=1)


def test_loihi2_sim_runs_the_netx_file_not_policy_nir(pendulum_run, tmp_path):
    """A policy.net with other weights (re-sealed in the manifest) changes what loihi2-sim
    and the emulator do; the unchanged policy.nir beside it does not count."""
    bundle = shutil.copytree(pendulum_run / "bundle-loihi2", tmp_path / "edited")
    with h5py.File(bundle / "policy.net", "r+") as f:
        weight = f["layer/2/weight"]
        weight[...] = np.clip(-weight[()], -256, 254)  # the output layer, sign flipped
    manifest = json.loads((bundle / "manifest.json").read_text())
    digest = hashlib.sha256((bundle / "policy.net").read_bytes()).hexdigest()
    manifest["files"]["policy.net"] = digest
    (bundle / "manifest.json").write_text(json.dumps(seal(manifest)))
    sim = run_policy(bundle, "loihi2-sim", episodes=1, seed=3).summary()
    emu = run_policy(bundle, "emulator", episodes=1, seed=3).summary()
    assert sim["returns"] == emu["returns"] and sim["output_mismatches"] == 0
    assert sim["spikes_per_step"] == emu["spikes_per_step"]
    original = run_policy(pendulum_run, "loihi2-sim", episodes=1, seed=3).summary()
    assert original["returns"] != sim["returns"]
    assert original["spikes_per_step"]["output"] != sim["spikes_per_step"]["output"]


def test_a_netx_file_changed_after_opening_is_refused(pendulum_run, tmp_path):
    bundle = shutil.copytree(pendulum_run / "bundle-loihi2", tmp_path / "late")
    data = bytearray((bundle / "policy.net").read_bytes())
    data[-1] ^= 0xFF
    (bundle / "policy.net").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="policy.net does not match its hash"):
        backends.shipped(bundle, "policy.net")


def test_lava_float_extracts_the_output_layer_and_matches_torch(pendulum_run):
    lava = run_policy(pendulum_run, "lava", episodes=1, seed=6).summary()
    ref = run_policy(pendulum_run, "torch", episodes=1, seed=6).summary()
    assert lava["returns"] == ref["returns"] and lava["output_mismatches"] == 0
    assert lava["spikes_per_step"] == ref["spikes_per_step"]


def test_the_lava_graph_runs_one_process_per_dense_and_lif_plus_two(pendulum_run):
    from neurodeploy.hardware.lava_runtime import LavaCore

    bundle = pendulum_run / "bundle-loihi2"
    n_in = read_netx(bundle / "policy.net")[0].weight.shape[1]
    with LavaCore.from_netx(bundle / "policy.net", backends.bundle_schedule(bundle), n_in) as core:
        assert core.n_processes == 2 + 2 * 3  # injector, 3 x (Dense, LIF), one extractor
        assert (core.T, core.P, core.D) == (5, 8, 3)


def test_bench_energy_counts_what_the_manifest_schedule_says(pendulum_run, tmp_path):
    manifest = json.loads((pendulum_run / "bundle-loihi2" / "manifest.json").read_text())
    report = bench_energy(pendulum_run, episodes=1, out=tmp_path / "e")
    assert report["lava_steps_per_action"] == manifest["schedule"]["lava_steps_per_action"] == 8
    neurons = sum(f.size for f in read_netx(pendulum_run / "bundle-loihi2" / "policy.net"))
    assert report["ops"]["neuron_updates"] == neurons * 8
    assert lava_steps_per_action(5, 3, stateful=False) == 8
    assert lava_steps_per_action(5, 3, stateful=True) == 5


def test_the_empty_steps_after_each_window_are_lavas_spike_for_spike():
    """The reset schedule's empty steps on Lava fixed_pt (the whole timeline recorded) equal
    emulator.empty_steps action by action; bench-energy charges their SOPs."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from window_activity import whole_timeline

    from neurodeploy import zoo
    from neurodeploy.export import emulator, loihi2
    from neurodeploy.export.bundle import load_policy
    from neurodeploy.export.nir_graph import actor_layers

    actor, _ = load_policy(zoo.resolve_source("zoo:pendulum-pt-lif"))
    fixed, _ = loihi2.quantize(actor_layers(actor), False)
    obs = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (6, 3)), dtype=torch.float32)
    with torch.no_grad():
        actor(obs)
    frames = loihi2.chip_input(actor.spike_trains["encoder"].numpy(), False)
    T, B, _ = frames.shape
    trains, P = whole_timeline(fixed, frames)
    ours = emulator.empty_steps(fixed, frames, P - T)
    fired = 0
    for layer, (lava, mine) in enumerate(zip(trains, ours, strict=True)):
        for k in range(B - 1):  # the last action's empty steps run past the recording
            start = k * P + layer + 1 + T  # layer l sees the action l + 1 steps late
            assert np.array_equal(lava[:, start : start + P - T].T, mine[:, k] != 0)
        fired += int((mine != 0).sum())
    assert fired > 0  # the check compared spikes, not silence


def test_the_ann_side_names_its_platform_and_reads_its_weights():
    """Loihi's per-SOP energy includes its synaptic memory, so the ANN side pays a weight read
    per MAC (Horowitz, ISSCC 2014); every profile says what its ANN side models."""
    ops = {"sops": 100.0, "neuron_updates": 0.0, "spiking_neuron_steps": 0.0}
    macs = E.ann_macs(3, 1)
    for name in ("loihi", "loihi2", "paper", "cmos45nm"):
        profile = E.load_profile(name)
        assert profile.ann_platform and profile.assumptions
    row = E.energy(E.load_profile("loihi2"), ops, macs, 8)
    assert row["ann_nj"] == pytest.approx(macs * (4.6 + 10.0) / 1e3)
    cmos = E.energy(E.load_profile("cmos45nm"), ops, macs, 8)
    assert cmos["snn_nj"] == pytest.approx(100 * (0.9 + 10.0) / 1e3)


def test_exact_synaptic_events_by_hand():
    """Each spike costs its own neuron's non-zero outgoing weights (NeuroBench's count), not
    the layer's mean fan-out; count_ops takes that exact count when the trains were kept."""
    from neurodeploy.hardware.workload import synaptic_events

    w0 = np.array([[1, 0, 2], [0, 0, 3]])  # fan-out per input neuron: 1, 0, 2
    x0 = np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1]])  # neuron 0 fires twice, 1 once, 2 twice
    w1 = np.array([[4, 0]])
    x1 = np.array([[1, 1], [0, 1]])
    assert synaptic_events([x0, x1], [w0, w1]) == [2 * 1 + 1 * 0 + 2 * 2, 1 * 1 + 2 * 0]
    ops = E.count_ops([5.0, 3.0, 1.0], [3, 2, 1], [w0, w1], 7, sops_per_layer=[6.0, 1.0])
    assert ops["sops_per_layer"] == [6.0, 1.0] and ops["sops"] == 7.0


def test_bench_energy_sops_equal_neurobench_effective_acs(pendulum_run, tmp_path):
    """NeuroBench's own Benchmark, hooking the Linear synapses of the shipped core on the same
    closed-loop chip input, counts exactly bench-energy's synaptic ops; its other workload and
    static metrics agree with the bundle's spikes and policy.net."""
    pytest.importorskip("neurobench")
    report = bench_energy(pendulum_run, episodes=1, out=tmp_path / "e")
    nb = report["neurobench"]
    assert nb["available"] and nb["samples"] == 200
    assert nb["effective_acs"] == pytest.approx(report["ops"]["sops"], rel=1e-12)
    assert nb["effective_macs"] == 0  # the population encoder sends binary spikes
    layers = read_netx(pendulum_run / "bundle-loihi2" / "policy.net")
    neurons, T = sum(f.size for f in layers), 5
    spikes = report["ops"]["spiking_neuron_steps"]
    assert nb["activation_sparsity"] == pytest.approx(1 - spikes / (neurons * T), rel=1e-12)
    weights = sum(f.weight.size for f in layers)
    assert nb["parameter_count"] == weights + neurons  # weights and one bias per neuron
    assert nb["footprint_bytes"] == 4 * (weights + neurons)
    zeros = sum(int((f.weight == 0).sum()) for f in layers)
    assert nb["connection_sparsity"] == round(zeros / weights, 4)
    assert nb["dense_ops"] == sum(f.weight.size for f in layers) * T
    assert "NeuroBench workload metrics" in (tmp_path / "e" / "energy.md").read_text()


def test_neurobench_missing_is_reported_not_raised(pendulum_run, monkeypatch):
    from neurodeploy.hardware.workload import neurobench_metrics

    monkeypatch.setitem(sys.modules, "neurobench", None)
    layers = read_netx(pendulum_run / "bundle-loihi2" / "policy.net")
    frames = np.zeros((2, 5, layers[0].weight.shape[1]))
    out = neurobench_metrics(layers, frames)
    assert out["available"] is False and "requirements-test.txt" in out["reason"]


def test_neurobench_leaves_lava_importable(pendulum_run):
    """NeuroBench's tqdm would fix the multiprocessing start method, and Lava's import (which
    sets 'fork') would then fail; run in a fresh process so Lava is not imported yet."""
    pytest.importorskip("neurobench")
    code = (
        "import sys, numpy as np; from pathlib import Path\n"
        "from neurodeploy.export.netx import read_netx\n"
        "from neurodeploy.hardware.workload import neurobench_metrics\n"
        f"layers = read_netx(Path({str(pendulum_run)!r}) / 'bundle-loihi2' / 'policy.net')\n"
        "frames = np.zeros((3, 5, layers[0].weight.shape[1]))\n"
        "assert neurobench_metrics(layers, frames)['available']\n"
        "from neurodeploy.lava_compat import import_lava\n"
        "import_lava('lava.magma.core.process.process')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


@pytest.mark.parametrize("backend", ["emulator", "loihi2-sim"])
def test_many_envs_give_the_returns_of_single_runs(pendulum_run, backend):
    # 3 episodes on 2 envs: a batch of 2, then a batch of 1 (the other slot idles)
    many = run_policy(pendulum_run, backend, episodes=3, seed=4, max_steps=25, envs=2)
    singles = [
        run_policy(pendulum_run, backend, episodes=1, seed=4 + i, max_steps=25).summary()
        for i in range(3)
    ]
    assert many.envs == 2 and len(many.latencies_ms) == 2 * 25
    assert many.returns == [s["returns"][0] for s in singles]
    assert many.lengths == [25, 25, 25]
    # spikes per step counted on the active envs only: the mean of the single runs'
    per_step = np.mean([s["spikes_per_step"][n] for s in singles for n in many.layer_names])
    assert np.mean(many.spikes_per_step) == pytest.approx(per_step)
    if backend == "loihi2-sim":
        assert many.output_mismatches == 0


@pytest.fixture(scope="module")
def hopper_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("hopper")
    torch.manual_seed(1)
    actor = build_actor(ActorConfig(11, 3, [-1.0] * 3, [1.0] * 3, hidden=[16, 16]))
    torch.save({**policy_payload(actor), "env": "Hopper-v4"}, run / "policy.pt")
    export_bundle(run, "loihi2", run / "bundle-loihi2", observations=8)
    return run


def test_many_envs_handle_episodes_that_end_at_different_steps(hopper_run):
    many = run_policy(hopper_run, "emulator", episodes=5, seed=0, envs=3)
    singles = [run_policy(hopper_run, "emulator", episodes=1, seed=i) for i in range(5)]
    assert len(set(many.lengths)) > 1  # Hopper falls at different times
    assert many.lengths == [s.lengths[0] for s in singles]
    assert many.returns == [s.returns[0] for s in singles]
    total = sum(s.spikes_per_step[-1] * s.lengths[0] for s in singles)
    assert many.spikes_per_step[-1] * sum(many.lengths) == pytest.approx(total)


def test_a_lava_graph_of_n_copies_refuses_another_batch(pendulum_run):
    from neurodeploy.export.bundle import open_policy

    actor, _, bundle = open_policy(pendulum_run, "policy.net")
    core = backends.Loihi2SimBackend(actor, bundle, envs=2)
    try:
        dense = core.lava.processes[0][0]  # a Sparse process: the block-diagonal copies
        assert type(dense).__name__ == "Sparse"
        assert dense.weights.shape[0] == 2 * actor.layers[0].out_features
        with pytest.raises(BundleError, match="holds 2 copies"):
            core.act(np.zeros((3, 3), np.float32))
    finally:
        core.close()


def test_lava_float_with_many_envs_matches_torch_on_the_same_batch(pendulum_run):
    lava = run_policy(pendulum_run, "lava", episodes=2, seed=1, max_steps=15, envs=2).summary()
    ref = run_policy(pendulum_run, "torch", episodes=2, seed=1, max_steps=15, envs=2).summary()
    assert lava["output_mismatches"] == 0 and lava["returns"] == ref["returns"]


def test_cli_run_envs(pendulum_run):
    cmd = [NEURODEPLOY, "run", str(pendulum_run), "--backend", "emulator", "--episodes", "2"]
    out = subprocess.run(
        [*cmd, "--envs", "2", "--json"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["envs"] == 2 and summary["episode_lengths"] == [200, 200]
    assert summary["returns"] == run_policy(pendulum_run, "emulator", episodes=2).returns
    bad = subprocess.run([*cmd, "--envs", "0"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--envs must be 1 to" in bad.stdout + bad.stderr
