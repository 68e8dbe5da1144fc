"""Stateful actors: Lava timing model, sequence replay and training, guided jump-start, export."""

import json

import numpy as np
import pytest
import torch

from neurodeploy.errors import ConfigError, ExportError
from neurodeploy.export.bundle import export_bundle
from neurodeploy.hardware.runner import run_policy
from neurodeploy.snn import ActorConfig, NeuronConfig, build_actor, policy_payload
from neurodeploy.train.buffer import SequenceBuffer
from neurodeploy.train.config import TrainConfig
from neurodeploy.train.guide import bc_weight, guide_share
from neurodeploy.train.loop import train


def stateful_actor(delay=True, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = ActorConfig(
        3, 1, [-2.0], [2.0], hidden=[24, 16], timesteps=1, mode="stateful",
        decoder="linear", synaptic_delay=delay, neuron=NeuronConfig(decay=0.9), **kw,
    )  # fmt: skip
    return build_actor(cfg)


def test_stepping_one_action_at_a_time_equals_the_sequence_forward():
    actor = stateful_actor()
    obs = torch.randn(30, 2, 3)
    with torch.no_grad():
        seq, _ = actor.forward_sequence(obs)
        actor.reset()
        steps = torch.stack([actor(o) for o in obs])
    assert torch.equal(seq, steps)


def test_synaptic_delay_feeds_each_layer_the_previous_step():
    actor = stateful_actor()
    obs = torch.randn(12, 1, 3)
    with torch.no_grad():
        actor.forward_sequence(obs)
    enc, h0, h1 = (actor.spike_trains[k] for k in ("encoder", "hidden0", "hidden1"))
    layer0 = actor.layers[0]
    with torch.no_grad():  # layer 0 rerun on the encoder spikes shifted by one step
        shifted = torch.cat([torch.zeros_like(enc[:1]), enc[:-1]])
        want, _ = layer0(shifted)
    assert torch.equal(want, h0)
    assert h1[0].sum() == 0  # two layers deep: nothing can reach layer 1 at step 0 ...
    with torch.no_grad():
        undelayed = stateful_actor(delay=False)
        undelayed.load_state_dict(actor.state_dict())
        undelayed.forward_sequence(obs)
    assert not torch.equal(undelayed.spike_trains["hidden0"], h0)  # ... the delay matters


def test_sequence_buffer_segments_masks_and_checkpoint():
    buf = SequenceBuffer(2, 1, 1000, length=10, stride=5, burn_in=4)
    for t in range(23):  # one episode of 23 steps
        buf.add(np.full(2, t), np.zeros(1), float(t), np.full(2, t + 1), t == 22, np.ones(1))
    buf.end_episode()
    assert buf.starts.tolist() == [0, 5, 10, 15]  # 20 + burn-in 4 >= 23: no segment at 20
    batch = buf.sample(64, np.random.default_rng(0))
    assert batch.obs.shape == (10, 64, 2) and batch.mask.shape == (10, 64, 1)
    assert batch.mask[:4].sum() == 0  # burn-in never counts
    first = batch.obs[0, :, 0].long()
    for b, start in enumerate(first.tolist()):
        valid = int(batch.mask[:, b].sum())
        assert valid == min(10, 23 - start) - 4
        assert batch.obs[:, b, 0].tolist()[: min(10, 23 - start)] == list(
            range(start, min(start + 10, 23))
        )
    copy = SequenceBuffer(2, 1, 1000, length=10, stride=5, burn_in=4)
    copy.load_state_dict(buf.state_dict())
    assert copy.starts.tolist() == buf.starts.tolist() and copy.size == 23


def stateful_config(**kw) -> TrainConfig:
    values = dict(
        env="Pendulum-v1", mode="stateful", timesteps=1, hidden=[24, 16], decoder="linear",
        decay=0.9, synaptic_delay=True, sequence_length=20, sequence_stride=10, burn_in=8,
        batch_size=4, proxy_hidden=[32, 32], critic_hidden=64, start_steps=200, steps=600,
        eval_every=300, eval_episodes=1, checkpoint_every=200, update_every=2,
        surrogate="fast_sigmoid",
    )  # fmt: skip
    values.update(kw)
    return TrainConfig(**values)


def test_a_critic_only_update_never_runs_the_snn():
    """The SNN (burn-in + BPTT, its most expensive part) runs on the actor's turn only."""
    from neurodeploy.train.sequence_td3 import SequenceTD3
    from neurodeploy.train.td3 import Critic, TD3Settings, make_target

    actor = stateful_actor(encoder="direct")
    proxy = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    bounds = torch.tensor([-2.0]), torch.tensor([2.0])
    settings = TD3Settings(policy_delay=2)
    target = make_target(actor, settings, proxy)
    algo = SequenceTD3(actor, Critic(3, 1, 16), settings, *bounds, target, 4)
    buf = SequenceBuffer(3, 1, 100, length=10, stride=5, burn_in=4)
    for t in range(20):
        buf.add(np.random.randn(3), np.zeros(1), 0.0, np.random.randn(3), t == 19, np.zeros(1))
    buf.end_episode()
    calls = []
    real = actor.forward_sequence
    actor.forward_sequence = lambda *a: calls.append(1) or real(*a)
    before = {k: v.clone() for k, v in actor.state_dict().items()}
    rng = np.random.default_rng(0)
    first = algo.update(lambda: buf.sample(4, rng))  # update 1: critic only
    assert not calls and "actor_loss" not in first and "proxy_loss" not in first
    assert all(torch.equal(before[k], v) for k, v in actor.state_dict().items())
    second = algo.update(lambda: buf.sample(4, rng))  # update 2: burn-in + BPTT
    assert len(calls) == 2 and {"actor_loss", "proxy_loss", "critic_loss"} <= set(second)


def test_stateful_config_needs_sequences():
    with pytest.raises(ConfigError, match="sequence_length"):
        TrainConfig(mode="stateful")
    with pytest.raises(ConfigError, match="burn_in"):
        stateful_config(burn_in=20)
    with pytest.raises(ConfigError, match="guide"):
        stateful_config(algo="bc")


@pytest.mark.parametrize("algo", ["pt-td3", "td3"])
def test_stateful_training_logs_slope_and_resumes_exactly(tmp_path, algo):
    cfg = stateful_config(algo=algo, slope_schedule="interval",
                          slope_params={"k_start": 2, "increment": 3, "interval": 20})  # fmt: skip
    full = train(cfg, tmp_path / "full", progress=False)
    rows = (full / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    slopes = [float(r.split(",")[header.index("slope")]) for r in rows[1:]]
    assert slopes[0] > 2 and slopes[1] > slopes[0]  # the interval schedule reached the log
    # a run that stopped mid-episode after its step-400 checkpoint, resumed to 600 steps
    cut = train(stateful_config(**{**cfg.to_dict(), "steps": 500}), tmp_path / "cut", False, False)
    train(cfg, cut, resume=True, progress=False)
    a = torch.load(full / "policy.pt", weights_only=True)["state_dict"]
    b = torch.load(cut / "policy.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_guided_quad_run_trains_its_guide_then_clones_and_hands_over(tmp_path):
    quad = dict(env="neurodeploy/QuadHover-v0", hidden=[32, 16], eval_every=600, steps=600)
    cfg = stateful_config(**quad, guide_steps=400, guide_share_start=150, guide_share_step=50,
                          guide_round_steps=200, bc_weight=0.2, q_alpha=2.5)  # fmt: skip
    run = train(cfg, tmp_path / "guided", progress=False)
    guide_cfg = (run / "guide" / "config.toml").read_text()
    assert 'observation = "privileged"' in guide_cfg  # an ordinary run directory
    rows = (run / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    last = rows[-1].split(",")
    assert float(last[header.index("bc_loss")]) >= 0
    share = float(last[header.index("guide_share")])  # the share of the episode in flight
    assert share in {guide_share(cfg, step) for step in range(600)} and share < 150
    assert guide_share(cfg, 200) == 150 and guide_share(cfg, 10_000) == cfg.burn_in
    # lambda_BC decays per round, not per episode: the value the run holds at its end
    assert bc_weight(cfg, cfg.start_steps + 450) == pytest.approx(0.2 * 0.99**2)
    ckpt = torch.load(run / "checkpoint" / "state.pt", weights_only=True)
    assert ckpt["td3"]["bc_weight"] == pytest.approx(bc_weight(cfg, ckpt["counters"]["step"]))
    bc_cfg = stateful_config(**quad, algo="bc", guide=str(run / "guide"))
    bc = train(bc_cfg, tmp_path / "bc", progress=False)
    assert "actor_loss" in (bc / "metrics.csv").read_text()


def test_privileged_observation_appends_the_action_history():
    from neurodeploy.envs import make_env
    from neurodeploy.envs.privileged import PrivilegedObservation

    env = PrivilegedObservation(make_env("neurodeploy/QuadHover-v0"), history=2)
    obs, info = env.reset(seed=0)
    assert obs.shape == (22 + 8,) and np.array_equal(obs[:22], info["privileged"])
    assert not obs[22:].any()
    a, b = np.full(4, 0.1, np.float32), np.full(4, -0.2, np.float32)
    env.step(a)
    obs, *_ = env.step(b)
    assert np.allclose(obs[22:26], b) and np.allclose(obs[26:30], a)  # newest first


def test_guide_obs_scale_multiplies_the_leading_privileged_entries(tmp_path):
    from neurodeploy.envs import make_env
    from neurodeploy.envs.privileged import PrivilegedObservation

    scale = [10.0, 10.0, 10.0] + [1.0] * 9 + [3.0, 3.0, 3.0]
    env = PrivilegedObservation(make_env("neurodeploy/QuadHover-v0"), 2, scale)
    obs, info = env.reset(seed=3)
    true = info["privileged"]
    assert np.allclose(obs[:3], 10 * true[:3]) and np.allclose(obs[12:15], 3 * true[12:15])
    assert np.array_equal(obs[3:12], true[3:12]) and np.array_equal(obs[15:22], true[15:22])
    with pytest.raises(ConfigError, match="guide_obs_scale has 31 entries"):
        PrivilegedObservation(make_env("neurodeploy/QuadHover-v0"), 2, [1.0] * 31)
    with pytest.raises(ConfigError, match="guide_obs_scale"):
        TrainConfig(guide_obs_scale=[1.0, -2.0])


@pytest.fixture(scope="module", params=["population", "direct"])
def stateful_policy(tmp_path_factory, request):
    """direct: the observation itself is the input (on Loihi 2, graded spikes)."""
    path = tmp_path_factory.mktemp("stateful") / "policy.pt"
    actor = stateful_actor(seed=3, encoder=request.param)
    torch.save({**policy_payload(actor), "env": "Pendulum-v1"}, path)
    return path


def test_stateful_export_matches_lava_spike_for_spike(stateful_policy, tmp_path):
    lava = export_bundle(stateful_policy, "lava", tmp_path / "lava", observations=40)
    fid = json.loads((lava / "fidelity.json").read_text())
    assert fid["nir"]["state_reset"] == "never"
    assert fid["reference_vs_lava_float"]["identical"]  # torch with delays == Lava float
    assert sum(fid["reference_vs_lava_float"]["spikes"]) > 0
    loihi = export_bundle(stateful_policy, "loihi2", tmp_path / "loihi2", observations=40)
    fid = json.loads((loihi / "fidelity.json").read_text())
    assert fid["emulator_vs_lava_fixed"]["identical"] and fid["netx_vs_lava_fixed"]["identical"]
    manifest = json.loads((loihi / "manifest.json").read_text())
    assert manifest["lava_steps_per_action"] == 1 and manifest["codec"]["reset"] == "never"
    graded = manifest["codec"]["encoder"] == "direct"
    assert fid["nir"]["input"] == ("graded" if graded else "spikes")
    assert manifest["codec"]["encoder_params"].get("graded_spikes", False) == graded
    assert fid["float_vs_fixed"]["identical_output_spike_fraction"] > 0.9


def test_stateful_closed_loop_on_lava_carries_and_resets_state(stateful_policy, tmp_path):
    bundle = export_bundle(stateful_policy, "loihi2", tmp_path / "b", observations=16)
    emu = run_policy(bundle, "emulator", episodes=2, seed=5)
    sim = run_policy(bundle, "loihi2-sim", episodes=2, seed=5)
    assert emu.returns == sim.returns  # both episodes: the Lava state is reset in between
    assert emu.spikes_per_step == sim.spikes_per_step


def test_stateful_actor_without_delay_is_refused(tmp_path):
    path = tmp_path / "policy.pt"
    torch.save({**policy_payload(stateful_actor(delay=False)), "env": "Pendulum-v1"}, path)
    with pytest.raises(ExportError, match="synaptic_delay"):
        export_bundle(path, "loihi2", tmp_path / "b")


def test_stateful_bench_energy_counts_t_lava_steps_per_action(stateful_policy, tmp_path):
    """A stateful core takes T Lava steps per action (no empty steps, no reset), as the
    manifest's schedule records; bench-energy's neuron updates and latency use that."""
    from neurodeploy.export.netx import read_netx
    from neurodeploy.hardware.bench import bench_energy

    bundle = export_bundle(stateful_policy, "loihi2", tmp_path / "b", observations=16)
    schedule = json.loads((bundle / "manifest.json").read_text())["schedule"]
    report = bench_energy(bundle, episodes=1, out=tmp_path / "e")
    assert report["lava_steps_per_action"] == schedule["lava_steps_per_action"] == 1
    layers = read_netx(bundle / "policy.net", schedule["input_message_bits"])
    assert len(layers) >= 2  # so T + L would have been at least 3
    assert report["ops"]["neuron_updates"] == sum(f.size for f in layers) * 1


def test_stateful_bench_energy_sops_equal_neurobench(stateful_policy, tmp_path):
    """A stateful core through NeuroBench (one sample per control step, state carried, Lava's
    one-step delay): its ACs (+ MACs for graded input) are bench-energy's synaptic ops."""
    pytest.importorskip("neurobench")
    from neurodeploy.hardware.bench import bench_energy

    bundle = export_bundle(stateful_policy, "loihi2", tmp_path / "b", observations=16)
    report = bench_energy(bundle, episodes=1, out=tmp_path / "e")
    nb = report["neurobench"]
    assert nb["available"] and report["ops"]["sops"] > 0
    counted = nb["effective_acs"] + nb["effective_macs"]
    assert counted == pytest.approx(report["ops"]["sops"], rel=1e-12)
    graded = json.loads((bundle / "manifest.json").read_text())["codec"]["encoder"] == "direct"
    assert (nb["effective_macs"] > 0) == graded  # graded input: MACs in NeuroBench's terms


def test_stateful_many_envs_give_the_returns_of_single_runs(stateful_policy, tmp_path):
    # the state is carried per env and every copy's state is zeroed between batches
    bundle = export_bundle(stateful_policy, "loihi2", tmp_path / "b", observations=16)
    singles = [
        run_policy(bundle, "emulator", episodes=1, seed=2 + i, max_steps=20) for i in (0, 1, 2)
    ]
    for backend in ("emulator", "loihi2-sim"):
        many = run_policy(bundle, backend, episodes=3, seed=2, max_steps=20, envs=2)
        assert many.returns == [s.returns[0] for s in singles]
