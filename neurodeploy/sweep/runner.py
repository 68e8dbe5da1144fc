"""`neurodeploy sweep`: every (grid point, seed) as a Ray task; rerunning resumes.

The driver (this process) resolves every trial's config first, so a bad option fails
before Ray starts. It writes ``sweep.json``, skips the trials whose ``trial.json`` says
they finished at the requested ``steps``, and submits the others as Ray tasks of
``cpus_per_trial`` CPUs each. A task (:func:`run_trial`, on any node) trains its run
directory with ``train(resume=True)``: from its checkpoint when it has one, from scratch
otherwise. A trial that raises, or whose worker process dies, is recorded as failed; the
others go on, and the sweep ends with :class:`SweepError` naming the failed trials.
Running the same command again resumes them.

Run directories must be on a filesystem every Ray node sees at the same path (see
docs/scaling.md); trials get the resolved config, not the recipe path.
"""

from __future__ import annotations

import math
import os
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from neurodeploy.errors import CheckpointError, ConfigError, NeurodeployError, SweepError
from neurodeploy.sweep.spec import (
    SweepSpec,
    Trial,
    read_trial,
    trial_finished,
    update_trial,
    write_manifest,
)
from neurodeploy.train.checkpoint import checkpoint_step, held_elsewhere, run_lock
from neurodeploy.train.config import TrainConfig

ROLLOUT_SEED_OFFSET = 1000  # the SOP-counting episode uses seed + this (unlike eval seeds)
BUSY = (
    "being trained by another process (a worker of an earlier sweep driver still running?); "
    "wait for it to end or stop it, then rerun"
)


@dataclass
class SweepResult:
    skipped: list[str] = field(default_factory=list)  # finished before this run
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # trial name -> reason


# --- the trial: runs inside a Ray worker --------------------------------------------------


def run_trial(cfg_dict: dict, run_dir: str, name: str, threads: int = 1,
              device: str = "auto") -> dict:  # fmt: skip
    """Train one run directory to ``steps`` (resuming from its checkpoint), then summarise it.

    ``trial.json`` records the attempts, the worker's host, pid and niceness, the step it resumed
    from, the wall time, and the policy's cost per action (:func:`measure_policy`).
    """
    import torch

    torch.set_num_threads(max(1, threads))
    cfg = TrainConfig.from_dict(cfg_dict, f"sweep trial {name}")
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    with run_lock(path):  # a stray worker of an earlier driver may still train it
        return _run_trial(cfg, path, name, device)


def _run_trial(cfg: TrainConfig, path: Path, name: str, device: str) -> dict:
    from neurodeploy.train.checkpoint import discard_partial_results, results_without_checkpoint
    from neurodeploy.train.config import save_config
    from neurodeploy.train.loop import train

    if not (path / "config.toml").exists():
        # A fresh trial: with the config in place, train(resume=True) starts from scratch
        # when there is no checkpoint and resumes when there is one (trial.json may exist).
        save_config(cfg, path / "config.toml")
    record = read_trial(path)
    if record.get("status") == "done" and results_without_checkpoint(path):
        # finished at another --steps, and its checkpoint/ was deleted since: extending it
        # would mean training it again from scratch over its results; keep them instead
        raise CheckpointError(
            f"{path} finished at {record.get('steps')} steps and has no checkpoint/ to extend "
            f"to {cfg.steps}; move the directory away to train it again from scratch"
        )
    # A trial killed before its first checkpoint starts over: the sweep owns its directory.
    restarted = discard_partial_results(path)
    attempts = int(record.get("attempts", 0)) + 1
    resumed_from = checkpoint_step(path)
    start = time.time()
    update_trial(
        path,
        name=name,
        status="running",
        attempts=attempts,
        resumed_from_step=resumed_from,
        host=socket.gethostname(),
        pid=os.getpid(),
        nice=os.nice(0),  # the worker's niceness (a local sweep's: the driver's)
        started=start,
        error=None,
        discarded=restarted,
    )
    train(cfg, path, resume=True, progress=False, device=device)
    summary = measure_policy(path, cfg.seed + ROLLOUT_SEED_OFFSET)
    return update_trial(path, status="done", steps=cfg.steps, wall_s=time.time() - start, **summary)


