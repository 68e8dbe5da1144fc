"""``neurodeploy/QuadHover-v0``: a Crazyflie 2.1-class quadrotor that must hover at the origin.

The task of the adaptive-surrogate paper (Van den Berghe et al., NeurIPS 2025): 100 Hz
control, 500-step episodes, 18 observations, 4 motor commands in [-1, 1], termination when the
quadrotor leaves the 0.6 m ball around the target.

Physical parameters (SI units):

- mass 0.027 kg, arm length 0.0397 m, thrust coefficient k_f = 3.16e-10 N/rpm^2, torque
  coefficient k_m = 7.94e-12 N m/rpm^2, thrust-to-weight ratio 2.25: the ``cf2x`` model
  of gym-pybullet-drones (Panerati et al., IROS 2021), whose k_f and k_m come from
  J. Förster, "System identification of the Crazyflie 2.0 nano quadrocopter", BSc
  thesis, ETH Zurich, 2015.
- inertia diag(1.657e-5, 1.666e-5, 2.926e-5) kg m^2: Förster (2015).
- motor time constant 0.05 s: an assumed first-order rotor lag, of the order that
  Eschmann et al., "Data-driven system identification of quadrotors subject to motor
  delays" (arXiv 2404.07837, 2024) identify for small quadrotors; not a Crazyflie
  measurement. Set ``motor_tau`` to change it (0 disables the lag).

Actuation: a command a in [-1, 1] sets the rotor speed target
``rpm = (a + 1) / 2 * rpm_max`` with ``rpm_max = sqrt(2.25 m g / (4 k_f))``; thrust is
``k_f rpm^2``. Hover therefore needs (a + 1) / 2 = 1 / sqrt(2.25) = 0.667 on every motor:
the paper's C_ab, the reference of the action penalty (its action term uses
(a + 1) / 2, so the penalty is zero at hover). The hover command is a = 0.333.

Frames and motor layout: world z up; body x forward, y left, z up. Motors in X
configuration, numbered 0 front-right (+x, -y), 1 back-right (-x, -y), 2 back-left
(-x, +y), 3 front-left (+x, +y); motors 0 and 2 spin counter-clockwise seen from above,
1 and 3 clockwise, so a rotor's reaction yaw torque is -k_m rpm^2 for 0 and 2 and
+k_m rpm^2 for 1 and 3. More thrust on the left motors (2, 3) gives a positive roll
rate (about +x, left side up), on the back motors (1, 2) a positive pitch rate (about
+y, nose down), faster clockwise motors (1, 3) a positive yaw rate (about +z).

Integration per 10 ms step (``substeps`` sub-steps): rotor speeds relax exactly towards
their targets; velocity and position use the exact update for constant acceleration;
the body angular momentum takes an Euler step of the torque and an exact rotation for
the gyroscopic term (its magnitude is kept, so a fast spin cannot blow up); the attitude
uses the exact rotation of the (constant) body rate over the sub-step (Rodrigues), so it
stays a rotation matrix.

Reward (Van den Berghe et al., NeurIPS 2025):
``C_s - C_p |p|^2 - C_v |v|^2 - C_q (1 - R_zz) - C_a |(a+1)/2 - C_ab|^2``
with C_s = 1, C_q = 0.25 (attitude error 1 - cos(tilt)), C_ab = 0.667 and a curriculum
(``set_curriculum(progress)``, progress in [0, 1]) raising C_p 1.0 -> 3.5, C_v 0.01 -> 0.10
and C_a 0.14 -> 0.5 linearly. A new env is at progress 1, the final reward: what training
evaluates on and what ``neurodeploy run`` and ``bench-energy`` score; training with
``curriculum = true`` (the default) starts it at 0 and raises it with ``step / steps``.
"""

from __future__ import annotations

import math
from collections import deque

import gymnasium as gym
import numpy as np

from neurodeploy.errors import ConfigError

