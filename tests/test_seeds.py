"""Vectorised seeds (``neurodeploy train ENV --seeds``): N agents stacked in one process."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest
import torch

from neurodeploy.errors import CheckpointError, ConfigError
from neurodeploy.snn import actor_from_payload
from neurodeploy.train import seeds as seeds_module
from neurodeploy.train.config import TrainConfig, read_config
from neurodeploy.train.device import restore_generator
from neurodeploy.train.loop import train
from neurodeploy.train.seeds import train_seeds
from neurodeploy.train.stacked import SeedAxis

UPDATES = 200
LOSSES = ("critic_loss", "actor_loss", "proxy_loss")
# float rounding of batched against single matrix products (~1e-7), grown by 200 Adam
# steps: measured 1e-7 and 3e-6 here; a leaked random stream gives 0.05-0.07
TOLERANCE = 1e-4
# tests/conftest.py hides the GPU from the suite unless NEURODEPLOY_TEST_CUDA=1
NEEDS_CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA and NEURODEPLOY_TEST_CUDA=1"
)


def small_config(**kw) -> TrainConfig:
    values = dict(env="Pendulum-v1", algo="pt-td3", neuron="lif", hidden=[64, 64],
                  proxy_hidden=[64, 64], critic_hidden=64, batch_size=32, timesteps=5,
                  start_steps=100, steps=100 + UPDATES, eval_every=50, eval_episodes=1,
                  checkpoint_every=150)  # fmt: skip
    values.update(kw)
    return TrainConfig(**values)


def rows(run_dir):
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def weights(run_dir):
    return actor_from_payload(torch.load(run_dir / "policy.pt", weights_only=True)).state_dict()


def gap(solo_dir, vec_dir) -> float:
    """The largest relative difference between two runs' logged losses and returns over
    every evaluation row, and the largest absolute difference of their final weights."""
    worst = 0.0
    for a, b in zip(rows(solo_dir), rows(vec_dir), strict=True):
        for key in (*LOSSES, "eval_return_mean"):
            if a[key]:
                x, y = float(a[key]), float(b[key])
                worst = max(worst, abs(x - y) / max(abs(x), 1e-3))
    wa, wb = weights(solo_dir), weights(vec_dir)
    return max(worst, max(float((wa[k] - wb[k]).abs().max()) for k in wa))


@pytest.fixture(scope="module")
def solo_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("solo")
    cfg = small_config()
    return {
        s: train(replace(cfg, seed=s), out / f"seed{s}", progress=False, device="cpu")
        for s in (0, 1)
    }


def test_each_vectorised_seed_follows_its_solo_run(tmp_path, solo_runs):
    """Seed k of a vectorised run equals seed k's solo run for the first 200 updates,
    within float tolerance, and writes an ordinary run directory."""
    dirs = train_seeds(small_config(), [0, 1], tmp_path / "vec", progress=False, device="cpu")
    assert [d.name for d in dirs] == ["seed0", "seed1"]
    for seed, run in zip((0, 1), dirs, strict=True):
        assert {"config.toml", "metrics.csv", "policy.pt", "best.pt"} <= {
            p.name for p in run.iterdir()
        }
        assert [r["step"] for r in rows(run)] == [r["step"] for r in rows(solo_runs[seed])]
        assert gap(solo_runs[seed], run) < TOLERANCE, f"seed {seed} left its solo trajectory"


@pytest.mark.slow  # checks the tolerance above, not the product (16 s on 2 cores)
def test_a_leaked_random_stream_is_caught(tmp_path, solo_runs, monkeypatch):
    """The same comparison fails when the seeds share one torch generator (a leak)."""

    class SharedStream(SeedAxis):
        def __init__(self, generators):
            super().__init__([generators[0]] * len(generators))

    monkeypatch.setattr(seeds_module, "SeedAxis", SharedStream)
    dirs = train_seeds(small_config(), [0, 1], tmp_path / "vec", progress=False, device="cpu")
    assert min(gap(solo_runs[s], d) for s, d in zip((0, 1), dirs, strict=True)) > 10 * TOLERANCE


def test_resume_continues_exactly(tmp_path):
    """A run stopped mid-episode (step 150 of 200-step episodes) and resumed ends with the
    same weights, bit for bit, as one that never stopped."""
    import fcntl
    import os

    cfg = small_config(steps=250)
    whole = train_seeds(cfg, [3, 4], tmp_path / "whole", progress=False, device="cpu")
    train_seeds(replace(cfg, steps=150), [3, 4], tmp_path / "parts", progress=False, device="cpu")
    # a best.pt the kill's discarded timeline wrote: the checkpoint's own is put back
    (tmp_path / "parts" / "seed4" / "best.pt").write_bytes(b"from a discarded evaluation")
    # while a solo --resume trains seed3, the group is refused before it writes
    fd = os.open(tmp_path / "parts" / "seed3", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(CheckpointError, match="seed3 is being trained by another process"):
            train_seeds(cfg, [3, 4], tmp_path / "parts", resume=True, progress=False, device="cpu")
    finally:
        os.close(fd)
    parts = train_seeds(cfg, [3, 4], tmp_path / "parts", resume=True, progress=False, device="cpu")
    for a, b in zip(whole, parts, strict=True):
        wa, wb = weights(a), weights(b)
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
        assert [r["eval_return_mean"] for r in rows(a)] == [r["eval_return_mean"] for r in rows(b)]
        assert read_config(b / "config.toml") == read_config(a / "config.toml")  # steps 250
        assert (a / "best.pt").read_bytes() == (b / "best.pt").read_bytes()


def test_a_resume_refuses_a_changed_environment_and_a_broken_generator_state(tmp_path):
    cfg = small_config(steps=150)
    train_seeds(cfg, [0], tmp_path / "run", progress=False, device="cpu")
    ckpt = tmp_path / "run" / "checkpoint" / "state.pt"
    state = torch.load(ckpt, weights_only=True)

    def resume():
        torch.save(state, ckpt)
        train_seeds(replace(cfg, steps=200), [0], tmp_path / "run", resume=True, progress=False,
                    device="cpu")  # fmt: skip

    state["lanes"][0]["torch_rng"] = torch.zeros(16, dtype=torch.uint8)  # CUDA Philox's size ...
    with pytest.raises(CheckpointError, match="does not match this run"):
        resume()  # ... claimed as the CPU generator's
    # What a GPU run writes: the CPU resume leaves that state and goes on to replay the
    # episode, where a non-deterministic simulator's different observation is refused.
    state["lanes"][0]["torch_rng_on"] = "cuda"
    state["lanes"][0]["obs"] += 1.0
    with pytest.raises(CheckpointError, match="did not reproduce"):
        resume()


@pytest.mark.parametrize(
    "kw, what",
    [({"sequence_length": 8, "mode": "stateful"}, "sequence"),
     ({"mode": "stateful"}, "stateful"),
     ({"neuron": "loihi"}, "loihi")],
)  # fmt: skip
def test_unsupported_configs_refuse_in_one_line(tmp_path, kw, what):
    with pytest.raises(ConfigError, match=what) as err:
        train_seeds(small_config(**kw), [0, 1], tmp_path / "run", progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_cuda_is_refused_without_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(ConfigError, match="no CUDA device"):
        train_seeds(small_config(), [0], tmp_path / "run", progress=False, device="cuda")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=NEEDS_CUDA)])
def test_restore_generator_sets_its_own_kind_and_leaves_the_other(device):
    other = "cuda" if device == "cpu" else "cpu"
    saved = torch.Generator(device=device).manual_seed(7).get_state()
    foreign = torch.zeros(16 if other == "cuda" else 5056, dtype=torch.uint8)
    for on, state, restored in [(device, saved, True), (other, foreign, False),
                                (None, saved, True), (None, foreign, False)]:  # fmt: skip
        generator = torch.Generator(device=device).manual_seed(0)
        fresh = generator.get_state()
        restore_generator(generator, state, on)  # None: a checkpoint from before the key
        assert torch.equal(generator.get_state(), saved if restored else fresh), (on, restored)
    with pytest.raises(ValueError, match="'mps'"):
        restore_generator(torch.Generator(device=device), saved, "mps")


@NEEDS_CUDA
@pytest.mark.parametrize("group", [True, False], ids=["seeds", "solo"])
@pytest.mark.parametrize("first, then", [("cuda", "cpu"), ("cuda", "cuda"), ("cpu", "cuda")])
def test_a_run_resumes_across_devices_and_exports_on_the_cpu(tmp_path, first, then, group):
    """Killed on one device, resumed on another (or the same GPU): the checkpoint's
    generator states fit whichever device resumes it."""
    cfg = small_config(steps=150)

    def run(steps, device, resume=False):
        if group:
            return train_seeds(replace(cfg, steps=steps), [0, 1], tmp_path / "run",
                               resume=resume, progress=False, device=device)[0]  # fmt: skip
        return train(replace(cfg, steps=steps), tmp_path / "run", resume, False, device)

    run(150, first)
    done = run(200, then, resume=True)
    assert [int(r["step"]) for r in rows(done)] == [50, 100, 150, 200]
    actor = actor_from_payload(torch.load(done / "policy.pt", weights_only=True))
    assert actor(torch.zeros(1, 3)).shape == (1, 1)
    assert np.isfinite([float(r["eval_return_mean"]) for r in rows(done)]).all()


def test_a_bias_held_at_zero_stays_zero_with_stacked_seeds(tmp_path):
    cfg = small_config(neuron="clif", bias=False, steps=150)  # clif: Lava needs no bias
    (run,) = train_seeds(cfg, [0], tmp_path / "run", progress=False, device="cpu")
    biases = [v for k, v in weights(run).items() if k.endswith("linear.bias")]
    assert len(biases) == 3 and all(float(b.abs().max()) == 0.0 for b in biases)


def test_resume_without_a_group_checkpoint_keeps_the_results(tmp_path):
    cfg = small_config(steps=140)  # evaluations at 50 and 100, one checkpoint at 140
    train_seeds(cfg, [0], tmp_path / "run", progress=False, device="cpu")
    (tmp_path / "run" / "checkpoint" / "state.pt").unlink()
    kept = (tmp_path / "run" / "seed0" / "metrics.csv").read_bytes()
    with pytest.raises(CheckpointError, match="has seed0/metrics.csv"):
        train_seeds(replace(cfg, steps=200), [0], tmp_path / "run", resume=True, progress=False)
    assert (tmp_path / "run" / "seed0" / "metrics.csv").read_bytes() == kept


def test_resume_refusals_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="no seed<k>/config.toml"):
        train_seeds(small_config(), [0, 1], tmp_path / "none", resume=True, progress=False)
    assert not (tmp_path / "none").exists()
    train_seeds(small_config(steps=120), [0], tmp_path / "run", progress=False, device="cpu")
    with pytest.raises(ConfigError, match="already at step 120"):
        train_seeds(small_config(steps=110), [0], tmp_path / "run", resume=True, progress=False)
    with pytest.raises(ConfigError, match="seeds"):
        train_seeds(small_config(steps=130), [0, 1], tmp_path / "run", resume=True, progress=False)
    with pytest.raises(ConfigError, match="already exists"):
        train_seeds(small_config(), [0], tmp_path / "run", progress=False)
