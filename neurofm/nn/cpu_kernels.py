"""neurofm's fused C kernels on CPU: one library, built at first use by the system C compiler.

The sources (:data:`SOURCES`, shipped beside this module) are compiled together into one shared
library: ``mamba_kernels.c`` (the Mamba-1 selective scan and causal convolution,
:mod:`neurofm.nn.mamba_kernels`), ``dropout_kernels.c`` (dropout without a mask tensor,
:mod:`neurofm.nn.dropout_kernels`) and ``attention_kernels.c`` (self-attention with dropout in
one pass, :mod:`neurofm.nn.attention_kernels`), with the headers they share (``kernel_*.h``:
math, element types, random streams). This module builds, caches and loads it; the modules
above hold the autograd Functions that call it.

It needs a C compiler (``$CC``, else ``cc``) and nothing else: no torch headers, so the build
takes a second or two, once per machine and source version. The library is kept in
``$NEUROFM_CACHE/kernels`` (default ``~/.cache/neurofm/kernels``), keyed by the sources, the
flags, the compiler and the CPU, so a home folder shared by different machines is safe;
concurrent processes (``torchrun``) each build to a temporary name and rename. The calls go
through :mod:`ctypes`; the kernels split their work among ``torch.get_num_threads()`` OpenMP
threads. Inside a torch process the library binds to the OpenMP runtime torch already loaded
(the same ``libgomp.so.1``), so it shares torch's threads instead of competing with them (a
Python thread pool lost about a millisecond per call to torch's threads spinning after each
operation).

Where no compiler is found or the build fails, a warning says so (once) and PyTorch runs the
same computations (the same results up to float rounding; dropout draws its masks from another
generator). ``NEUROFM_CPU_KERNEL=0`` (or :func:`set_enabled`) turns the kernels off.
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

#: The C sources compiled into the one library, and the header they share.
SOURCES = tuple(Path(__file__).with_name(name)
                for name in ("mamba_kernels.c", "dropout_kernels.c", "attention_kernels.c"))
HEADERS = tuple(Path(__file__).with_name(name)
                for name in ("kernel_math.h", "kernel_dtypes.h", "kernel_random.h"))

#: Compiler flags, tried in order: tuned for this CPU with OpenMP threads, portable with
#: OpenMP, portable single-threaded (e.g. a compiler without OpenMP, as Apple's clang).
FLAG_SETS = (
    ("-O3", "-march=native", "-fno-math-errno", "-fopenmp"),
    ("-O3", "-fno-math-errno", "-fopenmp"),
    ("-O3", "-fno-math-errno"),
)

#: The name of each dtype in the kernels' names (``scan_forward_f32``, ``dropout_bf16_f32``).
SUFFIX = {torch.float32: "f32", torch.float64: "f64", torch.bfloat16: "bf16"}

#: The dtypes most kernels take (the Mamba kernels); dropout and attention take bfloat16 too.
FLOAT_DTYPES = (torch.float32, torch.float64)
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
    """Use the fused kernels for CPU tensors where they can be built (default on, unless
    ``NEUROFM_CPU_KERNEL=0``)."""
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


def usable(u: torch.Tensor, dtypes: tuple[torch.dtype, ...] = FLOAT_DTYPES) -> bool:
    """Whether a computation on ``u`` (its device, and its dtype among ``dtypes``) runs through
    the kernels."""
    if not _STATE["enabled"] or u.device.type != "cpu" or u.dtype not in dtypes:
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


def threads() -> int:
    """OpenMP threads for a kernel call: ``torch.get_num_threads()``, or 1 where the library was
    built without OpenMP."""
    return torch.get_num_threads() if library().kernels_threaded() else 1


def compiler_name() -> str:
    """The C compiler the kernel is built with: ``$CC``, else ``cc``."""
    return os.environ.get("CC") or "cc"


def build() -> Path:
    """Build the kernel library for these sources, compiler and CPU unless it is in
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
        path = kernel_dir() / f"neurofm_kernels-{_build_key(version, flags)}.so"
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
    warnings.warn(f"neurofm's fused CPU kernels (the Mamba-1 scan and convolution, dropout, "
                  f"attention) are unavailable: {why}. PyTorch runs the same computations "
                  "instead (slower). "
                  "Set NEUROFM_CPU_KERNEL=0 to silence this.", RuntimeWarning, stacklevel=5)


def _build_key(compiler_version: str, flags: tuple[str, ...]) -> str:
    """Hash of the sources and headers, the flags, the compiler's version and the CPU."""
    digest = hashlib.sha256()
    for source in SOURCES + HEADERS:
        digest.update(source.read_bytes())
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
        command = [compiler, *flags, "-shared", "-fPIC", "-o", tmp, *map(str, SOURCES), "-lm"]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
        os.replace(tmp, path)
    except subprocess.CalledProcessError as err:
        raise subprocess.SubprocessError(err.stderr or str(err)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, i, u64, u32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint32
    lib.kernels_threaded.argtypes = []
    for suffix in (*(SUFFIX[dtype] for dtype in FLOAT_DTYPES), "f32_bf16"):
        getattr(lib, f"scan_forward_{suffix}").argtypes = [p] * 11 + [i] * 7
        getattr(lib, f"scan_backward_{suffix}").argtypes = [p] * 18 + [i] * 7
        getattr(lib, f"conv_silu_forward_{suffix}").argtypes = [p] * 4 + [i] * 6
        getattr(lib, f"conv_silu_backward_{suffix}").argtypes = [p] * 7 + [i] * 6
    # dropout_kernels.c: (data pointers, n, per_item, factors, seed, threshold, threads)
    for x, out in (("f32", "f32"), ("f32", "bf16"), ("bf16", "bf16"), ("bf16", "f32"),
                   ("f64", "f64")):
        getattr(lib, f"dropout_{x}_{out}").argtypes = [p, p, i, i, p, u64, u32, i]
    for base, x in (("f32", "f32"), ("f32", "bf16"), ("bf16", "bf16"), ("f64", "f64")):
        getattr(lib, f"dropout_add_{base}_{x}").argtypes = [p, p, p, i, i, p, u64, u32, i]
    for out in ("f32", "bf16", "f64"):
        getattr(lib, f"keep_mask_{out}").argtypes = [p, i, i, p, u64, u32, i]
        getattr(lib, f"gelu_dropout_{out}").argtypes = [p, p, p, i, i, p, u64, u32, i]
        getattr(lib, f"gelu_dropout_backward_{out}").argtypes = [p, p, p, i, i, p, u64, u32, i]
    # attention_kernels.c: scale and dropout factor in the arithmetic's precision
    for dtype, real in (("f32", ctypes.c_float), ("bf16", ctypes.c_float),
                        ("f64", ctypes.c_double)):
        getattr(lib, f"attention_forward_{dtype}").argtypes = [p] * 6 + [real, real, u64, u32, i]
        getattr(lib, f"attention_backward_{dtype}").argtypes = [p] * 9 + [real, real, u64, u32,
                                                                          i]
        getattr(lib, f"attention_keep_mask_{dtype}").argtypes = [p, i, i, real, u64, u32]
    return lib