G = 9.81
MASS = 0.027
ARM = 0.0397
KF = 3.16e-10
KM = 7.94e-12
THRUST_TO_WEIGHT = 2.25
INERTIA_XYZ = (1.657e-5, 1.666e-5, 2.926e-5)
MOTOR_TAU = 0.05
RPM_MAX = math.sqrt(THRUST_TO_WEIGHT * MASS * G / (4 * KF))
HOVER_FRACTION = 1.0 / math.sqrt(THRUST_TO_WEIGHT)  # 0.667 = C_ab
HOVER_COMMAND = 2 * HOVER_FRACTION - 1

DT = 0.01
BOUND = 0.6
_S = ARM / math.sqrt(2)
MOTOR_X = np.array([_S, -_S, -_S, _S])
MOTOR_Y = np.array([-_S, -_S, _S, _S])
MOTOR_YAW = np.array([-1.0, 1.0, -1.0, 1.0])  # reaction torque sign per motor

REWARD = {"C_s": 1.0, "C_q": 0.25, "C_ab": HOVER_FRACTION}
CURRICULUM = {"C_p": (1.0, 3.5), "C_v": (0.01, 0.10), "C_a": (0.14, 0.5)}


def rodrigues(omega: np.ndarray, dt: float) -> np.ndarray:
    """The rotation matrix of turning at body rate ``omega`` for ``dt``."""
    angle = math.sqrt(float(omega @ omega)) * dt
    if angle < 1e-12:
        return np.eye(3)
    kx, ky, kz = omega * (dt / angle)
    k = np.array([[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]])
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)


