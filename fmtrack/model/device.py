"""Where and in which precision the model runs: device choice, precision choice and autocast."""

from __future__ import annotations

import contextlib
import numbers
from pathlib import Path

import torch

_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CPUINFO = Path("/proc/cpuinfo")
# More intra-op threads than any CPU holds: OpenBLAS fails to allocate their buffers, killing the process.
MAX_THREADS = 512


def check_threads(threads: int | None) -> int | None:
    """``threads`` for :func:`set_threads`: None (torch's own choice) or a whole number from 1 to
    MAX_THREADS; ValueError naming the argument otherwise."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, numbers.Integral)
                                or not 1 <= threads <= MAX_THREADS):
        raise ValueError(f"threads must be a whole number from 1 to {MAX_THREADS} (None: torch's default), "
                         f"got {threads!r}")
    return None if threads is None else int(threads)


def set_threads(threads: int | None) -> None:
    """torch's intra-op CPU threads for this process (None: leave torch's choice); checked first."""
    threads = check_threads(threads)
    if threads is not None:
        torch.set_num_threads(threads)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as torch spells it (ValueError naming
    the argument for a device torch does not know, or CUDA where torch finds none)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r} ({err})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: torch finds no CUDA device here (use 'cpu' or 'auto')")
    return resolved


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX bf16 tiles (Linux ``amx_bf16`` flag; False where it cannot be read).

    torch.backends.cpu.get_cpu_capability() names only the vector ISA (AVX2/AVX512), not AMX.
    """
    try:
        with open(CPUINFO, encoding="utf8", errors="replace") as fh:
            return any(line.startswith("flags") and "amx_bf16" in line.split() for line in fh)
    except OSError:
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` -> "bf16" on CUDA and on CPUs with AMX, else "fp32" (without AMX, bf16 matrix
    multiplies are emulated and slower than fp32); any other choice unchanged."""
    if precision != "auto":
        return precision
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_amx()):
        return "bf16"
    return "fp32"


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """torch.autocast for "bf16"/"fp16" (or "auto", see :func:`resolve_precision`) on ``device``;
    a no-op for "fp32"."""
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 autocast needs CUDA; use bf16 on CPU")
    return torch.autocast(device.type, dtype=_AUTOCAST_DTYPES[precision])
