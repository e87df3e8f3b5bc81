"""Model inputs and frozen features of a :class:`~neurofm.datasets.segments.SegmentSet`.

Each recording keeps its own contacts, so segments are embedded recording by recording, each
with its own :class:`~neurofm.sensors.SensorBatch` (contacts without coordinates flagged
position-unknown, docs/sensors.md). As for the clinical windows
(:mod:`neurofm.eval.window_inputs`), a recording is preprocessed whole — scaled, band-passed,
notched and resampled by the filter plan of ``neurofm prepare`` — then cut into segments, so a
segment equals that stretch of the recording prepared for pretraining. The recording is read
and filtered :data:`CHANNEL_BLOCK` contacts at a time (the filter works per channel), so memory
holds one block at the file's rate (a 10-minute, 2-kHz recording: 290 MB per block of 32) and
the whole recording only at the model's rate.

:func:`segment_features` gives, per recording, one feature vector per segment and contact (the
contact's features averaged over the segment's patches: ``target="channel"``) or per segment
(the model's pooled embedding: ``target="recording"``), with the model frozen and checked
(:func:`neurofm.eval.embeddings.frozen`) and cached on disk per recording.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from neurofm.data.band import plan_filter
from neurofm.data.spec import SCALE_UNITS, PreprocessSpec
from neurofm.data.windows import epochs_to_patches
from neurofm.datasets.recordings import open_raw
from neurofm.datasets.segments import SegmentSet
from neurofm.eval.embeddings import FrozenModelError, frozen, model_fingerprint
from neurofm.eval.window_inputs import preprocess_recording, release_freed_memory
from neurofm.progress import progress_bar
from neurofm.sensors import ChannelKind, SensorBatch

#: Contacts read and filtered together.
CHANNEL_BLOCK = 32
#: Preprocessed recordings kept in memory.
CACHED_RECORDINGS = 2


class SegmentReader:
    """Preprocessed, patched segments of the recordings of a segment set.

    Parameters
    ----------
    data : SegmentSet
    spec : PreprocessSpec
        What to apply (its band may be open when ``prefilter`` applies the band).
    prefilter : callable, optional
        ``prefilter(data [C, T], sfreq) -> [C, T]`` run first on each block (an IIR band-pass).
    key : dict
        What, besides the recordings and ``spec``, decides the samples (for cache keys).

    Raises
    ------
    ValueError
        A contact of a kind the spec does not keep (named with its recording).
    """

    def __init__(self, data: SegmentSet, spec: PreprocessSpec, *,
                 prefilter: Callable | None = None, key: dict | None = None):
        self.data, self.spec, self.prefilter = data, spec, prefilter
        self.key = dict(key or {})
        self.patch = spec.patch_samples
        self.sfreq_out = float(spec.sfreq)
        self.n_out = round(data.segment_seconds * self.sfreq_out)
        self.n_patches = -(-self.n_out // self.patch)
        wanted = {ChannelKind.from_label(k).label for k in spec.kinds}
        for r in data.used_recordings:
            labels = set(data.recordings[r].layout.kind_labels())
            if not labels <= wanted:
                raise ValueError(f"{data.recordings[r].path}: contacts of kinds "
                                 f"{sorted(labels - wanted)} are not kept by the preprocessing "
                                 f"(kinds {list(spec.kinds)}); add them to the spec's kinds.")
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def recording(self, r: int) -> np.ndarray:
        """Recording ``r`` preprocessed: float32 ``[C, T']`` in model units at the spec's rate."""
        if r in self._cache:
            self._cache.move_to_end(r)
            return self._cache[r]
        rec = self.data.recordings[r]
        raw = open_raw(rec.path)
        names = list(rec.layout.names)
        scales = np.array([self.spec.scales[k] for k in rec.layout.kind_labels()])
        blocks = []
        for start in range(0, len(names), CHANNEL_BLOCK):
            block = raw.get_data(picks=names[start:start + CHANNEL_BLOCK])
            out, _ = preprocess_recording(block, rec.sfreq, scales[start:start + CHANNEL_BLOCK],
                                          self.spec, line_freq=rec.line_freq,
                                          prefilter=self.prefilter, source=rec.path)
            blocks.append(out)
            del block
            release_freed_memory()
        data = np.concatenate(blocks)
        self._cache[r] = data
        while len(self._cache) > CACHED_RECORDINGS:
            self._cache.popitem(last=False)
        return data

    def segments(self, r: int, onsets) -> tuple[np.ndarray, np.ndarray]:
        """Segments of recording ``r`` starting at ``onsets`` (s): patches ``[k, C, N, P]`` and
        their validity ``[k, N]`` (the pad rule)."""
        data = self.recording(r)
        starts = np.clip(np.round(np.asarray(onsets) * self.sfreq_out).astype(int), 0,
                         data.shape[1] - self.n_out)
        cut = np.stack([data[:, s:s + self.n_out] for s in starts]) if len(starts) else \
            np.zeros((0, data.shape[0], self.n_out), np.float32)
        x, valid = epochs_to_patches(cut, self.patch, rule="pad")
        return np.ascontiguousarray(x, np.float32), np.asarray(valid, bool)

    def sensors(self, r: int) -> SensorBatch:
        """The sensors of recording ``r`` (batch of one)."""
        return SensorBatch.from_layout(self.data.recordings[r].layout)

    def describe(self) -> list[str]:
        """The preprocessing in words (the first recording's filter plan; every recording's
        own rate and mains frequency apply to it)."""
        used = self.data.used_recordings
        rec = self.data.recordings[int(used[0])]
        plan = plan_filter(rec.sfreq, self.spec, line_freq=rec.line_freq, source=self.data.name)
        rates = sorted({self.data.recordings[r].sfreq for r in used})
        lines = [(f"preprocessed per recording (continuous, {CHANNEL_BLOCK} contacts at a time, "
                  f"then cut into {self.data.segment_seconds:g}-s segments): the filter and "
                  "resampler of neurofm prepare")]
        lines += plan.describe()
        if len(rates) > 1:
            lines.append(f"recordings at {', '.join(f'{v:g}' for v in rates)} Hz: each resampled "
                         f"from its own rate to {self.sfreq_out:g} Hz")
        kinds = sorted({k for r in used for k in self.data.recordings[r].layout.kind_labels()})
        lines += [f"scale {k}: x {self.spec.scales[k]:g} ({SCALE_UNITS.get(k, 'custom')})"
                  for k in kinds]
        unknown = sum(int(self.data.recordings[r].layout.position_unknown.sum()) for r in used)
        if unknown:
            lines.append(f"{unknown} contact(s) without coordinates: encoded position-unknown "
                         "(kind, learned code, shaft and index from the name; docs/sensors.md)")
        return lines

    def fingerprint(self, r: int, onsets) -> str:
        """What decides the segments of recording ``r`` at ``onsets`` without reading them."""
        text = json.dumps({"recording": self.data.recordings[r].signature(),
                           "onsets": np.asarray(onsets, float).tolist(),
                           "segment": self.data.segment_seconds, "spec": self.spec.to_dict(),
                           "key": self.key, "cut": "per recording, pad rule"},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def segment_features(model: torch.nn.Module, reader: SegmentReader, needed: dict, *,
                     per_contact: bool, batch_size: int = 8, device="cpu",
                     cache_dir: str | Path | None = None, desc: str = "segments",
                     stats: dict | None = None) -> dict[int, np.ndarray]:
    """Frozen features of the segments ``needed`` (recording -> onsets, s).

    Parameters
    ----------
    model : torch.nn.Module
        An encoder: ``model(x [B, C, N, P], sensors, patch_valid=[B, N]) -> [B, C, N, D]``
        and ``model.embed(...) -> [B, D]``.
    reader : SegmentReader
    needed : dict of int -> ndarray
        The onsets to embed for each recording.
    per_contact : bool
        True: one vector per segment and contact, the contact's features averaged over the
        segment's valid patches (``[k, C, D]``); False: the model's embedding (``[k, D]``).
    batch_size, device
        Segments per forward pass.
    cache_dir : path, optional
        ``<model>-<segments>.npy`` per recording is read from / written to it.
    stats : dict, optional
        Filled with ``seconds``, ``n_segments``, ``n_contact_segments``, ``cached`` (segments
        read from the cache) and ``seconds_per_1000_contact_segments``.

    Returns
    -------
    dict of int -> ndarray
        Features of each recording's segments, in the order of ``needed[r]``.

    Raises
    ------
    ValueError
        ``per_contact`` with a model that unifies channels into latents (no row per contact).
    FrozenModelError
        The model changed, or produced non-finite features.
    """
    if per_contact and getattr(model, "unifies_channels", False):
        raise ValueError(f"{getattr(model, 'model_name', type(model).__name__)} unifies channels "
                         "into latent channels: its outputs have no row per contact, so it cannot "
                         "score contacts (--target channel). Use a model without n_latent.")
    stats = {} if stats is None else stats
    device = torch.device(device)
    model.to(device)
    fingerprint = model_fingerprint(model)[:20] if cache_dir is not None else ""
    out, seconds, n_segments, n_cells, cached = {}, 0.0, 0, 0, 0
    with frozen(model):
        for r in progress_bar(sorted(needed), desc=desc, leave=False, disable=len(needed) < 2):
            onsets = np.asarray(needed[r], float)
            cache_file = None
            if cache_dir is not None:
                key = hashlib.sha256((reader.fingerprint(r, onsets) + str(per_contact))
                                     .encode()).hexdigest()[:20]
                cache_file = Path(cache_dir) / f"{fingerprint}-{key}.npy"
                if cache_file.exists():
                    out[r] = np.load(cache_file)
                    cached += len(onsets)
                    continue
            x, valid = reader.segments(r, onsets)
            base = reader.sensors(r).to(device)
            start = time.perf_counter()
            feats = []
            for i in range(0, len(x), batch_size):
                xb = torch.from_numpy(x[i:i + batch_size]).to(device)
                pv = torch.from_numpy(valid[i:i + batch_size]).to(device)
                sb = base.expand(xb.shape[0])
                if per_contact:
                    tokens = model(xb, sb, patch_valid=pv)  # [b, C, N, D]
                    w = pv[:, None, :, None].to(tokens.dtype)
                    z = (tokens * w).sum(2) / w.sum(2).clamp_min(1.0)
                else:
                    z = model.embed(xb, sb, patch_valid=pv)
                feats.append(z.float().cpu().numpy())
            seconds += time.perf_counter() - start
            z = np.concatenate(feats)
            if not np.all(np.isfinite(z)):
                raise FrozenModelError(f"The model produced non-finite features for "
                                       f"{reader.data.recordings[r].path}.")
            n_segments += len(x)
            n_cells += len(x) * (x.shape[1] if per_contact else 1)
            out[r] = z
            if cache_file is not None:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_suffix(".tmp.npy")
                np.save(tmp, z)
                tmp.replace(cache_file)
    stats.update(seconds=seconds, n_segments=n_segments, n_contact_segments=n_cells,
                 cached=cached,
                 seconds_per_1000_contact_segments=1000 * seconds / max(1, n_cells))
    return out
