"""A standing fuzz campaign for matnet_torch.bilinear and matnet_torch.multi_bilinear on the CPU.

    python tools/fuzz_operators.py                          # 100000 valid and 10000 invalid cases
    python tools/fuzz_operators.py --valid 2000 --invalid 500 --seed 7

Valid cases draw the operator, the shapes (empty batches, no batch dimension, several leading
dimensions, 1×1 matrices, now and then sizes that reach the GEMM path), the layouts (contiguous,
transposed, strided, stride-0 batch), the dtype (float32, float64, bfloat16, float16), the
activation, a bias or none, which inputs need gradients, and the CPU kernel variant (every one
``supported_cpu_capabilities`` lists).
Forward and backward are compared with the float64 reference (matnet_torch.reference) within

    |y − y_ref| ≤ γ_K (|U| |X| |V|ᵀ + |B|) + c u (1 + |y_ref|)           (forward)
    |g − g_ref| ≤ the identity layer's backward on |X|, |U|, |V|, |B| fed with |G| · E    (gradients)

with u the unit roundoff of the dtype (float32's for bfloat16 and float16, computed in float32),
γ_K = K u / (1 − K u) the bound of a sum of K rounded terms (Higham, Accuracy and Stability, 3.1),
K = 2 (p + q + m + n + N + 4) (the longest chain of sums of the forward or a gradient, N the batch
size, doubled because the float64 reference rounds too),
c = 8 for the activation's own evaluation (a few ulp: design.md), and
E = γ_K + c u + 2 · (the forward's bound): the relative error of ∂L/∂Z = G ⊙ σ'(y), σ' computed
from the kernel's y (|σ'| ≤ 1 and |dσ'/dy| ≤ 2 for every activation); at a ReLU kink within the
forward's bound σ' may be either 0 or 1, so E = 1 there.
bfloat16 and float16 inputs are widened to float32, computed as float32 and each output (y and every
gradient) rounded once to 16 bits (docs/design.md, Precision); the reference runs on the same 16-bit
values widened exactly to float64. Rounding w to 16 bits moves it by at most u₁₆ · max(|w|, tiny₁₆)
(u₁₆ = eps/2: 2⁻⁸ bfloat16, 2⁻¹¹ float16; tiny₁₆ the smallest normal number, below which the
spacing is fixed), and |w| ≤ |w_ref| + b with b the float32 bound above, so a 16-bit output's bound is

    b + u₁₆ · max(|w_ref| + b, tiny₁₆)

(the tests' rounded_once_tolerance takes eps for this term; the script uses the half ulp, tighter).
The gradients' bound uses the 16-bit forward bound for y, since σ' is taken from the rounded output.
Invalid cases corrupt one argument of a valid case (shape, a dtype without a kernel or not x's,
device, activation, list lengths, leading dimensions); each must raise an error of one line naming
the operator and the argument.

Cases run in batches in child processes, so a crash is counted (the case it happened in is reported)
and the campaign goes on (--jobs children at a time). Prints the counts of crashes, wrong values,
invalid inputs accepted and unclear errors, with the first reports of each (--show), running counts
after each batch (a partial result if stopped early) and how to replay one (--case).
"""
import argparse
import json
import math
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Tuple

import torch

import matnet_torch
from matnet_torch import reference

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu")
DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
HALF_DTYPES = (torch.bfloat16, torch.float16)  # computed in float32, each output rounded once
ACTIVATION_ULPS = 8  # c: the activations' own evaluation error, in units of roundoff (a few ulp)
KINDS = ("valid", "invalid")


class Case:
    """One random case: its tensors and how to call the operator (``draw``)."""

    def __init__(self, kind: str, seed: int, index: int):
        self.kind, self.index = kind, index
        self.rng = torch.Generator().manual_seed(hash((seed, KINDS.index(kind), index)) % (2**63))
        self.notes: List[str] = []

    def integer(self, low: int, high: int) -> int:
        """Uniform in [low, high]."""
        return int(torch.randint(low, high + 1, (), generator=self.rng))

    def choice(self, options):
        return options[self.integer(0, len(options) - 1)]

    def chance(self, probability: float) -> bool:
        return float(torch.rand((), generator=self.rng)) < probability


def laid_out(case: Case, tensor: torch.Tensor, allow_expanded: bool) -> torch.Tensor:
    """``tensor``'s values in a random memory layout."""
    layout = case.choice(["contiguous", "contiguous", "transposed", "strided", "expanded"] if allow_expanded
                         else ["contiguous", "contiguous", "transposed", "strided"])
    case.notes.append(layout)
    if layout == "transposed" and tensor.dim() >= 2:
        return tensor.mT.contiguous().mT
    if layout == "strided":
        wide = torch.zeros(*tensor.shape[:-1], 2 * tensor.shape[-1], dtype=tensor.dtype)
        wide[..., ::2] = tensor
        return wide[..., ::2]
    if layout == "expanded" and tensor.dim() >= 3 and tensor.shape[0] > 0:
        return tensor[:1].expand(tensor.shape)
    return tensor


def draw_valid(case: Case) -> Dict:
    """Operator, inputs (float, some needing gradients), activation and CPU variant of a valid case."""
    operator = case.choice(["bilinear", "multi_bilinear"])
    dtype = case.choice(DTYPES)

    def drawn(*shape, scale: float = 1.0) -> torch.Tensor:  # standard normal · scale, rounded once to dtype
        return (torch.randn(*shape, generator=case.rng, dtype=torch.float64) * scale).to(dtype)

    large = case.chance(0.02)  # sizes that take the GEMM path
    size = (lambda: case.integer(1, 32)) if large else (lambda: case.choice([1, 1, 2, 3, 4, 5, 7, 9]))
    leading = [case.choice([0, 1, 2, 3, 5, 8]) for _ in range(case.integer(0, 2))]
    if large and leading:
        leading[0] = case.integer(64, 200)
    m, n = size(), size()
    inputs = case.integer(1, 3) if operator == "multi_bilinear" else 1
    xs, us, vs = [], [], []
    for _ in range(inputs):
        p, q = size(), size()
        xs.append(laid_out(case, drawn(*leading, p, q), True))
        us.append(laid_out(case, drawn(m, p, scale=1 / math.sqrt(p)), False))
        vs.append(laid_out(case, drawn(n, q, scale=1 / math.sqrt(q)), False))
    bias = laid_out(case, drawn(m, n), False) if case.chance(0.5) else None
    for tensor in [*xs, *us, *vs, *([bias] if bias is not None else [])]:
        tensor.requires_grad_(case.chance(0.8))
    capabilities = matnet_torch.supported_cpu_capabilities()
    return dict(operator=operator, xs=xs, us=us, vs=vs, bias=bias, activation=case.choice(ACTIVATIONS),
                capability=case.choice(capabilities), generator=case.rng)


def call(spec: Dict) -> torch.Tensor:
    if spec["operator"] == "bilinear":
        return matnet_torch.bilinear(spec["xs"][0], spec["us"][0], spec["vs"][0], spec["bias"], spec["activation"])
    return matnet_torch.multi_bilinear(spec["xs"], spec["us"], spec["vs"], spec["bias"], spec["activation"])


def leaves(spec: Dict) -> List[torch.Tensor]:
    return [*spec["xs"], *spec["us"], *spec["vs"], *([spec["bias"]] if spec["bias"] is not None else [])]


def identity_layer(tensors: List[torch.Tensor], inputs: int, has_bias: bool) -> torch.Tensor:
    """Σ_j U_j X_j V_jᵀ + B of the float64 reference, from the flat list ``leaves`` returns."""
    xs, us, vs = tensors[:inputs], tensors[inputs:2 * inputs], tensors[2 * inputs:3 * inputs]
    return reference.multi_bilinear(xs, us, vs, tensors[-1] if has_bias else None, "identity")


def rounded_once(dtype: torch.dtype, bound: torch.Tensor, reference_value: torch.Tensor) -> torch.Tensor:
    """The bound of a float32 result within ``bound`` of ``reference_value`` after one rounding to
    ``dtype``: + u₁₆ · max(|w_ref| + bound, tiny₁₆) for bfloat16 and float16, unchanged otherwise."""
    if dtype not in HALF_DTYPES:
        return bound
    info = torch.finfo(dtype)
    return bound + info.eps / 2 * torch.clamp(reference_value.detach().abs() + bound, min=info.tiny)


def check_valid(spec: Dict) -> Optional[str]:
    """None if forward and backward agree with the reference within the bounds, else what differs."""
    matnet_torch.set_cpu_capability(spec["capability"])
    inputs, has_bias = len(spec["xs"]), spec["bias"] is not None
    flat = leaves(spec)
    y = call(spec)
    exact = [t.detach().double().requires_grad_(t.requires_grad) for t in flat]
    z_ref = identity_layer(exact, inputs, has_bias)
    y_ref = reference.activation_function(spec["activation"])(z_ref)
    if y.shape != y_ref.shape or y.dtype != flat[0].dtype:
        return f"output shape {list(y.shape)} / dtype {y.dtype}, expected {list(y_ref.shape)} / {flat[0].dtype}"
    half = y.dtype in HALF_DTYPES
    roundoff = torch.finfo(torch.float32 if half else y.dtype).eps / 2
    x_shape = spec["xs"][0].shape
    batch = math.prod(x_shape[:-2])
    chain = 2 * (sum(x.shape[-2] + x.shape[-1] for x in spec["xs"]) + y.shape[-2] + y.shape[-1] + batch + 4)
    gamma = chain * roundoff / (1 - chain * roundoff)
    activation_error = 0.0 if spec["activation"] in ("identity", "relu") else ACTIVATION_ULPS * roundoff
    with torch.no_grad():
        magnitude = identity_layer([t.detach().double().abs() for t in flat], inputs, has_bias)
        y_bound = rounded_once(y.dtype, gamma * magnitude + activation_error * (1 + y_ref.abs()), y_ref)
        y_error = (y.double() - y_ref).abs()
    if not bool((y_error <= y_bound).all()):
        worst = int((y_error - y_bound).argmax())
        return f"forward: |y - y_ref| = {y_error.flatten()[worst]:.3g} > bound {y_bound.flatten()[worst]:.3g}"
    wanted = [i for i, t in enumerate(flat) if t.requires_grad]
    if not wanted:
        return None
    g = torch.randn(y.shape, generator=spec["generator"], dtype=torch.float64).to(y.dtype)
    grads = torch.autograd.grad(y, [flat[i] for i in wanted], g, allow_unused=True)
    grads_ref = torch.autograd.grad(y_ref, [exact[i] for i in wanted], g.double(), allow_unused=True)
    with torch.no_grad():
        derivative_error = gamma + activation_error + 2 * y_bound
        if spec["activation"] == "relu":  # a kink within the forward's bound: σ' may be 0 or 1
            derivative_error = torch.where(z_ref.detach().abs() <= y_bound, torch.ones_like(y_bound), derivative_error)
    absolute = [t.detach().double().abs().requires_grad_() for t in flat]
    bounds = torch.autograd.grad(identity_layer(absolute, inputs, has_bias), [absolute[i] for i in wanted],
                                 g.double().abs() * derivative_error, allow_unused=True)
    names = [f"xs[{j}]" for j in range(inputs)] + [f"us[{j}]" for j in range(inputs)] + [f"vs[{j}]" for j in range(inputs)] + ["bias"]
    for i, grad, grad_ref, bound in zip(wanted, grads, grads_ref, bounds):
        grad = torch.zeros_like(flat[i]) if grad is None else grad
        grad_ref = torch.zeros_like(exact[i]) if grad_ref is None else grad_ref
        bound = rounded_once(grad.dtype, torch.zeros_like(exact[i]) if bound is None else bound, grad_ref)
        if grad.shape != flat[i].shape:
            return f"gradient of {names[i]}: shape {list(grad.shape)}, expected {list(flat[i].shape)}"
        error = (grad.double() - grad_ref).abs()
        if not bool((error <= bound).all()):
            worst = int((error - bound).argmax())
            return f"gradient of {names[i]}: error {error.flatten()[worst]:.3g} > bound {bound.flatten()[worst]:.3g}"
    return None


