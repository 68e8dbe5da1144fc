"""Neuron models against hand-computed traces, surrogate gradients, and the fused LIF path."""

import math

import numpy as np
import pytest
import torch

from neurodeploy.snn.neurons import NeuronConfig, make_neuron
from neurodeploy.snn.surrogate import Surrogate

INPUT = [0.3, 0.3, 0.0, 0.6, 0.1, 0.2]


def run_trace(config, inputs, fused=False):
    neuron = make_neuron(1, config)
    currents = torch.tensor(
        inputs, dtype=torch.float32 if config.model != "loihi" else torch.float64
    )
    currents = currents.reshape(-1, 1, 1)
    if fused:
        spikes, _ = neuron.sequence(currents)
        return spikes.flatten().tolist(), None
    state = neuron.initial_state(1)
    spikes, states = [], []
    for current in currents:
        s, state = neuron(current, state)
        spikes.append(float(s.detach()))
        states.append([float(x.detach()) for x in state])
    return spikes, states


def test_lif_trace_by_hand():
    # v = 0.75 v (1 - s_prev) + I, spike when v > 0.5
    spikes, states = run_trace(NeuronConfig("lif", learn_decay=True), INPUT)
    assert spikes == [0, 1, 0, 1, 0, 0]
    v = [st[0] for st in states]
    assert v == pytest.approx([0.3, 0.525, 0.0, 0.6, 0.1, 0.275])


def test_lif_fused_path_gives_the_same_trace():
    spikes, _ = run_trace(NeuronConfig("lif"), INPUT, fused=True)
    assert spikes == [0, 1, 0, 1, 0, 0]


def test_clif_trace_by_hand():
    # c = 0.5 c + I ; v = 0.75 v (1 - s_prev) + c
    spikes, states = run_trace(NeuronConfig("clif"), INPUT)
    assert spikes == [0, 1, 0, 1, 0, 1]
    c = [st[0] for st in states]
    v = [st[1] for st in states]
    assert c == pytest.approx([0.3, 0.45, 0.225, 0.7125, 0.45625, 0.428125])
    assert v == pytest.approx([0.3, 0.675, 0.225, 0.88125, 0.45625, 0.7703125])


def test_dn_trace_by_hand():
    spikes, states = run_trace(NeuronConfig("dn"), INPUT)
    assert spikes == [0, 1, 0, 1, 0, 0]
    v = [st[1] for st in states]
    u = [st[2] for st in states]
    # t2 after the spike: v = 0.021 + (0.021^2 - 0.021 - 0.0804 + 0.225)
    assert v == pytest.approx(
        [0.3, 0.54, 0.145041, 0.6142172917, 0.1671983836, 0.0170580890], rel=1e-5
    )
    assert u == pytest.approx(
        [0.0, -0.0516, 0.1193196, 0.1574926164, 0.4390222105, 0.6425068378], rel=1e-5
    )


def test_loihi_trace_by_hand():
    # du=2048: u = trunc(u * 2047 / 4096) + (a << 6); dv=1024: v = trunc(v * 3072 / 4096) + u
    # vth=10: spike when v > 640, then v = 0.
    config = NeuronConfig("loihi", du=2048, dv=1024, vth=10)
    spikes, states = run_trace(config, [5, 5, 0, 12, 1, 3])
    assert spikes == [0, 1, 0, 1, 0, 1]
    assert [st[0] for st in states] == [320, 479, 239, 887, 507, 445]
    assert [st[1] for st in states] == [320, 0, 239, 0, 507, 0]


def _lava_lif_int(a_in, du, dv, vth, bias):
    """From-scratch integer Lava LIF (lava-nc 0.10.0 equations), independent of neurodeploy."""
    u = np.zeros(a_in.shape[1:], dtype=np.int64)
    v = np.zeros_like(u)
    out = []
    for a in a_in.astype(np.int64):
        prod = u * (4096 - (du + 1))
        u = np.sign(prod) * (np.abs(prod) >> 12) + (a << 6)
        u = np.where(u > 2**23, u - 2**24, u)
        u = np.where(u <= -(2**23), u + 2**24, u)
        prod = v * (4096 - dv)
        v = np.sign(prod) * (np.abs(prod) >> 12) + u + bias
        v = np.clip(v, -(2**23) + 1, 2**23 - 1)
        s = v > (vth << 6)
        v = np.where(s, 0, v)
        out.append((s.astype(np.int64), u.copy(), v.copy()))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loihi_neuron_is_bit_exact_with_integer_lava_equations(seed):
    rng = np.random.default_rng(seed)
    du, dv, vth = int(rng.integers(0, 4096)), int(rng.integers(0, 4096)), int(rng.integers(1, 2000))
    a_in = rng.integers(-300, 400, size=(60, 8, 32))
    bias = rng.integers(-3000, 3000, size=32)
    expected = _lava_lif_int(a_in, du, dv, vth, bias)
    neuron = make_neuron(32, NeuronConfig("loihi", du=du, dv=dv, vth=vth))
    state = neuron.initial_state(8)
    bias_t = torch.tensor(bias, dtype=torch.float64)
    for a, (s_ref, u_ref, v_ref) in zip(a_in, expected, strict=True):
        s, state = neuron(torch.tensor(a, dtype=torch.float64), state, bias_t)
        assert np.array_equal(s.numpy().astype(np.int64), s_ref)
        assert np.array_equal(state[0].numpy().astype(np.int64), u_ref)
        assert np.array_equal(state[1].numpy().astype(np.int64), v_ref)