def measure_policy(run_dir: Path, seed: int) -> dict:
    """Cost per action of the trained policy, from one closed-loop episode in torch.

    Spiking actor (populations p = encoder, hidden0, ..., output; T timesteps per action):

        spikes_p   = spikes of population p per action, counted in the episode
        SOP/action = sum over presynaptic p (all but the last) of spikes_p * fanout_p
        fanout_p   = non-zero outgoing weights per neuron of p (the next layer's width
                     for dense layers); each spike counts its own neuron's fan-out, as
                     ``neurodeploy bench-energy`` and training's ``sop_budget`` count
                     (``neurodeploy/snn/sops.py``, through ``hardware.bench.closed_loop_ops``)
        rate_p     = spikes_p / (N_p * T)
        firing rate = sum_{p != encoder} spikes_p / (sum_{p != encoder} N_p * T)

    ANN actor: MACs/action = sum over its linear layers of in_features * out_features.
    """
    from neurodeploy.export.bundle import load_policy
    from neurodeploy.export.timing import lava_steps_per_action
    from neurodeploy.hardware.bench import closed_loop_ops
    from neurodeploy.hardware.energy import linear_macs
    from neurodeploy.snn import SpikingActor

    actor, _ = load_policy(run_dir)
    if not isinstance(actor, SpikingActor):
        macs = linear_macs(actor)
        return {"sops_per_action": None, "firing_rate": None, "macs_per_action": macs}
    T = actor.config.timesteps
    weights = [w.cpu().numpy() for w in actor.synaptic_weights()]
    steps = lava_steps_per_action(T, len(weights), actor.config.mode == "stateful")
    result, ops, _, _ = closed_loop_ops(run_dir, actor, "torch", weights, steps, 1, seed)
    spikes, sizes = result.spikes_per_step, result.layer_sizes
    return {
        "sops_per_action": ops["sops"],
        "firing_rate": sum(spikes[1:]) / (sum(sizes[1:]) * T),
        "firing_rates": {
            n: s / (size * T) for n, s, size in zip(result.layer_names, spikes, sizes, strict=True)
        },
        "macs_per_action": None,
        "rollout_return": result.returns[0],
    }


# --- the driver ------------------------------------------------------------------------------


def run_sweep(
    spec: SweepSpec,
    out: Path,
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_trial: float = 1,
    retries: int = 0,
    console: Console | None = None,
    progress: bool = True,
    device: str = "auto",
    gpus_per_trial: float | None = None,
) -> SweepResult:
    """Run the sweep's unfinished trials on Ray; raise :class:`SweepError` if any failed.

    ``device`` is each trial's ``--device``. With a CUDA device Ray reserves
    ``gpus_per_trial`` of a GPU per trial (default 1/8: eight small trials share one GPU).
    """
    from neurodeploy.train.device import resolve_device

    console = console or Console(stderr=True)
    if gpus_per_trial is None:
        gpus_per_trial = 0.125 if resolve_device(device).type == "cuda" else 0.0
    if not (math.isfinite(gpus_per_trial) and gpus_per_trial >= 0):
        raise ConfigError(f"--gpus-per-trial must be >= 0, got {gpus_per_trial}")
    if not (math.isfinite(cpus_per_trial) and cpus_per_trial > 0):
        raise ConfigError(f"--cpus-per-trial must be a positive number, got {cpus_per_trial}")
    if retries < 0:
        raise ConfigError(f"--retries must be >= 0, got {retries}")
    if num_cpus is not None and num_cpus < 1:
        raise ConfigError(f"--num-cpus must be >= 1, got {num_cpus}")
    out = Path(out).resolve()
    with ExitStack() as hold:
        if out.is_dir():  # a second driver of the same sweep is refused before it writes
            hold.enter_context(run_lock(out))
        _, configs = write_manifest(out, spec)  # a bad option fails before anything is written
        hold.enter_context(run_lock(out))
        return _run_sweep(out, configs, address, num_cpus, cpus_per_trial, gpus_per_trial, device,
                   retries, console, progress)  # fmt: skip


def _run_sweep(out, configs, address, num_cpus, cpus_per_trial, gpus_per_trial, device,
               retries, console, progress) -> SweepResult:  # fmt: skip
    result = SweepResult()
    pending: list[tuple[Trial, TrainConfig]] = []
    for trial, cfg in configs:
        if trial_finished(out / trial.name, cfg.steps):
            result.skipped.append(trial.name)
        else:
            pending.append((trial, cfg))
    console.print(
        f"sweep {out}: {len(configs)} trials, {len(result.skipped)} finished before, "
        f"{len(pending)} to run"
    )
    if pending:
        ray, started = connect(address, num_cpus)
        try:
            resources = {"num_cpus": cpus_per_trial, "num_gpus": gpus_per_trial}
            _run_on_ray(ray, pending, out, resources, device, retries, result, console, progress)
        finally:
            if started:
                ray.shutdown()
    if result.failed:
        names = "; ".join(f"{n} ({why})" for n, why in result.failed.items())
        raise SweepError(
            f"{len(result.failed)} of {len(configs)} trials failed: {names}. Their errors are "
            f"in {out}/<trial>/trial.json; rerun the same command to resume them"
        )
    return result


