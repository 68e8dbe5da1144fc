"""Several seeds of one recipe in one process: ``neurodeploy train ENV --seeds 0-4``.

Each seed is a *lane* with its own environment, replay buffer, numpy generator, torch
generator, networks and optimiser state, exactly as its solo run has them; the lanes'
networks are stacked (:class:`~neurodeploy.train.stacked.Stacked`) so that every matrix
product of the N agents is one batched kernel. The lanes step in lockstep: one
environment step each, then one TD3 update of all N together. Seed k draws the same
random numbers in the same order as ``neurodeploy train ENV --seed k``, so its
trajectory equals its solo run's up to float rounding of the batched products
(tests/test_seeds.py checks the first 200 updates).

Output: ``OUT/seed<k>/`` for every seed, ordinary run directories (config.toml,
metrics.csv, policy.pt, best.pt, curves.png, tensorboard/) that ``export``, ``run`` and
``report`` read unchanged, and ``OUT/checkpoint/state.pt``, the group's checkpoint.

Resume: the lanes' episodes end at different steps, so the checkpoint is written every
``checkpoint_every`` steps mid-episode. A simulator's state cannot be saved in general;
the checkpoint keeps, per lane, the environment generator's state before the episode's
reset and the actions taken since, and a resume replays them. The replayed observation
must equal the saved one, bit for bit, or the resume refuses (a non-deterministic
environment). Then training continues exactly as if it had not stopped.

Supported: flat TD3 and proxy-target TD3 with per-action-reset spiking actors or ANNs
(the Proxy Target paper's setting). Stateful actors, sequence training, guides,
return-driven slope schedules and reward curricula are refused with one line.
"""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from neurodeploy.envs import check_observation
from neurodeploy.errors import CheckpointError, ConfigError
from neurodeploy.train.buffer import Batch, ReplayBuffer
from neurodeploy.train.checkpoint import (
    kept_best,
    load_checkpoint,
    remove_stale_tmp,
    restore_best,
    results_without_checkpoint,
    run_lock,
    save_checkpoint,
)
from neurodeploy.train.config import TrainConfig, differing_keys, read_config, save_config
from neurodeploy.train.device import resolve_device, restore_generator
from neurodeploy.train.loop import (
    _progress,
    actor_config,
    build_networks,
    check_extension,
    check_writable_dir,
    log_evaluation,
    make_train_env,
    replay_buffer,
    set_learning_rates,
    slope_schedule,
    td3_settings,
)
from neurodeploy.train.metrics import Metrics
from neurodeploy.train.progress import ProgressLines
from neurodeploy.train.stacked import SeedAxis, Stacked
from neurodeploy.train.td3 import TD3, make_target

CHECKPOINT = Path("checkpoint") / "state.pt"


def check_vectorisable(cfg: TrainConfig) -> None:
    """Refuse, in one line, what a lockstep group of seeds cannot train."""
    refusals = [
        (cfg.sequence_length > 0, "sequence training (sequence_length > 0)"),
        (cfg.guided or cfg.algo == "bc", "guided training"),
        (cfg.mode == "stateful" and cfg.neuron != "ann", "stateful actors"),
        (cfg.slope_schedule == "adaptive", "the adaptive slope schedule (it follows returns)"),
        (cfg.neuron == "loihi", "the loihi neuron (its quantisation reads weights as numbers)"),
        (cfg.sop_budget > 0, "the SOP budget (sop_budget > 0: one multiplier per actor)"),
    ]
    for refused, what in refusals:
        if refused:
            raise ConfigError(
                f"--seeds trains several seeds in one process and does not support {what}; "
                "train the seeds one by one with --seed"
            )


