"""The example plugin of docs/plugins.md, installed as a user would, found through its entry point and run."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mmea-bench-degree"


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """This environment with the example installed into a folder on the import path: its entry point is found there
    exactly as in site-packages."""
    folder = tmp_path_factory.mktemp("example-plugin")
    source = shutil.copytree(EXAMPLE, folder / "source")  # the build writes beside the sources
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*install, "--target", str(folder / "installed"), str(source)], check=True)
    path = os.pathsep.join([str(folder / "installed"), os.environ.get("PYTHONPATH", "")])
    return os.environ | {"PYTHONPATH": path}, folder


def test_the_installed_example_plugin_runs_end_to_end_through_the_command(environment):
    variables, folder = environment
    python = sys.executable
    listing = subprocess.run(
        [python, "-m", "mmea_bench", "plugins"], capture_output=True, text=True, check=True, env=variables
    )
    assert "degree" in listing.stdout and "gcn-degree" in listing.stdout
    store = f"sqlite:///{folder / 'mlflow.db'}"
    command = [python, "-m", "mmea_bench", "run", "gcn-degree", "--dataset", "synthetic:entities=300", "--epochs", "3"]
    result = subprocess.run(
        [*command, "--tracking-uri", store], capture_output=True, text=True, cwd=folder, env=variables
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gcn-degree" in result.stdout and "Recorded in MLflow" in result.stdout


def test_the_example_plugin_passes_its_own_tests(environment):
    variables, folder = environment
    tests = folder / "source" / "tests"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=folder, env=variables)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
