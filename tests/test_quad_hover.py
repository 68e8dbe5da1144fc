"""QuadHover-v0: physics, the gymnasium contract, reward curriculum, noise and delay."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import neurodeploy.envs  # noqa: F401  (registers the environment)
from neurodeploy.envs.quad_hover import (
    HOVER_COMMAND,
    INERTIA_XYZ,
    MASS,
    RPM_MAX,
    G,
    QuadHoverEnv,
)
from neurodeploy.errors import ConfigError

LEVEL = np.eye(3)


def placed(**kw) -> QuadHoverEnv:
    env = QuadHoverEnv(**kw)
    env.reset(seed=0)
    return env


def test_hover_thrust_holds_altitude():
    env = placed()
    env.set_state(np.zeros(3), LEVEL, np.zeros(3), np.zeros(3))
    for _ in range(300):
        obs, *_ = env.step(np.full(4, HOVER_COMMAND, np.float32))
    assert np.abs(obs[:3]).max() < 1e-5 and np.abs(obs[12:]).max() < 1e-5  # float32 command
    assert HOVER_COMMAND == pytest.approx(1 / 3, abs=1e-3)  # (a+1)/2 = 0.667 = C_ab


def test_zero_thrust_falls_at_g():
    env = placed()
    env.set_state(np.zeros(3), LEVEL, np.zeros(3), np.zeros(3), motors=np.zeros(4))
    for _ in range(30):
        obs, *_ = env.step(-np.ones(4, np.float32))
    t = 30 * 0.01
    assert obs[2] == pytest.approx(-0.5 * G * t * t, rel=1e-6)
    assert obs[14] == pytest.approx(-G * t, rel=1e-6)


@pytest.mark.parametrize(
    "more, axis",
    [((2, 3), 0), ((1, 2), 1), ((1, 3), 2)],  # left motors: roll; back: pitch; clockwise: yaw
)
def test_differential_command_gives_the_expected_rate_sign(more, axis):
    env = placed()
    env.set_state(np.zeros(3), LEVEL, np.zeros(3), np.zeros(3))
    action = np.full(4, HOVER_COMMAND - 0.05, np.float32)
    action[list(more)] = HOVER_COMMAND + 0.05
    for _ in range(5):
        obs, *_ = env.step(action)
    rates = obs[15:18]
    assert rates[axis] > 1e-3
    assert np.abs(np.delete(rates, axis)).max() < 1e-3 * abs(rates[axis])


def energy(env: QuadHoverEnv) -> float:
    v, w = np.array(env.v), np.array(env.w)
    return 0.5 * MASS * v @ v + MASS * G * env.p[2] + 0.5 * np.dot(INERTIA_XYZ, w * w)


def test_energy_is_conserved_without_drag_and_input():
    env = placed(drag=0.0)
    env.set_state([0, 0, 0.1], LEVEL, [0.3, -0.2, 0.5], [2.0, -1.0, 3.0], motors=np.zeros(4))
    e0 = energy(env)
    for _ in range(100):
        env.step(-np.ones(4, np.float32))
    assert energy(env) == pytest.approx(e0, rel=1e-4)
    rotation = env.rotation
    assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)


def test_gymnasium_contract_and_seeded_resets():
    env = gym.make("neurodeploy/QuadHover-v0")
    check_env(env.unwrapped, skip_render_check=True)
    a, _ = env.reset(seed=7)
    b, _ = env.reset(seed=7)
    c, _ = env.reset(seed=8)
    assert a.shape == (18,) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.allclose(a[3:12].reshape(3, 3) @ a[3:12].reshape(3, 3).T, np.eye(3), atol=1e-6)
    steps = 0
    while True:
        _, _, term, trunc, info = env.step(env.action_space.sample())
        steps += 1
        if term or trunc:
            break
    assert steps <= 500 and info["privileged"].shape == (22,)


def test_leaving_the_ball_terminates():
    env = placed()
    env.set_state([0.59, 0, 0], LEVEL, [2.0, 0, 0], np.zeros(3))
    _, _, terminated, truncated, _ = env.step(np.full(4, HOVER_COMMAND, np.float32))
    assert terminated and not truncated


def test_curriculum_and_reward():
    env = placed()
    assert env.coefficients["C_p"] == 3.5  # a new env scores the final reward
    env.set_curriculum(0.0)
    start = env.coefficients
    env.set_curriculum(1.0)
    assert (start["C_p"], env.coefficients["C_p"]) == (1.0, 3.5)
    assert env.coefficients["C_v"] == pytest.approx(0.10) and env.coefficients["C_a"] == 0.5
    env.set_state([0.1, 0, 0], LEVEL, np.zeros(3), np.zeros(3))
    _, reward, *_ = env.step(np.full(4, HOVER_COMMAND, np.float32))
    assert reward == pytest.approx(1.0 - 3.5 * 0.01, abs=1e-6)


def test_observation_noise_and_action_delay():
    noisy = placed(obs_noise=0.05)
    noisy.set_state(np.zeros(3), LEVEL, np.zeros(3), np.zeros(3))
    obs = np.array([noisy.step(np.full(4, HOVER_COMMAND))[0] for _ in range(200)])
    assert np.std(obs[:, 0]) == pytest.approx(0.05, rel=0.2)
    delayed = placed(action_delay=2)
    delayed.set_state(np.zeros(3), LEVEL, np.zeros(3), np.zeros(3))
    z = [delayed.step(np.ones(4, np.float32))[0][2] for _ in range(4)]
    assert abs(z[0]) < 1e-12 and abs(z[1]) < 1e-12 and z[3] > 0  # full thrust arrives 2 steps late
    with pytest.raises(ConfigError, match="action_delay"):
        QuadHoverEnv(action_delay=-1)


def test_rpm_model_constants():
    assert math.isclose(MASS, 0.027) and INERTIA_XYZ[2] > INERTIA_XYZ[0]


def test_a_fast_spin_stays_finite_and_keeps_angular_momentum():
    """Full differential commands spin the body up without blowing up (an Euler step of the
    gyroscopic term did); with the rotors off, |L| stays what it was."""
    env = placed(drag=0.0)
    env.set_state([0, 0, 0], LEVEL, [0, 0, 0], [0, 0, 0], motors=np.zeros(4))
    for _ in range(500):
        env._integrate([0.0, RPM_MAX, 0.0, 0.9 * RPM_MAX], 0.005)  # yaw + roll + pitch
    assert np.all(np.isfinite(env.w)) and np.linalg.norm(env.w) > 100
    env.rpm = [0.0] * 4
    momentum = np.linalg.norm(np.multiply(INERTIA_XYZ, env.w))
    for _ in range(1000):
        env._integrate([0.0] * 4, 0.005)
    assert np.linalg.norm(np.multiply(INERTIA_XYZ, env.w)) == pytest.approx(momentum, rel=1e-9)
