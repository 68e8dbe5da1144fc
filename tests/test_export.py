"""Export through the NIR hub to nir, lava, loihi2 and onnx, with real nir, Lava, netx, ORT."""

import json
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from neurodeploy.errors import BundleError, ExportError
from neurodeploy.export.bundle import export_bundle, seal, verify_bundle
from neurodeploy.export.nir_graph import from_norse, read_nir, write_nir
from neurodeploy.snn import ActorConfig, NeuronConfig, build_actor, policy_payload

NEURODEPLOY = str(Path(sys.executable).parent / "neurodeploy")


def save_policy(tmp_path, env="Pendulum-v1", obs=3, act=1, high=2.0, seed=0, **kw):
    tmp_path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    cfg = ActorConfig(obs, act, [-high] * act, [high] * act, **kw)
    actor = build_actor(cfg)
    path = tmp_path / "policy.pt"
    torch.save({**policy_payload(actor), "env": env}, path)
    return path


def fidelity(bundle):
    return json.loads((bundle / "fidelity.json").read_text())


@pytest.fixture
def small_policy(tmp_path):
    return save_policy(tmp_path, hidden=[48, 24])


def test_nir_target_writes_a_type_checked_graph(small_policy, tmp_path):
    bundle = export_bundle(small_policy, "nir", tmp_path / "b", observations=16)
    graph = nir.read(str(bundle / "policy.nir"), type_check=True)
    kinds = sorted(type(n).__name__ for n in graph.nodes.values())
    assert kinds == ["Affine", "Affine", "Affine", "Input", "LIF", "LIF", "LIF", "Output"]
    assert graph.metadata["dt"] == 1.0 and "forward-euler" in graph.metadata["discretisation"]
    lif = graph.nodes["neuron0"]
    assert lif.tau.shape == (48,) and np.allclose(lif.tau, 4.0)  # decay 0.75 at dt 1
    assert fidelity(bundle)["norse_vs_torch"]["identical"]  # norse from_nir agrees spike for spike
    manifest = verify_bundle(bundle)
    assert manifest["target"] == "nir" and manifest["codec"]["timesteps"] == 5
    assert set(manifest["files"]) == {"README.md", "fidelity.json", "policy.nir", "policy.pt"}


def test_lava_target_gives_identical_spikes(small_policy, tmp_path):
    bundle = export_bundle(small_policy, "lava", tmp_path / "b", observations=16)
    check = fidelity(bundle)["reference_vs_lava_float"]
    assert check["identical"] and sum(check["spikes"]) > 0


def test_loihi2_target_bit_accurate_and_netx_loads(small_policy, tmp_path):
    bundle = export_bundle(small_policy, "loihi2", tmp_path / "b", observations=16)
    f = fidelity(bundle)
    assert f["emulator_vs_lava_fixed"]["identical"]
    assert f["netx_vs_lava_fixed"]["identical"]
    assert f["float_vs_fixed"]["identical_output_spike_fraction"] > 0.9
    assert f["float_vs_fixed"]["action_rmse"] < 0.2
    quant = json.loads((bundle / "quantization.json").read_text())
    assert [q["weight_exp"] for q in quant] == [0, 0, 0] and all(
        q["clipped_fraction"] == 0 for q in quant
    )
    from neurodeploy.export.netx import load_netx

    net = load_netx(bundle / "policy.net", period=5 + 3)  # lava-dl's own loader
    assert net.inp.shape == (30,) and net.out.shape == (10,)


def test_onnx_target_runs_in_onnxruntime(small_policy, tmp_path):
    import onnxruntime as ort

    bundle = export_bundle(small_policy, "onnx", tmp_path / "b", observations=16)
    assert fidelity(bundle)["torch_vs_onnx"]["max_abs_error"] < 1e-5
    session = ort.InferenceSession(str(bundle / "policy.onnx"))
    action = session.run(["action"], {"obs": np.zeros((4, 3), np.float32)})[0]
    assert action.shape == (4, 1) and np.all(np.abs(action) <= 2.0)


def test_an_onnx_graph_off_by_more_than_rounding_is_refused(small_policy, tmp_path, monkeypatch):
    from neurodeploy.errors import BundleError
    from neurodeploy.export import onnx_export

    f = fidelity(export_bundle(small_policy, "onnx", tmp_path / "b", observations=16))
    assert f["torch_vs_onnx"]["within_tolerance"]
    assert f["torch_vs_onnx"]["max_error_over_half_range"] == pytest.approx(
        f["torch_vs_onnx"]["max_abs_error"] / 2.0  # Pendulum's torque: +-2
    )
    # as if onnxruntime's actions were further from torch's than the tolerance allows
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)
    with pytest.raises(BundleError, match=r"torch_vs_onnx \(action error .* > "):
        export_bundle(small_policy, "onnx", tmp_path / "c", observations=16)
    assert not (tmp_path / "c").exists()


