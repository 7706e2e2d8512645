"""What an install gives: one import root (bcl_dali) in site-packages, the `bcl-dali` command, its version."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.paths import REPO


@pytest.mark.slow
def test_the_wheel_installs_bcl_dali_and_nothing_generic(tmp_path):
    """Built from the tracked files as pip builds it; installed into an empty folder, it imports from
    there alone (not from the checkout). Mutation caught: pyproject.toml's package-dir removed (the
    build cannot find bcl_dali.pipelines)."""
    source = tmp_path / "source"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp_path / "wheel"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"bcl_dali", wheel.name.split("-py")[0] + ".dist-info"}
    assert {"bcl_dali/pipelines/dali_graph.py", "bcl_dali/models/resnet.py", "bcl_dali/split/__init__.py",
            "bcl_dali/benchmarks/gpu_check.py", "bcl_dali/command.py"} <= set(names)
    entry_points = zipfile.ZipFile(wheel).read(wheel.name.split("-py")[0] + ".dist-info/entry_points.txt").decode()
    assert "bcl-dali = bcl_dali.command:main" in entry_points
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import bcl_dali.pipelines.resize as r, bcl_dali.command, bcl_dali.split; print(r.__file__)")
    imported = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)})
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert imported.stdout.strip() == str(site / "bcl_dali" / "pipelines" / "resize.py")


def test_the_command_says_its_version():
    done = subprocess.run([sys.executable, "cli.py", "--version"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("bcl-dali, version "), done.stderr
