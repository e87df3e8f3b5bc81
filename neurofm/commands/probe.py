"""``neurofm probe``: frozen linear probe of a model on a labelled data set, with baselines.

The backbone is frozen (verified bit for bit), embeddings are extracted once per model and data
(cached on disk), and a standardised logistic regression is fitted per fold with its ``C``
chosen by inner cross-validation on the training side. Every table also holds the classic
log-band-power baseline and, for a pretrained model, the same architecture at random init.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neurofm.commands.flags import DeprecatedFlag, add_revision_flag

if TYPE_CHECKING:
    from neurofm.eval.settings import EvalSettings, TaskConfig

#: ``neurofm.eval.protocols.PROTOCOLS``, ``neurofm.eval.baselines.BASELINES`` and the poolings
#: of ``neurofm.eval.settings.POOLINGS``, written out so that ``--help`` imports no evaluation
#: code (tests/test_cli.py checks that they agree).
PROTOCOLS = ("cross-subject", "loso", "cross-session", "within-session", "within-subject",
             "few-shot", "official")
BASELINES = ("bandpower", "fbcsp", "eegnet", "shallow")
POOLINGS = ("mean", "channels", "attention", "patches")
TARGETS = ("trial", "channel")


def add_common_arguments(parser) -> None:
    """Flags shared by ``probe`` and ``finetune`` (None = take the config's / default value)."""
    parser.add_argument("--model", required=True,
                        help="model directory (config.json + model.safetensors), Hub repo id "
                             "(org/name), cbramod:SRC / labram:SRC published weights, or a "
                             "registry name such as criss_cross_small (random init: the "
                             "reference a pretrained model must beat)")
    add_revision_flag(parser)
    parser.add_argument("--data", default=None,
                        help="data set: sim:TASK?key=value..., aeon:FingerMovements, "
                             "aeon:EyesOpenShut, moabb:NAME?paradigm=...&subjects=1,2 (never "
                             "downloaded: neurofm datasets download moabb:NAME), a BIDS root, a "
                             "folder of -epo.fif files")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--config", default=None,
                        help="task config YAML (finetune/<task>.yaml): data, protocol, "
                             "preprocessing, training; flags given here override it")
    parser.add_argument("--protocol", choices=PROTOCOLS, default=None,
                        help="cross-subject (default; subjects never in two folds), loso, "
                             "cross-session (each session tested on the subject's other "
                             "sessions), within-session (k-fold inside each session), "
                             "within-subject (k-fold per subject), few-shot (--shots K trials "
                             "per class to train), official (the published split, or the "
                             "paper's split of the task config, with its validation part)")
    parser.add_argument("--shots", type=int, default=None, help="K for --protocol few-shot")
    parser.add_argument("--folds", dest="n_folds", type=int, default=None,
                        help="folds for cross-subject / within-subject (default 5)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds (default 5): seeds 0..N-1, or S..S+N-1 with "
                             "--seed S; results are mean ± std and 95%% CI over seeds x folds")
    parser.add_argument("--seed", type=int, default=None,
                        help="first seed; alone, one run with seed S (seeds drive random-init "
                             "weights, fold shuffling, few-shot draws and training)")
    parser.add_argument("--pool", choices=POOLINGS, default=None,
                        help="mean: the model's embedding, mean over channels and patches "
                             "(default); channels: per-channel features concatenated (keeps "
                             "spatial information; fixed montage); attention: learned-query "
                             "attention pooling trained on the frozen backbone; patches: an MLP "
                             "over every patch representation (CBraMod's classifier; fixed "
                             "montage and trial length)")
    parser.add_argument("--target", choices=TARGETS, default=None,
                        help="what the labels belong to: trial (default; whole recordings of "
                             "an iEEG recording task too) or channel (contacts: per-contact "
                             "embeddings scored, folds over patients; omni-ieeg:PATH?task=soz)")
    parser.add_argument("--on-nan", choices=("error", "drop"), default="error",
                        help="trials with NaN/Inf samples: stop naming each by file, subject "
                             "and onset (default), or drop them (listed in results.json)")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="hyperparameter override for a registry name, e.g. dim=32 "
                             "(repeatable)")
    parser.add_argument("--baselines", default=None,
                        help=f"comma-separated reference rows from {', '.join(BASELINES)} "
                             "(default: bandpower); 'none' for no baseline")
    pp = parser.add_argument_group("preprocessing (default: what the model's config.json "
                                   "records)")
    pp.add_argument("--sfreq", type=float, default=None, help="resample to this rate (Hz)")
    pp.add_argument("--l-freq", type=float, default=None, help="high-pass (Hz)")
    pp.add_argument("--h-freq", type=float, default=None, help="low-pass (Hz)")
    pp.add_argument("--line-freq", type=float, default=None,
                    help="mains frequency to notch, with its harmonics (Hz)")
    pp.add_argument("--notch", type=float, dest="line_freq", action=DeprecatedFlag,
                    new="--line-freq")
    parser.add_argument("--batch-size", type=int, default=64, help="forward-pass batch size")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    parser.add_argument("--cache-dir", default=None,
                        help="embedding cache (default ~/.cache/neurofm/embeddings)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into --out although it holds files neurofm did not write "
                             "(they are kept; results.json and the figures are replaced)")


