"""The house stays in rooms of a readable size, and the command line starts without the heavy libraries."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [path for folder in ("mmea_bench", "plugins", "baselines", "benchmarks", "examples") for path in
           sorted((ROOT / folder).rglob("*.py")) if "tests" not in path.parts]  # fmt: skip
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 60


def test_no_module_is_over_350_lines():
    lengths = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in SOURCES}
    assert {path: lines for path, lines in lengths.items() if lines > MAX_MODULE_LINES} == {}


def test_no_function_is_over_60_lines():
    long = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert long == {}


HELP = [["--help"], ["run", "--help"], ["leaderboard", "--help"], ["features", "--help"]]


@pytest.mark.parametrize("arguments", HELP)
def test_help_imports_neither_torch_nor_mlflow_nor_pandas(arguments):
    script = (
        "import sys\nfrom mmea_bench.cli import cli\n"
        f"try:\n    cli.main({arguments!r}, standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print(sorted(name for name in ('torch', 'mlflow', 'pandas', 'transformers') if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "Usage:" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"
