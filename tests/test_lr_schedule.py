"""lr_schedule: the linear learning-rate schedule of actor and critic."""

from __future__ import annotations

import pytest

from neurodeploy.envs import make_env
from neurodeploy.errors import ConfigError
from neurodeploy.train.config import TrainConfig
from neurodeploy.train.loop import Agent, set_learning_rates


def rates(agent):
    return [
        g["lr"] for opt in (agent.td3.actor_opt, agent.td3.critic_opt) for g in opt.param_groups
    ]


@pytest.mark.parametrize("schedule", ["constant", "linear"])
def test_rates_fall_linearly_from_start_steps_to_zero(schedule):
    cfg = TrainConfig(env="Pendulum-v1", neuron="ann", algo="td3", steps=1100, start_steps=100,
                      actor_lr=1e-3, critic_lr=2e-3, lr_schedule=schedule)  # fmt: skip
    agent = Agent.build(cfg, make_env(cfg.env, 0))
    expected = {100: 1.0, 600: 0.5, 1100: 0.0}
    for step, left in expected.items():
        set_learning_rates(agent.td3, cfg, step)
        factor = left if schedule == "linear" else 1.0
        assert rates(agent) == pytest.approx([1e-3 * factor, 2e-3 * factor])


def test_an_unknown_schedule_refuses():
    with pytest.raises(ConfigError, match="lr_schedule"):
        TrainConfig(env="Pendulum-v1", lr_schedule="cosine")
