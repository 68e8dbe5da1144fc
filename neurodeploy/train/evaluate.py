"""Deterministic evaluation: N episodes, each reset with its own fixed seed."""

from __future__ import annotations

import torch


@torch.no_grad()
def evaluate(actor, env, episodes: int, seed: int) -> tuple[list[float], dict[str, float]]:
    """Episode returns, and the mean firing rate of each spiking layer over all steps."""
    carried = getattr(actor, "state", None)  # a stateful actor's rollout state survives
    device = next(actor.parameters()).device
    returns = []
    spikes: dict[str, float] = {}
    slots: dict[str, float] = {}
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        actor.reset()
        done, total = False, 0.0
        while not done:
            x = torch.as_tensor(obs, dtype=torch.float32, device=device)[None]
            action = actor(x)[0].cpu().numpy()
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
            for name, counts in getattr(actor, "spike_counts", {}).items():
                spikes[name] = spikes.get(name, 0.0) + float(counts.sum())
                slots[name] = slots.get(name, 0.0) + counts.numel() * _layer_size(actor, name)
        returns.append(total)
    if hasattr(actor, "state"):
        actor.state = carried
    return returns, {name: spikes[name] / slots[name] for name in spikes if slots[name]}


def _layer_size(actor, name: str) -> int:
    if name == "encoder":
        return actor.layers[0].in_features
    return actor.layers[actor.layer_names.index(name)].out_features
