"""`run --record`: real envs rendered offscreen (pygame, MuJoCo, QuadHover) beside spike rasters."""

import subprocess
import sys
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np
import pytest
import torch
from PIL import Image
from test_export import save_policy

from neurodeploy.envs.quad_hover import QuadHoverEnv
from neurodeploy.errors import BundleError, ConfigError, RecordError
from neurodeploy.hardware.record import (
    HEIGHT,
    RASTER_WIDTH,
    SPIKE,
    TEXT_HEIGHT,
    raster,
    record_policy,
)

NEURODEPLOY = str(Path(sys.executable).parent / "neurodeploy")

# env id, observation and action sizes, action bound, actor options, env image width at HEIGHT
ENVS = {
    "Pendulum-v1": (3, 1, 2.0, {}, HEIGHT),
    "InvertedDoublePendulum-v4": (11, 1, 1.0, {}, HEIGHT),
    "neurodeploy/QuadHover-v0": (18, 4, 1.0, {"encoder": "direct"}, 2 * HEIGHT),
}


def frames_of(gif: Path) -> list[np.ndarray]:
    image = Image.open(gif)
    frames = []
    for i in range(image.n_frames):
        image.seek(i)
        frames.append(np.asarray(image.convert("RGB")).astype(int))
    return frames


def spike_pixels(region: np.ndarray) -> int:
    return int((np.abs(region - SPIKE.astype(int)).sum(axis=-1) < 40).sum())


@pytest.mark.parametrize("env_id", list(ENVS))
def test_a_recording_shows_the_env_and_every_layers_spikes(env_id, tmp_path):
    obs, act, high, options, env_width = ENVS[env_id]
    policy = save_policy(
        tmp_path, env=env_id, obs=obs, act=act, high=high, hidden=[32, 16], **options
    )
    out = tmp_path / "episode.gif"
    result = record_policy(policy, out, episodes=1, max_steps=3)
    assert result.lengths == [3] and result.layer_names == [
        "encoder",
        "hidden0",
        "hidden1",
        "output",
    ]
    frames = frames_of(out)
    assert len(frames) == 3
    assert frames[0].shape == (HEIGHT + TEXT_HEIGHT, env_width + RASTER_WIDTH, 3)
    assert any(np.abs(frames[0] - f).sum() > 0 for f in frames[1:])  # the episode moves
    scene = frames[0][:HEIGHT, :env_width]
    assert scene.std() > 5  # the env drew something, not a blank image
    assert result.spikes_per_step[1] > 0  # hidden0 spiked, so its raster must show it
    assert spike_pixels(frames[0][:HEIGHT, env_width:]) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode.gif", "policy.pt"]  # no temp


def test_the_raster_puts_each_spike_at_its_neuron_and_timestep():
    train = np.zeros((4, 2))  # T = 4 steps, 2 neurons: neuron 1 spikes at step 2 only
    train[2, 1] = 1
    image = raster([train], 40, 100).astype(int)
    lit = np.argwhere(np.abs(image - SPIKE.astype(int)).sum(axis=-1) < 3)
    rows, cols = lit[:, 0], lit[:, 1]
    assert len(lit) > 0
    assert cols.min() == 20 and cols.max() == 29  # the third quarter of the width
    top, height = 13, 100 - 15  # below the label row; the one block fills the rest
    assert rows.min() >= top + height // 2 - 1 and rows.max() < top + height


def test_mp4_has_one_frame_per_step(tmp_path):
    policy = save_policy(tmp_path, hidden=[16, 8])
    out = tmp_path / "episode.mp4"
    record_policy(policy, out, episodes=1, max_steps=3)
    video = cv2.VideoCapture(str(out))
    assert video.get(cv2.CAP_PROP_FRAME_COUNT) == 3
    assert video.get(cv2.CAP_PROP_FRAME_WIDTH) == HEIGHT + RASTER_WIDTH


def test_bad_outputs_are_one_line_errors_and_leave_nothing(tmp_path):
    policy = save_policy(tmp_path, hidden=[16, 8])
    with pytest.raises(RecordError, match="write a .gif or .mp4"):
        record_policy(policy, tmp_path / "out.txt", max_steps=2)
    with pytest.raises(RecordError, match="does not exist"):
        record_policy(policy, tmp_path / "missing" / "out.gif", max_steps=2)
    (tmp_path / "folder.gif").mkdir()
    with pytest.raises(RecordError, match="is a folder"):
        record_policy(policy, tmp_path / "folder.gif", max_steps=2)
    with pytest.raises(BundleError, match="export the run first"):  # fails after the temp file
        record_policy(policy, tmp_path / "out.gif", backend="loihi2-sim", max_steps=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.gif", "policy.pt"]
    out = subprocess.run(
        [NEURODEPLOY, "run", str(policy), "--episodes", "1", "--record", str(tmp_path / "a.txt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"error: --record {tmp_path / 'a.txt'}: write a .gif or .mp4 file"
    ]


def test_quad_hover_accepts_render_mode_none():
    env = gym.make("neurodeploy/QuadHover-v0", render_mode=None)
    env.reset(seed=0)
    assert env.render() is None
    with pytest.raises(ConfigError, match="render_mode 'ansi'"):
        QuadHoverEnv(render_mode="ansi")


def test_a_process_can_train_after_recording_mujoco(tmp_path):
    # Mesa's LLVM (OSMesa/EGL) then triton, which Adam imports, used to segfault the process
    policy = save_policy(tmp_path, env="InvertedDoublePendulum-v4", obs=11, high=1.0, hidden=[8])
    record_policy(policy, tmp_path / "episode.gif", max_steps=1)
    torch.optim.Adam([torch.zeros(2, requires_grad=True)]).step()