@dataclass
class Lane:
    """One seed's own part of a vectorised run."""

    seed: int
    cfg: TrainConfig
    run_dir: Path
    env: object
    eval_env: object
    buffer: ReplayBuffer
    rng: np.random.Generator
    generator: torch.Generator
    metrics: Metrics | None = None
    obs: np.ndarray | None = None
    counters: dict = field(default_factory=dict)
    episode: dict = field(default_factory=dict)  # replay record of the running episode
    losses: dict = field(default_factory=dict)
    done: bool = False

    def reset(self, seed: int | None) -> None:
        """Start an episode, recording what replays it: the generator state, the actions."""
        self.episode = {
            "reset_seed": seed,
            "env_rng": self.env.unwrapped.np_random.bit_generator.state,
            "actions": [],
            "return": 0.0,
        }
        self.obs, _ = self.env.reset(seed=seed)
        check_observation(self.obs, self.cfg.env, self.counters["step"])

    def replay(self, episode: dict, expected_obs: np.ndarray) -> None:
        """Bring the environment back to a checkpoint's mid-episode state."""
        self.env.unwrapped.np_random.bit_generator.state = episode["env_rng"]
        obs, _ = self.env.reset(seed=episode["reset_seed"])
        for action in episode["actions"]:
            obs = self.env.step(action)[0]
        if not np.array_equal(obs, expected_obs):
            raise CheckpointError(
                f"--resume: replaying seed {self.seed}'s episode did not reproduce the "
                f"checkpoint's observation ({self.cfg.env} is not deterministic here); "
                "train this seed with --seed instead"
            )
        self.episode, self.obs = episode, obs


def train_seeds(cfg: TrainConfig, seeds: list[int], out: Path, resume: bool = False,
                progress: bool = True, device: str = "auto") -> list[Path]:  # fmt: skip
    """Train ``seeds`` of ``cfg`` together; returns the run directories ``out/seed<k>``."""
    check_vectorisable(cfg)
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ConfigError(f"--seeds {seeds}: give distinct seeds")
    device = resolve_device(device)
    out = Path(out)
    check_writable_dir(out, "--out")
    with ExitStack() as hold:  # one process trains these folders (train.checkpoint.run_lock)
        for folder in (out, *(out / f"seed{seed}" for seed in seeds)):
            if folder.is_dir():
                hold.enter_context(run_lock(folder))
        return _train_seeds(cfg, seeds, out, resume, progress, device, hold)


def _train_seeds(cfg: TrainConfig, seeds: list[int], out: Path, resume: bool, progress: bool,
                 device, hold: ExitStack) -> list[Path]:  # fmt: skip
    ckpt_path = _prepare(cfg, seeds, out, resume)
    lanes = [_lane(cfg, seed, out, device) for seed in seeds]
    td3, actor, schedule = _build(cfg, lanes, device)
    for lane in lanes:  # only now that everything was built: a failure leaves no folder
        lane.run_dir.mkdir(parents=True, exist_ok=True)
        hold.enter_context(run_lock(lane.run_dir))  # a solo --resume of it: refused
        remove_stale_tmp(lane.run_dir)
    step = 0
    if ckpt_path is not None:
        step = _restore(load_checkpoint(ckpt_path), seeds, cfg.steps, td3, schedule, lanes)
        for lane in lanes:  # accepted: only steps may differ (as a solo run records it)
            check_extension(read_config(lane.run_dir / "config.toml"), lane.cfg, step, lane.env)
        for lane in lanes:
            save_config(lane.cfg, lane.run_dir / "config.toml")
    else:
        for lane in lanes:
            save_config(lane.cfg, lane.run_dir / "config.toml")
            lane.counters = {"step": 0, "episodes": 0, "last_return": math.nan,
                             "last_eval": math.nan, "best_eval": -math.inf}  # fmt: skip
            lane.reset(lane.seed)
    for lane in lanes:
        lane.metrics = Metrics(
            lane.run_dir, getattr(actor, "layer_names", []),
            resume_step=step if ckpt_path else None,
            title=f"{cfg.env} · run {lane.run_dir.name} · {cfg.algo}, {cfg.neuron} (seeds {seeds})",
        )  # fmt: skip
    low, high = td3.low.cpu().numpy(), td3.high.cpu().numpy()
    half_range = (high - low) / 2
    tick, tick_step = time.perf_counter(), step
    bar = _progress(progress)
    lines = ProgressLines(cfg.steps, cfg.start_steps, step, enabled=not progress)
    task = bar.add_task("train", total=cfg.steps, completed=step, sps=0.0, last_eval=math.nan)
    with bar, lines:
        while step < cfg.steps:
            if step >= cfg.start_steps:
                with torch.no_grad():
                    x = torch.as_tensor(np.stack([lane.obs for lane in lanes]), device=device)
                    acted = actor(x[:, None].float())[:, 0].cpu().numpy()
            for k, lane in enumerate(lanes):
                if step < cfg.start_steps:
                    action = lane.rng.uniform(low, high).astype(np.float32)
                else:
                    noise = lane.rng.normal(0.0, cfg.expl_noise * half_range)
                    action = np.clip(acted[k] + noise, low, high)
                action = np.asarray(action, np.float32)
                next_obs, reward, terminated, truncated, _ = lane.env.step(action)
                check_observation(next_obs, cfg.env, step + 1)
                lane.buffer.add(lane.obs, action, reward, next_obs, terminated)
                lane.episode["actions"].append(action)
                lane.episode["return"] += float(reward)
                lane.obs = next_obs
                lane.done = terminated or truncated
            step += 1
            for lane in lanes:
                lane.counters["step"] = step

            if step > cfg.start_steps and step % cfg.update_every == 0:
                set_learning_rates(td3, cfg, step)
                result = td3.update(lambda: _stacked_batch(lanes, cfg.batch_size))
                for name, values in result.items():
                    for lane, value in zip(lanes, values, strict=True):
                        lane.losses.setdefault(name, []).append(value)
                schedule.step()
                if hasattr(actor, "set_slope"):
                    actor.set_slope(schedule.value)

            if step % cfg.eval_every == 0 or step == cfg.steps:
                # each seed's own env steps/s, as a solo run logs it (the group: N times this)
                sps = (step - tick_step) / max(time.perf_counter() - tick, 1e-9)
                for k, lane in enumerate(lanes):
                    log_evaluation(actor.member(k), lane.eval_env, lane.cfg, lane.run_dir,
                                   lane.metrics, lane.counters, lane.losses, step, sps,
                                   float(schedule.value), {"guide_share": math.nan})  # fmt: skip
                tick, tick_step = time.perf_counter(), step
            for lane in lanes:
                if lane.done:
                    lane.counters["episodes"] += 1
                    lane.counters["last_return"] = lane.episode["return"]
                    lane.reset(None)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                _checkpoint(out / CHECKPOINT, seeds, td3, schedule, lanes, step)
            last = float(np.mean([lane.counters["last_eval"] for lane in lanes]))
            sps = len(lanes) * (step - tick_step) / max(time.perf_counter() - tick, 1e-9)
            bar.update(task, completed=step, last_eval=last, sps=sps)
            lines.update(step, last)
    for lane in lanes:
        lane.metrics.close()
        lane.env.close()
        lane.eval_env.close()
    return [lane.run_dir for lane in lanes]


