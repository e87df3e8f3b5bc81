"""Cost of channel-level evaluation (``--target channel``) per 1,000 contact-segments.

Writes a look-alike Omni-iEEG release (``neurofm.datasets.ieeg_standins.write_omni_ieeg``:
simulated sEEG, four shafts of eight contacts at 1 kHz, one bad contact per recording, no
``electrodes.tsv``) into a temporary folder, loads its SOZ task (``omni-ieeg:ROOT?task=soz``:
31 good contacts per recording, 60-s segments) and times the three stages of the probe:

* **preprocess** — each recording read and preprocessed whole (0.3-75 Hz band-pass, notch,
  resample 1 kHz -> 200 Hz, 32 contacts at a time) and cut into its segments
  (:class:`neurofm.eval.segment_inputs.SegmentReader`);
* **forward** — the frozen model's per-contact features of every segment (a contact's output
  row averaged over the segment's 60 patches: 31 contacts x 60 patches = 1,860 tokens per
  segment; :func:`neurofm.eval.segment_inputs.segment_features`, no cache);
* **probe** — the logistic-regression probe fitted on one row per labelled training contact and
  segment and scored on every test contact (official split; penalty chosen on ``val``).

for random-init registry models at their default sizes (a model that unifies channels into
latent channels, such as ``mamba_small``, is built with ``n_latent=None``: channel-level tasks
need one output row per contact). Each figure is seconds per 1,000
contact-segments (a contact-segment = one contact in one 60-s segment). CPU timings depend on
the machine's load; the JSON records the machine.

Usage::

    python benchmarks/channel_eval.py --quick                 # 6 patients x 130 s, one model
    python benchmarks/channel_eval.py --out benchmarks/results/channel_eval.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neurofm.datasets import load_dataset
from neurofm.datasets.ieeg_standins import write_omni_ieeg
from neurofm.eval.segment_eval import needed_segments, plan_folds, probe_scorer, unit_folds
from neurofm.eval.segment_inputs import SegmentReader, segment_features
from neurofm.models import create_model


def measure(data, model_name: str, batch_size: int) -> dict:
    """Seconds of each stage for one model (random init, seed 0)."""
    torch.manual_seed(0)
    model, overrides = create_model(model_name), {}
    if model.unifies_channels:  # latent channels have no row per contact: keep the contacts
        overrides = {"n_latent": None}
        torch.manual_seed(0)
        model = create_model(model_name, **overrides)
    plans = plan_folds(data, unit_folds(data, "official"), seed=0)
    needed = needed_segments(plans)
    reader = SegmentReader(data, model.preprocessing)
    start = time.perf_counter()
    for r, onsets in needed.items():
        reader.segments(r, onsets)
    preprocess = time.perf_counter() - start
    reader = SegmentReader(data, model.preprocessing)  # empty cache: forward re-reads
    stats: dict = {}
    features = segment_features(model, reader, needed, per_contact=True, batch_size=batch_size,
                                stats=stats)
    start = time.perf_counter()
    probe_scorer(data, lambda seed: features, needed)(plans[0])
    probe = time.perf_counter() - start
    cells = stats["n_contact_segments"]
    per_1000 = {"preprocess": 1000 * preprocess / cells, "forward": 1000 * stats["seconds"] / cells,
                "probe": 1000 * probe / cells}
    per_1000["total"] = sum(per_1000.values())
    return {"model": model_name, "overrides": overrides, "n_parameters": int(sum(p.numel() for p in model.parameters())),
            "n_segments": stats["n_segments"], "n_contact_segments": cells,
            "tokens_per_segment": int(len(data.recordings[0].layout) * reader.n_patches),
            **{f"s_per_1000_{k}": round(v, 3) for k, v in per_1000.items()},
            "contact_segments_per_s": round(1000 / per_1000["total"], 1)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="6 patients x 130 s, criss_cross_small only")
    parser.add_argument("--models", nargs="+", default=None,
                        help="registry names (default criss_cross_small mamba_small)")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/channel_eval.json"))
    args = parser.parse_args(argv)
    patients = args.patients or (6 if args.quick else 8)
    seconds = args.seconds or (130.0 if args.quick else 250.0)
    models = args.models or (["criss_cross_small"] if args.quick
                             else ["criss_cross_small", "mamba_small"])
    splits = ["train"] * (patients - 3) + ["val"] + ["test"] * 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_omni_ieeg(tmp, patients=patients, seconds=seconds, splits=splits, multicenter=(),
                        low_rate=(), outcomes=(1, 0, 1, 1, 0, 1, 1, -1))
        data = load_dataset(f"omni-ieeg:{tmp}?task=soz")
        for name in models:
            rows.append(measure(data, name, args.batch_size))
    print(f"Channel-level evaluation cost, seconds per 1,000 contact-segments ({patients} "
          f"patients x {seconds:g} s at 1 kHz, 31 contacts, 60-s segments, CPU "
          f"{os.cpu_count()} cores, torch {torch.get_num_threads()} threads)")
    print("| model | params | contact-segments | preprocess | forward | probe | total | "
          "contact-segments/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        name = r["model"] + ("".join(f" ({k}={v})" for k, v in r["overrides"].items()))
        print(f"| {name} | {r['n_parameters']:,} | {r['n_contact_segments']} | "
              f"{r['s_per_1000_preprocess']:.2f} | {r['s_per_1000_forward']:.2f} | "
              f"{r['s_per_1000_probe']:.2f} | {r['s_per_1000_total']:.2f} | "
              f"{r['contact_segments_per_s']:.1f} |")
    payload = {"quick": args.quick, "patients": patients, "seconds": seconds,
               "recording_sfreq": 1000.0, "segment_seconds": data.segment_seconds,
               "machine": {"platform": platform.platform(), "cores": os.cpu_count(),
                           "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                           "numpy": np.__version__},
               "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    return payload


if __name__ == "__main__":
    main()
