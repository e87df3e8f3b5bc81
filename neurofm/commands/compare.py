"""``neurofm compare``: score models on a grid of tasks, beside random init, baselines and the
papers' numbers (how well models do; ``python -m benchmarks`` measures how fast the code runs).
"""

from __future__ import annotations

#: ``neurofm.compare.run.MODES`` and ``PROTOCOL_CHOICES``, written out so that ``--help`` imports
#: no evaluation code (tests/test_compare.py checks that they agree).
MODES = ("probe", "finetune")
PROTOCOL_CHOICES = ("all", "main")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="Score models x tasks (probe / fine-tune) in one table, beside random init, "
             "baselines and the published numbers.",
        description="Run every model on every task (probe and/or fine-tune), each with its "
                    "random-init twin (same architecture and hyperparameters) and the task's "
                    "baselines on the same folds, and write one table: compare.md, "
                    "compare.json and the heat map compare.png, with the headline metric as "
                    "mean [95%% CI], the gain over random init, and the papers' numbers with "
                    "every difference from their protocol and preprocessing named. Each cell "
                    "(model x task x mode x protocol) is kept under cells/ and never run twice: "
                    "rerun the same command to resume or to retry failed cells; a changed "
                    "setting reruns only the cells it changes. Exits 1 when a cell failed. "
                    "This scores models; `python -m benchmarks` measures speed and memory "
                    "(docs/benchmarks.md says which is which).")
    parser.add_argument("--models", required=True,
                        help="comma-separated models, the table's rows as written: model "
                             "folders, Hub repo ids (org/name), cbramod:SRC / labram:SRC "
                             "published weights, registry names at random init "
                             "(criss_cross_base; hyperparameters as criss_cross_small?dim=64)")
    parser.add_argument("--tasks", required=True,
                        help="comma-separated tasks, the table's columns as written: shipped "
                             "task configs by name (bcic_iv_2a, tuab, finger_movements ...: "
                             "the finetune/ folder) or paths to task config YAML files")
    parser.add_argument("--mode", default="probe",
                        help="probe, finetune or probe,finetune (default probe)")
    parser.add_argument("--out", required=True, help="output folder (resumed when it holds an "
                                                     "earlier comparison)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds per cell (default: each task config's): seeds 0..N-1")
    parser.add_argument("--epochs", type=int, default=None,
                        help="train.epochs of fine-tuning, trained probe heads and supervised "
                             "baselines (default: each task config's)")
    parser.add_argument("--baselines", default=None,
                        help="comma-separated baselines for every task, or 'none' (default: "
                             "each task config's)")
    parser.add_argument("--protocols", choices=PROTOCOL_CHOICES, default="all",
                        help="all: each task's protocol and its also_protocols (default); "
                             "main: its protocol only")
    parser.add_argument("--batch-size", type=int, default=64, help="forward-pass batch size")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    parser.add_argument("--cache-dir", default=None,
                        help="embedding cache (default ~/.cache/neurofm/embeddings)")
    parser.add_argument("--on-nan", choices=("error", "drop"), default="error",
                        help="trials with NaN/Inf samples: stop (the cell fails, naming them) "
                             "or drop them")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into --out although it holds files neurofm did not write "
                             "(they are kept)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from neurofm.compare import CompareSettings, run_comparison

    payload = run_comparison(CompareSettings(
        models=args.models, tasks=args.tasks, modes=args.mode, out=args.out, seeds=args.seeds,
        epochs=args.epochs, baselines=args.baselines, protocols=args.protocols,
        batch_size=args.batch_size, device=args.device, cache_dir=args.cache_dir,
        on_nan=args.on_nan), overwrite=args.overwrite)
    print(payload["markdown"])
    if payload["failed"]:
        print(f"{len(payload['failed'])} cell(s) failed; their reasons are in "
              f"{args.out}/compare.md (Cells) and compare.json (failed). Rerun the same command "
              "to retry them.")
        return 1
    return 0
