"""``neurofm finetune``: fine-tune a model with a new head on the same protocols as the probe."""

from __future__ import annotations

from neurofm.commands.probe import add_common_arguments, print_summary, settings_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="Fine-tune a model (full, head-only or last N blocks) on a labelled data set.",
        description="Fine-tune a copy of the model per fold with a new classification (or "
                    "regression) head: AdamW with separate backbone/head learning rates, "
                    "label smoothing, warm-up + cosine schedule, early stopping on a validation "
                    "split from the training subjects. Settings come from --config "
                    "finetune/<task>.yaml (train: epochs, batch_size, lr_backbone, lr_head, "
                    "weight_decay, label_smoothing, patience, val_fraction); flags override. "
                    "Scored with the probe's protocols and metrics, beside the baselines.")
    add_common_arguments(parser)
    parser.add_argument("--freeze", default=None,
                        help="none (full fine-tune, default), backbone (train the head only) or "
                             "partial:N (train the last N blocks and the head)")
    parser.add_argument("--lora", type=int, default=None, metavar="R",
                        help="train rank-R LoRA adapters of the backbone's linear layers "
                             "(with --freeze backbone) instead of its weights")
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    parser.set_defaults(func=run)


def run(args) -> int:
    from neurofm.eval.run import run_evaluation

    payload = run_evaluation(settings_from_args(args, "finetune", lora=args.lora),
                             overwrite=args.overwrite)
    print_summary(payload)
    return 0
