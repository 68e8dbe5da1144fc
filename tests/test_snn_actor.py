"""Actors, codec, slope schedules and the Loihi fixed-point layer."""

import io

import numpy as np
import pytest
import torch

from neurodeploy.errors import CheckpointError, ConfigError
from neurodeploy.snn import (
    ActorConfig,
    NeuronConfig,
    actor_from_payload,
    build_actor,
    policy_payload,
)
from neurodeploy.snn.codec import PopulationEncoder
from neurodeploy.snn.layers import SpikingLayer
from neurodeploy.snn.schedules import AdaptiveSlope, make_schedule


def hopper_config(**kw):
    return ActorConfig(obs_dim=11, act_dim=3, action_low=[-1.0] * 3, action_high=[1.0] * 3, **kw)


@pytest.mark.parametrize("model", ["lif", "clif", "dn", "loihi"])
def test_gradients_reach_first_layer_and_encoder(model):
    torch.manual_seed(0)
    actor = build_actor(hopper_config(neuron=NeuronConfig(model)))
    actor(torch.randn(64, 11) * 2).pow(2).sum().backward()
    assert actor.layers[0].linear.weight.grad.abs().sum() > 0
    assert actor.encoder.mean.grad.abs().sum() > 0
    assert actor.encoder.std.grad.abs().sum() > 0


def test_encoder_spike_trains_by_hand():
    enc = PopulationEncoder(1, pop=3, mean_range=(-1, 1), std=1.0)
    obs = torch.zeros(1, 1, 1)  # tanh(0) = 0: activations exp(-1/2), 1, exp(-1/2)
    spikes, _ = enc(obs, timesteps=4)
    a = np.exp(-0.5)  # 0.607: potentials 0.607, 1.213 -> spike, 0.821, 1.428 -> spike
    assert spikes[:, 0, 0].tolist() == [0, 1, 0, 1] and a < 0.999 < 2 * a
    assert spikes[:, 0, 1].tolist() == [1, 1, 1, 1]  # activation 1 > 0.999 every step


def test_population_decoder_is_grouped_per_action():
    actor = build_actor(hopper_config())
    rate = torch.zeros(1, 30)
    rate[0, 10:20] = 1.0  # only action 1's population fires
    with torch.no_grad():
        out = actor.decoder(rate)
    d = actor.decoder
    assert out[0, 0] == pytest.approx(torch.tanh(d.bias[0]).item())
    assert out[0, 1] == pytest.approx(torch.tanh(d.weight[1].sum() + d.bias[1]).item())


def test_action_scale_maps_tanh_range_to_the_action_box():
    cfg = ActorConfig(3, 2, action_low=[-2.0, 0.0], action_high=[2.0, 1.0], kind="ann")
    actor = build_actor(cfg)
    with torch.no_grad():
        actor.net[-1].bias.fill_(100.0)  # tanh -> 1
        actor.net[-1].weight.zero_()
        assert actor(torch.zeros(1, 3)).tolist() == [[2.0, 1.0]]


def test_stateful_sequence_equals_single_steps():
    torch.manual_seed(0)
    cfg = hopper_config(
        mode="stateful",
        timesteps=2,
        encoder="direct",
        decoder="linear",
        hidden=[64, 32],
        neuron=NeuronConfig(
            "lif",
            reset="subtract",
            per_neuron=True,
            learn_decay=True,
            learn_threshold=True,
            surrogate="fast_sigmoid",
            slope=5.0,
        ),
    )
    actor = build_actor(cfg)
    obs = torch.randn(12, 4, 11) * 3
    seq, _ = actor.forward_sequence(obs)
    actor.reset()
    steps = torch.stack([actor(o) for o in obs])
    assert torch.allclose(seq, steps, atol=1e-6)
    assert seq.std() > 0


def test_stateful_population_actor_carries_state_and_resets():
    torch.manual_seed(1)
    actor = build_actor(hopper_config(mode="stateful", timesteps=1))
    obs = torch.randn(6, 2, 11)
    seq, _ = actor.forward_sequence(obs)
    steps = torch.stack([actor(o) for o in obs])
    assert torch.allclose(seq, steps, atol=1e-6)
    actor.reset()
    assert actor.state is None
    assert torch.allclose(actor(obs[0]), seq[0], atol=1e-6)


def test_reset_mode_clears_state_every_call():
    actor = build_actor(hopper_config())
    obs = torch.randn(5, 11)
    assert torch.equal(actor(obs), actor(obs))
    seq, _ = actor.forward_sequence(torch.stack([obs, obs]))
    assert torch.allclose(seq[0], seq[1])


