"""The package installs without a package index (pip, setuptools from Debian)."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

import syrpc
from conftest import PACKAGE_DIR

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def test_offline_wheel_has_the_version_and_the_package(tmp_path):
    have = subprocess.run([PYTHON, "-c", "import importlib.util as u, sys; sys.exit(not (u.find_spec('pip')"
                           " and u.find_spec('setuptools')))"])
    if have.returncode != 0:
        pytest.skip("%s has no pip or setuptools" % PYTHON)
    src = tmp_path / "src"
    shutil.copytree(PACKAGE_DIR, src, ignore=shutil.ignore_patterns(
        "tests", "__pycache__", "build", "*.egg-info", ".pytest_cache"))
    out = subprocess.run([PYTHON, "-m", "pip", "wheel", "--no-index", "--no-build-isolation", "--no-deps",
                          "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = os.listdir(tmp_path / "dist")
    assert wheel.startswith("syrpc-%s-" % syrpc.__version__)
    names = zipfile.ZipFile(tmp_path / "dist" / wheel).namelist()
    assert "syrpc/aio.py" in names and "syrpc/__init__.py" in names
    assert not any(n.startswith("tests/") for n in names)
    meta = zipfile.ZipFile(tmp_path / "dist" / wheel).read(
        "syrpc-%s.dist-info/METADATA" % syrpc.__version__).decode()
    assert "Requires-Dist: psycopg" in meta
