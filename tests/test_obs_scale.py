"""obs_scale: a per-dimension factor on the observation that every backend applies alike."""

import json

import pytest
import torch

from neurodeploy.errors import ConfigError
from neurodeploy.export.bundle import export_bundle
from neurodeploy.hardware.runner import run_policy
from neurodeploy.snn import ActorConfig, build_actor, policy_payload
from neurodeploy.train.config import TrainConfig

SCALE = [1.0, 1.0, 0.25]  # Pendulum: angular velocity (+-8 rad/s) into the encoder's tanh range


def _pair(kind: str):
    """The same weights with and without obs_scale."""
    torch.manual_seed(0)
    plain = build_actor(ActorConfig(3, 1, [-2.0], [2.0], kind=kind, hidden=[32, 16]))
    scaled = build_actor(
        ActorConfig(3, 1, [-2.0], [2.0], kind=kind, hidden=[32, 16], obs_scale=SCALE)
    )
    scaled.load_state_dict(plain.state_dict())  # the factor lives in the config, not the weights
    return plain, scaled


@pytest.mark.parametrize("kind", ["snn", "ann"])
def test_obs_scale_multiplies_the_observation_first(kind):
    plain, scaled = _pair(kind)
    obs = torch.tensor([[0.3, -0.9, 6.0], [1.0, 0.0, -7.5], [0.0, 1.0, 0.5]])
    with torch.no_grad():
        want = plain(obs * torch.tensor(SCALE))
        assert torch.equal(scaled(obs), want)
        assert not torch.equal(scaled(obs), plain(obs))  # the factor changes what the actor sees


def test_obs_scale_is_checked():
    with pytest.raises(ConfigError, match="obs_scale has 2 entries"):
        ActorConfig(3, 1, [-2.0], [2.0], obs_scale=[1.0, 1.0])
    with pytest.raises(ConfigError, match="obs_scale entries must be positive and finite"):
        TrainConfig(obs_scale=[1.0, float("nan"), 1.0])


def test_obs_scale_travels_into_the_bundle_and_every_backend(tmp_path):
    """The codec names the factor, and the emulator and Lava run on the scaled input: the
    closed loop on the emulator tracks torch, which it would not if it saw raw observations."""
    _, scaled = _pair("snn")
    policy = tmp_path / "policy.pt"
    torch.save({**policy_payload(scaled), "env": "Pendulum-v1"}, policy)
    bundle = export_bundle(policy, "loihi2", tmp_path / "b", observations=32)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["codec"]["obs_scale"] == SCALE
    fidelity = json.loads((bundle / "fidelity.json").read_text())
    assert fidelity["emulator_vs_lava_fixed"]["identical"]
    torch_run = run_policy(bundle, "torch", episodes=1, seed=3)
    emu_run = run_policy(bundle, "emulator", episodes=1, seed=3)
    assert emu_run.returns[0] == pytest.approx(torch_run.returns[0], rel=0.05)
