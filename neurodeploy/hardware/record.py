"""Recordings of closed-loop episodes: the environment beside every layer's spike raster.

:func:`record_policy` runs :func:`~neurodeploy.hardware.runner.run_policy` with
``render_mode="rgb_array"`` and writes one frame per control step. On the left is the
environment's rendering after the step. On the right is a raster per spiking population
(encoder, hidden layers, output) for that step: neurons down, SNN timesteps across, a
spike in orange (a graded input in proportion to its size). Underneath are the backend,
episode, step, action and the return so far.

``.gif`` is written with Pillow, ``.mp4`` with OpenCV's encoder. The file appears only
when the recording is complete: frames go to a temporary file that is renamed at the end.
MuJoCo renders offscreen through ``MUJOCO_GL``; when it is unset this module picks OSMesa
(Debian's ``libosmesa6``, which ``make install`` installs) and else EGL.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from neurodeploy.errors import RecordError
from neurodeploy.hardware.runner import RunResult, run_policy

HEIGHT = 300  # pixels: the environment image and the raster panel
RASTER_WIDTH = 280
TEXT_HEIGHT = 40
LABEL_HEIGHT = 13
BACKGROUND = np.array([255, 255, 255], np.uint8)
RASTER_BACKGROUND = np.array([232, 232, 232], np.float32)
SPIKE = np.array([235, 95, 0], np.float32)
FORMATS = (".gif", ".mp4")


def choose_mujoco_gl() -> str | None:
    """Set ``MUJOCO_GL`` for offscreen rendering unless the user has: OSMesa if its library
    is installed, else EGL; returns the backend in use (None: no library found)."""
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    for backend, library in (("osmesa", "OSMesa"), ("egl", "EGL")):
        if ctypes.util.find_library(library):
            os.environ["MUJOCO_GL"] = backend
            return backend
    return None


def block_rows(trains: list[np.ndarray], height: int) -> list[int]:
    """Pixel rows of each population's block: a label row above every block, and blocks
    that grow with the square root of the population's size."""
    free = height - len(trains) * (LABEL_HEIGHT + 2)
    weights = np.sqrt([max(t.shape[1], 1) for t in trains])
    return [max(4, int(free * w / weights.sum())) for w in weights]


def import_triton_first() -> None:
    """Mesa's software OpenGL (OSMesa, or EGL on llvmpipe) loads its own LLVM into the
    process; importing triton after that (torch does when it builds its first optimizer)
    segfaults. With triton loaded first both work, so a process can record and then train."""
    with contextlib.suppress(ImportError):
        import triton  # noqa: F401


