"""Frozen embedding extraction, verified frozen, cached on disk.

:func:`extract_embeddings` runs ``model.embed`` in eval mode under ``torch.no_grad()`` and checks
afterwards that the model really stayed frozen: every parameter and buffer bit-identical (so no
BatchNorm statistics moved), no gradient created, training flag restored
(:class:`FrozenModelError` otherwise). Embeddings are cached as ``.npy`` files keyed by a hash of
the model (weights + config) and of the inputs (preprocessed patches, patch validity, sensors,
preprocessing settings; for windows left on disk, their files' paths, sizes and modification
times and the window table instead of the patches), so a second probe of the same model and data
skips the forward passes.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from neurofm.data.spec import PreprocessSpec
from neurofm.progress import progress_bar
from neurofm.sensors import SensorBatch, SensorLayout


class FrozenModelError(RuntimeError):
    """A supposedly frozen forward pass changed the model (weights, buffers or gradients)."""


def _as_bytes(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 over the model's class, config (when it has one) and every state-dict tensor."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    config = getattr(model, "config", None)
    if config is not None:
        cfg = config if isinstance(config, dict) else getattr(config, "__dict__", str(config))
        h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        h.update(_as_bytes(tensor))
    return h.hexdigest()


def inputs_fingerprint(x, patch_valid: np.ndarray, sensors: SensorLayout,
                       preprocessing: dict) -> str:
    """SHA-256 over preprocessed patches, validity, sensor geometry and settings.

    ``preprocessing`` is a plain dict (:meth:`PreprocessSpec.to_dict` plus the pooling). Inputs
    left on disk (an array-like with ``fingerprint()``, such as
    :class:`~neurofm.eval.window_inputs.RecordingInputs`) are not read: their own fingerprint
    (files' paths, sizes and modification times, the window table, the preprocessing) stands
    for the patches.
    """
    h = hashlib.sha256()
    if hasattr(x, "fingerprint"):
        h.update(b"lazy:" + x.fingerprint().encode() + str(tuple(x.shape)).encode())
        arrays = (patch_valid, sensors.kinds, sensors.pos, sensors.ori)
    else:
        arrays = (x, patch_valid, sensors.kinds, sensors.pos, sensors.ori)
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        h.update(str(arr.shape).encode() + str(arr.dtype).encode())
        h.update(arr.tobytes())
    h.update(json.dumps({"names": list(sensors.names), "preprocessing": preprocessing},
                        sort_keys=True, default=str).encode())
    return h.hexdigest()


@contextmanager
def frozen(model: torch.nn.Module):
    """Run a block with ``model`` in eval mode and no grad; verify nothing about it changed.

    Raises
    ------
    FrozenModelError
        If any parameter or buffer differs bit for bit afterwards, or a gradient appeared.
    """
    before = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    grads_before = {n for n, p in model.named_parameters() if p.grad is not None}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)
    after = model.state_dict(keep_vars=True)
    changed = [k for k, v in before.items()
               if k not in after or after[k].shape != v.shape or after[k].dtype != v.dtype
               or _as_bytes(after[k]) != _as_bytes(v)]
    new_grads = [n for n, p in model.named_parameters() if p.grad is not None
                 and n not in grads_before]
    if changed or new_grads:
        raise FrozenModelError(
            "The frozen model changed during embedding extraction: "
            + (f"{len(changed)} parameter/buffer tensor(s) differ (first: {changed[:5]}) "
               if changed else "")
            + (f"gradients were created for {new_grads[:5]}" if new_grads else "")
            + ". A model's embed() must not update weights or running statistics in eval mode.")


def _channel_features(model, x, sensors, patch_valid) -> torch.Tensor:
    """Token features averaged over valid patches, channels concatenated: ``[B, C' * D]``."""
    feats = model(x, sensors, patch_valid=patch_valid)  # [B, C', N, D]
    w = patch_valid[:, None, :, None].to(feats.dtype)
    pooled = (feats * w).sum(2) / w.sum(2).clamp_min(1.0)
    return pooled.reshape(pooled.shape[0], -1)


#: Pooling choices of :func:`extract_embeddings`.
POOLINGS = ("mean", "channels")


def extract_embeddings(model: torch.nn.Module, x: np.ndarray, sensors: SensorLayout,
                       patch_valid: np.ndarray, *, batch_size: int = 64, pool: str = "mean",
                       device: str | torch.device = "cpu", cache_dir: str | Path | None = None,
                       preprocessing: PreprocessSpec | None = None, desc: str = "embedding",
                       stats: dict | None = None) -> np.ndarray:
    """Pooled embeddings of every trial with the model frozen.

    Parameters
    ----------
    model : torch.nn.Module
        Encoder with ``embed(x [B, C, N, P], sensors: SensorBatch, patch_valid=[B, N]) -> [B, D]``
        (mean over real channels and valid patches), and for ``pool="channels"`` a forward
        ``model(x, sensors, patch_valid=...) -> [B, C', N, D]``.
    x : ndarray of float32, shape [n, C, N, P], or an array-like of that shape
        Preprocessed, patched trials (all with the same ``C`` channels). An array-like
        (:class:`~neurofm.eval.window_inputs.RecordingInputs`: windows left on disk) is read
        ``batch_size`` trials at a time, so memory holds one batch of signals.
    sensors : SensorLayout
        The ``C`` channels.
    patch_valid : ndarray of bool, shape [n, N]
    batch_size, device
        Forward-pass batching.
    pool : {"mean", "channels"}
        ``"mean"``: the model's ``embed`` (``[n, D]``, montage-independent). ``"channels"``: one
        patch-averaged feature vector per channel (or latent), concatenated in channel order
        (``[n, C' * D]``); keeps spatial information for fixed-montage data sets.
    cache_dir : path, optional
        Where ``<model-hash>-<inputs-hash>.npy`` is read from / written to.
    preprocessing : PreprocessSpec, optional
        Goes into the cache key (what produced ``x``).
    stats : dict, optional
        Filled with ``seconds``, ``n``, ``seconds_per_1000``, ``cached`` and, on CUDA,
        ``peak_memory_mb``.

    Returns
    -------
    ndarray of float32, shape [n, D] or [n, C' * D]
    """
    if pool not in POOLINGS:
        raise ValueError(f"Unknown pooling {pool!r}; expected one of {POOLINGS}.")
    stats = {} if stats is None else stats
    cache_file = None
    if cache_dir is not None:
        settings = {**(preprocessing.to_dict() if preprocessing else {}), "pool": pool}
        key = (model_fingerprint(model)[:20] + "-"
               + inputs_fingerprint(x, patch_valid, sensors, settings)[:20])
        cache_file = Path(cache_dir) / f"{key}.npy"
        if cache_file.exists():
            z = np.load(cache_file)
            if z.shape[0] == x.shape[0]:
                stats.update(n=int(x.shape[0]), cached=True)
                return z
    device = torch.device(device)
    base = SensorBatch.from_layout(sensors).to(device)
    model.to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    out = []
    start = time.perf_counter()
    with frozen(model):
        for i in progress_bar(range(0, x.shape[0], batch_size), desc=desc, leave=False,
                              disable=x.shape[0] <= batch_size):
            xb = torch.from_numpy(x[i:i + batch_size]).to(device)
            pv = torch.from_numpy(patch_valid[i:i + batch_size]).to(device)
            sb = base.expand(xb.shape[0])
            z = model.embed(xb, sb, patch_valid=pv) if pool == "mean" else \
                _channel_features(model, xb, sb, pv)
            out.append(z.float().cpu().numpy())
    seconds = time.perf_counter() - start
    z = np.concatenate(out, axis=0)
    if not np.all(np.isfinite(z)):
        raise FrozenModelError(f"The model produced non-finite embeddings for "
                               f"{int((~np.isfinite(z)).any(1).sum())} trial(s).")
    stats.update(n=int(x.shape[0]), seconds=seconds, cached=False,
                 seconds_per_1000=1000 * seconds / max(1, x.shape[0]))
    if device.type == "cuda":
        stats["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp.npy")
        np.save(tmp, z)
        tmp.replace(cache_file)
    return z
