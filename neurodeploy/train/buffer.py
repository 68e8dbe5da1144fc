"""Replay buffer: preallocated float32 arrays, sampled with the caller's numpy Generator."""

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
    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros((capacity, act_dim), np.float32)
        self.reward = np.zeros((capacity, 1), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.not_done = np.zeros((capacity, 1), np.float32)
        self.ptr = 0
        self.size = 0

    def add(self, obs, action, reward, next_obs, terminated: bool) -> None:
        i = self.ptr
        self.obs[i], self.action[i], self.reward[i] = obs, action, reward
        self.next_obs[i], self.not_done[i] = next_obs, 1.0 - float(terminated)
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        idx = rng.integers(0, self.size, size=batch_size)
        return Batch(*(torch.from_numpy(a[idx]) for a in self._arrays()))

    def _arrays(self):
        return self.obs, self.action, self.reward, self.next_obs, self.not_done

    def state_dict(self) -> dict:
        n = self.size
        names = ("obs", "action", "reward", "next_obs", "not_done")
        data = {
            k: torch.from_numpy(a[:n].copy()) for k, a in zip(names, self._arrays(), strict=True)
        }
        return {**data, "ptr": self.ptr, "size": self.size, "capacity": self.capacity}

    def load_state_dict(self, state: dict) -> None:
        n = int(state["size"])
        for name, array in zip(
            ("obs", "action", "reward", "next_obs", "not_done"), self._arrays(), strict=True
        ):
            array[:n] = state[name].numpy()
        self.ptr, self.size = int(state["ptr"]), n
