"""Does bf16 autocast change what a frozen probe measures? fp32 vs bf16 embeddings, same run.

For one model and one labelled data set, embeddings are extracted twice — in float32 and under
``torch.autocast("cpu", dtype=torch.bfloat16)`` — and the same logistic-regression probe
(inner-CV penalty search on the training folds) is fitted on each. Prints a table of balanced
accuracy per fold, the extraction time per 1,000 windows and the relative embedding difference,
and writes JSON.

Usage::

    python benchmarks/bf16_probe.py --model runs/cc/model --data "sim:motor_imagery?subjects=4"
    python benchmarks/bf16_probe.py --model criss_cross_base --data aeon:FingerMovements
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np
import torch


def embeddings(model, inputs, pool: str, bf16: bool) -> tuple[np.ndarray, float]:
    """``(z [n, F], seconds)`` for the frozen model, in float32 or under bf16 autocast."""
    from neurofm.eval.embeddings import extract_embeddings

    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    start = time.process_time()
    with ctx:
        z = extract_embeddings(model, inputs.x, inputs.sensors, inputs.patch_valid, pool=pool,
                               batch_size=16)
    return z, time.process_time() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="criss_cross_base",
                        help="model directory, Hub id or registry name (random init, seed 0)")
    parser.add_argument("--data", default="sim:motor_imagery?subjects=4&minutes=2",
                        help="anything neurofm.datasets.load_dataset accepts")
    parser.add_argument("--protocol", default="within-subject")
    parser.add_argument("--pool", default="channels", choices=("mean", "channels"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bf16_probe.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from sklearn.metrics import balanced_accuracy_score

    from neurofm.data.spec import legacy_preprocessing
    from neurofm.datasets import load_dataset
    from neurofm.eval.inputs import prepare_trials, resolve_preprocessing
    from neurofm.eval.model_loading import load_model
    from neurofm.eval.probe import fit_probe
    from neurofm.eval.protocols import make_folds
    from neurofm.eval.run import encode_labels

    trials = load_dataset(args.data)
    y, _ = encode_labels(trials)
    subjects = np.asarray(trials.subject).astype(str)
    model, kind = load_model(args.model, {}, seed=0)
    inputs = prepare_trials(trials.X, trials.sfreq, trials.sensors,
                            resolve_preprocessing(legacy_preprocessing(model.preprocessing), {}))
    folds = make_folds(args.protocol, y=y, subjects=subjects, split=trials.split, seed=0,
                       n_folds=3)

    rows, z_by = [], {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        z, seconds = embeddings(model, inputs, args.pool, bf16)
        z_by[name] = z
        scores = []
        for fold in folds:
            probe = fit_probe(z[fold.train], y[fold.train], groups=subjects[fold.train])
            pred, _ = probe.predict(z[fold.test])
            scores.append(float(balanced_accuracy_score(y[fold.test], pred)))
        rows.append({"precision": name, "balanced_accuracy": float(np.mean(scores)),
                     "folds": scores, "cpu_s_per_1000": 1000 * seconds / len(y)})
    diff = np.linalg.norm(z_by["bf16"] - z_by["fp32"]) / np.linalg.norm(z_by["fp32"])

    print(f"{args.model} ({kind}) on {args.data}, {args.protocol}, pool={args.pool}, "
          f"{len(y)} trials, {len(folds)} folds")
    print(f"{'precision':10s} {'bal. acc.':>9s} {'folds':>24s} {'CPU s / 1000':>13s}")
    for r in rows:
        folds_txt = " ".join(f"{s:.3f}" for s in r["folds"])
        print(f"{r['precision']:10s} {r['balanced_accuracy']:9.3f} {folds_txt:>24s} "
              f"{r['cpu_s_per_1000']:13.1f}")
    print(f"relative embedding difference ||z_bf16 - z_fp32|| / ||z_fp32|| = {diff:.4f}")
    result = {"model": args.model, "model_kind": kind, "data": args.data,
              "protocol": args.protocol, "pool": args.pool, "threads": args.threads,
              "rows": rows, "relative_embedding_difference": float(diff)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