def test_spike_counts_come_from_the_forward_pass():
    torch.manual_seed(0)
    actor = build_actor(hopper_config())
    obs = torch.randn(7, 11) * 2
    actor(obs)
    counts = actor.spike_counts
    assert list(counts) == ["encoder", "hidden0", "hidden1", "output"]
    assert all(c.shape == (5,) for c in counts.values())
    assert actor.counted_batch == 7
    # Recompute layer 0 from the encoder spikes by hand.
    enc, _ = actor.encoder(obs.unsqueeze(0), 5)
    assert counts["encoder"].tolist() == enc.sum(dim=(1, 2)).tolist()
    hidden0, _ = actor.layers[0](enc)
    assert counts["hidden0"].tolist() == hidden0.sum(dim=(1, 2)).tolist()


def test_actor_rebuilds_from_config_and_state_dict_only(tmp_path):
    torch.manual_seed(0)
    actor = build_actor(hopper_config(neuron=NeuronConfig("clif")))
    path = tmp_path / "policy.pt"
    torch.save(policy_payload(actor), path)
    rebuilt = actor_from_payload(torch.load(path, weights_only=True))
    obs = torch.randn(9, 11)
    assert torch.equal(actor(obs), rebuilt(obs))


def test_mismatched_weights_are_a_clear_error():
    payload = policy_payload(build_actor(hopper_config()))
    payload["config"]["hidden"] = [128, 128]
    with pytest.raises(CheckpointError, match="do not match"):
        actor_from_payload(payload, "x/policy.pt")
    with pytest.raises(CheckpointError, match="not a neurodeploy policy"):
        actor_from_payload({"state_dict": {}}, "x/policy.pt")


def test_bad_config_values_are_clear_errors():
    with pytest.raises(ConfigError, match="neuron model"):
        NeuronConfig("izhikevich")
    with pytest.raises(ConfigError, match="mode"):
        hopper_config(mode="sometimes")
    with pytest.raises(ConfigError, match="unknown actor options"):
        ActorConfig.from_dict({**hopper_config().to_dict(), "colour": "red"})


def test_loihi_layer_matches_integer_dense_and_lif():
    """Quantised Dense (w_int, weight_exp) + LIF in integers, from the lava-nc 0.10.0 equations."""
    torch.manual_seed(3)
    layer = SpikingLayer(40, 24, NeuronConfig("loihi", du=300, dv=700, vth=200))
    with torch.no_grad():
        layer.linear.weight.mul_(3)
        layer.linear.bias.mul_(0.2)
    spikes_in = (torch.rand(8, 5, 40) < 0.3).float()
    out, _ = layer(spikes_in)
    q = layer.quantized()
    w = q["weight"].detach().numpy().astype(np.int64)
    assert w.min() >= -256 and w.max() <= 254 and np.all(w % 2 == 0)
    bias = q["bias_mant"].detach().numpy().astype(np.int64) << q["bias_exp"]
    u = np.zeros((5, 24), np.int64)
    v = np.zeros_like(u)
    for t in range(8):
        a = spikes_in[t].numpy().astype(np.int64) @ w.T
        a = a << q["weight_exp"] if q["weight_exp"] >= 0 else a >> -q["weight_exp"]
        prod = u * (4096 - 301)
        u = np.sign(prod) * (np.abs(prod) >> 12) + (a << 6)
        prod = v * (4096 - 700)
        v = np.sign(prod) * (np.abs(prod) >> 12) + u + bias
        s = v > (200 << 6)
        v[s] = 0
        assert np.array_equal(out[t].detach().numpy().astype(bool), s), f"step {t}"
    assert out.sum() > 0


# --- slope schedules -------------------------------------------------------------------


def test_fixed_schedule_never_changes():
    sched = make_schedule("fixed", k=25.0)
    for _ in range(10):
        sched.step()
        sched.observe_return(1e6)
    assert sched.value == 25.0


def test_interval_schedule_steps_to_its_maximum():
    sched = make_schedule("interval", k_start=2.0, k_max=25.0, increment=10.0, interval=3)
    values = []
    for _ in range(12):
        values.append(sched.value)
        sched.step()
    assert values == [2, 2, 2, 12, 12, 12, 22, 22, 22, 25, 25, 25]