def draw_invalid(case: Case) -> Tuple[Dict, str]:
    """A valid case with one argument corrupted, and the name the error must mention."""
    spec = draw_valid(case)
    multi = spec["operator"] == "multi_bilinear"
    j = case.integer(0, len(spec["xs"]) - 1)
    name = (lambda base: f"{base}[{j}]" if multi else base[:-1])  # "xs" -> "xs[j]" or "x"
    x, u, v = spec["xs"][j], spec["us"][j], spec["vs"][j]
    corruptions: List[Tuple[str, Callable[[], str]]] = []

    def put(key: str, tensor) -> None:
        spec[key] = [*spec[key][:j], tensor, *spec[key][j + 1:]]

    def x_dims():
        put("xs", torch.randn(x.shape[-1], dtype=x.dtype) if case.chance(0.5) else torch.tensor(1.0, dtype=x.dtype))
        return name("xs")

    def x_inner():
        put("xs", torch.randn(*x.shape[:-2], x.shape[-2] + 1, x.shape[-1], dtype=x.dtype))
        return name("us") + "|" + name("xs")

    def u_dims():
        put("us", torch.randn(*u.shape, 1, dtype=u.dtype) if case.chance(0.5) else torch.randn(u.shape[0], dtype=u.dtype))
        return name("us")

    def v_columns():
        put("vs", torch.randn(v.shape[0], v.shape[1] + 1, dtype=v.dtype))
        return name("vs") + "|" + name("xs")

    def wrong_dtype():  # no kernel for it: integer, boolean, complex, 8-bit float
        key = case.choice(["xs", "us", "vs"])
        bad = case.choice([torch.int32, torch.int64, torch.complex64, torch.bool, torch.float8_e4m3fn])
        put(key, spec[key][j].detach().to(bad))
        return name(key) + ("|" + name("xs") if key != "xs" else "")

    def mixed_dtype():  # a dtype with a kernel, but not x's (bfloat16 x with float32 u, ...)
        key = case.choice(["xs", "us", "vs"])
        put(key, spec[key][j].detach().to(case.choice([d for d in DTYPES if d != x.dtype])))
        return name(key) + ("|" + name("xs") if key != "xs" else "")

    def wrong_device():
        key = case.choice(["xs", "us", "vs"])
        put(key, spec[key][j].detach().to("meta"))
        return name(key) + ("|" + name("xs") if key != "xs" else "")

    def bias_shape():
        m, n = u.shape[0], v.shape[0]
        spec["bias"] = torch.randn(*case.choice([(m + 1, n), (m, n + 1), (m * n,), (1, m, n)]), dtype=x.dtype)
        return "bias"

    def bias_dtype():
        spec["bias"] = torch.randn(u.shape[0], v.shape[0]).to(case.choice([d for d in DTYPES if d != x.dtype]))
        return "bias"

    def activation():
        spec["activation"] = case.choice(["gelu", "", "Sigmoid", "relu ", "softmax", "tan"])
        return "activation"

    corruptions += [("x_dims", x_dims), ("x_inner", x_inner), ("u_dims", u_dims), ("v_columns", v_columns),
                    ("dtype", wrong_dtype), ("mixed_dtype", mixed_dtype), ("device", wrong_device),
                    ("bias_shape", bias_shape), ("bias_dtype", bias_dtype), ("activation", activation)]

    if multi:
        def list_lengths():
            key = case.choice(["us", "vs"])
            spec[key] = spec[key] + [spec[key][0]] if case.chance(0.5) else spec[key][:-1]
            return "xs|us|vs|" + key

        def empty_lists():
            spec["xs"], spec["us"], spec["vs"] = [], [], []
            return "xs"

        def leading_dims():
            other = torch.randn(x.shape[-2], x.shape[-1], dtype=x.dtype) if x.dim() > 2 else torch.randn(3, *x.shape, dtype=x.dtype)
            spec["xs"] = spec["xs"] + [other]
            spec["us"], spec["vs"] = spec["us"] + [u.detach()], spec["vs"] + [v.detach()]
            return f"xs[{len(spec['xs']) - 1}]|xs[0]"

        corruptions += [("list_lengths", list_lengths), ("empty_lists", empty_lists), ("leading_dims", leading_dims)]
    label, corrupt = case.choice(corruptions)
    case.notes.append(label)
    return spec, corrupt()


def check_invalid(spec: Dict, expected_name: str) -> Tuple[str, Optional[str]]:
    """("ok", None), ("accepted", what ran) or ("unclear", the message)."""
    matnet_torch.set_cpu_capability(spec["capability"])
    try:
        y = call(spec)
        if y.requires_grad:
            y.sum().backward()
    except Exception as error:  # every error a user can see counts here
        message = str(error)
        names = expected_name.split("|")
        named = any(re.search(r"(?<![\w\[])" + re.escape(n) + r"(?![\w\]])", message) for n in names)
        if "\n" in message.strip() or "bilinear" not in message or not named:
            return "unclear", f"{type(error).__name__}: {message!r} (expected it to name {expected_name})"
        return "ok", None
    return "accepted", f"no error (expected one naming {expected_name})"


def run_case(kind: str, seed: int, index: int) -> Tuple[str, Optional[str], str]:
    """(result, detail, notes) of one case, run in this process."""
    case = Case(kind, seed, index)
    if kind == "valid":
        spec = draw_valid(case)
        detail = check_valid(spec)
        result = "ok" if detail is None else "wrong"
    else:
        spec, expected_name = draw_invalid(case)
        result, detail = check_invalid(spec, expected_name)
    description = (f"{spec['operator']} {spec['capability']} {spec['activation']!r} "
                   f"xs {[list(x.shape) for x in spec['xs']]} us {[list(u.shape) for u in spec['us']]} "
                   f"vs {[list(v.shape) for v in spec['vs']]} bias {None if spec['bias'] is None else list(spec['bias'].shape)} "
                   f"{spec['xs'][0].dtype if spec['xs'] else ''} {' '.join(case.notes)}")
    return result, detail, description


