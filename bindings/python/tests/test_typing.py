"""The package is typed: it ships ``py.typed`` (PEP 561), and ``mypy
--strict`` passes over it and over examples/python/typed_usage.py, with the
``[tool.mypy]`` settings of bindings/python/pyproject.toml (checked as
Python 3.8). The mypy test is skipped where mypy is not installed:
requirements.txt pins it for the newer Python only."""

import os
import subprocess
import sys

import pytest

import wsembed

HERE = os.path.dirname(os.path.abspath(__file__))
BINDING = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(BINDING))
EXAMPLE = os.path.join(REPO, "examples", "python", "typed_usage.py")


def test_package_ships_py_typed():
    # The package imported: the installed one under tests/run-python.sh.
    package_dir = os.path.dirname(os.path.abspath(wsembed.__file__))
    assert os.path.isfile(os.path.join(package_dir, "py.typed"))


def test_mypy_strict(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed")
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        os.path.join(BINDING, "pyproject.toml"),
        "--strict",
        # Not in the source tree.
        "--cache-dir",
        str(tmp_path / "mypy-cache"),
        os.path.join(BINDING, "wsembed"),
        EXAMPLE,
    ]
    result = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO, timeout=300
    )
    assert result.returncode == 0, result.stdout.decode()