def test_adaptive_schedule_follows_normalised_return_and_is_clamped():
    sched = make_schedule(
        "adaptive", return_low=-1000.0, return_high=0.0, k_start=2.0, k_max=150.0, beta=0.5
    )
    assert sched.value == 2.0
    sched.observe_return(-500.0)  # r = 0.5 -> m = 0.25 -> k = 2 + 0.25 * 148 = 39
    assert sched.value == pytest.approx(39.0)
    for _ in range(30):
        sched.observe_return(1e9)  # r clipped to 1; k -> 150 clamped to 100
    assert sched.value == 100.0
    low = make_schedule("adaptive", return_low=0.0, return_high=1.0, k_start=0.2)
    assert low.value == 1.0  # clamped below at 1


def test_adaptive_schedule_save_and_restore():
    sched = make_schedule("adaptive", return_low=-100.0, return_high=100.0)
    for r in (-50.0, 10.0, 80.0):
        sched.observe_return(r)
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    restored = AdaptiveSlope(return_low=0.0, return_high=1.0)
    restored.load_state_dict(torch.load(buf, weights_only=True))
    assert restored.value == sched.value
    for r in (30.0, -20.0):
        sched.observe_return(r)
        restored.observe_return(r)
        assert restored.value == sched.value


def test_schedule_drives_the_actor_surrogates():
    actor = build_actor(hopper_config(neuron=NeuronConfig("lif", surrogate="fast_sigmoid")))
    sched = make_schedule("interval", k_start=2.0, k_max=100.0, increment=50.0, interval=1)
    sched.step()
    actor.set_slope(sched.value)
    assert all(float(layer.neuron.spike_fn.slope) == 52.0 for layer in actor.layers)


def test_unknown_schedule_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown slope schedule"):
        make_schedule("cosine")
    with pytest.raises(ConfigError, match="return_high"):
        make_schedule("adaptive", return_low=1.0, return_high=0.0)


@pytest.mark.parametrize(
    "kind, params, words",
    [
        ("fixed", {"k": -3.0}, "k > 0"),  # arctan's gradient turned over
        ("interval", {"k_start": -50.0, "increment": -1.0}, "k_start > 0"),
        ("interval", {"interval": 0.5}, "a whole interval >= 1"),
        ("interval", {"increment": -1.0}, "increment >= 0"),
        ("adaptive", {"return_low": 0.0, "return_high": 1.0, "beta": 0.0}, "0 < beta <= 1"),
        ("adaptive", {"return_low": 0.0, "return_high": 1.0, "k_max": float("inf")}, "number"),
        ("interval", {"updates": 5}, "updates is its state"),
    ],
)
def test_a_schedule_that_would_break_the_surrogate_is_refused(kind, params, words):
    with pytest.raises(ConfigError, match=words):
        make_schedule(kind, **params)


def test_the_fixed_slope_is_given_once():
    from neurodeploy.train.config import TrainConfig

    with pytest.raises(ConfigError, match="set slope, not slope_params.k"):
        TrainConfig(surrogate="fast_sigmoid", slope=5.0, slope_params={"k": 3.0})
    with pytest.raises(ConfigError, match="k_start > 0"):
        TrainConfig(surrogate="fast_sigmoid", slope_schedule="interval",
                    slope_params={"k_start": -50, "increment": -1, "interval": 1})  # fmt: skip


@pytest.mark.parametrize("neuron", ["lif", "loihi"])
def test_neurobench_hooks_every_synapse_of_the_actor(neuron):
    """Every SpikingLayer's synapse is an nn.Linear the layer calls as a module, so
    NeuroBench's forward hooks see each step's input spikes: its effective ACs are the
    spikes into each layer times that layer's fan-out (float weights: none zero). The
    synapse keeps its state-dict names, so saved policies still load."""
    pytest.importorskip("neurobench")
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import TorchModel

    from neurodeploy.hardware.workload import run_benchmark

    torch.manual_seed(0)
    actor = build_actor(
        ActorConfig(3, 1, [-2.0], [2.0], hidden=[32, 16], neuron=NeuronConfig(model=neuron))
    )
    assert "layers.0.linear.weight" in actor.state_dict()
    assert all(isinstance(layer.linear, torch.nn.Linear) for layer in actor.layers)
    obs = torch.randn(12, 3)
    with torch.no_grad():
        actor(obs)
    trains = list(actor.spike_trains.values())
    expected = sum(
        float((x != 0).sum()) * layer.out_features
        for x, layer in zip(trains[:-1], actor.layers, strict=True)
    )
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(obs, torch.zeros(12)), batch_size=12
    )
    bench = Benchmark(TorchModel(actor), loader, [], [], [[], [SynapticOperations]])
    ops = run_benchmark(bench)["SynapticOperations"]  # leaves Lava importable afterwards
    assert ops["Effective_ACs"] == pytest.approx(expected / 12)
    assert ops["Effective_MACs"] == 0  # the population decoder is no nn.Linear
