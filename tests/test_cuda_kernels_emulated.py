"""The fused CUDA kernels and their launchers, run on CPU threads (tests/cuda_emulation) and compared
with the pure-PyTorch reference, so that their indexing, barriers, tile plans and block-order
reductions are tested on machines without a GPU. The emulation runs each thread block as
std::threads meeting at a barrier; it does not model warps, timing or the GPU memory model, which
only the CUDA tests on a GPU (test_bilinear.py, test_cuda_*.py) cover."""
import math
import subprocess

import pytest
import torch

from matnet_torch import reference
from conftest import bilinear_tolerances, gradients_from_saved_output
from native_toolchain import CUDA_HOME, CXX, ROOT, run

pytestmark = pytest.mark.skipif(CUDA_HOME is None or CXX is None, reason="needs the CUDA headers and a C++ compiler")

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu"]  # the order of matnet::Activation
DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16", torch.bfloat16: "bfloat16"}

# (x shape, (m, n), dtype, activation, bias, gradient mask dX dU dV dB, forward product order
# right-first, multiprocessors of the emulated device)
CASES = [
    ((33, 28, 28), (20, 20), torch.float32, "sigmoid", True, "1111", True, 3),
    ((33, 28, 28), (20, 20), torch.float32, "tanh", False, "1111", False, 3),
    ((33, 28, 28), (20, 20), torch.float32, "relu", True, "1111", True, 3),
    ((33, 28, 28), (20, 20), torch.float32, "identity", True, "1111", False, 3),
    ((33, 28, 28), (20, 20), torch.float16, "sigmoid", True, "1111", True, 3),
    ((33, 28, 28), (20, 20), torch.bfloat16, "tanh", True, "1111", False, 3),
    ((33, 28, 28), (20, 20), torch.float64, "sigmoid", True, "1111", True, 3),
    ((5, 7, 6), (4, 3), torch.float64, "tanh", True, "1111", False, 3),
    ((5, 7, 6), (4, 3), torch.float64, "tanh", True, "1000", True, 3),
    ((5, 7, 6), (4, 3), torch.float64, "tanh", True, "0110", True, 3),
    ((5, 7, 6), (4, 3), torch.float64, "tanh", True, "0001", True, 3),
    ((5, 7, 6), (4, 3), torch.float64, "sigmoid", False, "0100", False, 3),
    ((40, 3, 9), (11, 2), torch.float32, "sigmoid", True, "1111", True, 3),
    ((9, 1, 1), (1, 1), torch.float32, "identity", True, "1111", False, 3),
    # One multiprocessor: fewer blocks than tiles, so each block walks several tiles.
    ((300, 5, 4), (3, 6), torch.float64, "relu", True, "1111", True, 1),
    ((100, 28, 28), (20, 20), torch.float32, "sigmoid", True, "1111", False, 1),
    ((3, 64, 64), (64, 64), torch.float32, "sigmoid", True, "1111", True, 3),
    ((21, 16, 16), (10, 12), torch.bfloat16, "relu", False, "1111", True, 2),
]


def case_id(case):
    x_shape, (m, n), dtype, activation, bias, mask, right_first, multiprocessors = case
    return (f"{'x'.join(map(str, x_shape))}-{m}x{n}-{DTYPE_NAMES[dtype]}-{activation}-{'bias' if bias else 'nobias'}"
            f"-mask{mask}-{'right' if right_first else 'left'}-sm{multiprocessors}")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """The run_fused_bilinear program: the .cu files compiled as C++ over the emulated runtime."""
    program = tmp_path_factory.mktemp("cuda_emulation") / "run_fused_bilinear"
    run([CXX, "-std=c++20", "-O1", "-pthread", "-x", "c++", "-DMATNET_CUDA_EMULATION", f"-I{ROOT / 'csrc/cuda'}",
         f"-I{CUDA_HOME / 'include'}", "-include", ROOT / "tests/cuda_emulation/emulated_runtime.h",
         ROOT / "csrc/cuda/fused_forward.cu", ROOT / "csrc/cuda/fused_backward.cu",
         ROOT / "tests/cuda_emulation/run_fused_bilinear.cpp", "-o", program])
    return program


