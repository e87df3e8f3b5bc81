"""``model.safetensors`` of a model folder: write it, check it, read it.

:func:`check_safetensors` reads the header and the size before any tensor is loaded, so a
corrupted or truncated file (an interrupted download) is reported by name, with the fix.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

from neurofm.model_folder.config import CONFIG_NAME
from neurofm.model_folder.files import write_atomically

WEIGHTS_NAME = "model.safetensors"
#: Largest plausible safetensors header (the format itself caps it at 100 MB).
_MAX_HEADER_BYTES = 100_000_000


def _redownload_hint(source: str | None) -> str:
    if source:
        return (f"download it again with neurofm.from_pretrained({source!r}, "
                "force_download=True)")
    return "save or download the model again"


def check_safetensors(path, source: str | None = None) -> dict:
    """Check that ``path`` is a complete safetensors file; return its header.

    Parameters
    ----------
    path : str or Path
        The weights file.
    source : str or None
        The Hub repo id the user asked for, quoted in the fix of the error message.

    Returns
    -------
    dict
        The JSON header: tensor name -> ``{"dtype", "shape", "data_offsets"}`` (and
        ``"__metadata__"``).

    Raises
    ------
    FileNotFoundError
        When the file is missing.
    ValueError
        When the file is truncated or its header is unreadable, naming the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; a model directory holds {CONFIG_NAME} and "
                                f"{WEIGHTS_NAME} (written by model.save_pretrained(dir)).")
    size = path.stat().st_size
    fix = _redownload_hint(source)
    with path.open("rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path} is truncated ({size} bytes, not even a safetensors "
                             f"header); {fix}.")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > min(_MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"{path} is corrupted or truncated (its header claims {header_len} "
                             f"bytes but the file has {size}); {fix}.")
        raw = f.read(header_len)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{path} is corrupted (its safetensors header is not valid JSON); "
                         f"{fix}.") from None
    if not isinstance(header, dict):  # bad file content, not a caller's type error:
        raise ValueError(  # noqa: TRY004
            f"{path} is corrupted (unexpected safetensors header); {fix}.")
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry]
    expected = 8 + header_len + max(ends, default=0)
    if size < expected:
        raise ValueError(f"{path} is truncated: {size} bytes of the {expected} its header "
                         f"describes; {fix}.")
    return header


def count_parameters(path) -> int:
    """Number of values stored in a safetensors file (read from its header, no tensor loaded)."""
    total = 0
    for name, entry in check_safetensors(path).items():
        if name == "__metadata__":
            continue
        n = 1
        for dim in entry["shape"]:
            n *= int(dim)
        total += n
    return total


def save_weights(state: dict, path) -> Path:
    """Write a state dict (``{name: tensor}``) as a safetensors file, atomically.

    Tensors are detached, copied to the CPU and made contiguous first.
    """
    from safetensors.torch import save_file

    tensors = {name: value.detach().cpu().contiguous() for name, value in state.items()}
    return write_atomically(path, lambda tmp: save_file(tensors, str(tmp),
                                                        metadata={"format": "pt"}))


def load_weights(path, source: str | None = None) -> dict[str, torch.Tensor]:
    """Check and read a safetensors file onto the CPU.

    Parameters
    ----------
    path : str or Path
    source : str or None
        The Hub repo id the folder came from, quoted in the fix of error messages.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    check_safetensors(path, source=source)
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path} could not be read ({err}); the file is corrupted or truncated "
                         f"-- {_redownload_hint(source)}.") from None
