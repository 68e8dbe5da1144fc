"""The training loop: act, store, update, evaluate, checkpoint. Resumable and reproducible.

Checkpoints are written at the first episode boundary after every
``checkpoint_every`` steps, and at the end (a budget that ends mid-episode cuts that
episode, so extending the run with more steps starts a new one). At a boundary no episode is in
flight, so the checkpoint holds everything the future depends on: networks,
optimisers, replay buffer, the numpy and torch RNG states, the environment's RNG,
the slope schedule and the counters. A run killed at any point and resumed
therefore produces the same final weights, bit for bit, as an uninterrupted run.
At a step that both evaluates and checkpoints, the evaluation row is logged first, so
a kill between the two never loses it. Every evaluation writes ``policy.pt``; the
best so far (mean return) is also written to ``best.pt``, as SB3's EvalCallback does.
"""

from __future__ import annotations

import math
import shutil
import time
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from neurodeploy.envs import check_observation, make_env
from neurodeploy.envs.privileged import PrivilegedObservation
from neurodeploy.errors import CheckpointError, ConfigError
from neurodeploy.snn import ActorConfig, AnnActor, NeuronConfig, build_actor, policy_payload
from neurodeploy.snn.schedules import make_schedule
from neurodeploy.train.buffer import ReplayBuffer, SequenceBuffer
from neurodeploy.train.checkpoint import (
    BEST_POLICY,
    atomic_torch_save,
    checkpoint_path,
    checkpoint_step,
    discard_partial_results,
    kept_best,
    load_checkpoint,
    remove_stale_tmp,
    restore_best,
    results_without_checkpoint,
    run_lock,
    save_checkpoint,
)
from neurodeploy.train.config import TrainConfig, differing_keys, read_config, save_config
from neurodeploy.train.device import resolve_device, rng_states, set_rng_states
from neurodeploy.train.evaluate import evaluate
from neurodeploy.train.guide import Guide, bc_weight, guide_config, guide_share
from neurodeploy.train.metrics import Metrics
from neurodeploy.train.progress import ProgressLines
from neurodeploy.train.sequence_td3 import SequenceTD3
from neurodeploy.train.td3 import TD3, Critic, TD3Settings, make_target

EVAL_SEED_OFFSET = 100


def actor_config(cfg: TrainConfig, env) -> ActorConfig:
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    low, high = env.action_space.low.tolist(), env.action_space.high.tolist()
    if cfg.neuron == "ann":
        return ActorConfig(obs_dim, act_dim, low, high, kind="ann", hidden=list(cfg.hidden),
                           obs_scale=list(cfg.obs_scale))  # fmt: skip
    neuron = NeuronConfig(
        model=cfg.neuron, surrogate=cfg.surrogate, slope=cfg.slope, reset=cfg.reset,
        decay=cfg.decay, bias=cfg.bias,
    )  # fmt: skip
    return ActorConfig(
        obs_dim,
        act_dim,
        low,
        high,
        hidden=list(cfg.hidden),
        neuron=neuron,
        timesteps=cfg.timesteps,
        mode=cfg.mode,
        encoder=cfg.encoder,
        decoder=cfg.decoder,
        pop_in=cfg.population,
        pop_out=cfg.population,
        synaptic_delay=cfg.synaptic_delay,
        obs_scale=list(cfg.obs_scale),
    )