def task_from_flags(args) -> TaskConfig:
    """What the flags of ``probe`` / ``finetune`` set, as a :class:`TaskConfig` (None = unset).

    ``--seed S`` without ``--seeds`` asks for one seed, S.
    """
    from neurofm.eval.settings import TaskConfig

    preprocessing = {k: v for k, v in (("sfreq", args.sfreq), ("l_freq", args.l_freq),
                                       ("h_freq", args.h_freq), ("line_freq", args.line_freq))
                     if v is not None}
    seeds = 1 if args.seed is not None and args.seeds is None else args.seeds
    epochs = getattr(args, "epochs", None)
    freeze = getattr(args, "freeze", None)
    if freeze is None and getattr(args, "lora", None) is not None:
        freeze = "backbone"  # LoRA adapters train instead of the backbone's weights
    return TaskConfig(data=args.data, protocol=args.protocol, shots=args.shots,
                      n_folds=args.n_folds, seeds=seeds, pool=args.pool,
                      freeze=freeze, target=args.target, baselines=args.baselines,
                      preprocessing=preprocessing,
                      train={} if epochs is None else {"epochs": epochs})


def model_arguments(items: list[str]) -> dict:
    """``--model-arg KEY=VALUE`` flags as ``{key: value}`` (values read as YAML: ``dim=32``)."""
    import yaml

    overrides = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--model-arg {item!r}: expected KEY=VALUE, e.g. dim=32.")
        key, value = item.split("=", 1)
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def settings_from_args(args, mode: str, **options) -> EvalSettings:
    """Defaults < task config (``--config``) < flags, as :class:`EvalSettings`; ``options``
    are further run settings of the mode (``lora``)."""
    from neurofm.eval.settings import TaskConfig, evaluation_settings, read_task_config

    task = read_task_config(args.config) if args.config else TaskConfig()
    return evaluation_settings(
        mode, task.merged(task_from_flags(args)), model=args.model, out=args.out,
        model_overrides=model_arguments(args.model_arg), batch_size=args.batch_size,
        device=args.device, cache_dir=args.cache_dir,
        importance=not getattr(args, "no_importance", False),
        random_init_reference=not getattr(args, "no_random_init", False),
        task_config=args.config, on_nan=args.on_nan, revision=args.revision,
        seed=0 if args.seed is None else args.seed, **options)


def print_summary(payload: dict) -> None:
    print(payload["table_markdown"])
    print(f"Preprocessing applied: {'; '.join(payload['preprocessing']['applied'])}")
    dropped = payload["data"]["dropped_trials"]
    if dropped:
        print(f"Dropped {len(dropped)} trial(s) ({dropped[0]['reason']}); listed in "
              "results.json under data.dropped_trials")
    for method in payload["methods"]:
        for skipped in method["skipped_folds"]:
            print(f"skipped ({method['method']}): {skipped}")
    print(f"Wrote results.json, results.md and figures to {payload['settings']['out']}")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="Frozen linear probe of a model on a labelled data set (with baselines).",
        description="Freeze a model (verified: weights and buffers bit-identical, no "
                    "gradients), embed every trial once (cached), fit a standardised logistic "
                    "regression per fold with C chosen by inner CV on the training side, and "
                    "report balanced accuracy / kappa / F1 (multi-class), AUROC / AUC-PR "
                    "(binary) or r / R² / RMSE (regression) as mean ± std [95% CI] over "
                    "seeds x folds, beside the classic log-band-power baseline. Writes "
                    "results.json, results.md, confusion.png, per_subject.png and, for EEG/MEG "
                    "sensors, topomap.png of channel importance (occlusion).")
    add_common_arguments(parser)
    parser.add_argument("--no-importance", action="store_true",
                        help="skip the channel-occlusion importance topomap")
    parser.add_argument("--no-random-init", action="store_true",
                        help="for a pretrained model, skip the random-init reference row")
    parser.set_defaults(func=run)


def run(args) -> int:
    from neurofm.eval.run import run_evaluation

    payload = run_evaluation(settings_from_args(args, "probe"), overwrite=args.overwrite)
    print_summary(payload)
    return 0
