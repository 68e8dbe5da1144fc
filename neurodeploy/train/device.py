"""Where training runs: ``--device auto|cpu|cuda[:N]``.

The networks, optimisers, replay buffer, sampling and update run on the device; the
environment stays on the CPU, and each step copies the observation to the device and the
action back. Checkpoints and policies are written with CPU tensors, so a run trained on a
GPU resumes, exports and runs on a machine without one, and the other way round.
"""

from __future__ import annotations

import torch

from neurodeploy.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: this machine has no CUDA device (use cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"--device {name}: there are {torch.cuda.device_count()} CUDA devices (0-based)"
            )
    return device


def rng_states(device: torch.device) -> dict:
    """torch's generator states a checkpoint keeps: the CPU's, and the device's on a GPU."""
    states = {"torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda_rng"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(states: dict, device: torch.device) -> None:
    """Restore :func:`rng_states`; a GPU stream is restored only on a GPU (a CPU resume of a
    GPU run draws fresh CUDA-free noise from the CPU generator, as a CPU run does)."""
    torch.set_rng_state(states["torch_rng"])
    if device.type == "cuda" and "cuda_rng" in states:
        torch.cuda.set_rng_state(states["cuda_rng"], device)


def restore_generator(generator: torch.Generator, state: torch.Tensor, saved_on: str | None):
    """Put a checkpoint's state back into one of a group's per-seed generators (both kinds
    take a CPU byte tensor). A state saved on the other device type (``saved_on``: cpu or
    cuda) does not fit this generator: the run resumes on another device, and the generator
    keeps its fresh seeding, as :func:`set_rng_states` does for the global streams."""
    if saved_on is None:  # written before the device was kept: CUDA's Philox state is 16 bytes
        saved_on = "cuda" if state.numel() == 16 else "cpu"
    if saved_on not in ("cpu", "cuda"):
        raise ValueError(f"a generator state saved on {saved_on!r} (expected cpu or cuda)")
    if saved_on == generator.device.type:
        generator.set_state(state.cpu())