@dataclass
class Agent:
    """Everything that learns, built from a config and an environment."""

    actor: torch.nn.Module
    td3: TD3 | SequenceTD3
    buffer: ReplayBuffer | SequenceBuffer
    schedule: object
    action_low: np.ndarray
    action_high: np.ndarray

    @classmethod
    def build(cls, cfg: TrainConfig, env, device: torch.device | str = "cpu") -> Agent:
        torch.manual_seed(cfg.seed)
        a_cfg = actor_config(cfg, env)
        actor, critic, proxy = (
            None if net is None else net.to(device) for net in build_networks(cfg, a_cfg)
        )
        settings = td3_settings(cfg)
        low = torch.tensor(a_cfg.action_low, dtype=torch.float32, device=device)
        high = torch.tensor(a_cfg.action_high, dtype=torch.float32, device=device)
        target = make_target(actor, settings, proxy)
        schedule = slope_schedule(cfg)
        if cfg.sequence_length:
            td3 = SequenceTD3(actor, critic, settings, low, high, target, burn_in=cfg.burn_in,
                              q_alpha=cfg.q_alpha, bc_weight=cfg.bc_weight,
                              bc_only=cfg.algo == "bc")  # fmt: skip
            buffer = SequenceBuffer(a_cfg.obs_dim, a_cfg.act_dim, cfg.steps, cfg.sequence_length,
                                    cfg.sequence_stride, cfg.burn_in, device)  # fmt: skip
        else:
            td3 = TD3(actor, critic, settings, low, high, target)
            buffer = replay_buffer(cfg, a_cfg, device)
        return cls(actor, td3, buffer, schedule, low.cpu().numpy(), high.cpu().numpy())


def build_networks(cfg: TrainConfig, a_cfg: ActorConfig):
    """Actor, twin critic and (pt-td3) proxy, initialised from torch's global generator."""
    actor = build_actor(a_cfg)
    critic = Critic(a_cfg.obs_dim, a_cfg.act_dim, cfg.critic_hidden)
    proxy = None
    if cfg.algo == "pt-td3":
        proxy_cfg = ActorConfig(a_cfg.obs_dim, a_cfg.act_dim, a_cfg.action_low,
                                a_cfg.action_high, kind="ann", hidden=cfg.proxy_hidden)  # fmt: skip
        proxy = AnnActor(proxy_cfg)
    return actor, critic, proxy


def td3_settings(cfg: TrainConfig) -> TD3Settings:
    return TD3Settings(
        gamma=cfg.gamma,
        tau=cfg.tau,
        actor_lr=cfg.actor_lr,
        critic_lr=cfg.critic_lr,
        policy_noise=cfg.policy_noise,
        noise_clip=cfg.noise_clip,
        smooth_temporal=cfg.smooth_temporal,
        smooth_spatial=cfg.smooth_spatial,
        smooth_sigma=cfg.smooth_sigma,
        sop_budget=cfg.sop_budget,
        sop_lr=cfg.sop_lr,
        policy_delay=cfg.policy_delay,
        proxy_lr=cfg.proxy_lr,
        proxy_steps=cfg.proxy_steps,
    )


def slope_schedule(cfg: TrainConfig):
    params = {"k": cfg.slope} if cfg.slope_schedule == "fixed" else {}
    return make_schedule(cfg.slope_schedule, **{**params, **cfg.slope_params})


def replay_buffer(cfg: TrainConfig, a_cfg: ActorConfig, device) -> ReplayBuffer:
    return ReplayBuffer(a_cfg.obs_dim, a_cfg.act_dim, min(cfg.buffer_size, cfg.steps), device)


def check_extension(saved: TrainConfig, cfg: TrainConfig, done: int, env) -> None:
    """Refuse to resume a run at another ``steps`` when a schedule is a function of
    ``step / steps``: the steps it already trained followed the old schedule, so the
    extended run would be neither the old one nor one trained at the new budget."""
    if done <= 0 or saved.steps == cfg.steps:
        return
    schedules = []
    if cfg.lr_schedule == "linear" and done > cfg.start_steps:
        schedules.append("lr_schedule = linear (the rates reach 0 at steps)")
    if cfg.curriculum and hasattr(env.unwrapped, "set_curriculum"):
        schedules.append(f"{cfg.env}'s reward curriculum (step / steps)")
    if schedules:
        raise ConfigError(
            f"--resume: cannot change steps from {saved.steps} to {cfg.steps} at step {done}: "
            f"{' and '.join(schedules)} would change under the steps already trained; "
            "train the new budget into a new --out"
        )