def _run_on_ray(ray, pending, out, resources, device, retries, result, console, progress) -> None:
    remote = ray.remote(run_trial)
    threads = max(1, int(resources["num_cpus"]))
    refs = {}
    for trial, cfg in pending:
        run_dir = out / trial.name
        run_dir.mkdir(parents=True, exist_ok=True)
        if held_elsewhere(run_dir):  # a stray worker of a killed driver: its trial.json
            result.failed[trial.name] = BUSY
            console.print(f"[red]not started[/red] {trial.name}: {BUSY}")
            continue
        update_trial(run_dir, name=trial.name, status="queued")
        ref = remote.options(**resources, max_retries=retries, name=f"trial {trial.name}").remote(
            cfg.to_dict(), str(run_dir), trial.name, threads, device
        )
        refs[ref] = trial

    total = len(result.skipped) + len(pending)
    bar = Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        TextColumn("{task.fields[done]}/{task.total} done"),
        TextColumn("{task.fields[running]} running"),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
    )
    task = bar.add_task(
        "sweep",
        total=total,
        completed=len(result.skipped),
        done=len(result.skipped),
        running=0,
        failed=0,
    )
    with bar:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
            for ref in ready:
                trial = refs.pop(ref)
                run_dir = out / trial.name
                try:
                    record = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    reason = failure_reason(exc)
                    result.failed[trial.name] = reason
                    if not held_elsewhere(run_dir):  # else trial.json is the holder's
                        update_trial(run_dir, status="failed", error=reason)
                    bar.console.print(f"[red]failed[/red] {trial.name}: {reason}")
                    continue
                result.done.append(trial.name)
                resumed = record.get("resumed_from_step", 0)
                how = f", resumed from step {resumed:,}" if resumed else ""
                bar.console.print(
                    f"[green]done[/green] {trial.name} in {record.get('wall_s', 0):.0f} s{how}"
                )
            running = sum(
                read_trial(out / t.name).get("status") == "running" for t in refs.values()
            )
            finished = len(result.skipped) + len(result.done)
            bar.update(
                task,
                completed=finished + len(result.failed),
                done=finished,
                running=running,
                failed=len(result.failed),
            )


def failure_reason(exc: Exception) -> str:
    """One line for a failed Ray task: the trial's own error, or how its worker died."""
    import ray

    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, NeurodeployError):
            return str(cause)
        if cause is not None:
            return f"{type(cause).__name__}: {cause}".splitlines()[0]
    if isinstance(exc, ray.exceptions.WorkerCrashedError):
        return "its worker process died (killed, or out of memory)"
    if isinstance(exc, ray.exceptions.TaskCancelledError):
        return "cancelled"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def connect(address: str | None, num_cpus: int | None):
    """``(ray, started)``: a new local Ray with ``num_cpus`` CPUs, or the cluster at ``address``.

    ``started`` says whether this call started Ray (then the caller shuts it down). An
    already initialised Ray (e.g. in a notebook) is used as it is.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "neurodeploy sweep needs Ray: `pip install -e '.[sweep]'` (make install does it)"
        ) from None
    if ray.is_initialized():
        return ray, False
    quiet = {"logging_level": "WARNING", "log_to_driver": False}
    if address:
        check_reachable(address)
        try:
            ray.init(address=address, **quiet)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"--address {address}: cannot join the Ray cluster ({first})"
            ) from None
        return ray, True  # shutdown() only disconnects from a cluster
    if num_cpus is not None and num_cpus <= 0:
        raise ConfigError(f"--num-cpus must be positive, got {num_cpus}")
    # Ray raises its workers' niceness by 15 by default: a trial then gets a small share of a
    # core beside any other process (a Hopper trial ran at a third of a core beside one
    # reference run). The trials are this Ray's only work; run them at the driver's priority.
    # (Set in this process's environment, which the Ray started here inherits; a user's own
    # RAY_worker_niceness is kept.)
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, **quiet)
    return ray, True


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast (Ray itself retries for minutes) when nothing listens at HOST:PORT."""
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(
            f"--address {address!r}: expected HOST:PORT of the Ray head (e.g. 10.0.0.5:6379, "
            "as printed by `ray start --head`), ray://HOST:10001, or auto"
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); start "
            "one with `ray start --head` on that machine, or leave --address out to run "
            "on this machine"
        ) from None