def _prepare(cfg: TrainConfig, seeds: list[int], out: Path, resume: bool) -> Path | None:
    """Check ``out``; return the group checkpoint to resume from (None: a fresh start)."""
    ckpt = out / CHECKPOINT
    if not resume:
        if out.exists() and any(out.iterdir()):
            raise ConfigError(
                f"run directory {out} already exists: pass --resume to continue it, "
                "or choose another --out"
            )
        return None
    configs = [out / f"seed{seed}" / "config.toml" for seed in seeds]
    if not ckpt.is_file():
        if not any(c.exists() for c in configs):
            raise ConfigError(
                f"--resume: {out} is not a run of seeds {seeds} (no seed<k>/config.toml)"
            )
        results = [
            f"{c.parent.name}/{r}" for c in configs for r in results_without_checkpoint(c.parent)
        ]
        if results:  # as a solo run: never start over on top of results
            raise CheckpointError(
                f"--resume: {out} has {', '.join(results)} of seeds {seeds} but no group "
                f"checkpoint ({CHECKPOINT}) to continue from; train into a new --out"
            )
        for config in configs:  # killed before the first checkpoint and evaluation: start over
            config.unlink(missing_ok=True)
        return None
    for seed, config_path in zip(seeds, configs, strict=True):
        if not config_path.exists():
            raise ConfigError(f"--resume: {out} has no run of seed {seed} (--seeds differ?)")
        diff = differing_keys(read_config(config_path), replace(cfg, seed=seed))
        if diff:
            raise ConfigError(
                f"--resume: the config differs from {config_path} in {', '.join(diff)}"
            )
    return ckpt


def _lane(cfg: TrainConfig, seed: int, out: Path, device) -> Lane:
    lane_cfg = replace(cfg, seed=seed)
    run_dir = out / f"seed{seed}"
    env = make_train_env(lane_cfg, seed)
    if cfg.curriculum and hasattr(env.unwrapped, "set_curriculum"):
        raise ConfigError(
            f"--seeds does not support {cfg.env}'s reward curriculum; train the seeds one "
            "by one with --seed (or set curriculum = false)"
        )
    a_cfg = actor_config(lane_cfg, env)
    return Lane(seed, lane_cfg, run_dir, env, make_train_env(lane_cfg),
                replay_buffer(lane_cfg, a_cfg, device), np.random.default_rng(seed),
                torch.Generator(device=device))  # fmt: skip


