"""``neurofm probe``: frozen linear probe of a model on a labelled data set, with baselines.

The backbone is frozen (verified bit for bit), embeddings are extracted once per model and data
(cached on disk), and a standardised logistic regression is fitted per fold with its ``C``
chosen by inner cross-validation on the training side. Every table also holds the classic
log-band-power baseline and, for a pretrained model, the same architecture at random init.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from neurofm.eval.baselines import BASELINES
from neurofm.eval.protocols import PROTOCOLS

#: Keys a task config (``finetune/*.yaml``) may set.
CONFIG_KEYS = {"task", "data", "protocol", "shots", "n_folds", "seeds", "pool", "freeze",
               "preprocessing", "train", "baselines", "reference", "notes", "published"}


def add_common_arguments(parser) -> None:
    """Flags shared by ``probe`` and ``finetune`` (None = take the config's / default value)."""
    parser.add_argument("--model", required=True,
                        help="model directory (config.json + model.safetensors) or a registry "
                             "name such as criss_cross_small (random init: the reference a "
                             "pretrained model must beat)")
    parser.add_argument("--data", default=None,
                        help="data set: sim:TASK?key=value..., aeon:FingerMovements, "
                             "aeon:EyesOpenShut, a BIDS root, a folder of -epo.fif files")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--config", default=None,
                        help="task config YAML (finetune/<task>.yaml): data, protocol, "
                             "preprocessing, training; flags given here override it")
    parser.add_argument("--protocol", choices=PROTOCOLS, default=None,
                        help="cross-subject (default; subjects never in two folds), loso, "
                             "within-subject (stratified k-fold per subject), few-shot "
                             "(--shots K trials per class to train), official (published split)")
    parser.add_argument("--shots", type=int, default=None, help="K for --protocol few-shot")
    parser.add_argument("--folds", dest="n_folds", type=int, default=None,
                        help="folds for cross-subject / within-subject (default 5)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="number of seeds 0..S-1 (default 5); results are mean ± std and "
                             "95%% CI over seeds x folds")
    parser.add_argument("--pool", choices=("mean", "channels", "attention"), default=None,
                        help="mean: the model's embedding, mean over channels and patches "
                             "(default); channels: per-channel features concatenated (keeps "
                             "spatial information; fixed montage); attention: learned-query "
                             "attention pooling trained on the frozen backbone")
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
    pp.add_argument("--notch", type=float, default=None,
                    help="deprecated spelling of --line-freq")
    parser.add_argument("--batch-size", type=int, default=64, help="forward-pass batch size")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    parser.add_argument("--cache-dir", default=None,
                        help="embedding cache (default ~/.cache/neurofm/embeddings)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")


def _parse_value(text: str):
    import yaml

    return yaml.safe_load(text)


def read_task_config(path) -> dict:
    """Read a task YAML and check its keys."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Task config {path} not found; see finetune/ for examples.")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a mapping of settings.")  # noqa: TRY004
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; known: {sorted(CONFIG_KEYS)}.")
    return config


def settings_from_args(args, mode: str):
    """Merge defaults < task config < flags into :class:`neurofm.eval.run.EvalSettings`."""
    from neurofm.eval.run import EvalSettings

    config = read_task_config(args.config) if args.config else {}
    overrides = {}
    for item in args.model_arg:
        if "=" not in item:
            raise ValueError(f"--model-arg {item!r}: expected KEY=VALUE, e.g. dim=32.")
        key, value = item.split("=", 1)
        overrides[key.strip()] = _parse_value(value)
    preprocessing = dict(config.get("preprocessing") or {})
    if args.notch is not None:
        warnings.warn("--notch is deprecated; use --line-freq.", FutureWarning, stacklevel=2)
    line_freq = args.line_freq if args.line_freq is not None else args.notch
    preprocessing.update({k: v for k, v in (("sfreq", args.sfreq), ("l_freq", args.l_freq),
                                            ("h_freq", args.h_freq), ("line_freq", line_freq))
                          if v is not None})
    if line_freq is not None:
        preprocessing.pop("notch", None)  # the flag wins over the config's old spelling
    data = args.data or config.get("data")
    if not data:
        raise ValueError("No data set: pass --data or a --config that names one.")
    if data.startswith("~"):
        data = os.path.expanduser(data)
    baselines = args.baselines if args.baselines is not None else config.get("baselines",
                                                                              "bandpower")
    if isinstance(baselines, str):
        baselines = [] if baselines.strip() == "none" else \
            [b.strip() for b in baselines.split(",") if b.strip()]
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"Unknown baseline(s) {unknown}; choose from {', '.join(BASELINES)}.")

    def pick(name, default):
        flag = getattr(args, name, None)
        return flag if flag is not None else config.get(name, default)

    return EvalSettings(
        model=args.model, data=data, out=args.out, mode=mode,
        protocol=pick("protocol", "cross-subject"), shots=pick("shots", None),
        n_folds=pick("n_folds", 5), seeds=pick("seeds", 5), pool=pick("pool", "mean"),
        model_overrides=overrides, preprocessing=preprocessing, baselines=baselines,
        batch_size=args.batch_size, device=args.device, cache_dir=args.cache_dir,
        freeze=pick("freeze", "none"), train=dict(config.get("train") or {}),
        importance=not getattr(args, "no_importance", False),
        random_init_reference=not getattr(args, "no_random_init", False),
        task_config=args.config)


def print_summary(payload: dict) -> None:
    print(payload["table_markdown"])
    print(f"Preprocessing applied: {'; '.join(payload['preprocessing']['applied'])}")
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

    payload = run_evaluation(settings_from_args(args, "probe"))
    print_summary(payload)
    return 0