def test_loihi_trained_actor_exports_bit_exact(tmp_path):
    policy = save_policy(tmp_path, hidden=[40, 20], neuron=NeuronConfig("loihi"))
    bundle = export_bundle(policy, "loihi2", tmp_path / "b", observations=16)
    f = fidelity(bundle)
    assert f["emulator_vs_lava_fixed"]["identical"] and f["netx_vs_lava_fixed"]["identical"]
    # trained on the chip's grid: the fixed-point network IS the torch actor
    assert f["float_vs_fixed"]["identical_output_spike_fraction"] == 1.0
    assert f["float_vs_fixed"]["action_max_error"] < 1e-6
    assert f["torch_vs_fixed"]["identical"] and sum(f["torch_vs_fixed"]["spikes"]) > 0
    # graded input reaches the chip rounded to 1/256: measured (float_vs_fixed), not required
    direct = save_policy(tmp_path / "d", hidden=[40, 20], neuron=NeuronConfig("loihi"),
                         encoder="direct")  # fmt: skip
    f = fidelity(export_bundle(direct, "loihi2", tmp_path / "db", observations=16))
    assert "torch_vs_fixed" not in f and f["emulator_vs_lava_fixed"]["identical"]


@pytest.mark.parametrize("observations", [32, pytest.param(256, marks=pytest.mark.slow)])
def test_hopper_pt_lif_to_loihi2_passes_every_fidelity_check(tmp_path, observations):
    policy = save_policy(tmp_path, env="Hopper-v4", obs=11, act=3, high=1.0)
    bundle = export_bundle(policy, "loihi2", tmp_path / "b", observations=observations)
    f = fidelity(bundle)
    assert f["observations"] == observations
    assert f["norse_vs_torch"]["identical"]
    assert f["emulator_vs_lava_fixed"]["identical"]
    assert f["netx_vs_lava_fixed"]["identical"]
    assert f["float_vs_fixed"]["identical_output_spike_fraction"] > 0.95
    manifest = verify_bundle(bundle)
    assert manifest["lava_steps_per_action"] == 8 and manifest["env"] == "Hopper-v4"


def test_dn_is_refused_with_the_layer(tmp_path):
    policy = save_policy(tmp_path, neuron=NeuronConfig("dn"))
    with pytest.raises(ExportError, match=r"layer 0 \(hidden0\): the 'dn' neuron"):
        export_bundle(policy, "nir", tmp_path / "b", observations=8)


def test_per_neuron_decays_are_refused_for_loihi2(tmp_path):
    torch.manual_seed(0)
    cfg = ActorConfig(
        3,
        1,
        [-2.0],
        [2.0],
        hidden=[16, 8],
        neuron=NeuronConfig("lif", per_neuron=True, learn_decay=True),
    )
    actor = build_actor(cfg)
    with torch.no_grad():
        actor.layers[1].neuron.decay.uniform_(0.5, 0.9)
    torch.save({**policy_payload(actor), "env": "Pendulum-v1"}, tmp_path / "policy.pt")
    nir_bundle = export_bundle(tmp_path / "policy.pt", "nir", tmp_path / "nir", observations=8)
    tau = read_nir(nir_bundle / "policy.nir").nodes["neuron1"].tau
    assert np.ptp(tau) > 0  # NIR holds per-neuron values
    with pytest.raises(
        ExportError, match="layer 1: per-neuron membrane decay cannot be represented"
    ):
        export_bundle(tmp_path / "policy.pt", "loihi2", tmp_path / "l2", observations=8)