def _build(cfg: TrainConfig, lanes: list[Lane], device):
    """Each seed's networks built as its solo run builds them, then stacked."""
    nets = []
    for lane in lanes:
        torch.manual_seed(lane.seed)
        nets.append(build_networks(lane.cfg, actor_config(lane.cfg, lane.env)))
        if device.type == "cpu":  # the global stream, after the networks' initialisation
            lane.generator.set_state(torch.get_rng_state())
        else:
            lane.generator.manual_seed(lane.seed)
    actor, critic, proxy = (
        None if part[0] is None else Stacked(list(part)).to(device)
        for part in zip(*nets, strict=True)
    )
    a_cfg = actor_config(cfg, lanes[0].env)
    low = torch.tensor(a_cfg.action_low, dtype=torch.float32, device=device)
    high = torch.tensor(a_cfg.action_high, dtype=torch.float32, device=device)
    settings = td3_settings(cfg)
    axis = SeedAxis([lane.generator for lane in lanes])
    td3 = TD3(actor, critic, settings, low, high, make_target(actor, settings, proxy), axis)
    schedule = slope_schedule(cfg)
    return td3, actor, schedule


def _stacked_batch(lanes: list[Lane], batch_size: int) -> Batch:
    """One batch per lane, each from its own buffer with its own generator, stacked."""
    batches = [lane.buffer.sample(batch_size, lane.rng) for lane in lanes]
    return Batch(*(torch.stack([getattr(b, f.name) for b in batches]) for f in fields(Batch)))


def _checkpoint(path: Path, seeds, td3: TD3, schedule, lanes: list[Lane], step: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(path.parent)
    lane_states = [
        {
            "buffer": lane.buffer.state_dict(),
            "numpy_rng": lane.rng.bit_generator.state,
            "torch_rng": lane.generator.get_state().cpu(),
            "torch_rng_on": lane.generator.device.type,
            "episode": {**lane.episode, "actions": _actions(lane)},
            "obs": torch.from_numpy(np.array(lane.obs)),
            "counters": dict(lane.counters),
            "losses": dict(lane.losses),
            "best_policy": kept_best(lane.run_dir),
        }
        for lane in lanes
    ]
    state = {"seeds": list(seeds), "step": step, "td3": td3.state_dict(),
             "schedule": schedule.state_dict(), "lanes": lane_states}  # fmt: skip
    save_checkpoint(_to_cpu(state), path)


def _restore(ckpt: dict, seeds, steps: int, td3: TD3, schedule, lanes: list[Lane]) -> int:
    if ckpt.get("seeds") != list(seeds):
        raise ConfigError(f"--resume: the checkpoint holds seeds {ckpt.get('seeds')}, not {seeds}")
    if int(ckpt.get("step", 0)) > steps:
        raise ConfigError(
            f"--resume: the run is already at step {ckpt['step']}; steps must be >= that, "
            f"not {steps}"
        )
    try:
        td3.load_state_dict(ckpt["td3"])
        schedule.load_state_dict(ckpt["schedule"])
        for lane, saved in zip(lanes, ckpt["lanes"], strict=True):
            lane.buffer.load_state_dict(saved["buffer"])
            lane.rng.bit_generator.state = saved["numpy_rng"]
            restore_generator(lane.generator, saved["torch_rng"], saved.get("torch_rng_on"))
            lane.counters, lane.losses = dict(saved["counters"]), dict(saved["losses"])
            if "best_policy" in saved:
                restore_best(lane.run_dir, saved["best_policy"])
            episode = dict(saved["episode"])
            episode["actions"] = list(episode["actions"].numpy())
            lane.replay(episode, saved["obs"].numpy())
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"--resume: the checkpoint does not match this run ({exc})") from None
    if hasattr(td3.actor, "set_slope"):
        td3.actor.set_slope(schedule.value)
    return int(ckpt["step"])


def _actions(lane: Lane) -> torch.Tensor:
    """The running episode's actions as one [n, act_dim] tensor (n may be 0)."""
    actions = lane.episode["actions"]
    width = lane.env.action_space.shape[0]
    return torch.from_numpy(np.array(actions, np.float32).reshape(len(actions), width))


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj
