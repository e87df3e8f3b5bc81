"""Selective scans (neurofm.nn.scan): exact against the step-by-step recurrence.

Mamba-1's scan, through the fused C kernel and through PyTorch blocks, and Mamba-2's chunked
matrix-product scan are compared in float64 with ``selective_scan_sequential`` (values, final
state and every gradient), for several block sizes, odd lengths and widths (whole and partial
feature blocks of the kernel, one and several of its segments and threads), an initial state, the
output gate and extreme decays; the compiled-kernel path is checked with the kernels run
uncompiled (the real compiler is exercised by a slow test) and its fallback when the compiler
fails; the C kernel's build, its cache and its fallback without a compiler.
"""

import shutil
import warnings

import pytest
import torch
import torch.nn.functional as F

from neurofm.nn import cpu_kernels, mamba_kernels, scan
from neurofm.nn.scan import selective_scan, selective_scan_sequential, ssd_scan

NAMES = ["u", "delta", "A", "B", "C", "D", "h0"]


def scan_inputs(s=3, length=37, din=5, n=4, seed=0, dtype=torch.float64, decay_scale=4.0,
                delta_shift=0.0):
    gen = torch.Generator().manual_seed(seed)
    kw = {"dtype": dtype, "generator": gen}
    u = torch.randn(s, length, din, **kw)
    delta = torch.nn.functional.softplus(torch.randn(s, length, din, **kw) + delta_shift)
    A = -torch.rand(din, n, **kw) * decay_scale
    B = torch.randn(s, length, n, **kw)
    C = torch.randn(s, length, n, **kw)
    D = torch.randn(din, **kw)
    h0 = torch.randn(s, din, n, **kw)
    return [t.requires_grad_() for t in (u, delta, A, B, C, D, h0)]


def assert_matches_reference(run, inputs, atol=1e-6):
    """``run(*inputs)`` equals the sequential recurrence: outputs, final state and gradients."""
    y_ref, h_ref = selective_scan_sequential(*inputs)
    y, h = run(*inputs)
    torch.testing.assert_close(y, y_ref, atol=atol, rtol=0)
    torch.testing.assert_close(h, h_ref, atol=atol, rtol=0)
    weights = torch.randn_like(y)
    grads_ref = torch.autograd.grad((y_ref * weights).sum() + h_ref.sum(), inputs)
    grads = torch.autograd.grad((y * weights).sum() + h.sum(), inputs)
    for name, g, g_ref in zip(NAMES, grads, grads_ref):
        torch.testing.assert_close(g, g_ref, atol=atol, rtol=0, msg=f"gradient of {name}")


@pytest.fixture(params=["kernel", "blocks"])
def mamba1_path(request):
    """Run the test through the fused C kernel, then through the PyTorch blocks."""
    if request.param == "kernel":
        if shutil.which(cpu_kernels.compiler_name()) is None:
            pytest.skip("no C compiler")
        assert cpu_kernels.library() is not None, "a C compiler is there: the kernel must build"
    with cpu_kernels.enabled(request.param == "kernel"):
        yield request.param


@pytest.mark.parametrize("chunk", [None, 1, 8, 64])
@pytest.mark.parametrize("length", [1, 37])
def test_blocked_scan_matches_the_sequential_recurrence(chunk, length):
    inputs = scan_inputs(length=length)
    with cpu_kernels.enabled(False):
        assert_matches_reference(lambda *a: selective_scan(*a, chunk=chunk), inputs)


