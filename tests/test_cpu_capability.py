"""Choosing the CPU kernels: detection, MATNET_CPU_CAPABILITY, set_cpu_capability, clear errors, and
the GEMM path taken by every variant where a block of samples would not fit its scratch budget."""
import os
import subprocess
import sys

import pytest
import torch

import matnet_torch
from matnet_torch import reference
from conftest import CPU_CAPABILITIES

KNOWN = ("amx", "avx512", "avx2", "neon", "default")


def run_python(code, **env):
    """stdout and stderr of `python -c code` with the given environment variables set."""
    completed = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    return completed.returncode, completed.stdout.strip(), completed.stderr


def test_supported_capabilities_are_known_and_best_first():
    assert CPU_CAPABILITIES[-1] == "default"
    assert set(CPU_CAPABILITIES) <= set(KNOWN)
    assert CPU_CAPABILITIES == [name for name in KNOWN if name in CPU_CAPABILITIES]


def test_without_the_variable_the_best_supported_variant_runs():
    env = {k: v for k, v in os.environ.items() if k != "MATNET_CPU_CAPABILITY"}
    completed = subprocess.run(
        [sys.executable, "-c", "import matnet_torch; print(matnet_torch.cpu_capability())"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert completed.stdout.strip() == CPU_CAPABILITIES[0]


@pytest.mark.parametrize("name", CPU_CAPABILITIES)
def test_the_variable_forces_a_supported_variant(name):
    code = (
        "import torch, matnet_torch; print(matnet_torch.cpu_capability()); "
        "x = torch.rand(40, 6, 5); print(float(matnet_torch.bilinear(x, torch.rand(3, 6), torch.rand(4, 5)).sum()))"
    )
    returncode, out, err = run_python(code, MATNET_CPU_CAPABILITY=name)
    assert returncode == 0, err
    assert out.splitlines()[0] == name


def test_the_variable_with_an_unknown_name_is_a_clear_error():
    returncode, _, err = run_python("import matnet_torch; matnet_torch.cpu_capability()", MATNET_CPU_CAPABILITY="sse9")
    assert returncode != 0
    assert "MATNET_CPU_CAPABILITY must be one of amx, avx512, avx2, neon, default; got 'sse9'" in err


@pytest.mark.skipif(len(CPU_CAPABILITIES) == len(KNOWN), reason="this CPU supports every variant")
def test_the_variable_with_an_unsupported_variant_is_a_clear_error():
    unsupported = next(name for name in KNOWN if name not in CPU_CAPABILITIES)
    returncode, _, err = run_python(
        "import matnet_torch; matnet_torch.cpu_capability()", MATNET_CPU_CAPABILITY=unsupported
    )
    assert returncode != 0
    assert f"asks for the '{unsupported}' CPU kernels, which this CPU cannot run" in err


def test_set_cpu_capability_switches_and_rejects_unknown_names():
    previous = matnet_torch.cpu_capability()
    try:
        for name in CPU_CAPABILITIES:
            matnet_torch.set_cpu_capability(name)
            assert matnet_torch.cpu_capability() == name
        with pytest.raises(ValueError, match="set_cpu_capability must be one of amx, avx512, avx2, neon, default; got 'sve'"):
            matnet_torch.set_cpu_capability("sve")
        assert matnet_torch.cpu_capability() == CPU_CAPABILITIES[-1]
    finally:
        matnet_torch.set_cpu_capability(previous)


@pytest.mark.parametrize(
    "batch,p,q,m,n",
    [(2, 300, 200, 100, 50), (1, 513, 7, 3, 260), (70, 1, 600, 2, 1)],
    ids=["large-matrices", "one-tall-matrix", "wide-rows"],
)
def test_problems_beyond_the_lane_scratch_budget_are_correct(cpu_kernels, batch, p, q, m, n):
    """Large matrices take the GEMM path in every variant; the result must not notice."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, p, q, generator=generator, dtype=torch.float64).requires_grad_()
    u = (torch.randn(m, p, generator=generator, dtype=torch.float64) / p**0.5).requires_grad_()
    v = (torch.randn(n, q, generator=generator, dtype=torch.float64) / q**0.5).requires_grad_()
    bias = torch.randn(m, n, generator=generator, dtype=torch.float64).requires_grad_()
    y = matnet_torch.bilinear(x, u, v, bias, "tanh")
    expected = reference.bilinear(x, u, v, bias, "tanh")
    torch.testing.assert_close(y, expected)
    grad_y = torch.randn(y.shape, generator=generator, dtype=torch.float64)
    for grad, expected_grad in zip(
        torch.autograd.grad(y, (x, u, v, bias), grad_y), torch.autograd.grad(expected, (x, u, v, bias), grad_y)
    ):
        torch.testing.assert_close(grad, expected_grad)