@pytest.mark.parametrize(
    "kind, slope, x, expected",
    [
        ("rect", 1.0, 0.2, 1.0),
        ("rect", 1.0, -0.49, 1.0),
        ("rect", 1.0, 0.6, 0.0),
        ("fast_sigmoid", 2.0, 0.5, 0.25),  # 1 / (1 + 2 * 0.5)^2
        ("fast_sigmoid", 100.0, 0.0, 1.0),
        ("fast_sigmoid", 100.0, -0.01, 0.25),
        ("arctan", 2.0, 0.0, 1.0),  # (k/2) / (1 + 0)
        ("arctan", 2.0, 1 / math.pi, 0.5),  # (k/2) / (1 + (pi/2 * 2 / pi)^2)
    ],
)
def test_surrogate_gradient_values(kind, slope, x, expected):
    fn = Surrogate(kind, slope)
    xt = torch.tensor([x], requires_grad=True)
    s = fn(xt)
    assert float(s) == (1.0 if x > 0 else 0.0)
    s.sum().backward()
    assert float(xt.grad) == pytest.approx(expected)


def test_surrogate_slope_is_a_tensor_that_changes_the_gradient():
    fn = Surrogate("fast_sigmoid", 1.0)
    x = torch.tensor([0.5], requires_grad=True)
    fn(x).backward()
    g1 = float(x.grad)
    fn.set_slope(4.0)
    x.grad = None
    fn(x).backward()
    assert g1 == pytest.approx(1 / 1.5**2)
    assert float(x.grad) == pytest.approx(1 / 3.0**2)
    assert "slope" in dict(fn.named_buffers())


@pytest.mark.parametrize("surrogate", ["rect", "fast_sigmoid", "arctan"])
def test_fused_lif_matches_autograd_lif(surrogate):
    torch.manual_seed(0)
    currents = (torch.randn(6, 16, 40) * 0.6).requires_grad_()
    weight = torch.randn(6, 16, 40)
    fused = make_neuron(40, NeuronConfig("lif", surrogate=surrogate, slope=3.0))
    plain = make_neuron(40, NeuronConfig("lif", surrogate=surrogate, slope=3.0, learn_decay=True))
    assert fused.fusable and not plain.fusable
    s1, st1 = fused.sequence(currents)
    (g1,) = torch.autograd.grad((s1 * weight).sum(), currents)
    s2, st2 = plain.sequence(currents)
    (g2,) = torch.autograd.grad((s2 * weight).sum(), currents)
    assert torch.equal(s1, s2)
    assert torch.allclose(g1, g2, atol=1e-6)
    # The carried states continue identically.
    nxt = torch.randn(3, 16, 40)
    assert torch.equal(plain.sequence(nxt, st1)[0], plain.sequence(nxt, st2)[0])


def test_learnable_per_neuron_parameters_get_gradients():
    neuron = make_neuron(
        8,
        NeuronConfig(
            "lif",
            learn_decay=True,
            learn_threshold=True,
            per_neuron=True,
            reset="subtract",
            surrogate="fast_sigmoid",
            slope=2.0,
        ),
    )
    assert neuron.decay.shape == (8,) and neuron.threshold.shape == (8,)
    spikes, _ = neuron.sequence(torch.rand(5, 4, 8))
    spikes.sum().backward()
    assert neuron.decay.grad.abs().sum() > 0
    assert neuron.threshold.grad.abs().sum() > 0


def test_per_layer_is_the_default():
    neuron = make_neuron(8, NeuronConfig("lif", learn_decay=True))
    assert neuron.decay.shape == ()


def test_compiled_kernels_match_eager_kernels():
    from neurodeploy.snn import kernels

    torch.manual_seed(0)
    currents = (torch.randn(5, 32, 64) * 0.6).requires_grad_()
    weight = torch.randn(5, 32, 64)
    neuron = make_neuron(64, NeuronConfig("lif"))
    results = []
    for compiled in (False, True):
        kernels.set_compile(compiled)
        try:
            spikes, (v, _) = neuron.sequence(currents)
            (grad,) = torch.autograd.grad((spikes * weight).sum(), currents)
            assert kernels.compiled() == compiled  # did not fall back
        finally:
            kernels.set_compile(False)
        results.append((spikes, v, grad))
    (s0, v0, g0), (s1, v1, g1) = results
    assert torch.equal(s0, s1)
    assert torch.allclose(v0, v1, atol=1e-6)
    assert torch.allclose(g0, g1, atol=1e-5)