@pytest.mark.parametrize("din", [5, 16, 37])
@pytest.mark.parametrize("length", [1, 16, 37])
@pytest.mark.parametrize("threads", [1, 2])
def test_fused_kernel_matches_the_sequential_recurrence(din, length, threads, mamba1_path):
    """Partial, whole and several feature blocks of 16; one segment of 16 steps and several;
    the sequences split between threads (the per-thread gradient sums of A and D)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if mamba1_path == "kernel" and cpu_kernels.library().kernels_threaded():
            assert mamba_kernels._plan(3) == ((1, 1) if threads == 1 else (3, 2))
        assert_matches_reference(selective_scan, scan_inputs(length=length, din=din))
    finally:
        torch.set_num_threads(before)


def test_the_gate_matches_the_recurrence_times_silu(mamba1_path):
    """``z``: ``y * silu(z)``, with the gradient of ``z`` too."""
    *inputs, h0 = scan_inputs(length=37, din=21)
    z = torch.randn(3, 37, 21, dtype=torch.float64, requires_grad=True)
    y_ref, h_ref = selective_scan_sequential(*inputs, h0)
    y_ref = y_ref * F.silu(z)
    y, h = selective_scan(*inputs, h0, z=z)
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, h_ref, atol=1e-6, rtol=0)
    weights = torch.randn_like(y)
    leaves = [*inputs, h0, z]
    grads_ref = torch.autograd.grad((y_ref * weights).sum() + h_ref.sum(), leaves)
    grads = torch.autograd.grad((y * weights).sum() + h.sum(), leaves)
    for name, g, g_ref in zip([*NAMES, "z"], grads, grads_ref):
        torch.testing.assert_close(g, g_ref, atol=1e-6, rtol=0, msg=f"gradient of {name}")


def test_the_kernel_agrees_with_the_blocks_in_float32():
    """Same float32 inputs, the two paths: equal to float32 rounding (the kernel has its own
    vectorised exp)."""
    if shutil.which(cpu_kernels.compiler_name()) is None:
        pytest.skip("no C compiler")
    inputs = [t.detach().float().requires_grad_() for t in scan_inputs(s=4, length=45, din=40)]
    results = {}
    for on in (True, False):
        with cpu_kernels.enabled(on):
            y, h = selective_scan(*inputs)
            grads = torch.autograd.grad(y.square().sum() + h.sum(), inputs)
        results[on] = (y, h, *grads)
    for name, a, b in zip(["y", "h", *NAMES], results[True], results[False]):
        torch.testing.assert_close(a, b, atol=1e-5 * float(b.detach().abs().max()), rtol=1e-5,
                                   msg=name)


@pytest.mark.parametrize("dtype, fused", [(torch.float32, True), (torch.float64, True),
                                          (torch.bfloat16, False)])
def test_cpu_scans_of_float32_and_float64_take_the_kernel(dtype, fused):
    if shutil.which(cpu_kernels.compiler_name()) is None:
        pytest.skip("no C compiler")
    inputs = [t.detach().to(dtype).requires_grad_() for t in scan_inputs(length=5)]
    with cpu_kernels.enabled(True):
        y, _ = selective_scan(*inputs)
    assert (type(y.grad_fn).__name__ == "FusedSelectiveScanBackward") is fused
    with cpu_kernels.enabled(False):
        y, _ = selective_scan(*inputs)
    assert type(y.grad_fn).__name__ != "FusedSelectiveScanBackward"


def test_without_a_compiler_the_scan_warns_once_and_runs_in_pytorch(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setattr(cpu_kernels, "_STATE", {**cpu_kernels._STATE, "library": None,
                                                "tried": False, "enabled": True})
    inputs = scan_inputs(length=9)
    with pytest.warns(RuntimeWarning, match="no C compiler found.*NEUROFM_CPU_KERNEL=0"):
        assert_matches_reference(selective_scan, inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        selective_scan(*inputs)  # no second warning


def test_a_failing_build_names_the_compiler_error(monkeypatch, tmp_path):
    broken = tmp_path / "cc"
    broken.write_text("#!/bin/sh\necho 'cc: fatal error: out of disk' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("CC", str(broken))
    monkeypatch.setenv("NEUROFM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_kernels, "_STATE", {**cpu_kernels._STATE, "library": None,
                                                "tried": False, "enabled": True})
    with pytest.warns(RuntimeWarning, match="building it failed.*out of disk"):
        assert cpu_kernels.library() is None
    assert not list((tmp_path / "cache" / "kernels").glob("*.so"))  # no half-written library


def test_the_built_library_is_cached_per_source_compiler_and_cpu(monkeypatch, tmp_path):
    if shutil.which(cpu_kernels.compiler_name()) is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("NEUROFM_CACHE", str(tmp_path))
    fresh = {**cpu_kernels._STATE, "library": None, "tried": False, "enabled": True}
    monkeypatch.setattr(cpu_kernels, "_STATE", dict(fresh))
    assert cpu_kernels.library() is not None
    built = list((tmp_path / "kernels").glob("neurofm_kernels-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    monkeypatch.setattr(cpu_kernels, "_STATE", dict(fresh))  # a new process: loads, no rebuild
    assert cpu_kernels.library() is not None
    assert built[0].stat().st_mtime_ns == stamp
    assert list((tmp_path / "kernels").iterdir()) == built  # no temporary files left


def test_a_library_without_openmp_runs_single_threaded_with_the_same_results(monkeypatch,
                                                                             tmp_path):
    """The last flag set (no OpenMP, e.g. Apple's clang): one slice, exact all the same."""
    if shutil.which(cpu_kernels.compiler_name()) is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("NEUROFM_CACHE", str(tmp_path))
    monkeypatch.setattr(cpu_kernels, "FLAG_SETS", cpu_kernels.FLAG_SETS[-1:])
    monkeypatch.setattr(cpu_kernels, "_STATE", {**cpu_kernels._STATE, "library": None,
                                                  "tried": False, "enabled": True})
    assert "-fopenmp" not in cpu_kernels.FLAG_SETS[0]
    assert cpu_kernels.library().kernels_threaded() == 0
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert mamba_kernels._plan(3) == (1, 1)
        assert_matches_reference(selective_scan, scan_inputs(length=20, din=20))
    finally:
        torch.set_num_threads(before)


def test_blocked_scan_without_initial_state_and_unused_final_state(mamba1_path):
    u, delta, A, B, C, D, _ = scan_inputs(length=20)
    y_ref, _ = selective_scan_sequential(u, delta, A, B, C, D)
    y, _ = selective_scan(u, delta, A, B, C, D, chunk=6)
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=0)
    grads_ref = torch.autograd.grad(y_ref.square().sum(), [u, delta, A, B, C, D])
    grads = torch.autograd.grad(y.square().sum(), [u, delta, A, B, C, D])
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("delta_shift, decay_scale", [(6.0, 100.0), (-12.0, 1e-3)])
def test_extreme_decays_stay_finite_and_exact_in_float32(delta_shift, decay_scale, mamba1_path):
    """Steps that wipe the state (|delta A| ~ 600) or barely decay: no overflow, float32 as exact
    as the float64 reference allows."""
    inputs = scan_inputs(length=50, delta_shift=delta_shift, decay_scale=decay_scale)
    y_ref, h_ref = selective_scan_sequential(*inputs)
    low = [t.detach().float() for t in inputs]
    y, h = selective_scan(*low)
    assert torch.isfinite(y).all() and torch.isfinite(h).all()
    scale = float(y_ref.detach().abs().max())
    torch.testing.assert_close(y.double(), y_ref, atol=1e-5 * scale, rtol=0)
    torch.testing.assert_close(h.double(), h_ref, atol=1e-5 * float(h_ref.detach().abs().max()),
                               rtol=0)