def child(kind: str, seed: int, start: int, count: int) -> None:
    """Runs cases [start, start + count) and prints one JSON line per case as it completes."""
    torch.set_num_threads(1)
    for index in range(start, start + count):
        print(f"start {index}", flush=True)
        result, detail, description = run_case(kind, seed, index)
        print(json.dumps({"index": index, "result": result, "detail": detail, "case": description}), flush=True)


def run_range(kind: str, seed: int, start: int, stop: int) -> Tuple[List[Dict], List[str]]:
    """Runs cases [start, stop) in child processes, a new one after each crash; (reports, crash lines)."""
    reports: List[Dict] = []
    crashes: List[str] = []
    index = start
    while index < stop:
        command = [sys.executable, __file__, "--child", kind, str(seed), str(index), str(stop - index)]
        process = subprocess.run(command, capture_output=True, text=True)
        started, finished = None, index
        for line in process.stdout.splitlines():
            if line.startswith("start "):
                started = int(line.split()[1])
                continue
            reports.append(json.loads(line))
            finished = reports[-1]["index"] + 1
        if process.returncode != 0:  # a crash (or an uncaught error) in the case after the last finished one
            crashed = started if started is not None and started >= finished else finished
            crashes.append(f"{kind} case {crashed}: crash: exit status {process.returncode}: "
                           f"{process.stderr.strip()[-500:]}")
            finished = crashed + 1
        index = finished
    return reports, crashes


def campaign(kind: str, total: int, seed: int, batch: int, show: int, jobs: int) -> Dict[str, int]:
    """Runs ``total`` cases of ``kind`` in child processes of ``batch`` cases, ``jobs`` at a time; the
    counts by result. Prints the first ``show`` reports of each failure and the counts after each batch."""
    counts: Dict[str, int] = {}
    shown: Dict[str, int] = {}
    ranges = [(start, min(start + batch, total)) for start in range(0, total, batch)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # threads only wait on the child processes
        results = pool.map(lambda bounds: run_range(kind, seed, *bounds), ranges)
        for (start, stop), (reports, crashes) in zip(ranges, results):
            for report in reports:
                counts[report["result"]] = counts.get(report["result"], 0) + 1
                if report["result"] != "ok" and shown.get(report["result"], 0) < show:
                    shown[report["result"]] = shown.get(report["result"], 0) + 1
                    print(f"{kind} case {report['index']}: {report['result']}: {report['detail']}\n"
                          f"    {report['case']}", flush=True)
            counts["crash"] = counts.get("crash", 0) + len(crashes)
            for line in crashes:
                print(line, flush=True)
            print(f"  {kind}: cases 0-{stop - 1} of {total} done: {summary(counts)}", flush=True)
    return counts


def summary(counts: Dict[str, int]) -> str:
    return ", ".join(f"{result} {count}" for result, count in sorted(counts.items()) if count)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Replay one case: --case KIND INDEX.")
    parser.add_argument("--valid", type=int, default=100_000, help="valid cases (default: 100000)")
    parser.add_argument("--invalid", type=int, default=10_000, help="invalid cases (default: 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the campaign (default: 0)")
    parser.add_argument("--batch", type=int, default=2000, help="cases per child process (default: 2000)")
    parser.add_argument("--jobs", type=int, default=1, help="child processes at a time (default: 1)")
    parser.add_argument("--show", type=int, default=10, help="reports printed per kind of failure (default: 10)")
    parser.add_argument("--case", nargs=2, metavar=("KIND", "INDEX"), help="run one case here and print its result")
    args = parser.parse_args()
    if args.case:
        print(run_case(args.case[0], args.seed, int(args.case[1])))
        return 0
    totals = {}
    for kind, total in (("valid", args.valid), ("invalid", args.invalid)):
        counts = campaign(kind, total, args.seed, args.batch, args.show, args.jobs)
        totals[kind] = counts
        print(f"{kind}: {total} cases: {summary(counts)}", flush=True)
    valid, invalid = totals["valid"], totals["invalid"]
    crashes = valid.get("crash", 0) + invalid.get("crash", 0)
    print(f"fuzz (seed {args.seed}, {torch.__version__}, variants {', '.join(matnet_torch.supported_cpu_capabilities())}): "
          f"{args.valid} valid cases, {args.invalid} invalid; crashes {crashes}, wrong values {valid.get('wrong', 0)}, "
          f"invalid accepted {invalid.get('accepted', 0)}, unclear errors {invalid.get('unclear', 0)}")
    return 1 if crashes or valid.get("wrong", 0) or invalid.get("accepted", 0) or invalid.get("unclear", 0) else 0


if __name__ == "__main__":
    sys.exit(main())