def prepare_run_dir(run_dir: Path, cfg: TrainConfig, resume: bool, env) -> Path | None:
    """Check the run directory; return the checkpoint to resume from (None: fresh start).
    ``env`` is the training env (whether it has a reward curriculum)."""
    config_path = run_dir / "config.toml"
    if resume:
        if not config_path.exists():
            raise ConfigError(f"--resume: {run_dir} is not a run directory (no config.toml)")
        saved = read_config(config_path)
        diff = differing_keys(saved, cfg)
        if diff:
            details = ", ".join(
                f"{k} (run: {getattr(saved, k)!r}, now: {getattr(cfg, k)!r})" for k in diff
            )
            raise ConfigError(f"--resume: the config differs from {config_path} in {details}")
        orphans = results_without_checkpoint(run_dir)
        if orphans:
            raise CheckpointError(
                f"--resume: {run_dir} has {', '.join(orphans)} but no checkpoint/state.pt "
                "to continue from; train into a new --out (resuming would start over "
                "and overwrite them)"
            )
        done = checkpoint_step(run_dir)
        if cfg.steps < done:
            raise ConfigError(
                f"--resume: {run_dir} is already at step {done}; steps must be >= {done}, "
                f"not {cfg.steps}"
            )
        check_extension(saved, cfg, done, env)
        ckpt = checkpoint_path(run_dir)
        return ckpt if ckpt.exists() else None
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(
            f"run directory {run_dir} already exists: pass --resume to continue it, "
            "or choose another --out"
        )
    return None


def make_train_env(cfg: TrainConfig, seed: int | None = None):
    """The environment a run trains on (wrapped for a guide's privileged observation)."""
    env = make_env(cfg.env, seed)
    if cfg.observation == "privileged":
        env = PrivilegedObservation(env, cfg.guide_history, cfg.guide_obs_scale)
    return env


def set_curriculum(env, cfg: TrainConfig, progress: float) -> None:
    """Environments with a reward curriculum (QuadHover) get the run's progress in [0, 1]."""
    if cfg.curriculum and hasattr(env.unwrapped, "set_curriculum"):
        env.unwrapped.set_curriculum(min(1.0, progress))


def load_or_train_guide(cfg: TrainConfig, run_dir: Path, progress: bool,
                        device: str | torch.device = "auto") -> Guide | None:  # fmt: skip
    """The guide of a guided run: loaded from ``cfg.guide``, or trained first in run_dir/guide
    (on the run's ``device``)."""
    if not cfg.guided:
        return None
    if cfg.guide:
        return Guide.load(Path(cfg.guide), cfg.env)
    guide_dir = run_dir / "guide"
    resume = (guide_dir / "config.toml").exists()
    if resume:
        discard_partial_results(guide_dir)  # killed before its first checkpoint: start over
    train(guide_config(cfg), guide_dir, resume, progress, device)
    return Guide.load(guide_dir, cfg.env)


def train(cfg: TrainConfig, run_dir: Path, resume: bool = False, progress: bool = True,
          device: str = "auto") -> Path:  # fmt: skip
    """Train to ``cfg.steps`` environment steps on ``device``; returns the run directory."""
    with ExitStack() as hold:  # the run directory's lock (checkpoint.run_lock), to the end
        return _train(cfg, Path(run_dir), resume, progress, device, hold)


