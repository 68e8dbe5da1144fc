"""Atomic files and checkpoints. Loading never unpickles arbitrary objects (weights_only)."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import torch

from neurodeploy.errors import CheckpointError

CHECKPOINT_FORMAT = "neurodeploy-checkpoint/1"
BEST_POLICY = "best.pt"  # the policy of the best evaluation so far (policy.pt: the last)


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
