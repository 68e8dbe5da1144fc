"""Our PT-TD3 against the Proxy Target authors' code, update by update (issue 15).

The reference (``madao2333/Proxy-Target-with-PLIF`` at 8d1635f; fetched, never committed) and
neurodeploy are given the same networks and the same batches, and the script reports how far
apart they end up:

1. initialisation: both built from ``torch.manual_seed(0)`` in their own order; the actor's
   parameters are compared as built (the reference builds actor, proxy, critic; we build actor,
   critic, proxy, so only the actor can match; the encoder's evenly spaced means are computed
   differently and may differ in the last bit);
2. the actor's forward pass and the gradient of a fixed random loss through it (encoder,
   LIF layers with the rect surrogate, population decoder), on the same weights;
3. ``--updates`` full PT-TD3 updates (K proxy fits, critic step with proxy targets, delayed
   actor step, Polyak critic target) on identical batches and target-noise draws: the largest
   relative difference of the actor, critic, critic target and proxy weights afterwards.

The networks come from the ``hopper`` recipe (Hopper-v4's 11 observations and 3 actions in
[-1, 1]): what the 100k-step runs of ``training_results.py`` train.

    python benchmarks/reference_equivalence.py --reference /tmp/ref
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

from neurodeploy.envs import make_env  # noqa: E402
from neurodeploy.train.buffer import Batch  # noqa: E402
from neurodeploy.train.config import resolve  # noqa: E402
from neurodeploy.train.loop import actor_config, build_networks, td3_settings  # noqa: E402
from neurodeploy.train.td3 import TD3, make_target  # noqa: E402

OBS, ACT, BATCH = 11, 3, 256  # Hopper-v4
Pair = tuple[torch.Tensor, torch.Tensor]


def reference_agent(ref, cfg):
    return ref.PT_TD3(
        state_dim=OBS, action_dim=ACT, max_action=1.0, spiking_neurons="LIF",
        hidden_sizes=list(cfg.proxy_hidden), proxy_lr=cfg.proxy_lr, proxy_iters=cfg.proxy_steps,
        discount=cfg.gamma, tau=cfg.tau, policy_noise=cfg.policy_noise,
        noise_clip=cfg.noise_clip, policy_freq=cfg.policy_delay,
    )  # fmt: skip


def actor_pairs(theirs, ours, grad: bool = False) -> list[Pair]:
    """The actor's parameters (or their gradients), the reference's beside ours. The
    reference keeps the encoder's means and widths and the decoder's weights in batched
    tensors: their row 0 / channel 0 is our parameter."""

    def get(t):
        return t.grad if grad else t.data

    layers = [*theirs.snn.hidden_layers, theirs.snn.out_pop_layer]
    out = [(get(theirs.encoder.mean)[0], get(ours.encoder.mean)),
           (get(theirs.encoder.std)[0], get(ours.encoder.std))]  # fmt: skip
    for t, o in zip(layers, ours.layers, strict=True):
        out += [(get(t.weight), get(o.linear.weight)), (get(t.bias), get(o.linear.bias))]
    dec = theirs.decoder.decoder
    return out + [(get(dec.weight)[:, 0], get(ours.decoder.weight)),
                  (get(dec.bias), get(ours.decoder.bias))]  # fmt: skip


def critic_pairs(theirs, ours) -> list[Pair]:
    """Twin critic: the reference's l1-l3 (Q1) and l4-l6 (Q2), our q1/q2 Linear layers."""
    mine = [ours.q1[j] for j in (0, 2, 4)] + [ours.q2[j] for j in (0, 2, 4)]
    out = []
    for i, o in enumerate(mine, start=1):
        t = getattr(theirs, f"l{i}")
        out += [(t.weight.data, o.weight.data), (t.bias.data, o.bias.data)]
    return out


def proxy_pairs(theirs, ours) -> list[Pair]:
    """The proxy: the reference's ``actor_target`` (l1-l3), our AnnActor's Linear layers."""
    out = []
    for i, j in ((1, 0), (2, 2), (3, 4)):
        t, o = getattr(theirs, f"l{i}"), ours.net[j]
        out += [(t.weight.data, o.weight.data), (t.bias.data, o.bias.data)]
    return out


def max_rel(pairs: list[Pair]) -> float:
    """The largest ``max|a - b| / max|a|`` over the pairs."""
    return max(float((a - b).abs().max() / a.abs().max().clamp_min(1e-12)) for a, b in pairs)


class Replay:
    """The reference's replay-buffer interface, handing out prepared batches in order."""

    def __init__(self, batches: list[Batch]):
        self.batches = list(batches)

    def sample(self, _size: int):
        b = self.batches.pop(0)
        return b.obs, b.action, b.next_obs, b.reward, b.not_done