def run_emulated(emulator, tmp_path, inputs, grad_y, activation, mask, right_first, multiprocessors):
    """(y, [requested gradients], the program's stdout) of the fused kernels under emulation."""
    x, u, v, bias = inputs
    (m, p), (n, q) = u.shape, v.shape
    batch = math.prod(x.shape[:-2])
    dtype = x.dtype
    in_file, out_file = tmp_path / "in.bin", tmp_path / "out.bin"
    in_file.write_bytes(b"".join(t.contiguous().view(torch.uint8).numpy().tobytes() for t in (x, u, v, bias, grad_y) if t is not None))
    result = subprocess.run(
        [str(emulator), DTYPE_NAMES[dtype], str(ACTIVATIONS.index(activation)), str(batch), str(m), str(n), str(p),
         str(q), str(int(bias is not None)), mask, str(int(right_first)), str(multiprocessors), str(in_file),
         str(out_file)],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    values = torch.frombuffer(bytearray(out_file.read_bytes()), dtype=dtype)
    shapes = [(batch, m, n)] + [shape for shape, wanted in zip([(batch, p, q), (m, p), (n, q), (m, n)], mask) if wanted == "1"]
    outputs = list(torch.split(values, [math.prod(shape) for shape in shapes]))
    return [t.view(shape) for t, shape in zip(outputs, shapes)], result.stdout


def make_inputs(x_shape, out_shape, dtype, bias):
    generator = torch.Generator().manual_seed(0)
    (p, q), (m, n) = x_shape[-2:], out_shape

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=generator, dtype=torch.float64) * scale).to(dtype)

    inputs = (rand(*x_shape), rand(m, p, scale=p**-0.5), rand(n, q, scale=q**-0.5), rand(m, n) if bias else None)
    return inputs, rand(x_shape[0], m, n)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_fused_kernels_match_reference(emulator, tmp_path, case):
    x_shape, out_shape, dtype, activation, bias, mask, right_first, multiprocessors = case
    inputs, grad_y = make_inputs(x_shape, out_shape, dtype, bias)
    (y, *grads), _ = run_emulated(emulator, tmp_path, inputs, grad_y, activation, mask, right_first, multiprocessors)

    expected_y = reference.bilinear(*(t.double() if t is not None else None for t in inputs), activation=activation)
    tolerances = bilinear_tolerances(dtype, *inputs[:3], grad_y)
    torch.testing.assert_close(y.double(), expected_y, **tolerances[0])
    all_grads = gradients_from_saved_output(inputs, activation, grad_y, y)
    wanted = [k for k in range(len(all_grads)) if mask[k] == "1"]
    for grad, k in zip(grads, wanted):
        expected = all_grads[k]
        torch.testing.assert_close(grad.double(), expected, **tolerances[1 + k], msg=lambda text: f"{'XUVB'[k]}: {text}")


def test_gradients_are_bit_identical_run_to_run(emulator, tmp_path):
    # Block-order reductions without atomics: the same inputs give the same bits, even with the
    # blocks' threads interleaved differently by the OS scheduler from one run to the next.
    inputs, grad_y = make_inputs((200, 12, 10), (7, 9), torch.float32, True)
    first, _ = run_emulated(emulator, tmp_path, inputs, grad_y, "sigmoid", "1111", True, 5)
    second, _ = run_emulated(emulator, tmp_path, inputs, grad_y, "sigmoid", "1111", True, 5)
    for a, b in zip(first, second):
        assert torch.equal(a.view(torch.uint8), b.view(torch.uint8))


@pytest.mark.parametrize("side,dtype,fused", [(64, torch.float32, True), (64, torch.float64, False), (128, torch.float32, False)])
def test_plan_falls_back_to_gemms_when_shared_memory_is_too_small(emulator, tmp_path, side, dtype, fused):
    # 64×64 → 64×64 in float32 fits an H100's 227 KiB of shared memory per block; float64, or 128
    # on a side, does not, and the planner says so (the operators then use the batched-GEMM path).
    inputs, grad_y = make_inputs((2, side, side), (side, side), dtype, True)
    result_ok = True
    try:
        _, stdout = run_emulated(emulator, tmp_path, inputs, grad_y, "sigmoid", "1111", True, 3)
    except AssertionError as error:
        result_ok, stdout = False, str(error)
    assert result_ok == fused
    assert f"backward: supported {int(fused)}" in stdout


@pytest.fixture(scope="module")
def race_checked_emulator(tmp_path_factory):
    """run_fused_bilinear built with ThreadSanitizer, which reports two threads of a block touching
    the same shared-memory entry without a barrier between them (a missing __syncthreads)."""
    program = tmp_path_factory.mktemp("cuda_emulation_tsan") / "run_fused_bilinear"
    probe = subprocess.run([CXX, "-fsanitize=thread", "-x", "c++", "-", "-o", str(program)], input="int main() {}",
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the C++ compiler has no ThreadSanitizer")
    run([CXX, "-std=c++20", "-O1", "-g", "-fsanitize=thread", "-pthread", "-x", "c++", "-DMATNET_CUDA_EMULATION",
         f"-I{ROOT / 'csrc/cuda'}", f"-I{CUDA_HOME / 'include'}", "-include",
         ROOT / "tests/cuda_emulation/emulated_runtime.h", ROOT / "csrc/cuda/fused_forward.cu",
         ROOT / "csrc/cuda/fused_backward.cu", ROOT / "tests/cuda_emulation/run_fused_bilinear.cpp", "-o", program])
    return program


@pytest.mark.parametrize("mask,right_first", [("1111", True), ("1111", False), ("0110", True), ("1001", False)])
def test_no_shared_memory_races(race_checked_emulator, tmp_path, mask, right_first):
    inputs, grad_y = make_inputs((30, 12, 10), (7, 9), torch.float32, True)
    # run_emulated fails on a non-zero exit, which ThreadSanitizer gives on a report.
    (y, *grads), _ = run_emulated(race_checked_emulator, tmp_path, inputs, grad_y, "tanh", mask, right_first, 2)
    assert torch.isfinite(y).all() and all(torch.isfinite(g).all() for g in grads)