def test_from_nir_compiles_a_norse_graph(tmp_path):
    import norse.torch as norse

    torch.manual_seed(0)
    model = norse.SequentialState(
        torch.nn.Linear(6, 12), norse.LIFBoxCell(), torch.nn.Linear(12, 4), norse.LIFBoxCell()
    )
    with torch.no_grad():
        model[0].weight.mul_(40)
        model[2].weight.mul_(40)
    graph = from_norse(model, torch.zeros(1, 6), dt=1e-3)
    write_nir(graph, tmp_path / "norse.nir")
    for target in ("lava", "loihi2"):
        bundle = export_bundle(
            None, target, tmp_path / target, from_nir=tmp_path / "norse.nir", observations=24
        )
        f = fidelity(bundle)
        key = "reference_vs_lava_float" if target == "lava" else "emulator_vs_lava_fixed"
        assert f[key]["identical"], f
        assert sum(f[key]["spikes"]) > 0
    # The compiled graph means what norse means: run norse itself on the same spike trains.
    rng = np.random.default_rng(0)
    spikes = torch.as_tensor((rng.random((5, 24, 6)) < 0.3).astype(np.float32))
    state, outs = None, []
    with torch.no_grad():
        for x in spikes:
            z, state = model(x, state)
            outs.append(z)
    norse_out = torch.stack(outs).numpy().astype(np.int8)
    from neurodeploy.export.nir_graph import simulate_nir

    ours = simulate_nir(read_nir(tmp_path / "norse.nir"), spikes.numpy())[-1]
    assert np.mean(ours == norse_out) > 0.99 and norse_out.sum() > 0


def test_corrupted_nir_is_a_clear_error(small_policy, tmp_path):
    bundle = export_bundle(small_policy, "nir", tmp_path / "b", observations=8)
    nir_file = bundle / "policy.nir"
    nir_file.write_bytes(nir_file.read_bytes()[:200])
    with pytest.raises(BundleError, match="policy.nir does not match its hash"):
        verify_bundle(bundle)
    with pytest.raises(BundleError, match="not a readable NIR file"):
        read_nir(nir_file)
    out = subprocess.run(
        [
            NEURODEPLOY,
            "export",
            "--from-nir",
            str(nir_file),
            "--target",
            "lava",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1 and "not a readable NIR file" in out.stderr
    assert "Traceback" not in out.stderr


def test_manifest_hash_mismatch_and_missing_file(small_policy, tmp_path):
    bundle = export_bundle(small_policy, "loihi2", tmp_path / "b", observations=8)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["policy.net"] = "0" * 64
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="manifest.json was modified"):
        verify_bundle(bundle)  # the manifest's own integrity hash
    (bundle / "manifest.json").write_text(json.dumps(seal(manifest)))  # re-sealed by hand
    with pytest.raises(BundleError, match="policy.net does not match"):
        verify_bundle(bundle)
    (bundle / "policy.net").unlink()
    with pytest.raises(BundleError, match="policy.net is missing"):
        verify_bundle(bundle)


def test_existing_bundle_directory_is_not_overwritten(small_policy, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("x")
    with pytest.raises(BundleError, match="not empty"):
        export_bundle(small_policy, "nir", tmp_path / "b", observations=8)
    assert (tmp_path / "b" / "keep.txt").read_text() == "x"


def test_cli_export_from_a_run_directory(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    save_policy(run, hidden=[16, 8])
    out = subprocess.run(
        [NEURODEPLOY, "export", str(run), "--target", "nir", "--observations", "8"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert (run / "bundle-nir" / "manifest.json").exists()
    # a table a person reads: one row per check, with what differed
    assert "fidelity checks" in out.stdout and "norse vs torch" in out.stdout
    assert "spikes differ" in out.stdout and "{" not in out.stdout
    again = subprocess.run(
        [NEURODEPLOY, "export", str(run), "--target", "nir", "--observations", "8",
         "--out", str(tmp_path / "b2"), "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["norse_vs_torch"]["identical"]  # scripts keep the JSON


def test_graded_input_payload_rounds_to_a_256th_and_saturates():
    from neurodeploy.export.loihi2 import chip_input

    x = np.array([0.5, -0.25, 1000.0, -1000.0, 1 / 1024, 0.3])
    assert chip_input(x, graded=True).tolist() == [128, -64, 32767, -32767, 0, 77]
    assert chip_input(x, graded=True).dtype == np.int32
    assert chip_input(np.array([0, 1, 1]), graded=False).dtype == np.int8


def test_the_emulators_fast_matmul_is_exact_on_both_sides_of_its_bound():
    from neurodeploy.export.emulator import _exact_matmul

    rng = np.random.default_rng(1)
    x = rng.integers(-(2**15), 2**15, (7, 3, 300))  # graded payloads, 8-bit weights: BLAS path
    w = rng.integers(-256, 255, (300, 40))
    assert np.array_equal(_exact_matmul(x, w), x @ w)
    x = np.full((1, 1, 4), 2**40 + 1)  # past 2**53: the integer path
    w = np.full((4, 2), 2**12 + 1)
    assert np.array_equal(_exact_matmul(x, w), x @ w)