def _train(cfg: TrainConfig, run_dir: Path, resume: bool, progress: bool, device: str,
           hold: ExitStack) -> Path:  # fmt: skip
    device = resolve_device(device)
    check_writable_dir(run_dir, "--out")
    env = make_train_env(cfg, cfg.seed)  # fails early, before anything is written
    actor_config(cfg, env)  # the actor's own checks (obs_scale's length), before a guide trains
    eval_env = make_train_env(cfg)
    set_curriculum(eval_env, cfg, 1.0)  # evaluate on the final reward
    created, held = not run_dir.exists(), False
    try:
        if not created:  # held before its checkpoint is read: no other process trains it
            hold.enter_context(run_lock(run_dir))
        ckpt_path = prepare_run_dir(run_dir, cfg, resume, env)
        run_dir.mkdir(parents=True, exist_ok=True)
        hold.enter_context(run_lock(run_dir))  # a fresh run's, now that it exists
        held = True  # (a fresh folder another process holds is not this run's to remove)
        for folder in (run_dir, run_dir / "checkpoint"):
            remove_stale_tmp(folder)  # left by a write that a kill interrupted
        if ckpt_path is None:
            save_config(cfg, run_dir / "config.toml")
        guide = load_or_train_guide(cfg, run_dir, progress, device)

        agent = Agent.build(cfg, env, device)
        rng = np.random.default_rng(cfg.seed)
        state = {"step": 0, "episodes": 0, "last_return": math.nan, "last_eval": math.nan,
                 "best_eval": -math.inf}  # fmt: skip
        losses: dict[str, list] = {}  # the updates' losses since the last metrics row
        if ckpt_path is not None:
            state, losses = _restore(run_dir, ckpt_path, agent, rng, env, device)
            save_config(cfg, run_dir / "config.toml")  # accepted: only steps may differ
    except Exception:
        if created and held:
            _remove_stub(run_dir)
        raise
    set_curriculum(env, cfg, state["step"] / cfg.steps)
    # after a restore: the same reset the uninterrupted run made at this boundary
    obs, info = env.reset(seed=None if ckpt_path else cfg.seed)
    check_observation(obs, cfg.env, state["step"])
    metrics = Metrics(
        run_dir,
        getattr(agent.actor, "layer_names", []),
        resume_step=state["step"] if ckpt_path else None,
        title=f"{cfg.env} · run {run_dir.name} · {cfg.algo}, {cfg.neuron}, {cfg.mode}",
    )

    half_range = (agent.action_high - agent.action_low) / 2
    stateful = cfg.mode == "stateful" and cfg.neuron != "ann"
    episode_return, episode_step, last_ckpt = 0.0, 0, state["step"]
    share = _guide_share(cfg, state["step"])
    tick, tick_step = time.perf_counter(), state["step"]
    bar = _progress(progress)
    # no terminal (nohup, CI): a plain line every 30 s; the random-action phase has no guide
    random_until = cfg.start_steps if guide is None else 0
    lines = ProgressLines(cfg.steps, random_until, state["step"], enabled=not progress)
    task = bar.add_task(
        "train", total=cfg.steps, completed=state["step"], sps=0.0, last_eval=state["last_eval"]
    )
    with bar, lines:
        while state["step"] < cfg.steps:
            step = state["step"]
            snn_action = guide_action = None
            if stateful or (step >= cfg.start_steps and guide is None):
                with torch.no_grad():  # a stateful actor runs every step to carry its state
                    x = torch.as_tensor(obs, dtype=torch.float32, device=device)[None]
                    snn_action = agent.actor(x)[0].cpu().numpy()
            if guide is not None:
                guide_action = guide.act(obs, info)
            if guide is not None and episode_step < share:
                action = guide_action
            elif step < cfg.start_steps:
                action = rng.uniform(agent.action_low, agent.action_high).astype(np.float32)
            else:
                action = snn_action
            if not (step < cfg.start_steps and guide is None):
                noise = rng.normal(0.0, cfg.expl_noise * half_range)
                action = np.clip(action + noise, agent.action_low, agent.action_high)
            action = np.asarray(action, np.float32)
            next_obs, reward, terminated, truncated, info = env.step(action)
            check_observation(next_obs, cfg.env, step + 1)
            if guide is not None:
                guide.executed(action)
            extra = {"guide_action": guide_action} if cfg.sequence_length else {}
            agent.buffer.add(obs, action, reward, next_obs, terminated, **extra)
            obs, episode_return = next_obs, episode_return + float(reward)
            state["step"] = step = step + 1
            episode_step += 1

            if step > cfg.start_steps and step % cfg.update_every == 0 and _ready(agent.buffer):
                set_learning_rates(agent.td3, cfg, step)
                result = agent.td3.update(lambda: agent.buffer.sample(cfg.batch_size, rng))
                for k, v in result.items():
                    losses.setdefault(k, []).append(v)
                agent.schedule.step()
                _apply_slope(agent)

            if step % cfg.eval_every == 0 or step == cfg.steps:
                sps = (step - tick_step) / max(time.perf_counter() - tick, 1e-9)
                extra = {"guide_share": float(share) if guide is not None else math.nan}
                log_evaluation(agent.actor, eval_env, cfg, run_dir, metrics, state, losses,
                               step, sps, float(agent.schedule.value), extra)  # fmt: skip
                tick, tick_step = time.perf_counter(), step
            if terminated or truncated:
                agent.buffer.end_episode()
                agent.schedule.observe_return(episode_return)
                _apply_slope(agent)
                if hasattr(agent.td3, "bc_weight"):
                    agent.td3.bc_weight = bc_weight(cfg, step)
                state["episodes"] += 1
                state["last_return"], episode_return, episode_step = episode_return, 0.0, 0
                if step - last_ckpt >= cfg.checkpoint_every or step >= cfg.steps:
                    _checkpoint(run_dir, agent, rng, env, state, losses, device)
                    last_ckpt = step
                set_curriculum(env, cfg, step / cfg.steps)
                share = _guide_share(cfg, step)
                obs, info = env.reset()
                agent.actor.reset()
                if guide is not None:
                    guide.reset()
                check_observation(obs, cfg.env, step)

            bar.update(
                task,
                completed=step,
                sps=(step - tick_step) / max(time.perf_counter() - tick, 1e-9),
                last_eval=state["last_eval"],
            )
            lines.update(step, state["last_eval"])
    if last_ckpt != state["step"]:
        # The budget ended mid-episode: cut the episode here and checkpoint, so the run can
        # be extended (--resume with more steps starts a new episode from this state).
        agent.buffer.end_episode()
        if hasattr(agent.td3, "bc_weight"):  # as at an episode end: the next one's lambda_BC
            agent.td3.bc_weight = bc_weight(cfg, state["step"])
        _checkpoint(run_dir, agent, rng, env, state, losses, device)
    metrics.close()
    env.close()
    eval_env.close()
    return run_dir


def set_learning_rates(td3, cfg: TrainConfig, step: int) -> None:
    """``lr_schedule = "linear"``: the actor's and critic's learning rates fall linearly from
    their values at ``start_steps`` to 0 at ``steps`` (RL Baselines3 Zoo's linear schedule),
    so a policy cannot drift away late in a short budget. A function of the step alone, so
    a resumed run sets the same rates."""
    if cfg.lr_schedule == "constant":
        return
    left = 1.0 - (step - cfg.start_steps) / max(1, cfg.steps - cfg.start_steps)
    for opt, lr in ((td3.actor_opt, cfg.actor_lr), (td3.critic_opt, cfg.critic_lr)):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, max(0.0, left))


def log_evaluation(actor, eval_env, cfg: TrainConfig, run_dir: Path, metrics: Metrics,
                   state: dict, losses: dict, step: int, sps: float, slope: float,
                   extra: dict | None = None) -> None:  # fmt: skip
    """Evaluate, write policy.pt (and best.pt when this evaluation is the best so far), then
    log the metrics row (the mean losses since the last one, then cleared). ``state`` holds
    ``last_return``, ``last_eval`` and ``best_eval``."""
    returns, rates = evaluate(actor, eval_env, cfg.eval_episodes, cfg.seed + EVAL_SEED_OFFSET)
    state["last_eval"] = float(np.mean(returns)) if returns else math.nan
    row = {
        "step": step,
        "episode_return": state["last_return"],
        "eval_return_mean": state["last_eval"],
        "eval_return_std": float(np.std(returns)) if returns else math.nan,
        "steps_per_s": sps,
        "slope": slope,
        **(extra or {}),
    }
    row.update({k: float(np.mean(v)) for k, v in losses.items()})
    row.update({f"rate_{k}": v for k, v in rates.items()})
    # the policy first: a run killed between the two writes must not log an evaluation
    # whose policy.pt is one evaluation older (a report would count it finished with it)
    payload = {**policy_payload(actor), "env": cfg.env}
    atomic_torch_save(payload, run_dir / "policy.pt")
    if state["last_eval"] > state.get("best_eval", -math.inf):
        state["best_eval"] = state["last_eval"]
        atomic_torch_save(payload, run_dir / BEST_POLICY)
    metrics.log(row)
    if row.get("output_grad") == 0.0:
        warnings.warn(
            f"{run_dir}: no actor update since the last evaluation passed a gradient through "
            f"the output units (output_grad = 0 at step {step}): each output neuron stays "
            "always or never firing (an ANN: its tanh at exactly +-1) on every sampled state, "
            "so the actor loss reaches no layer below them (a SOP budget's penalty excepted); "
            "a run that stays so does not improve (docs/training.md, 'A dead output layer')",
            RuntimeWarning,
            stacklevel=2,
        )
    losses.clear()


