"""Stage layering: snn, envs -> train -> export -> hardware -> sweep -> cli.

A module imports only from its own stage or from stages below it; shared helpers
(errors, paths, the Lava import fix) sit at the bottom. Read from the source with ast.
"""

import ast
from pathlib import Path

import neurodeploy

PACKAGE = Path(neurodeploy.__file__).parent
RANK = {
    "__init__": 0,
    "errors": 0,
    "paths": 0,
    "lava_compat": 0,
    "snn": 1,
    "envs": 1,
    "train": 2,
    "export": 3,
    "hardware": 4,
    "sweep": 5,
    "cli": 6,
    "info": 6,
    "zoo": 6,
}


def neurodeploy_imports(source: str) -> list[str]:
    """Every ``neurodeploy.X...`` module a source file imports (top level or inside functions)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "neurodeploy":
                found += [f"neurodeploy.{a.name}" for a in node.names]
            elif node.module.startswith("neurodeploy."):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("neurodeploy.")]
    return found


def upward_imports() -> list[str]:
    bad = []
    for file in sorted(PACKAGE.rglob("*.py")):
        stage = file.relative_to(PACKAGE).with_suffix("").parts[0]
        assert stage in RANK, f"{file}: a module outside the known stages; add it to RANK"
        for module in neurodeploy_imports(file.read_text()):
            target = module.split(".")[1]
            if RANK.get(target, 99) > RANK[stage]:
                bad.append(f"{file.relative_to(PACKAGE)} imports {module}")
    return bad


def test_the_import_reader_sees_function_level_imports():
    source = "def f():\n    from neurodeploy.hardware.runner import run_policy\n"
    assert neurodeploy_imports(source) == ["neurodeploy.hardware.runner"]
    assert neurodeploy_imports("from neurodeploy import lava_compat") == ["neurodeploy.lava_compat"]


def test_no_module_imports_a_stage_above_its_own():
    assert upward_imports() == []


def test_export_imports_nothing_from_hardware():
    for file in (PACKAGE / "export").glob("*.py"):
        imports = neurodeploy_imports(file.read_text())
        assert not [m for m in imports if m.startswith("neurodeploy.hardware")], file
