"""Fused C kernels of the Mamba-1 mixer on CPU (``mamba_kernels.c``), built at first use.

Two kernels, each with its backward, as :class:`torch.autograd.Function`:

- :class:`FusedSelectiveScan`, the selective scan with Mamba's ``D`` skip and ``silu(z)`` gate.
  The PyTorch scan (:func:`neurofm.nn.scan.selective_scan`'s blocks) is memory-bound: about 35
  passes over ``[S, L, N, Din]`` tensors per mixer, forward and backward. The kernel keeps the
  state of 16 features in the L1 cache while they go through time, so each input is read once
  and no such tensor is written; the adjoint recomputes each segment of :data:`SEGMENT` steps
  from the state saved where it starts (training memory: the inputs plus
  ``[S, L / SEGMENT, N, Din]``).
- :class:`FusedCausalConvSiLU`, the causal depthwise convolution and its SiLU in one pass
  (instead of ``K`` multiply-adds of shifted copies and the activation).

They need a C compiler (``$CC``, else ``cc``) and nothing else: no torch headers, so the build
takes about a second, once per machine and source version. The library is kept in
``$NEUROFM_CACHE/kernels`` (default ``~/.cache/neurofm/kernels``), keyed by the source, the flags,
the compiler and the CPU, so a home folder shared by different machines is safe; concurrent
processes (``torchrun``) each build to a temporary name and rename. The calls go through
:mod:`ctypes`; the kernels cut the sequences into slices that ``torch.get_num_threads()``
OpenMP threads take in turn. Inside a torch process the library binds to the OpenMP runtime
torch already loaded (the same ``libgomp.so.1``), so it shares torch's threads instead of
competing with them (a Python thread pool lost about a millisecond per call to torch's threads
spinning after each operation).

Where no compiler is found or the build fails, a warning says so (once) and PyTorch runs the
same computation: the same results up to float rounding. ``NEUROFM_CPU_KERNEL=0`` (or
:func:`set_enabled`) turns the kernels off. float32 and float64 on CPU only; other dtypes and
devices take the other paths.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

from neurofm.cache import cache_dir

SOURCE = Path(__file__).with_name("mamba_kernels.c")

#: Steps between the states saved for the adjoint (which recomputes the steps in between).
SEGMENT = 16

#: Compiler flags, tried in order: tuned for this CPU with OpenMP threads, portable with
#: OpenMP, portable single-threaded (e.g. a compiler without OpenMP, as Apple's clang).
FLAG_SETS = (
    ("-O3", "-march=native", "-fno-math-errno", "-fopenmp"),
    ("-O3", "-fno-math-errno", "-fopenmp"),
    ("-O3", "-fno-math-errno"),
)

_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_LOCK = threading.Lock()
_STATE = {
    "enabled": os.environ.get("NEUROFM_CPU_KERNEL", "1").strip().lower()
    not in ("0", "false", "no", "off"),
    "library": None,  # the loaded library (None: not built, or it cannot be)
    "tried": False,  # whether loading was attempted in this process
}


def kernel_dir() -> Path:
    """Folder of the built libraries: ``$NEUROFM_CACHE/kernels`` (default ``~/.cache/neurofm``)."""
    return cache_dir("kernels")


def set_enabled(enabled: bool = True) -> None:
    """Use the fused kernels for float32/float64 CPU tensors where they can be built (default
    on, unless ``NEUROFM_CPU_KERNEL=0``)."""
    _STATE["enabled"] = bool(enabled)


@contextmanager
def enabled(on: bool = True):
    """Within the block the kernels are on (or off); the previous setting returns after."""
    before = _STATE["enabled"]
    set_enabled(on)
    try:
        yield
    finally:
        set_enabled(before)


def usable(u: torch.Tensor) -> bool:
    """Whether a computation on ``u`` (its dtype and device) runs through the kernels."""
    if not _STATE["enabled"] or u.device.type != "cpu" or u.dtype not in _SUFFIX:
        return False
    return library() is not None


def library() -> ctypes.CDLL | None:
    """The loaded kernel library, building it on first use; None where it cannot be built."""
    if not _STATE["tried"]:
        with _LOCK:
            if not _STATE["tried"]:
                _STATE["library"] = _load()
                _STATE["tried"] = True
    return _STATE["library"]


def compiler_name() -> str:
    """The C compiler the kernel is built with: ``$CC``, else ``cc``."""
    return os.environ.get("CC") or "cc"


def build() -> Path:
    """Build the kernel library for this source, compiler and CPU unless it is in
    :func:`kernel_dir` already, and return its path (e.g. to build it into a Docker image).

    Tries :data:`FLAG_SETS` in order. Raises ``RuntimeError`` naming the compiler and its error
    when none works (or none is found)."""
    compiler = shutil.which(compiler_name())
    if compiler is None:
        raise RuntimeError(f"no C compiler found (looked for {compiler_name()!r}; install one or "
                           "set $CC)")
    version = subprocess.run([compiler, "--version"], check=False, capture_output=True,
                             text=True, timeout=60).stdout
    errors = []
    for flags in FLAG_SETS:
        path = kernel_dir() / f"mamba_kernels-{_build_key(version, flags)}.so"
        try:
            if not path.exists():
                _build(compiler, flags, path)
            ctypes.CDLL(str(path))  # loads: built for this machine
            return path
        except (OSError, subprocess.SubprocessError) as err:
            errors.append(f"{compiler} {' '.join(flags)}: {str(err).strip()[-300:]}")
    raise RuntimeError("building it failed (" + "; ".join(errors) + ")")


def _load() -> ctypes.CDLL | None:
    try:
        return _declare(ctypes.CDLL(str(build())))
    except RuntimeError as err:
        _warn(str(err))
        return None


def _warn(why: str) -> None:
    warnings.warn(f"The fused CPU kernels of the Mamba-1 mixer are unavailable: {why}. Its scan "
                  "and convolution run in PyTorch instead (same results, slower). Set "
                  "NEUROFM_CPU_KERNEL=0 to silence this.", RuntimeWarning, stacklevel=5)


def _build_key(compiler_version: str, flags: tuple[str, ...]) -> str:
    """Hash of the source, the flags, the compiler's version and the CPU."""
    digest = hashlib.sha256(SOURCE.read_bytes())
    for part in (" ".join(flags), compiler_version, platform.machine(), _cpu_flags()):
        digest.update(part.encode())
    return digest.hexdigest()[:20]


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _build(compiler: str, flags: tuple[str, ...], path: Path) -> None:
    """Compile to a temporary name beside ``path``, then rename (atomic: concurrent processes
    each build their own and the last rename wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=path.parent)
    os.close(fd)
    try:
        subprocess.run([compiler, *flags, "-shared", "-fPIC", "-o", tmp, str(SOURCE), "-lm"],
                       check=True, capture_output=True, text=True, timeout=300)
        os.replace(tmp, path)
    except subprocess.CalledProcessError as err:
        raise subprocess.SubprocessError(err.stderr or str(err)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, i = ctypes.c_void_p, ctypes.c_int64
    lib.kernels_threaded.argtypes = []
    for suffix in _SUFFIX.values():
        getattr(lib, f"scan_forward_{suffix}").argtypes = [p] * 11 + [i] * 7
        getattr(lib, f"scan_backward_{suffix}").argtypes = [p] * 18 + [i] * 7
        getattr(lib, f"conv_silu_forward_{suffix}").argtypes = [p] * 4 + [i] * 6
        getattr(lib, f"conv_silu_backward_{suffix}").argtypes = [p] * 7 + [i] * 6
    return lib


def _pointer(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


#: Slices of the sequences per thread: each thread takes the next slice when done, so a thread
#: slowed down by the machine holds none up.
PIECES_PER_THREAD = 4


def _plan(sequences: int) -> tuple[int, int]:
    """``(pieces, threads)``: the slices the sequences are cut into (one set of accumulators
    each) and the OpenMP threads that take them (``torch.get_num_threads()``; one where the
    library was built without OpenMP)."""
    threads = min(torch.get_num_threads(), sequences) if library().kernels_threaded() else 1
    threads = max(1, threads)
    return (1 if threads == 1 else min(sequences, PIECES_PER_THREAD * threads)), threads


def _run(name: str, dtype: torch.dtype, pointers: list, sizes: tuple, plan: tuple[int, int]):
    """Call kernel ``name`` (``pointers``, then ``sizes``, then ``plan``)."""
    if getattr(library(), f"{name}_{_SUFFIX[dtype]}")(*pointers, *sizes, *plan):
        raise MemoryError(f"{name}: out of memory for the kernel's work buffers")


class FusedSelectiveScan(torch.autograd.Function):
    """Mamba-1 scan through the C kernel: ``(u, delta, A, B, C, D, z, state) -> (y, last)``.

    ``u, delta [S, L, Din]``, ``A [Din, N]``, ``B, C [S, L, N]``, ``D [Din]``, ``z [S, L, Din]``
    or None, ``state [S, N, Din]`` (the initial state, features last). Returns
    ``y = (C . h + D u) * silu(z)`` ``[S, L, Din]`` (no gate when ``z`` is None) and the final
    state ``[S, N, Din]``. All of one dtype (float32 or float64), on CPU.
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, state):
        s, length, din = u.shape
        n = A.shape[1]
        u, delta, B, C, D, state = (v.contiguous() for v in (u, delta, B, C, D, state))
        z = None if z is None else z.contiguous()
        a_t = A.t().contiguous()
        y, last = torch.empty_like(u), torch.empty_like(state)
        saved = u.new_empty(s, -(-length // SEGMENT), n, din)
        ptrs = [_pointer(v) for v in (u, delta, a_t, B, C, D, z, state, y, last, saved)]
        _run("scan_forward", u.dtype, ptrs, (s, length, din, n, SEGMENT), _plan(s))
        ctx.save_for_backward(u, delta, a_t, B, C, D, z, saved)
        return y, last

    @staticmethod
    def backward(ctx, gy, g_last):
        u, delta, a_t, B, C, D, z, saved = ctx.saved_tensors
        s, length, din = u.shape
        n = a_t.shape[0]
        gy, g_last = gy.contiguous(), g_last.contiguous()
        gu, g_delta = torch.empty_like(u), torch.empty_like(u)
        gz = None if z is None else torch.empty_like(z)
        gB, gC = torch.empty_like(B), torch.empty_like(C)
        g_state = torch.empty_like(g_last)
        plan = _plan(s)
        g_a, g_d = a_t.new_zeros(plan[0], n, din), D.new_zeros(plan[0], din)  # one per slice
        ptrs = [_pointer(v) for v in (u, delta, a_t, B, C, D, z, saved, gy, g_last, gu, g_delta,
                                      gB, gC, gz, g_state, g_a, g_d)]
        _run("scan_backward", u.dtype, ptrs, (s, length, din, n, SEGMENT), plan)
        return gu, g_delta, g_a.sum(0).t(), gB, gC, g_d.sum(0), gz, g_state


class FusedCausalConvSiLU(torch.autograd.Function):
    """``silu(causal depthwise convolution)`` through the C kernel, channels last:
    ``(x [S, L, C], weight [C, 1, K], bias [C]) -> [S, L, C]``, as
    :func:`neurofm.models.mamba.causal_depthwise_conv` followed by ``F.silu``. One dtype
    (float32 or float64), on CPU."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        s, length, channels = x.shape
        x, bias = x.contiguous(), bias.contiguous()
        taps_t = weight[:, 0].t().contiguous()  # [K, C]
        out = torch.empty_like(x)
        _run("conv_silu_forward", x.dtype, [v.data_ptr() for v in (x, taps_t, bias, out)],
             (s, length, channels, taps_t.shape[0]), _plan(s))
        ctx.save_for_backward(x, taps_t, bias)
        return out

    @staticmethod
    def backward(ctx, g_out):
        x, taps_t, bias = ctx.saved_tensors
        s, length, channels = x.shape
        k = taps_t.shape[0]
        g_out = g_out.contiguous()
        g_x = torch.empty_like(x)
        plan = _plan(s)
        g_taps, g_bias = x.new_zeros(plan[0], k, channels), x.new_zeros(plan[0], channels)
        ptrs = [v.data_ptr() for v in (x, taps_t, bias, g_out, g_x, g_taps, g_bias)]
        _run("conv_silu_backward", x.dtype, ptrs, (s, length, channels, k), plan)
        return g_x, g_taps.sum(0).t().unsqueeze(1), g_bias.sum(0)