def check_writable_dir(path: Path, what: str) -> None:
    """``path`` must be a folder or not exist yet, and no parent of it may be a file."""
    path = Path(path)
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{what} {path}: {parent} is a file, not a folder")
            break


def _remove_stub(run_dir: Path) -> None:
    """A fresh run that failed before it trained: remove its folder (config.toml only)."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {"config.toml", "checkpoint"}:
        shutil.rmtree(run_dir, ignore_errors=True)


def _guide_share(cfg: TrainConfig, step: int) -> float:
    """Steps the guide acts in the episode starting at ``step`` (bc: all of them, inf)."""
    return math.inf if cfg.algo == "bc" else guide_share(cfg, step)


def _ready(buffer) -> bool:
    return getattr(buffer, "segments", buffer.size) > 0


def _apply_slope(agent: Agent) -> None:
    if hasattr(agent.actor, "set_slope"):
        agent.actor.set_slope(agent.schedule.value)


def _checkpoint(run_dir, agent, rng, env, state, losses, device) -> None:
    save_checkpoint(
        {
            "losses": {k: list(v) for k, v in losses.items()},
            "td3": agent.td3.state_dict(),
            "buffer": agent.buffer.state_dict(),
            "schedule": agent.schedule.state_dict(),
            "numpy_rng": rng.bit_generator.state,
            **rng_states(device),
            "env_rng": env.unwrapped.np_random.bit_generator.state,
            "counters": dict(state),
            "best_policy": kept_best(run_dir),
        },
        checkpoint_path(run_dir),
    )


def _restore(run_dir: Path, path: Path, agent: Agent, rng, env, device) -> tuple[dict, dict]:
    """Load the checkpoint into the run; returns its counters and the losses logged since
    the last metrics row (none from a checkpoint written before they were kept)."""
    ckpt = load_checkpoint(path)
    try:
        agent.td3.load_state_dict(ckpt["td3"])
        agent.buffer.load_state_dict(ckpt["buffer"])
        agent.schedule.load_state_dict(ckpt["schedule"])
        rng.bit_generator.state = ckpt["numpy_rng"]
        set_rng_states(ckpt, device)
        env.unwrapped.np_random.bit_generator.state = ckpt["env_rng"]
        _apply_slope(agent)
        if "best_policy" in ckpt:
            restore_best(run_dir, ckpt["best_policy"])
        return dict(ckpt["counters"]), {k: list(v) for k, v in ckpt.get("losses", {}).items()}
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} does not match this run ({exc})") from None


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} steps"),
        TextColumn("{task.fields[sps]:.1f} steps/s"),
        TextColumn("eval {task.fields[last_eval]:.1f}"),
        TimeRemainingColumn(),
        disable=not enabled,
    )
