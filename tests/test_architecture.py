"""The house's rules (ARCHITECTURE.md): imports point down the layers, rooms of a layer stay apart,
and only the data room knows which kinds of image source exist."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from tests.paths import REPO

LAYERS = {
    "bcl_dali.split": 0, "bcl_dali.models": 0, "bcl_dali.pipelines": 0, "bcl_dali.errors": 0, "bcl_dali.version": 0,
    "bcl_dali.device": 1, "bcl_dali.distributed": 1, "bcl_dali.atomic": 1,
    "bcl_dali.data": 2, "bcl_dali.runs": 2, "bcl_dali.policy": 2,
    "bcl_dali.eval": 3, "bcl_dali.methods": 3,
    "bcl_dali.config": 4,
    "bcl_dali.train": 5, "bcl_dali.report": 5,
    "bcl_dali.training": 6, "bcl_dali.evaluation": 6, "bcl_dali.augmentation": 6,
    "bcl_dali.experiments": 7,
    "bcl_dali.benchmarks": 8,
    "bcl_dali.command": 9, "bcl_dali.__main__": 10,
    "cli": 10,
}
"""Each room's layer, as ARCHITECTURE.md's table gives it."""
SOURCE_TYPES = ("ImageFiles", "ArrayImages")
FACE = "bcl_dali"
"""The package's face (its __init__): it may gather anything, and nothing inside imports it."""


def room(module: str) -> str | None:
    """The room a module belongs to: the longest entry of LAYERS it is or lies in."""
    matches = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    return max(matches, key=len, default=None)


BESIDE = ("pipelines", "models", "split", "benchmarks")
"""Folders a checkout keeps beside bcl_dali/ and an install puts inside it (pyproject.toml)."""


def modules() -> dict[str, Path]:
    found = {}
    for top in ("bcl_dali", *BESIDE):
        for path in (REPO / top).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            parts = parts if top == "bcl_dali" else ("bcl_dali", *parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    found["cli"] = REPO / "cli.py"
    return found


def generic_imports(path: Path) -> list[str]:
    """Imports of the checkout's folders by their own names (`from pipelines...`), which an install
    does not have: every import goes through bcl_dali."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
        found += [f"line {node.lineno}: {name}" for name in names if name.split(".")[0] in (*BESIDE, "cli")]
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """Every project module `path` imports, at its top or inside a function (`from a import b`: a.b
    where that is a module, else a)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                      for alias in node.names}
    return {name for name in names if name in known}


def test_the_table_of_layers_is_the_documents():
    """ARCHITECTURE.md and LAYERS list the same rooms at the same layers."""
    table = (REPO / "ARCHITECTURE.md").read_text().split("## Layers")[1].split("##")[0]
    documented = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].isdigit():
            for name in re.findall(r"`([\w.]+)/?`", cells[1]):
                documented[name.replace(".py", "")] = int(cells[0])
    assert documented == LAYERS


def test_imports_point_down_the_layers():
    """Mutation caught (tried): bcl_dali.runs.rundir importing bcl_dali.config."""
    wrong = []
    known = modules()
    for module, path in known.items():
        if module == FACE:
            continue
        mine = room(module)
        if mine is None:
            wrong.append(f"{module} is in no room of ARCHITECTURE.md")
            continue
        for name in imports(path, set(known)):
            theirs = room(name)
            if name == FACE:
                wrong.append(f"{module} imports the package's face")
            elif theirs != mine and LAYERS[theirs] >= LAYERS[mine]:
                wrong.append(f"{module} (layer {LAYERS[mine]}) imports {name} (layer {LAYERS[theirs]})")
    assert not wrong, "\n".join(wrong)


def test_every_import_goes_through_the_one_import_root():
    """Mutation caught (tried): `from pipelines.plan import EpochPlan` back in the trainer."""
    paths = [*modules().values(), *(REPO / "tests").rglob("*.py"), *(REPO / "examples").rglob("*.py")]
    offenders = [f"{path.relative_to(REPO)} {where}" for path in paths if path != REPO / "cli.py"
                 for where in generic_imports(path)]
    assert not offenders, "\n".join(offenders)


def source_type_tests(tree: ast.AST) -> list[str]:
    """Where code asks which kind of image source it holds: isinstance of a source type, isinstance
    of an array or tensor on something named for images, `type(images)`, or an `on_disk` flag."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            subject = ast.unparse(node.args[0]).lower()
            if node.func.id in ("isinstance", "issubclass") and len(node.args) == 2:
                kinds = ast.unparse(node.args[1])
                if any(kind in kinds for kind in SOURCE_TYPES) or (
                        "image" in subject and re.search(r"\b(ndarray|Tensor)\b", kinds)):
                    found.append(f"line {node.lineno}: {ast.unparse(node)}")
            elif node.func.id == "type" and "image" in subject:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Attribute) and node.attr == "on_disk":
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_only_the_data_room_knows_the_kinds_of_image_source():
    """Executors, evaluation and training take a source and call it; they never test what it is.
    Mutation caught (tried): `isinstance(images, ImageFiles)` back in the trainer's image sizes."""
    offenders = [f"{module} {where}" for module, path in modules().items() if room(module) != "bcl_dali.data"
                 for where in source_type_tests(ast.parse(path.read_text()))]
    assert not offenders, "\n".join(offenders)


def test_the_source_type_detector_sees_what_it_looks_for():
    samples = {"isinstance(images, ImageFiles)": 1, "isinstance(self.images, np.ndarray)": 1, "data.train.on_disk": 1,
               "type(images).__name__ == 'ArrayImages'": 1, "isinstance(node, np.ndarray)": 0,
               "isinstance(error, BadImages)": 0}
    assert {code: len(source_type_tests(ast.parse(code))) for code in samples} == samples


@pytest.mark.parametrize("folder", ["bcl_dali"])
def test_the_package_face_and_a_dozen_shared_modules(folder):
    """bcl_dali's top level: its face and at most a dozen modules every room may share; the rest in rooms."""
    top = sorted(p.name for p in (REPO / folder).glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= 12, top
