"""The C++ API through its CMake package: a tiny LibTorch program (tests/cpp/gradient_check) found
with find_package(matnet_torch) and the prefix path printed by matnet_torch.cmake_prefix_path,
configured, built and run; it checks MatNetLayer's gradients against finite differences."""
import shutil
import subprocess
from pathlib import Path

import pytest

import matnet_torch

PROGRAM = Path(__file__).resolve().parent / "cpp" / "gradient_check"


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.skipif(shutil.which("cmake") is None, reason="no cmake")
def test_cmake_program_gradients_match_finite_differences(tmp_path):
    run(["cmake", "-S", PROGRAM, "-B", tmp_path, f"-DCMAKE_PREFIX_PATH={matnet_torch.cmake_prefix_path}"])
    run(["cmake", "--build", tmp_path])
    result = run([tmp_path / "gradient_check"])
    assert "largest difference between autograd and finite-difference gradients" in result.stdout
