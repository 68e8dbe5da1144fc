"""Replay buffers (flat transitions; episode segments for stateful actors), sampled with
the caller's numpy Generator. The transitions live on the training device (a GPU run
samples and updates without copying batches from the host)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Batch:
    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    not_done: torch.Tensor


class ReplayBuffer:
    def __init__(self, obs_dim: int, act_dim: int, capacity: int, device="cpu"):
        self.capacity, self.device = capacity, torch.device(device)

        def zeros(width):
            return torch.zeros((capacity, width), dtype=torch.float32, device=self.device)

        self.obs, self.action, self.reward = zeros(obs_dim), zeros(act_dim), zeros(1)
        self.next_obs, self.not_done = zeros(obs_dim), zeros(1)
        self.ptr = 0
        self.size = 0

    def add(self, obs, action, reward, next_obs, terminated: bool) -> None:
        i = self.ptr
        row = np.concatenate([obs, action, [reward], next_obs, [1.0 - float(terminated)]])
        row = torch.from_numpy(row.astype(np.float32)).to(self.device)  # one copy per step
        for array, part in zip(self._arrays(), row.split(self._widths()), strict=True):
            array[i] = part
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def _widths(self) -> list[int]:
        return [a.shape[1] for a in self._arrays()]

    def end_episode(self) -> None:
        """Flat transitions need no episode bookkeeping."""

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        idx = torch.from_numpy(rng.integers(0, self.size, size=batch_size)).to(self.device)
        return Batch(*(a[idx] for a in self._arrays()))

    def _arrays(self):
        return self.obs, self.action, self.reward, self.next_obs, self.not_done

    def state_dict(self) -> dict:
        n = self.size
        names = ("obs", "action", "reward", "next_obs", "not_done")
        data = {k: a[:n].cpu().clone() for k, a in zip(names, self._arrays(), strict=True)}
        return {**data, "ptr": self.ptr, "size": self.size, "capacity": self.capacity}

    def load_state_dict(self, state: dict) -> None:
        """Restore; a buffer saved with another capacity (a run extended with more ``steps``)
        is laid out oldest first, so the next transition goes after the newest one."""
        n, ptr = int(state["size"]), int(state["ptr"])
        saved = int(state.get("capacity", self.capacity))
        names = ("obs", "action", "reward", "next_obs", "not_done")
        data = [state[name].to(self.device) for name in names]
        if saved != self.capacity:
            order = np.roll(np.arange(n), -ptr) if n == saved else np.arange(n)
            keep = order[-self.capacity :]  # a smaller buffer keeps the newest transitions
            data = [a[torch.from_numpy(keep).to(self.device)] for a in data]
            n, ptr = len(keep), len(keep) % self.capacity
        for array, values in zip(self._arrays(), data, strict=True):
            array[:n] = values
        self.ptr, self.size = ptr, n


@dataclass
class SequenceBatch:
    """Episode segments, time-major: every field is [L, B, dim]; ``mask`` marks real steps."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    not_done: torch.Tensor
    guide_action: torch.Tensor
    mask: torch.Tensor


class SequenceBuffer(ReplayBuffer):
    """Replay of episode segments for stateful actors (Van den Berghe et al., NeurIPS 2025).

    Transitions are stored in order. When an episode ends, segments of
    ``length`` steps starting every ``stride`` steps are registered; a segment
    is kept if it has at least one step after the ``burn_in`` (which warms the
    actor's state and is left out of the loss). The last segment of an episode
    may be short: its missing steps repeat the episode's last step and are
    masked out. The buffer never overwrites (capacity = the run's steps), so
    segments stay valid. It also stores the guide's action of every step (zeros
    without a guide) for the behaviour-cloning term.
    """

    def __init__(self, obs_dim, act_dim, capacity, length: int, stride: int, burn_in: int,
                 device="cpu"):  # fmt: skip
        super().__init__(obs_dim, act_dim, capacity, device)
        self.length, self.stride, self.burn_in = length, stride, burn_in
        self.guide_action = torch.zeros((capacity, act_dim), dtype=torch.float32, device=device)
        self.starts = np.zeros(0, np.int64)  # segment start indices
        self.ends = np.zeros(0, np.int64)  # end (exclusive) of each segment's episode
        self.episode_start = 0

    def add(self, obs, action, reward, next_obs, terminated: bool, guide_action=None) -> None:
        if self.size == self.capacity:
            raise RuntimeError("sequence buffer is full (its capacity is the run's steps)")
        if guide_action is not None:
            self.guide_action[self.ptr] = torch.as_tensor(guide_action, dtype=torch.float32)
        super().add(obs, action, reward, next_obs, terminated)

    def end_episode(self) -> None:
        start, end = self.episode_start, self.ptr
        new = np.arange(start, end, self.stride)
        new = new[new + self.burn_in < end]
        self.starts = np.concatenate([self.starts, new])
        self.ends = np.concatenate([self.ends, np.full(len(new), end)])
        self.episode_start = end

    @property
    def segments(self) -> int:
        return len(self.starts)

    def sample(self, batch_size: int, rng: np.random.Generator) -> SequenceBatch:
        pick = rng.integers(0, len(self.starts), size=batch_size)
        idx = self.starts[pick][None, :] + np.arange(self.length)[:, None]  # [L, B]
        end = self.ends[pick][None, :]
        mask = (idx < end).astype(np.float32)
        mask[: self.burn_in] = 0.0
        idx = torch.from_numpy(np.minimum(idx, end - 1)).to(self.device)
        arrays = (*self._arrays(), self.guide_action)
        fields_ = [a[idx] for a in arrays]
        return SequenceBatch(*fields_, torch.from_numpy(mask[..., None]).to(self.device))

    def state_dict(self) -> dict:
        n = self.size
        extra = {
            "guide_action": self.guide_action[:n].cpu().clone(),
            "starts": torch.from_numpy(self.starts.copy()),
            "ends": torch.from_numpy(self.ends.copy()),
            "episode_start": self.episode_start,
        }
        return {**super().state_dict(), **extra}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        n = self.size
        self.guide_action[:n] = state["guide_action"].to(self.device)
        self.starts, self.ends = state["starts"].numpy().copy(), state["ends"].numpy().copy()
        self.episode_start = int(state["episode_start"])