def test_compiled_kernels_match_the_recurrence(monkeypatch):
    """The kernels the compiled path uses, run uncompiled: padded to whole blocks, exact."""
    monkeypatch.setattr(scan, "_COMPILE", {"enabled": False, "kernels": None})
    monkeypatch.setattr(cpu_kernels, "_STATE", {**cpu_kernels._STATE, "enabled": False})
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    scan.set_compiled(True)
    assert_matches_reference(selective_scan, scan_inputs(length=scan.COMPILED_BLOCK * 2 + 3))


def test_a_failing_compiler_falls_back_to_the_eager_scan(monkeypatch):
    def broken_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no C++ compiler")
        return run

    monkeypatch.setattr(scan, "_COMPILE", {"enabled": False, "kernels": None})
    monkeypatch.setattr(cpu_kernels, "_STATE", {**cpu_kernels._STATE, "enabled": False})
    monkeypatch.setattr(torch, "compile", broken_compile)
    scan.set_compiled(True)
    inputs = scan_inputs(length=21)
    expected = selective_scan_sequential(*inputs)
    with pytest.warns(RuntimeWarning, match="runs eagerly"):
        y, _ = selective_scan(*inputs)
    torch.testing.assert_close(y, expected[0], atol=1e-6, rtol=0)
    assert scan._compiled_kernels() is None  # switched off after the failure
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        selective_scan(*inputs)  # no second warning


@pytest.mark.slow
def test_torch_compile_gives_the_eager_results(monkeypatch):
    """The real inductor build (tens of seconds): float32, two batch sizes, one graph."""
    monkeypatch.setattr(scan, "_COMPILE", {"enabled": False, "kernels": None})
    monkeypatch.setattr(cpu_kernels, "_STATE", {**cpu_kernels._STATE, "enabled": False})
    for s in (4, 3):
        inputs = [t.detach().float().requires_grad_() for t in scan_inputs(s=s, length=40)]
        scan.set_compiled(False)
        y_ref, h_ref = selective_scan(*inputs)
        grads_ref = torch.autograd.grad(y_ref.sum() + h_ref.sum(), inputs)
        scan.set_compiled(True)
        y, h = selective_scan(*inputs)
        grads = torch.autograd.grad(y.sum() + h.sum(), inputs)
        torch.testing.assert_close(y, y_ref, atol=1e-4, rtol=1e-4)
        for g, g_ref in zip(grads, grads_ref):
            torch.testing.assert_close(g, g_ref, atol=1e-3, rtol=1e-4)
    scan.set_compiled(False)


# -- Mamba-2 (scalar decay per head) ---------------------------------------------------------------
def ssd_inputs(s=3, length=37, heads=3, p=4, n=5, seed=0, delta_shift=0.0, decay_scale=4.0,
               dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    kw = {"dtype": dtype, "generator": gen}
    x = torch.randn(s, length, heads, p, **kw)
    dt = torch.nn.functional.softplus(torch.randn(s, length, heads, **kw) + delta_shift)
    A = -torch.rand(heads, **kw) * decay_scale
    B = torch.randn(s, length, n, **kw)
    C = torch.randn(s, length, n, **kw)
    D = torch.randn(heads, **kw)
    h0 = torch.randn(s, heads, p, n, **kw)
    return [t.requires_grad_() for t in (x, dt, A, B, C, D, h0)]


def ssd_reference(x, dt, A, B, C, D, h0):
    """The Mamba-1 recurrence with A, delta and D shared by the P channels of a head."""
    s, length, heads, p = x.shape
    n = B.shape[-1]
    y, h = selective_scan_sequential(
        x.reshape(s, length, heads * p), dt.repeat_interleave(p, -1),
        A.repeat_interleave(p)[:, None].expand(heads * p, n), B, C, D.repeat_interleave(p),
        h0.reshape(s, heads * p, n))
    return y.view(s, length, heads, p), h.view(s, heads, p, n)


@pytest.mark.parametrize("chunk", [1, 4, 16, 64])
@pytest.mark.parametrize("length", [1, 37])
@pytest.mark.parametrize("with_h0", [True, False])
def test_ssd_scan_matches_the_sequential_recurrence(chunk, length, with_h0):
    """Values, final state and gradients; without h0 a single chunk has nothing entering it."""
    inputs = ssd_inputs(length=length)
    if with_h0:
        y_ref, h_ref = ssd_reference(*inputs)
    else:
        *inputs, h0 = inputs
        y_ref, h_ref = ssd_reference(*inputs, torch.zeros_like(h0))
    y, h = ssd_scan(*inputs, chunk=chunk)
    torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, h_ref, atol=1e-6, rtol=0)
    weights = torch.randn_like(y)
    grads_ref = torch.autograd.grad((y_ref * weights).sum() + h_ref.sum(), inputs)
    grads = torch.autograd.grad((y * weights).sum() + h.sum(), inputs)
    for name, g, g_ref in zip(["x", "dt", "A", "B", "C", "D", "h0"], grads, grads_ref):
        torch.testing.assert_close(g, g_ref, atol=1e-6, rtol=0, msg=f"gradient of {name}")


@pytest.mark.parametrize("delta_shift, decay_scale", [(6.0, 100.0), (-12.0, 1e-3)])
def test_ssd_scan_extreme_decays_in_float32(delta_shift, decay_scale):
    inputs = ssd_inputs(length=70, delta_shift=delta_shift, decay_scale=decay_scale)
    y_ref, _ = ssd_reference(*inputs)
    y, h = ssd_scan(*[t.detach().float() for t in inputs], chunk=32)
    assert torch.isfinite(y).all() and torch.isfinite(h).all()
    torch.testing.assert_close(y.double(), y_ref, atol=1e-5 * float(y_ref.detach().abs().max()), rtol=0)
    x, dt, A, B, C, D, _ = (t.detach().float().requires_grad_() for t in inputs)
    y, _ = ssd_scan(x, dt, A, B, C, D, chunk=32)
    grads = torch.autograd.grad(y.square().sum(), [x, dt, A, B, C, D])
    assert all(torch.isfinite(g).all() for g in grads)


def test_gradients_keep_the_scan_precision_when_backward_runs_under_autocast(mamba1_path):
    """backward() called inside a bf16 autocast region still runs the scan's adjoint in float32."""
    inputs = [t.detach().float().requires_grad_() for t in scan_inputs(length=12)]
    y, h = selective_scan(*inputs)
    grads_ref = torch.autograd.grad(y.sum() + h.sum(), inputs)
    y, h = selective_scan(*inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        grads = torch.autograd.grad(y.sum() + h.sum(), inputs)
    for g, g_ref in zip(grads, grads_ref):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, g_ref, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("din", [5, 37])
def test_a_bf16_gate_gives_the_float32_scan_rounded_once_in_value_and_gradients(din,
                                                                                   mamba1_path):
    """bf16 autocast hands the scan a bfloat16 ``z``: ``y`` comes back in bfloat16, exactly the
    float32 scan with a float32 copy of ``z``, rounded once; so do the gradients (the kernel
    converts as it reads and writes, instead of separate casts)."""
    inputs = [t.detach().float() for t in scan_inputs(length=37, din=din)[:6]]
    z = torch.randn(3, 37, din).bfloat16()
    leaves = [t.clone().requires_grad_() for t in inputs] + [z.clone().requires_grad_()]
    y, _ = selective_scan(*leaves[:6], z=leaves[6])
    ref_leaves = [t.clone().requires_grad_() for t in inputs] + [z.float().requires_grad_()]
    y_ref, _ = selective_scan(*ref_leaves[:6], z=ref_leaves[6])
    assert y.dtype == torch.bfloat16
    assert torch.equal(y, y_ref.bfloat16())
    weights = torch.randn(y.shape).bfloat16()
    grads = torch.autograd.grad(y, leaves, weights)
    grads_ref = torch.autograd.grad(y_ref.bfloat16(), ref_leaves, weights)
    for name, g, g_ref in zip([*NAMES[:6], "z"], grads, grads_ref):
        assert g.dtype == (torch.bfloat16 if name == "z" else torch.float32), name
        assert torch.equal(g, g_ref.to(g.dtype)), f"gradient of {name}"
