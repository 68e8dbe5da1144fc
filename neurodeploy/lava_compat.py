"""The one place that imports Lava. Every other module calls :func:`import_lava`.

lava-nc 0.10.0 declares Python < 3.11. On 3.11 exactly one module fails to import:
``lava/magma/compiler/var_model.py`` gives dataclass fields a mutable default
``ByteEncoder()``, which Python 3.11 rejects. A meta-path hook rewrites those
defaults to ``default_factory`` while that one module loads. The installed files
are never touched, and nothing else in Lava is changed.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import io
import logging
import re
import sys
from types import ModuleType

from neurodeploy.errors import StackError

_TARGET = "lava.magma.compiler.var_model"
_MUTABLE_DEFAULT = re.compile(r"(?m)^(\s+\w+: ByteEncoder) = ByteEncoder\(\)[ \t]*$")
_FACTORY = r'\1 = __import__("dataclasses").field(default_factory=ByteEncoder)'

LAVA_INSTALL = (
    ".venv/bin/pip install --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0"
    "  (or run `make install`)"
)


def patch_var_model_source(source: str) -> str:
    """Return ``var_model.py`` with each ``x: ByteEncoder = ByteEncoder()`` made a factory."""
    return _MUTABLE_DEFAULT.sub(_FACTORY, source)


class _PatchedVarModelLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):
        # Compile from the patched source; never use a .pyc of the unpatched file.
        source = self.get_data(self.path).decode("utf-8")
        return compile(patch_var_model_source(source), self.path, "exec", dont_inherit=True)


class _VarModelFinder:
    """Meta-path finder that only answers for ``lava.magma.compiler.var_model``."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            return None
        spec.loader = _PatchedVarModelLoader(fullname, spec.origin)
        return spec


def install_fix() -> None:
    """Put the hook first on ``sys.meta_path`` (idempotent)."""
    if not any(isinstance(f, _VarModelFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _VarModelFinder())


def import_lava(name: str) -> ModuleType:
    """Import a Lava / lava-dl module with the Python 3.11 fix in place.

    Raises StackError with the install command when lava-nc or lava-dl is missing.
    """
    install_fix()
    try:
        if name.startswith("lava.lib.dl") and name not in sys.modules:
            # lava-dl prints a note about an optional dataset toolbox on import; keep stdout
            # clean. Its CUDA kernels import torch.utils.cpp_extension, which logs a guessed
            # CUDA_HOME on a machine without CUDA; netx loads no kernel, so that line is noise.
            cpp_extension = logging.getLogger("torch.utils.cpp_extension")
            level = cpp_extension.level
            cpp_extension.setLevel(logging.ERROR)
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    return importlib.import_module(name)
            finally:
                cpp_extension.setLevel(level)
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or name
        if missing.split(".")[0] != "lava":
            raise StackError(
                f"{name} needs the Python package {missing.split('.')[0]!r}, which is missing: "
                "run `make install`"
            ) from None
        package = "lava-dl" if name.startswith("lava.lib.dl") else "lava-nc"
        raise StackError(
            f"{package} is not installed ({name} cannot be imported): {LAVA_INSTALL}"
        ) from None
