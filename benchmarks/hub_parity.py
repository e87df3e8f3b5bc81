"""Parity of imported CBraMod / LaBraM weights with braindecode's models (float32).

For each published layout, braindecode's model is built with seeded random weights at the
published size (12 layers), exported, converted by ``neurofm convert``'s code path, and both models
run on the same input; the table lists, per output, max |ours - braindecode|, max |braindecode|
and the bound 1e-5 * max |braindecode| + 1e-6.

Usage::

    python benchmarks/hub_parity.py --out results/hub_parity.json
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from neurofm.hub.parity import cbramod_parity, labram_parity

CASES = (
    ("CBraMod pretrained_weights.pth (module.)", cbramod_parity, {"layout": "original"}),
    ("CBraMod braindecode safetensors + head", cbramod_parity, {"layout": "braindecode"}),
    ("LaBraM braindecode, [CLS] pooling", labram_parity, {"pooling": "cls"}),
    ("LaBraM braindecode, mean pooling", labram_parity, {"pooling": "mean"}),
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="hub_parity.json", help="JSON file to write")
    parser.add_argument("--depth", type=int, default=12, help="transformer layers (12 published)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from neurofm.compat import braindecode_available

    if not braindecode_available():
        print("hub_parity: skipped, the braindecode references need neurofm[braindecode]")
        return 0
    torch.manual_seed(args.seed)
    rows = []
    print(f"{'case':42s} {'output':20s} {'max|diff|':>10s} {'max|ref|':>9s} {'bound':>9s}  ok")
    for case, fn, kwargs in CASES:
        for output, fig in fn(depth=args.depth, seed=args.seed, **kwargs).items():
            rows.append({"case": case, "output": output, **fig})
            print(f"{case:42s} {output:20s} {fig['max_abs_diff']:10.2e} "
                  f"{fig['max_abs_ref']:9.3g} {fig['bound']:9.2e}  {fig['ok']}")
    payload = {"torch": torch.__version__, "machine": platform.machine(), "depth": args.depth,
               "seed": args.seed, "results": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
