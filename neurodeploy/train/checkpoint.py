"""Atomic files and checkpoints. Loading never unpickles arbitrary objects (weights_only)."""

from __future__ import annotations

import errno
import fcntl
import io
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from neurodeploy.errors import CheckpointError

CHECKPOINT_FORMAT = "neurodeploy-checkpoint/1"
BEST_POLICY = "best.pt"  # the policy of the best evaluation so far (policy.pt: the last)


_HELD: set[Path] = set()  # run directories this process holds (run_lock is re-entrant)


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an existing run directory for this process while it trains: a second process
    that would train the same directory (a --resume started twice, a sweep rerun while the
    first driver's trial still runs) is refused in one line, instead of both writing its
    checkpoint, metrics and policy. An exclusive ``flock`` on the directory itself: the
    kernel releases it when the process ends, so a killed run leaves no stale lock."""
    key = Path(run_dir).resolve()
    if key in _HELD:
        yield
        return
    fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CheckpointError(
                f"{run_dir} is being trained by another process (a sweep or a --resume still "
                "running); wait for it to end or stop it first"
            ) from None
        except OSError as exc:  # NFS or Lustre without flock: train, but say it is unguarded
            warnings.warn(
                f"{run_dir}: this filesystem cannot lock the run directory ({exc.strerror}); "
                "nothing stops a second process from training it at the same time",
                RuntimeWarning,
                stacklevel=3,
            )
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
    finally:
        os.close(fd)


def held_elsewhere(run_dir: Path) -> bool:
    """Whether another process holds ``run_dir`` with :func:`run_lock` now (False where the
    filesystem cannot lock, or the directory does not exist): taking the lock and letting go."""
    if not Path(run_dir).is_dir():
        return False
    try:
        with warnings.catch_warnings():  # an unlockable filesystem: nothing to ask it
            warnings.simplefilter("ignore", RuntimeWarning)
            with run_lock(run_dir):
                return False
    except CheckpointError:  # run_lock's refusal: another process holds it
        return True


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def write_together(out: Path, write: Callable[[Path], None]) -> None:
    """Write several files into ``out`` as one: ``write(folder)`` writes them all into a
    temporary folder inside ``out``, then each is renamed into place. A failure while
    writing (or a name in ``out`` that is a folder) leaves ``out`` as it was."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(".together.*.tmp"):  # left by a killed write
        pid = old.name.split(".")[2]
        if not (pid.isdigit() and Path(f"/proc/{pid}").exists()):
            shutil.rmtree(old, ignore_errors=True)
    tmp = out / f".together.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write(tmp)
        names = sorted(p.name for p in tmp.iterdir())
        for name in names:  # every rename must be able to succeed before the first one
            if (out / name).is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(out / name))
        for name in names:
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def safe_torch_load(path: Path, what: str = "file") -> dict:
    """``torch.load(weights_only=True)`` with a clear error for missing or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, wrong format, forbidden global, ...
        reason = str(exc).splitlines()[0][:200]
        raise CheckpointError(
            f"{what} {path} is corrupt or not a neurodeploy file ({reason})"
        ) from None


def save_checkpoint(state: dict, path: Path) -> None:
    atomic_torch_save({"format": CHECKPOINT_FORMAT, **state}, path)


def load_checkpoint(path: Path) -> dict:
    state = safe_torch_load(path, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a {CHECKPOINT_FORMAT} file")
    return state


# --- the run directory's layout: export, sweep and the loop read it through these ----------

CHECKPOINT = Path("checkpoint") / "state.pt"


def kept_best(run_dir: Path) -> torch.Tensor | None:
    """best.pt's bytes, for the checkpoint: a resume puts back the best policy of the
    checkpoint's own timeline (:func:`restore_best`)."""
    path = Path(run_dir) / BEST_POLICY
    return (
        torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
        if path.is_file()
        else None
    )


def restore_best(run_dir: Path, kept: torch.Tensor | None) -> None:
    """Write back the best.pt a checkpoint kept. best.pt may have been written after that
    checkpoint, by an evaluation the kill discarded (its metrics row is dropped too); a
    replay that does not repeat it (another device) would leave a best.pt no row records.
    A checkpoint from before best.pt existed removes it; one written before checkpoints
    kept it (no key at all) leaves it alone."""
    path = Path(run_dir) / BEST_POLICY
    if kept is None:
        path.unlink(missing_ok=True)
    else:
        atomic_write_bytes(path, kept.numpy().tobytes())


RESULT_FILES = ("metrics.csv", "policy.pt", BEST_POLICY)  # what a run writes as it trains


def checkpoint_path(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT


def checkpoint_step(run_dir: Path) -> int:
    """The environment step of the run's checkpoint (0: none, or unreadable)."""
    path = checkpoint_path(run_dir)
    if not path.is_file():
        return 0
    try:  # mmap: only the counters are read, not the replay buffer
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(state["counters"]["step"])
    except Exception:  # a corrupt checkpoint: train() itself reports it clearly
        return 0


def replay_observations(run_dir: Path) -> torch.Tensor | None:
    """The observations in the run's replay buffer, oldest first (None: no checkpoint)."""
    path = checkpoint_path(run_dir)
    if not path.is_file():
        return None
    buffer = load_checkpoint(path).get("buffer", {})
    obs = buffer.get("obs") if isinstance(buffer, dict) else None
    if not isinstance(obs, torch.Tensor) or obs.ndim != 2:
        raise CheckpointError(f"checkpoint {path} holds no replay buffer observations")
    ptr, size, capacity = (int(buffer.get(k, 0)) for k in ("ptr", "size", "capacity"))
    if size == capacity and 0 < ptr < size:  # a full ring buffer: its oldest row is at ptr
        obs = torch.cat([obs[ptr:], obs[:ptr]])
    return obs


def results_without_checkpoint(run_dir: Path) -> list[str]:
    """Result files of a run that has no checkpoint to continue them from."""
    if checkpoint_path(run_dir).is_file():
        return []
    return [name for name in RESULT_FILES if (Path(run_dir) / name).exists()]


def discard_partial_results(run_dir: Path) -> list[str]:
    """Delete the results of a run killed before its first checkpoint, so it can start
    over (used by the sweep and by a guided run's guide, which own their run directories)."""
    names = results_without_checkpoint(run_dir)
    for name in names:
        (Path(run_dir) / name).unlink()
    return names


def remove_stale_tmp(folder: Path) -> list[str]:
    """Delete the ``.NAME.XXXX.tmp`` files that a write killed midway left in ``folder``."""
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed
