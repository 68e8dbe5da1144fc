"""`neurodeploy info`: versions of the stack and a Lava self-check, with a fix for each failure."""

from __future__ import annotations

import platform
from importlib import metadata

from neurodeploy.errors import NeurodeployError

# (distribution, how to install it when it is missing)
STACK = [
    ("torch", "make install"),
    ("numpy", "make install"),
    ("lava-nc", ".venv/bin/pip install --no-deps --ignore-requires-python lava-nc==0.10.0"),
    ("lava-dl", ".venv/bin/pip install --no-deps --ignore-requires-python lava-dl==0.6.0"),
    ("nir", ".venv/bin/pip install nir"),
    ("norse", ".venv/bin/pip install norse"),
    ("gymnasium", ".venv/bin/pip install 'gymnasium[mujoco]'"),
    ("mujoco", ".venv/bin/pip install 'gymnasium[mujoco]'"),
    ("onnx", ".venv/bin/pip install onnx"),
    ("onnxruntime", ".venv/bin/pip install onnxruntime"),
]


def versions() -> tuple[dict[str, str], list[str]]:
    """Installed versions, and one line per missing package saying how to install it."""
    found = {"python": platform.python_version()}
    failures = []
    for dist, fix in STACK:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "missing"
            failures.append(f"{dist} is not installed: run `{fix}`")
    return found, failures


def selfcheck() -> tuple[list[tuple[str, bool, str]], list[str]]:
    """Lava self-check results, and failure lines. Skipped when Lava cannot be imported."""
    from neurodeploy.hardware.selfcheck import run_selfcheck

    try:
        results = run_selfcheck()
    except NeurodeployError as exc:
        return [], [f"Lava self-check could not run: {exc}"]
    except Exception as exc:  # a broken Lava install fails in many ways; report it, do not crash
        return [], [
            f"Lava self-check crashed ({type(exc).__name__}: {exc}): reinstall with `make install`"
        ]
    failures = [
        f"{name} failed: {detail}; reinstall Lava with `make install`"
        for name, ok, detail in results
        if not ok
    ]
    return results, failures