class QuadHoverEnv(gym.Env):
    """Hover at the origin. See the module docstring for the model and its sources."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 100}

    def __init__(
        self,
        curriculum: float = 1.0,  # the final reward; training's curriculum starts it at 0
        obs_noise: float = 0.0,
        action_delay: int = 0,
        init_position: float = 0.2,
        init_velocity: float = 0.1,
        init_tilt: float = 0.2,
        init_rate: float = 0.2,
        drag: float = 0.0,
        motor_tau: float = MOTOR_TAU,
        substeps: int = 2,
        render_mode: str | None = None,
    ):
        checks = [
            (render_mode in (None, "rgb_array"), f"render_mode {render_mode!r}: use 'rgb_array'"),
            (obs_noise >= 0, "obs_noise must be >= 0"),
            (action_delay >= 0 and int(action_delay) == action_delay, "action_delay: int >= 0"),
            (0 <= init_position < BOUND / math.sqrt(3), "init_position must be in [0, 0.346)"),
            (min(init_velocity, init_tilt, init_rate, drag, motor_tau) >= 0, "negative init/drag"),
            (substeps >= 1, "substeps must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"QuadHover-v0: {message}")
        self.obs_noise, self.action_delay = float(obs_noise), int(action_delay)
        self.init = (init_position, init_velocity, init_tilt, init_rate)
        self.drag, self.substeps = float(drag), int(substeps)
        self.render_mode = render_mode
        h = DT / substeps
        self.motor_keep = math.exp(-h / motor_tau) if motor_tau > 0 else 0.0
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (18,), np.float32)
        self.set_curriculum(curriculum)
        self._queue: deque = deque()
        self.set_state(np.zeros(3), np.eye(3), np.zeros(3), np.zeros(3))

    # -- state ------------------------------------------------------------------------

    def set_curriculum(self, progress: float) -> None:
        """Reward coefficients at training progress ``progress`` in [0, 1] (linear)."""
        p = self._progress = min(1.0, max(0.0, float(progress)))
        self.coefficients = dict(REWARD)
        self.coefficients.update({k: a + p * (b - a) for k, (a, b) in CURRICULUM.items()})

    def set_state(self, position, rotation, velocity, angular_velocity, motors=None) -> None:
        """Place the quadrotor (world position and velocity, body-to-world rotation, body
        rates); ``motors`` are rotor speeds as fractions of the maximum (default: hover)."""
        self.p = [float(x) for x in position]
        self.R = [float(x) for x in np.asarray(rotation, float).ravel()]
        self.v = [float(x) for x in velocity]
        self.w = [float(x) for x in angular_velocity]
        fractions = [HOVER_FRACTION] * 4 if motors is None else [float(m) for m in motors]
        self.rpm = [f * RPM_MAX for f in fractions]

    @property
    def position(self) -> np.ndarray:
        return np.array(self.p)

    @property
    def rotation(self) -> np.ndarray:
        return np.array(self.R).reshape(3, 3)

    def state(self) -> np.ndarray:
        """The noise-free 18-vector: position, rotation (row-major), velocity, body rates."""
        return np.array(self.p + self.R + self.v + self.w, np.float32)

    def _outputs(self) -> tuple[np.ndarray, dict]:
        """Observation and info; ``info["privileged"]`` is the true state + rotor speeds."""
        motors = [r / RPM_MAX for r in self.rpm]
        privileged = np.array(self.p + self.R + self.v + self.w + motors, np.float32)
        obs = privileged[:18].copy()
        if self.obs_noise:
            obs += self.np_random.normal(0.0, self.obs_noise, 18).astype(np.float32)
        return obs, {"privileged": privileged, "coefficients": dict(self.coefficients)}

    # -- gymnasium API ----------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        pos, vel, tilt, rate = self.init
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        rotation = rodrigues(axis * rng.uniform(0, tilt), 1.0)
        self.set_state(
            rng.uniform(-pos, pos, 3), rotation, rng.uniform(-vel, vel, 3),
            rng.uniform(-rate, rate, 3),
        )  # fmt: skip
        self.set_curriculum(self._progress)
        self._queue = deque([[HOVER_COMMAND] * 4] * self.action_delay)
        return self._outputs()

    def step(self, action):
        action = [min(1.0, max(-1.0, float(a))) for a in action]
        if self.action_delay:
            self._queue.append(action)
            applied = self._queue.popleft()
        else:
            applied = action
        target = [(a + 1.0) * 0.5 * RPM_MAX for a in applied]
        for _ in range(self.substeps):
            self._integrate(target, DT / self.substeps)
        c = self.coefficients
        (px, py, pz), (vx, vy, vz) = self.p, self.v
        action_error = sum(((a + 1.0) * 0.5 - c["C_ab"]) ** 2 for a in action)
        reward = (
            c["C_s"]
            - c["C_p"] * (px * px + py * py + pz * pz)
            - c["C_v"] * (vx * vx + vy * vy + vz * vz)
            - c["C_q"] * (1.0 - self.R[8])
            - c["C_a"] * action_error
        )
        terminated = px * px + py * py + pz * pz > BOUND * BOUND
        obs, info = self._outputs()
        return obs, reward, terminated, False, info

    def render(self) -> np.ndarray | None:
        """``rgb_array``: a top view (x, y) and a side view (x, z) of the quadrotor, 480 x 240.

        The grey circle is the 0.6 m termination bound, the cross the target; arms are
        drawn three times their length, front motors (0, 3) red, back ones blue; the
        side view's green line is the thrust axis (body z).
        """
        if self.render_mode != "rgb_array":
            return None
        from PIL import Image, ImageDraw

        size, half = 240, 1.1 * BOUND
        image = Image.new("RGB", (2 * size, size), "white")
        draw = ImageDraw.Draw(image)
        R, p = self.rotation, self.position
        motors = p[:, None] + R @ np.stack([3 * MOTOR_X, 3 * MOTOR_Y, np.zeros(4)])
        thrust = p + 0.12 * R[:, 2]
        for panel, (a, b), title in ((0, (0, 1), "top: x, y"), (1, (0, 2), "side: x, z")):

            def px(point, panel=panel, a=a, b=b):
                u = (point[a] / half + 1) / 2 * size + panel * size
                return u, (1 - point[b] / half) / 2 * size

            r = BOUND / half * size / 2
            cx, cy = panel * size + size / 2, size / 2
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(170, 170, 170), width=2)
            draw.line([cx - 6, cy, cx + 6, cy], fill="black")
            draw.line([cx, cy - 6, cx, cy + 6], fill="black")
            for i in range(4):
                colour = (220, 40, 40) if i in (0, 3) else (40, 80, 220)
                mx, my = px(motors[:, i])
                draw.line([px(p), (mx, my)], fill=(60, 60, 60), width=3)
                draw.ellipse([mx - 4, my - 4, mx + 4, my + 4], fill=colour)
            if panel == 1:
                draw.line([px(p), px(thrust)], fill=(30, 160, 30), width=2)
            draw.text((panel * size + 6, 4), title, fill="black")
        draw.line([size, 0, size, size], fill=(200, 200, 200))
        return np.asarray(image)

    def _integrate(self, target: list[float], h: float) -> None:
        """One sub-step of ``h`` seconds (scalar maths: a step must cost microseconds)."""
        keep = self.motor_keep
        rpm = [t + (r - t) * keep for t, r in zip(target, self.rpm, strict=True)]
        self.rpm = rpm
        sq = [r * r for r in rpm]
        f = [KF * x for x in sq]
        total = f[0] + f[1] + f[2] + f[3]
        tx = _S * (-f[0] - f[1] + f[2] + f[3])  # sum of y_i f_i
        ty = _S * (-f[0] + f[1] + f[2] - f[3])  # -sum of x_i f_i
        tz = KM * (-sq[0] + sq[1] - sq[2] + sq[3])
        R, (px, py, pz), (vx, vy, vz) = self.R, self.p, self.v
        a = total / MASS
        ax = R[2] * a - self.drag * vx / MASS
        ay = R[5] * a - self.drag * vy / MASS
        az = R[8] * a - self.drag * vz / MASS - G
        hh = 0.5 * h * h
        self.p = [px + vx * h + ax * hh, py + vy * h + ay * hh, pz + vz * h + az * hh]
        self.v = [vx + ax * h, vy + ay * h, vz + az * h]
        wx, wy, wz = self.w
        ix, iy, iz = INERTIA_XYZ
        # In the body frame the angular momentum L = I w (dL/dt = tau - w x L) and the rows
        # of R (dr/dt = -w x r) both turn about w by -|w| h: done exactly, so |L| is kept
        # (an Euler step of w x L grows without bound once the body spins fast, e.g. a
        # policy holding a full yaw command) and R stays a rotation; the torque is an
        # Euler step.
        momentum = (ix * wx, iy * wy, iz * wz)
        (lx, ly, lz), *rows = _turn([momentum, R[0:3], R[3:6], R[6:9]], wx, wy, wz, -h)
        self.w = [(lx + h * tx) / ix, (ly + h * ty) / iy, (lz + h * tz) / iz]
        self.R = [v for row in rows for v in row]


def _turn(vectors: list, wx: float, wy: float, wz: float, h: float) -> list:
    """Each 3-vector of ``vectors`` turned by angle |w| h about w (Rodrigues)."""
    norm = math.sqrt(wx * wx + wy * wy + wz * wz)
    if norm * abs(h) < 1e-12:
        return [tuple(v) for v in vectors]
    kx, ky, kz = wx / norm, wy / norm, wz / norm
    s, c = math.sin(norm * h), math.cos(norm * h)
    turned = []
    for x, y, z in vectors:
        dot = (kx * x + ky * y + kz * z) * (1.0 - c)
        turned.append((
            x * c + (ky * z - kz * y) * s + kx * dot,
            y * c + (kz * x - kx * z) * s + ky * dot,
            z * c + (kx * y - ky * x) * s + kz * dot,
        ))  # fmt: skip
    return turned
