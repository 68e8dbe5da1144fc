"""Training: TD3 / PT-TD3 on real gymnasium environments, resume after SIGKILL, bad input."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from neurodeploy.errors import CheckpointError, ConfigError, EnvError
from neurodeploy.snn import actor_from_payload
from neurodeploy.train.config import TrainConfig, resolve
from neurodeploy.train.loop import train

NEURODEPLOY = str(Path(sys.executable).parent / "neurodeploy")
TINY = [
    "--set",
    "hidden=[32, 32]",
    "--set",
    "proxy_hidden=[64, 64]",
    "--set",
    "batch_size=32",
    "--set",
    "critic_hidden=64",
    "--set",
    "timesteps=3",
    "--set",
    "start_steps=300",
    "--set",
    "checkpoint_every=200",
    "--set",
    "eval_every=500",
    "--set",
    "eval_episodes=1",
]


def tiny_config(**kw) -> TrainConfig:
    values = dict(
        env="Pendulum-v1",
        steps=700,
        hidden=[32, 32],
        proxy_hidden=[64, 64],
        batch_size=32,
        critic_hidden=64,
        timesteps=3,
        start_steps=300,
        checkpoint_every=200,
        eval_every=350,
        eval_episodes=1,
    )
    values.update(kw)
    return TrainConfig(**values)


def cli(*args, timeout=600):
    """``neurodeploy train ARGS`` in a subprocess."""
    return subprocess.run(
        [NEURODEPLOY, "train", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("algo, neuron", [("pt-td3", "lif"), ("td3", "lif"), ("td3", "ann")])
def test_training_writes_a_complete_run_directory(tmp_path, algo, neuron):
    run = train(tiny_config(algo=algo, neuron=neuron), tmp_path / "run", progress=False)
    for name in ("config.toml", "metrics.csv", "curves.png", "policy.pt", "checkpoint/state.pt"):
        assert (run / name).exists(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,episode_return,eval_return_mean")
    assert [r.split(",")[0] for r in rows[1:]] == ["350", "700"]
    payload = torch.load(run / "policy.pt", weights_only=True)
    actor = actor_from_payload(payload)
    assert payload["env"] == "Pendulum-v1"
    action = actor(torch.zeros(1, 3))
    assert action.shape == (1, 1) and abs(float(action.detach())) <= 2.0
    if algo == "pt-td3":
        assert "proxy_loss" in rows[0] and rows[1].split(",")[6] != ""


def test_best_policy_is_the_best_evaluated_one(tmp_path):
    from neurodeploy.train.evaluate import evaluate
    from neurodeploy.train.loop import EVAL_SEED_OFFSET, make_train_env

    cfg = tiny_config(algo="td3", neuron="ann", steps=1400, eval_every=350, eval_episodes=2)
    run = train(cfg, tmp_path / "run", progress=False)
    header, *rows = [r.split(",") for r in (run / "metrics.csv").read_text().splitlines()]
    evals = [float(r[header.index("eval_return_mean")]) for r in rows]
    actor = actor_from_payload(torch.load(run / "best.pt", weights_only=True))
    returns, _ = evaluate(actor, make_train_env(cfg), 2, cfg.seed + EVAL_SEED_OFFSET)
    assert np.mean(returns) == pytest.approx(max(evals), rel=1e-5)
    last = actor_from_payload(torch.load(run / "policy.pt", weights_only=True))
    returns, _ = evaluate(last, make_train_env(cfg), 2, cfg.seed + EVAL_SEED_OFFSET)
    assert np.mean(returns) == pytest.approx(evals[-1], rel=1e-5)
    # a best.pt written after the last checkpoint (by an evaluation that a kill discarded)
    # is put back to the checkpoint's own on resume
    kept = (run / "best.pt").read_bytes()
    (run / "best.pt").write_bytes(b"written by a discarded evaluation")
    train(tiny_config(algo="td3", neuron="ann", steps=1410, eval_every=350, eval_episodes=2),
          run, resume=True, progress=False)  # fmt: skip
    assert (run / "best.pt").read_bytes() == kept


def test_proxy_gets_no_gradient_into_the_actor():
    from neurodeploy.envs import make_env
    from neurodeploy.train.loop import Agent
    from neurodeploy.train.targets import ProxyTarget

    cfg = tiny_config()
    agent = Agent.build(cfg, make_env(cfg.env, 0))
    rng = np.random.default_rng(0)
    for _ in range(64):
        agent.buffer.add(rng.normal(size=3), rng.uniform(-2, 2, 1), 0.0, rng.normal(size=3), False)
    before = {k: v.clone() for k, v in agent.actor.state_dict().items()}
    agent.td3.update(
        lambda: agent.buffer.sample(32, rng)
    )  # update 1: critic + proxy, no actor step
    assert all(torch.equal(before[k], v) for k, v in agent.actor.state_dict().items())
    assert all(p.grad is None for p in agent.actor.parameters())
    assert isinstance(agent.td3.target, ProxyTarget)


def test_caps_smoothness_pulls_the_actions_of_neighbouring_states_together():
    """Smoothness weights that dominate the actor loss bring pi(s) and pi(s') closer than
    plain TD3 does; smooth_loss is logged only when the weights are set."""
    from neurodeploy.envs import make_env
    from neurodeploy.train.loop import Agent

    def gap_after_updates(**kw):
        cfg = tiny_config(algo="td3", neuron="ann", policy_delay=1, **kw)
        agent = Agent.build(cfg, make_env(cfg.env, 0))
        rng = np.random.default_rng(0)
        obs, next_obs = rng.normal(size=(64, 3)), rng.normal(size=(64, 3))
        for o, n in zip(obs, next_obs, strict=True):
            agent.buffer.add(o, rng.uniform(-2, 2, 1), 0.0, n, False)
        for _ in range(30):
            losses = agent.td3.update(lambda: agent.buffer.sample(64, rng))
        with torch.no_grad():
            s, s2 = (torch.as_tensor(x, dtype=torch.float32) for x in (obs, next_obs))
            gap = ((agent.actor(s) - agent.actor(s2)) ** 2).sum(-1).mean().item()
        return gap, losses

    plain, plain_losses = gap_after_updates()
    smooth, losses = gap_after_updates(smooth_temporal=100.0, smooth_spatial=1.0)
    assert "smooth_loss" not in plain_losses and losses["smooth_loss"] > 0
    assert smooth < 0.5 * plain


def test_killed_run_resumes_to_bitwise_identical_weights(tmp_path):
    # updates from step 300; checkpoints at 200 and 400 (the kill); evaluations at 300 and 600
    args = ["pendulum", "--steps", "600", *TINY, "--set", "eval_every=300"]
    # Uninterrupted reference run, beside the one killed (the machine's second core).
    log = (tmp_path / "full.err").open("w")
    full = subprocess.Popen([NEURODEPLOY, "train", *args, "--out", str(tmp_path / "full")],
                            stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    # Same run, SIGKILLed after its second checkpoint, then resumed.
    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        [NEURODEPLOY, "train", *args, "--out", str(killed_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckpt = killed_dir / "checkpoint" / "state.pt"
    deadline = time.time() + 300
    seen = 0.0
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and ckpt.stat().st_mtime != seen:
            if seen:
                break
            seen = ckpt.stat().st_mtime
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = torch.load(ckpt, weights_only=True)["counters"]["step"]
    assert 300 < step < 600
    resumed = cli(*args, "--out", str(killed_dir), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    full.wait(timeout=600)
    log.close()
    assert full.returncode == 0, (tmp_path / "full.err").read_text()
    a = torch.load(tmp_path / "full" / "policy.pt", weights_only=True)["state_dict"]
    b = torch.load(killed_dir / "policy.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [r.split(",")[0] for r in (killed_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == ["300", "600"]
    # every logged value too (the mean losses since the last row span the kill): all but
    # the speed column
    import csv

    def logged(run):
        with (run / "metrics.csv").open() as f:
            return [{k: v for k, v in r.items() if k != "steps_per_s"} for r in csv.DictReader(f)]

    assert logged(killed_dir) == logged(tmp_path / "full")
    best = [(run / "best.pt").read_bytes() for run in (killed_dir, tmp_path / "full")]
    assert best[0] == best[1]  # the best evaluation's policy, byte for byte


def test_unknown_env_is_one_clear_line(tmp_path):
    out = cli("pendulum", "--env", "Pendulumm-v1", "--out", str(tmp_path / "r"))
    assert out.returncode == 1
    assert "Pendulumm-v1" in out.stderr and "Pendulum-v1" in out.stderr  # names a close match
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "r").exists()


def test_discrete_action_space_is_refused(tmp_path):
    out = cli("--env", "CartPole-v1", "--out", str(tmp_path / "r"))
    assert out.returncode == 1
    assert "Discrete" in out.stderr and "continuous" in out.stderr
    assert "Traceback" not in out.stderr


def test_existing_run_directory_is_never_overwritten(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    out = cli("pendulum", "--out", str(run))
    assert out.returncode == 1 and "--resume" in out.stderr
    assert (run / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]


def test_resume_with_a_different_config_names_the_keys(tmp_path):
    run = train(tiny_config(), tmp_path / "r", progress=False)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"seed \(run: 0, now: 3\).*timesteps"):
        train(tiny_config(seed=3, timesteps=4), run, resume=True, progress=False)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    run = train(tiny_config(steps=300), tmp_path / "r", progress=False)  # random steps only
    ckpt = run / "checkpoint" / "state.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    out = cli(
        "pendulum",
        "--steps",
        "700",
        "--out",
        str(run),
        "--resume",
        *TINY,  # the run's own options, so the resume gets as far as the checkpoint
        "--set",
        "eval_every=350",
        "--set",
        "eval_episodes=1",
    )
    assert out.returncode == 1
    assert "corrupt" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(CheckpointError, match="corrupt"):
        train(tiny_config(), run, resume=True, progress=False)


class NaNAfter(gym.Wrapper):
    """A real Pendulum whose observations turn NaN after a number of steps (a broken sensor)."""

    def __init__(self, env, after):
        super().__init__(env)
        self.after, self.count = after, 0

    def step(self, action):
        obs, r, te, tr, info = self.env.step(action)
        self.count += 1
        if self.count >= self.after:
            obs = obs.copy()
            obs[1] = np.nan
        return obs, r, te, tr, info


def test_nan_observation_stops_with_the_step(tmp_path):
    gym.register(
        "NaNPendulum-v0",
        entry_point=lambda: NaNAfter(gym.make("Pendulum-v1"), 450),
        max_episode_steps=200,
    )
    try:
        with pytest.raises(EnvError, match=r"non-finite observation at step 450 \(indices \[1\]\)"):
            train(tiny_config(env="NaNPendulum-v0"), tmp_path / "r", progress=False)
        # the checkpoint written before the failure is intact and loads
        assert torch.load(tmp_path / "r" / "checkpoint" / "state.pt", weights_only=True)
    finally:
        gym.registry.pop("NaNPendulum-v0")


def test_recipe_and_overrides(tmp_path):
    cfg, name = resolve("hopper", {"seed": 4, "neuron": "clif"})
    assert name == "hopper" and cfg.env == "Hopper-v4" and cfg.seed == 4
    assert (cfg.proxy_hidden, cfg.proxy_lr, cfg.proxy_steps) == ([800, 600], 3e-3, 3)
    with pytest.raises(ConfigError, match="no train recipe named 'hoper'"):
        resolve("hoper", {})
    with pytest.raises(ConfigError, match="unknown option"):
        resolve(None, {"gama": 0.9})


def test_unknown_cli_set_option_is_refused():
    out = cli("pendulum", "--set", "learning_rate=1")
    assert out.returncode == 1 and "unknown option(s) learning_rate" in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pendulum_pt_lif_learns(tmp_path, seed):
    cfg, _ = resolve("pendulum", {"seed": seed})
    run = train(cfg, tmp_path / "r", progress=False)
    rows = [r.split(",") for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    best = max(float(r[2]) for r in rows)
    assert best >= -300, f"seed {seed}: best eval return {best}"


def test_slope_schedule_from_the_config_drives_the_actor():
    from neurodeploy.envs import make_env
    from neurodeploy.snn.schedules import AdaptiveSlope
    from neurodeploy.train.loop import Agent

    cfg = tiny_config(
        surrogate="fast_sigmoid",
        slope_schedule="adaptive",
        slope_params={"return_low": -1500.0, "return_high": 0.0, "k_start": 2.0},
    )
    agent = Agent.build(cfg, make_env(cfg.env, 0))
    assert isinstance(agent.schedule, AdaptiveSlope) and agent.schedule.value == 2.0
    with pytest.raises(ConfigError, match="adaptive"):
        Agent.build(tiny_config(slope_schedule="adaptive"), make_env(cfg.env, 0))


def test_metrics_without_tensorboard_warn_once_and_keep_the_csv(tmp_path, monkeypatch):
    from neurodeploy.train.metrics import Metrics

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.warns(UserWarning, match="tensorboard is not installed"):
        metrics = Metrics(tmp_path, ["hidden0"])
    metrics.log({"step": 1000, "eval_return_mean": -150.5, "rate_hidden0": 0.25})
    metrics.close()
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[1].startswith("1000,,-150.5,") and lines[1].endswith(",0.25")
    assert not (tmp_path / "tensorboard").exists()


def one_actor_update(cfg: TrainConfig, prepare=None):
    """An agent of ``cfg`` (``prepare(actor)`` applied) after one TD3 update on random
    transitions; with ``policy_delay = 1`` it is an actor update. Returns (agent, losses)."""
    from neurodeploy.envs import make_env
    from neurodeploy.train.loop import Agent

    agent = Agent.build(cfg, make_env(cfg.env, 0))
    if prepare is not None:
        with torch.no_grad():
            prepare(agent.actor)
    rng = np.random.default_rng(0)
    for _ in range(64):
        agent.buffer.add(rng.normal(size=3), rng.uniform(-2, 2, 1), 1.0, rng.normal(size=3), False)
    return agent, agent.td3.update(lambda: agent.buffer.sample(32, rng))


def test_a_dead_output_layer_is_measured_and_warned(tmp_path):
    """output_grad is the share of output neurons the actor loss reaches: above 0 for a
    fresh actor; exactly 0 when every output neuron is held always or never firing (as
    InvertedDoublePendulum PT-LIF seed 2 ended), where only the decoder still gets a
    gradient; the evaluation row then warns."""
    from neurodeploy.envs import make_env
    from neurodeploy.train.loop import log_evaluation
    from neurodeploy.train.metrics import Metrics

    def kill(actor):  # far above the threshold for half the neurons, far below for the rest
        out = actor.layers[-1].linear
        out.weight.zero_()
        out.bias.copy_(torch.tensor([50.0, -50.0]).repeat_interleave(out.bias.numel() // 2))

    cfg = tiny_config(policy_delay=1)
    _, healthy = one_actor_update(cfg)
    assert healthy["output_grad"] > 0
    agent, dead = one_actor_update(cfg, kill)
    assert dead["output_grad"] == 0.0
    grads = {n: p.grad for n, p in agent.actor.named_parameters() if p.requires_grad}
    assert all(not g.any() for n, g in grads.items() if n.startswith(("layers", "encoder")))
    assert grads["decoder.weight"].any()

    metrics = Metrics(tmp_path, agent.actor.layer_names)
    state = {"last_return": 0.0, "best_eval": -float("inf")}
    losses = {k: [v] for k, v in dead.items()}
    with pytest.warns(RuntimeWarning, match="output_grad = 0 at step 350"):
        log_evaluation(agent.actor, make_env(cfg.env, 0), cfg, tmp_path, metrics, state,
                       losses, 350, 1.0, 1.0)  # fmt: skip
    metrics.close()
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0].count("output_grad") == 1


def test_an_evaluation_row_is_logged_only_after_its_policy_is_written(tmp_path):
    """A run killed between the two writes of an evaluation must not leave a metrics row whose
    policy.pt is one evaluation older (a report would count the trial finished with it):
    policy.pt is written first, so a failing row write finds the new policy already there."""
    from neurodeploy.envs import make_env
    from neurodeploy.train.loop import log_evaluation
    from neurodeploy.train.metrics import Metrics

    cfg = tiny_config()
    agent, _ = one_actor_update(cfg)
    metrics = Metrics(tmp_path, agent.actor.layer_names)

    def killed(row):  # the kill lands between the two writes
        assert (tmp_path / "policy.pt").is_file(), "the row came before its policy"
        raise KeyboardInterrupt

    metrics.log = killed
    state = {"last_return": 0.0, "best_eval": -float("inf")}
    with pytest.raises(KeyboardInterrupt):
        log_evaluation(agent.actor, make_env(cfg.env, 0), cfg, tmp_path, metrics, state,
                       {}, 350, 1.0, 1.0)  # fmt: skip
    metrics.close()
    saved = torch.load(tmp_path / "policy.pt", weights_only=False)
    mine = agent.actor.state_dict()
    assert all(torch.equal(v, mine[k]) for k, v in saved["state_dict"].items())


def test_a_saturated_ann_output_is_measured():
    """The ANN actor's output_grad: 0 when its tanh is saturated to +-1 on every sample (as
    InvertedDoublePendulum ANN TD3 seed 2 ended), above 0 otherwise."""
    cfg = tiny_config(algo="td3", neuron="ann", policy_delay=1)
    _, healthy = one_actor_update(cfg)
    assert healthy["output_grad"] > 0
    _, saturated = one_actor_update(cfg, lambda actor: actor.net[-1].bias.fill_(100.0))
    assert saturated["output_grad"] == 0.0