def raster(trains: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """One control step's spike trains ([T, n] per population) as an RGB image.

    Blocks as in :func:`block_rows`, neurons down and timesteps across; a pixel row that
    stands for several neurons lights if any of them spiked.
    """
    image = np.empty((height, width, 3), np.uint8)
    image[:] = BACKGROUND
    top = 0
    for train, h in zip(trains, block_rows(trains, height), strict=True):
        top += LABEL_HEIGHT
        steps, n = train.shape
        values = np.clip(np.abs(np.asarray(train, np.float32)), 0, 1).T  # [n, T]
        values = np.maximum.reduceat(values, (np.arange(h) * n) // h, axis=0)
        values = values[:, (np.arange(width) * steps) // width]  # [h, width]
        block = RASTER_BACKGROUND + values[..., None] * (SPIKE - RASTER_BACKGROUND)
        image[top : top + h] = block[: height - top].astype(np.uint8)
        top += h + 2
    return image


class _Frames:
    """Composes frames and writes them to ``tmp`` (GIF: at the end; MP4: as they come)."""

    def __init__(self, tmp: Path, fps: float):
        self.tmp, self.fps = tmp, fps
        self.gif = tmp.suffix == ".gif"
        self.images: list[Image.Image] = []
        self.video = None
        self.font = ImageFont.load_default(size=12)

    def add(self, scene: np.ndarray, trains: list, labels: list[str], lines: list[str]) -> None:
        """One frame: the env image, the rasters of ``trains`` under ``labels``, ``lines``."""
        env = Image.fromarray(np.asarray(scene, np.uint8))
        env = env.resize((max(1, round(env.width * HEIGHT / env.height)), HEIGHT))
        frame = Image.new("RGB", (env.width + RASTER_WIDTH, HEIGHT + TEXT_HEIGHT), "white")
        frame.paste(env, (0, 0))
        panel = raster(trains, RASTER_WIDTH - 8, HEIGHT)
        frame.paste(Image.fromarray(panel), (env.width + 4, 0))
        draw = ImageDraw.Draw(frame)
        top = 0
        for label, rows in zip(labels, block_rows(trains, HEIGHT), strict=True):
            draw.text((env.width + 6, top), label, fill="black", font=self.font)
            top += LABEL_HEIGHT + rows + 2
        if not trains:
            draw.text((env.width + 6, 4), "no spiking layers", fill="black", font=self.font)
        for i, line in enumerate(lines):
            draw.text((6, HEIGHT + 4 + 17 * i), line, fill="black", font=self.font)
        if trains:
            axes = f"neurons down, {trains[0].shape[0]} SNN steps across"
            draw.text((env.width + 6, HEIGHT + 4), axes, fill="black", font=self.font)
        self._write(frame)

    def _write(self, frame: Image.Image) -> None:
        if self.gif:
            self.images.append(frame.convert("P", palette=Image.Palette.ADAPTIVE))
            return
        import cv2

        if self.video is None:
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self.video = cv2.VideoWriter(str(self.tmp), fourcc, self.fps, frame.size)
            if not self.video.isOpened():
                raise RecordError(
                    f"OpenCV has no MP4 encoder here; record a .gif instead of {self.tmp.suffix}"
                )
        self.video.write(cv2.cvtColor(np.asarray(frame), cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self.video is not None:
            self.video.release()
        if self.gif and self.images:
            first, *rest = self.images
            duration = max(20, round(1000 / self.fps))  # viewers slow down shorter frames
            first.save(self.tmp, save_all=True, append_images=rest, duration=duration, loop=0)


def _check_output(out: Path) -> None:
    if out.suffix.lower() not in FORMATS:
        raise RecordError(f"--record {out}: write a .gif or .mp4 file")
    if not out.parent.is_dir():
        raise RecordError(f"--record {out}: the folder {out.parent} does not exist")
    if out.is_dir():
        raise RecordError(f"--record {out}: is a folder; name a .gif or .mp4 file")


def _format_action(action) -> str:
    values = np.atleast_1d(np.asarray(action, float))
    shown = " ".join(f"{v:+.2f}" for v in values[:8])
    return f"action [{shown}{' ...' if len(values) > 8 else ''}]"


def record_policy(
    path: Path,
    out: Path,
    backend: str = "torch",
    episodes: int = 1,
    seed: int = 0,
    max_steps: int | None = None,
) -> RunResult:
    """Run ``episodes`` episodes like :func:`run_policy` and write them to ``out`` (.gif or
    .mp4), one frame per control step; ``max_steps`` shortens each episode."""
    out = Path(out)
    _check_output(out)
    gl = choose_mujoco_gl()
    import_triton_first()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame (classic control): no display
    try:
        handle, tmp_name = tempfile.mkstemp(
            prefix=f".{out.stem}-", suffix=out.suffix.lower(), dir=out.parent
        )
    except OSError as exc:
        raise RecordError(f"--record {out}: cannot write there ({exc.strerror})") from None
    os.close(handle)
    tmp = Path(tmp_name)
    frames = None

    def on_step(env, policy, episode, step, action, total):
        nonlocal frames
        try:
            scene = env.render()
        except Exception as exc:  # a renderer's own error: say what to install
            raise RecordError(
                f"{env.spec.id} cannot render offscreen (MUJOCO_GL={gl}): {exc}. For MuJoCo "
                "install OSMesa (apt-get install libosmesa6) or set MUJOCO_GL=egl"
            ) from None
        if scene is None:
            raise RecordError(f"--record: {env.spec.id} has no rgb_array rendering to record")
        if frames is None:
            frames = _Frames(tmp, env.metadata.get("render_fps") or 30)
        labels = [
            f"{name} ({train.shape[1]}): {np.count_nonzero(train)} spikes"
            for name, train in zip(policy.names, policy.trains, strict=True)
        ]
        lines = [
            f"{policy.backend}   episode {episode + 1}   step {step}   return {total:.2f}",
            _format_action(action),
        ]
        frames.add(scene, policy.trains, labels, lines)

    try:
        result = run_policy(
            path,
            backend,
            episodes,
            seed,
            on_step=on_step,
            render_mode="rgb_array",
            max_steps=max_steps,
        )
        if frames is None:
            raise RecordError(f"--record {out}: the episodes had no steps to record")
        frames.close()
        tmp.chmod(0o644)  # mkstemp made it private; a recording is for sharing
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result
