"""The installed stack: the Lava 3.11 import fix, the self-check, and `neurodeploy info`."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neurodeploy import lava_compat
from neurodeploy.hardware import selfcheck


def test_var_model_source_patch_replaces_every_mutable_default():
    path = Path(importlib.util.find_spec("lava").submodule_search_locations[0])
    source = (path / "magma" / "compiler" / "var_model.py").read_text()
    assert "= ByteEncoder()" in source  # the installed file is untouched
    patched = lava_compat.patch_var_model_source(source)
    assert "= ByteEncoder()" not in patched
    assert patched.count("default_factory=ByteEncoder") == source.count("= ByteEncoder()")
    assert patched.count("\n") == source.count("\n")  # line numbers in tracebacks stay right


def test_lava_modules_import_in_a_fresh_interpreter():
    code = (
        "from neurodeploy.lava_compat import import_lava\n"
        "for m in ('lava.proc.lif.process', 'lava.proc.dense.process', 'lava.lib.dl.netx'):\n"
        "    import_lava(m)\n"
        "import lava.magma.compiler.var_model as vm\n"
        "a, b = vm.CoreEncoder(), vm.CoreEncoder()\n"
        "assert a.x is not b.x\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_plain_import_without_the_fix_fails_on_python_311():
    # Proves the fix is needed (and so that the test above tests something).
    code = "import lava.magma.compiler.var_model"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "mutable default" in out.stderr


def test_hand_computation_models_the_dense_delay():
    # Without the one-step Dense delay, the hand computation would give other counts.
    assert selfcheck.expected_counts(fixed=True) == [4, 3, 2]
    assert selfcheck.expected_counts(fixed=False) == [4, 3, 2]


@pytest.mark.parametrize("fixed", [False, True])
def test_lava_selfcheck_matches_hand_computation(fixed):
    assert selfcheck.lava_counts(fixed) == selfcheck.expected_counts(fixed)


def _neurodeploy():
    exe = Path(sys.executable).parent / "neurodeploy"
    return str(exe) if exe.exists() else shutil.which("neurodeploy")


def test_info_exits_zero_and_reports_both_selfchecks():
    out = subprocess.run(
        [_neurodeploy(), "info"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "pass lava floating_pt" in out.stdout
    assert "pass lava fixed_pt" in out.stdout
    for package in ("torch", "lava-nc", "lava-dl", "nir", "norse", "gymnasium", "onnxruntime"):
        assert package in out.stdout


def test_info_names_missing_lava_dl_and_how_to_install(tmp_path, monkeypatch):
    from neurodeploy import info

    real = info.metadata.version

    def fake_version(dist):
        if dist == "lava-dl":
            raise info.metadata.PackageNotFoundError(dist)
        return real(dist)

    monkeypatch.setattr(info.metadata, "version", fake_version)
    found, failures = info.versions()
    assert found["lava-dl"] == "missing"
    assert len(failures) == 1
    assert (
        "lava-dl" in failures[0]
        and "pip install --no-deps --ignore-requires-python lava-dl==0.6.0" in failures[0]
    )


def test_help_lists_all_commands():
    out = subprocess.run(
        [_neurodeploy(), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert out.returncode == 0
    for command in ("train", "export", "run", "bench-energy", "info"):
        assert command in out.stdout
