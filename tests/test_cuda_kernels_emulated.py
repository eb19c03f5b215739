"""The fused CUDA kernels and their launchers, run on CPU threads (tests/cuda_emulation) and compared
with the pure-PyTorch reference, so that their indexing, barriers, tile plans and block-order
reductions are tested on machines without a GPU, for one input (bilinear) and several inputs of mixed
sizes (multi_bilinear). The emulation runs each thread block as std::threads meeting at a barrier;
it does not model warps, timing or the GPU memory model, and it compiles the .cu files as host code,
so device exp/tanh and the ATen glue (csrc/cuda/bilinear_cuda.cpp) are not exercised: only the CUDA
tests on a GPU (test_bilinear.py, test_multi_bilinear.py, test_cuda_*.py) cover those."""
import math
import subprocess

import pytest
import torch

from matnet_torch import reference
from conftest import multi_bilinear_tolerances, multi_gradients_from_saved_output
from native_toolchain import CUDA_HOME, CXX, ROOT, run

pytestmark = pytest.mark.skipif(CUDA_HOME is None or CXX is None, reason="needs the CUDA headers and a C++ compiler")

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu"]  # the order of matnet::Activation
DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16", torch.bfloat16: "bfloat16"}

# (leading dims, inputs' (p, q, forward product order right-first), (m, n), dtype, activation, bias,
# gradient mask [dX_j…, dU_j…, dV_j…, dB], multiprocessors of the emulated device)
MNIST = [(28, 28, True)]
CASES = [
    ((33,), MNIST, (20, 20), torch.float32, "sigmoid", True, "1111", 3),
    ((33,), [(28, 28, False)], (20, 20), torch.float32, "tanh", False, "1111", 3),
    ((33,), MNIST, (20, 20), torch.float32, "relu", True, "1111", 3),
    ((33,), [(28, 28, False)], (20, 20), torch.float32, "identity", True, "1111", 3),
    ((33,), MNIST, (20, 20), torch.float16, "sigmoid", True, "1111", 3),
    ((33,), [(28, 28, False)], (20, 20), torch.bfloat16, "tanh", True, "1111", 3),
    ((33,), MNIST, (20, 20), torch.float64, "sigmoid", True, "1111", 3),
    ((5,), [(7, 6, False)], (4, 3), torch.float64, "tanh", True, "1111", 3),
    ((5,), [(7, 6, True)], (4, 3), torch.float64, "tanh", True, "1000", 3),
    ((5,), [(7, 6, True)], (4, 3), torch.float64, "tanh", True, "0110", 3),
    ((5,), [(7, 6, True)], (4, 3), torch.float64, "tanh", True, "0001", 3),
    ((5,), [(7, 6, False)], (4, 3), torch.float64, "sigmoid", False, "0100", 3),
    ((40,), [(3, 9, True)], (11, 2), torch.float32, "sigmoid", True, "1111", 3),
    ((9,), [(1, 1, False)], (1, 1), torch.float32, "identity", True, "1111", 3),
    # One multiprocessor: fewer blocks than tiles, so each block walks several tiles.
    ((300,), [(5, 4, True)], (3, 6), torch.float64, "relu", True, "1111", 1),
    ((100,), [(28, 28, False)], (20, 20), torch.float32, "sigmoid", True, "1111", 1),
    ((3,), [(64, 64, True)], (64, 64), torch.float32, "sigmoid", True, "1111", 3),
    ((21,), [(16, 16, True)], (10, 12), torch.bfloat16, "relu", False, "1111", 2),
    # Several inputs: the paper's super-resolution encoder (5 × 15×15 → 10×10), mixed sizes and
    # product orders, gradients wanted for some inputs only, 16-bit.
    ((33,), [(15, 15, True)] * 5, (10, 10), torch.float32, "sigmoid", True, "1" * 16, 3),
    ((70,), [(28, 28, True), (14, 14, False), (7, 7, True)], (10, 10), torch.float32, "tanh", True, "1" * 10, 2),
    ((50,), [(7, 6, False), (3, 5, True), (1, 8, False)], (4, 3), torch.float64, "relu", False, "1001100100", 1),
    ((20,), [(7, 6, True), (9, 2, False)], (4, 3), torch.float64, "sigmoid", True, "0010000", 3),
    ((33,), [(15, 15, False), (8, 8, True), (15, 15, True)], (10, 10), torch.float16, "sigmoid", True, "1" * 10, 3),
    ((33,), [(12, 10, True), (10, 12, False)], (9, 7), torch.bfloat16, "identity", True, "0110110", 2),
]


def case_id(case):
    leading, sizes, (m, n), dtype, activation, bias, mask, multiprocessors = case
    inputs = ",".join(f"{p}x{q}{'r' if right else 'l'}" for p, q, right in sizes)
    return (f"{'x'.join(map(str, leading))}-{inputs}-{m}x{n}-{DTYPE_NAMES[dtype]}-{activation}"
            f"-{'bias' if bias else 'nobias'}-mask{mask}-sm{multiprocessors}")


def build_emulator(directory, sanitize=False):
    """The run_fused_kernels program: the .cu files compiled as C++ over the emulated runtime."""
    program = directory / "run_fused_kernels"
    flags = ["-O1", "-g", "-fsanitize=thread"] if sanitize else ["-O1"]
    run([CXX, "-std=c++20", *flags, "-pthread", "-x", "c++", "-DMATNET_CUDA_EMULATION", f"-I{ROOT / 'csrc/cuda'}",
         f"-I{CUDA_HOME / 'include'}", "-include", ROOT / "tests/cuda_emulation/emulated_runtime.h",
         ROOT / "csrc/cuda/fused_forward.cu", ROOT / "csrc/cuda/fused_backward.cu",
         ROOT / "tests/cuda_emulation/run_fused_kernels.cpp", "-o", program])
    return program


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    return build_emulator(tmp_path_factory.mktemp("cuda_emulation"))


def run_emulated(emulator, tmp_path, operands, grad_y, activation, sizes, mask, multiprocessors):
    """(y, [requested gradients], the program's stdout) of the fused kernels under emulation;
    operands = (xs, us, vs, bias)."""
    xs, us, vs, bias = operands
    m, n = us[0].shape[0], vs[0].shape[0]
    batch = math.prod(xs[0].shape[:-2])
    dtype = xs[0].dtype
    in_file, out_file = tmp_path / "in.bin", tmp_path / "out.bin"
    tensors = [*xs, *us, *vs] + ([bias] if bias is not None else []) + [grad_y]
    in_file.write_bytes(b"".join(t.contiguous().view(torch.uint8).numpy().tobytes() for t in tensors))
    inputs = ",".join(f"{p}x{q}{'r' if right else 'l'}" for p, q, right in sizes)
    result = subprocess.run(
        [str(emulator), DTYPE_NAMES[dtype], str(ACTIVATIONS.index(activation)), str(batch), str(m), str(n), inputs,
         str(int(bias is not None)), mask, str(multiprocessors), str(in_file), str(out_file)],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    values = torch.frombuffer(bytearray(out_file.read_bytes()), dtype=dtype)
    shapes = [(batch, m, n)] + [t.shape for t, wanted in zip([*xs, *us, *vs], mask) if wanted == "1"]
    if mask[-1] == "1":
        shapes.append((m, n))
    outputs = list(torch.split(values, [math.prod(shape) for shape in shapes]))
    return [t.view(shape) for t, shape in zip(outputs, shapes)], result.stdout


def make_operands(leading, sizes, out_shape, dtype, bias):
    """Random (xs, us, vs, bias) and an output gradient, weights scaled like MatNetLayer's."""
    generator = torch.Generator().manual_seed(0)
    m, n = out_shape

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=generator, dtype=torch.float64) * scale).to(dtype)

    xs = [rand(*leading, p, q) for p, q, _ in sizes]
    us = [rand(m, p, scale=p**-0.5) for p, _, _ in sizes]
    vs = [rand(n, q, scale=q**-0.5) for _, q, _ in sizes]
    return (xs, us, vs, rand(m, n) if bias else None), rand(*leading, m, n)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_fused_kernels_match_reference(emulator, tmp_path, case):
    leading, sizes, out_shape, dtype, activation, bias, mask, multiprocessors = case
    operands, grad_y = make_operands(leading, sizes, out_shape, dtype, bias)
    (y, *grads), _ = run_emulated(emulator, tmp_path, operands, grad_y, activation, sizes, mask, multiprocessors)

    xs, us, vs, b = operands
    double = [[t.double() for t in list_] for list_ in (xs, us, vs)]
    expected_y = reference.multi_bilinear(*double, b.double() if b is not None else None, activation)
    y_tolerance, *grad_tolerances = multi_bilinear_tolerances(dtype, xs, us, vs, grad_y)
    torch.testing.assert_close(y.double(), expected_y, **y_tolerance)
    # Every gradient (dB even without a bias: its mask entry asks for Σ Δ), from the saved output.
    all_grads = multi_gradients_from_saved_output(xs, us, vs, torch.zeros(out_shape, dtype=dtype), activation, grad_y, y)
    wanted = [k for k in range(len(all_grads)) if mask[k] == "1"]
    for grad, k in zip(grads, wanted):
        torch.testing.assert_close(grad.double(), all_grads[k], **grad_tolerances[k], msg=lambda text: f"gradient {k}: {text}")


def test_gradients_are_bit_identical_run_to_run(emulator, tmp_path):
    # Block-order reductions without atomics: the same inputs give the same bits, even with the
    # blocks' threads interleaved differently by the OS scheduler from one run to the next.
    sizes = [(12, 10, True), (6, 9, False)]
    operands, grad_y = make_operands((200,), sizes, (7, 9), torch.float32, True)
    first, _ = run_emulated(emulator, tmp_path, operands, grad_y, "sigmoid", sizes, "1" * 7, 5)
    second, _ = run_emulated(emulator, tmp_path, operands, grad_y, "sigmoid", sizes, "1" * 7, 5)
    for a, b in zip(first, second):
        assert torch.equal(a.view(torch.uint8), b.view(torch.uint8))


@pytest.mark.parametrize("side,dtype,fused", [(64, torch.float32, True), (64, torch.float64, False), (128, torch.float32, False)])
def test_plan_falls_back_to_gemms_when_shared_memory_is_too_small(emulator, tmp_path, side, dtype, fused):
    # 64×64 → 64×64 in float32 fits an H100's 227 KiB of shared memory per block; float64, or 128
    # on a side, does not, and the planner says so (the operators then use the batched-GEMM path).
    sizes = [(side, side, True)]
    operands, grad_y = make_operands((2,), sizes, (side, side), dtype, True)
    result_ok = True
    try:
        _, stdout = run_emulated(emulator, tmp_path, operands, grad_y, "sigmoid", sizes, "1111", 3)
    except AssertionError as error:
        result_ok, stdout = False, str(error)
    assert result_ok == fused
    assert f"backward: supported {int(fused)}" in stdout


@pytest.fixture(scope="module")
def race_checked_emulator(tmp_path_factory):
    """run_fused_kernels built with ThreadSanitizer, which reports two threads of a block touching
    the same shared-memory entry without a barrier between them (a missing __syncthreads)."""
    directory = tmp_path_factory.mktemp("cuda_emulation_tsan")
    probe = subprocess.run([CXX, "-fsanitize=thread", "-x", "c++", "-", "-o", str(directory / "probe")],
                           input="int main() {}", capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the C++ compiler has no ThreadSanitizer")
    return build_emulator(directory, sanitize=True)


@pytest.mark.parametrize("sizes,mask", [
    ([(12, 10, True)], "1111"),
    ([(12, 10, False)], "1111"),
    ([(12, 10, True)], "0110"),
    ([(12, 10, False), (5, 7, True)], "1001011"),
    ([(12, 10, True), (5, 7, False), (3, 3, True)], "1" * 10),
], ids=["right", "left", "weights", "two-inputs", "three-inputs"])
def test_no_shared_memory_races(race_checked_emulator, tmp_path, sizes, mask):
    operands, grad_y = make_operands((30,), sizes, (7, 9), torch.float32, True)
    # run_emulated fails on a non-zero exit, which ThreadSanitizer gives on a report.
    (y, *grads), _ = run_emulated(race_checked_emulator, tmp_path, operands, grad_y, "tanh", sizes, mask, 2)
    assert torch.isfinite(y).all() and all(torch.isfinite(g).all() for g in grads)