def batches(seed: int):
    """Endless random batches of Hopper's shapes (the same stream for both sides)."""
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=1.0):
        return torch.tensor(rng.normal(size=shape) * scale, dtype=torch.float32)

    while True:
        action = torch.tensor(rng.uniform(-1, 1, (BATCH, ACT)), dtype=torch.float32)
        not_done = torch.tensor((rng.random((BATCH, 1)) > 0.05).astype(np.float32))
        yield Batch(normal(BATCH, OBS, scale=1.5), action, normal(BATCH, 1),
                    normal(BATCH, OBS, scale=1.5), not_done)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="checkout at 8d1635f")
    parser.add_argument("--updates", type=int, default=4)
    args = parser.parse_args()
    if not (args.reference / "actor_critic.py").is_file():
        sys.exit(f"error: {args.reference}/actor_critic.py is missing (a checkout at 8d1635f)")
    sys.path.insert(0, str(args.reference))
    import actor_critic as ref  # the authors' module

    torch.set_num_threads(1)
    cfg, _ = resolve("hopper", {})
    env = make_env(cfg.env)
    a_cfg = actor_config(cfg, env)
    env.close()
    torch.manual_seed(0)
    theirs = reference_agent(ref, cfg)
    torch.manual_seed(0)
    actor, critic, proxy = build_networks(cfg, a_cfg)
    drawn = actor_pairs(theirs.actor, actor)
    init_gap = max(float((a - b).abs().max()) for a, b in drawn)
    init_same = sum(torch.equal(a, b) for a, b in drawn)

    # from here on the same weights everywhere: the reference's copied into ours
    with torch.no_grad():
        for a, b in [*actor_pairs(theirs.actor, actor), *critic_pairs(theirs.critic, critic),
                     *proxy_pairs(theirs.actor_target, proxy)]:  # fmt: skip
            b.copy_(a)
    settings = td3_settings(cfg)
    low, high = torch.full((ACT,), -1.0), torch.full((ACT,), 1.0)
    td3 = TD3(actor, critic, settings, low, high, make_target(actor, settings, proxy))
    stream = batches(seed=1)

    obs = next(stream).obs
    forward = float((theirs.actor(obs) - actor(obs)).abs().max())
    weights = torch.randn(BATCH, ACT, generator=torch.Generator().manual_seed(2))
    for net in (theirs.actor, actor):
        net.zero_grad()
        (net(obs) * weights).sum().backward()
    grad = max(
        float((a - b).norm() / a.norm().clamp_min(1e-12))
        for a, b in actor_pairs(theirs.actor, actor, grad=True)
    )
    theirs.actor.zero_grad()
    actor.zero_grad()

    start = {
        "actor": [b.clone() for _, b in actor_pairs(theirs.actor, actor)],
        "critic": [b.clone() for _, b in critic_pairs(theirs.critic, critic)],
        "critic target": [b.clone() for _, b in critic_pairs(theirs.critic, critic)],
        "proxy": [b.clone() for _, b in proxy_pairs(theirs.actor_target, proxy)],
    }
    for i in range(args.updates):
        fits = [next(stream) for _ in range(cfg.proxy_steps)]  # K proxy fits, then the critic
        queue = list(fits)
        torch.manual_seed(100 + i)  # the same target-policy noise on both sides
        theirs.train(Replay(fits), BATCH)
        torch.manual_seed(100 + i)
        td3.update(lambda q=queue: q.pop(0))
    now = {
        "actor": actor_pairs(theirs.actor, actor),
        "critic": critic_pairs(theirs.critic, critic),
        "critic target": critic_pairs(theirs.critic_target, td3.critic_target),
        "proxy": proxy_pairs(theirs.actor_target, proxy),
    }
    after = {k: max_rel(pairs) for k, pairs in now.items()}
    moved = {  # how far our own weights moved: the scale the differences are measured against
        k: max_rel([(b, s0) for (_, b), s0 in zip(pairs, start[k], strict=True)])
        for k, pairs in now.items()
    }
    lines = [
        "The Proxy Target authors' `PT_TD3` (madao2333/Proxy-Target-with-PLIF at 8d1635f, LIF) "
        "and neurodeploy's pt-td3 with the `hopper` recipe's networks (11 observations, 3 "
        "actions; population encoder, 256-256 LIF, T = 5, proxy 512-512, K = "
        f"{cfg.proxy_steps}), given the same weights, batches and target-noise draws. "
        "Relative difference: max|theirs - ours| / max|theirs| per tensor, the largest.",
        "",
        "| check | result |",
        "|---|---|",
        f"| actor parameters as built after `torch.manual_seed(0)`: tensors bitwise equal | "
        f"{init_same} of {len(drawn)} (largest abs difference {init_gap:.1e}) |",
        f"| actor forward: max abs difference of the actions | {forward:.1e} |",
        f"| gradient of a random loss through the actor: largest relative norm | {grad:.1e} |",
        *[
            f"| after {args.updates} PT-TD3 updates: {k} (our weights moved by {moved[k]:.1e}) "
            f"| {v:.1e} |"
            for k, v in after.items()
        ],
    ]
    body = "\n".join(lines)
    print(body)
    write_section("reference_equivalence", "PT-TD3 against the reference code (issue 15)", body)


if __name__ == "__main__":
    main()
