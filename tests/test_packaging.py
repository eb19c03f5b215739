"""The library's import footprint and its single version: what a user who installs only the wheel gets."""
import os
import re
import subprocess
import sys
from pathlib import Path

import matnet_torch

ROOT = Path(__file__).resolve().parents[1]
# The [apps] extra: the command-line tools need them, the library does not.
APP_PACKAGES = ("matplotlib", "skimage", "PIL", "tqdm")
LIBRARY_MODULES = (
    "matnet_torch",
    "matnet_torch.nn",
    "matnet_torch.functional",
    "matnet_torch.reference",
    "matnet_torch.losses",
    "matnet_torch.regularizers",
    "matnet_torch.data",
    "matnet_torch.imaging",
    "matnet_torch.pretrained",
)


def run_python(code):
    """Runs code in a fresh interpreter that imports this checkout's matnet_torch; returns its stdout."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=str(Path(matnet_torch.__file__).parents[1])))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_library_imports_none_of_the_app_packages():
    """``import matnet_torch, matnet_torch.nn`` adds none of the app packages to sys.modules (torch itself
    imports tqdm when it is installed, for torch.hub: the baseline is taken after ``import torch``)."""
    added = run_python(
        "import sys, torch\n"
        "before = set(sys.modules)\n"
        "import matnet_torch, matnet_torch.nn\n"
        f"print(sorted(name for name in set(sys.modules) - before if name.split('.')[0] in {APP_PACKAGES!r}))\n"
    )
    assert added.strip() == "[]"


def test_library_works_without_the_app_packages():
    """With the app packages made unimportable, every library module imports and a shipped model loads
    and runs."""
    output = run_python(
        "import importlib, sys\n"
        "class Missing:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {APP_PACKAGES!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, Missing())\n"
        f"for module in {LIBRARY_MODULES!r}:\n"
        "    importlib.import_module(module)\n"
        "import torch, matnet_torch.pretrained as pretrained\n"
        "print(tuple(pretrained.load('mnist')(torch.zeros(2, 28, 28)).shape))\n"
        f"print(sorted(name for name in sys.modules if name.split('.')[0] in {APP_PACKAGES!r}))\n"
    )
    assert output.split("\n")[:2] == ["(2, 10)", "[]"]


def test_one_version():
    """The version is written once (matnet_torch/version.py, read by pyproject.toml); CITATION.cff,
    which tools read on their own, must agree with it."""
    assert re.fullmatch(r"\d+\.\d+\.\d+", matnet_torch.__version__)
    assert 'version = { attr = "matnet_torch.version.__version__" }' in (ROOT / "pyproject.toml").read_text()
    citation = re.search(r"^version: (\S+)$", (ROOT / "CITATION.cff").read_text(), re.MULTILINE)
    assert citation and citation.group(1) == matnet_torch.__version__
