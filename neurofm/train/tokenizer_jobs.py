"""Tokenizer jobs: train a tokenizer on a corpus or recordings, encode a recording into codes.

``neurofm tokenizer train`` (through :mod:`neurofm.worker`, on one process or every torchrun
rank) runs :func:`open_tokenizer_data` and :func:`run_tokenizer_training`; ``neurofm tokenizer
encode`` runs :func:`write_codes` (:func:`encode_recording`, then an ``.npz`` file). A run is described by a :class:`TokenizerRun` (a named
tokenizer config or a YAML file, plus ``--steps`` etc.). (Moved from ``neurofm.tokenizer.pipeline``
in neurofm 0.2.)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from neurofm.corpus import split_by_subject
from neurofm.data.dataset import WindowDataset, collate_windows, load_windows
from neurofm.data.preprocess import PreprocessConfig
from neurofm.data.spec import PreprocessSpec
from neurofm.logs import get_logger, verbose
from neurofm.output_folder import claim_output_folder
from neurofm.sensors import SensorBatch
from neurofm.strict import from_dict
from neurofm.tokenizer.model import TOKENIZER_CONFIGS, NeuralTokenizer, tokenizer_config
from neurofm.train.data import TrainingData, open_training_data
from neurofm.train.distributed import barrier, init_distributed, raise_together
from neurofm.train.tokenizer_loop import (
    TokenizerTrainConfig,
    evaluate_tokenizer,
    mean_amplitude_spectrum,
    train_tokenizer,
)

logger = get_logger(__name__)

#: The command whose output-folder marker tokenizer training folders carry.
TOKENIZER_COMMAND = "neurofm tokenizer train"
#: Preprocessing keys of a corpus that :class:`neurofm.data.PreprocessConfig` understands.
_PREPROCESS_KEYS = ("l_freq", "h_freq", "notch", "line_freq", "scales", "kinds")


@dataclass
class TokenizerRun:
    """Everything a tokenizer training run needs besides its data.

    Attributes
    ----------
    tokenizer : str or dict
        A name from :data:`~neurofm.tokenizer.TOKENIZER_CONFIGS`, or a mapping with an optional
        ``name`` (default ``"small"``) and :class:`~neurofm.tokenizer.TokenizerConfig`
        overrides. ``patch_size`` and ``sfreq`` follow the data.
    steps, lr, warmup_steps, weight_decay, grad_clip, log_every
        See :class:`~neurofm.train.tokenizer_loop.TokenizerTrainConfig`.
    batch_size : int
        Global batch (split evenly over ranks).
    seed : int
        Model initialisation and data order.
    val_fraction : float
        Fraction of subjects held out for the final evaluation (corpora with >= 2 subjects).
    eval_batches : int
        Held-out batches evaluated at the end.
    window_seconds : float
        Window length when the data are recording files (corpora have their own).
    """

    tokenizer: str | dict = "small"
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    log_every: int = 50
    seed: int = 0
    val_fraction: float = 0.1
    eval_batches: int = 20
    window_seconds: float = 5.0

    @classmethod
    def from_source(cls, config: str | None, **overrides) -> TokenizerRun:
        """Build from a config name or a YAML/JSON file, then apply non-None ``overrides``."""
        values: dict = {}
        if config is None:
            pass
        elif config in TOKENIZER_CONFIGS:
            values["tokenizer"] = config
        else:
            path = Path(config).expanduser()
            if not path.is_file():
                raise FileNotFoundError(
                    f"Tokenizer config {config!r} is neither a named config "
                    f"({', '.join(sorted(TOKENIZER_CONFIGS))}) nor an existing YAML file.")
            values = yaml.safe_load(path.read_text()) or {}
            if not isinstance(values, dict):
                raise ValueError(f"{path} must hold a mapping of run settings "
                                 "(tokenizer:, steps:, batch_size:, ...).")
        values.update({k: v for k, v in overrides.items() if v is not None})
        run = from_dict(cls, values, where=f"tokenizer run settings {config!r}")
        run.model_config({})  # fail early on a bad tokenizer section
        return run

    def model_config(self, preprocessing: dict | PreprocessSpec):
        """The :class:`TokenizerConfig` for data prepared with ``preprocessing``."""
        spec = {"name": self.tokenizer} if isinstance(self.tokenizer, str) else dict(self.tokenizer)
        name = spec.pop("name", "small")
        facts = preprocessing
        if isinstance(preprocessing, PreprocessSpec):
            facts = {"patch_size": preprocessing.patch_samples, "sfreq": preprocessing.sfreq}
            preprocessing = preprocessing.to_dict()
        for key in ("patch_size", "sfreq"):
            have = facts.get(key)
            if have is None:
                continue
            want = spec.setdefault(key, have)
            if abs(float(want) - float(have)) > 1e-6:
                raise ValueError(f"The tokenizer config sets {key}={want} but the data were "
                                 f"prepared with {key}={have}; remove {key} from the config or "
                                 "prepare the data with the tokenizer's value.")
        if preprocessing:
            spec["preprocessing"] = dict(preprocessing)
        return tokenizer_config(name, **spec)

    def train_config(self) -> TokenizerTrainConfig:
        return TokenizerTrainConfig(steps=self.steps, lr=self.lr, weight_decay=self.weight_decay,
                           warmup_steps=min(self.warmup_steps, max(1, self.steps // 5)),
                           grad_clip=self.grad_clip, log_every=self.log_every)


def open_tokenizer_data(data: list[str], run: TokenizerRun, *, cache_dir: str | None = None,
                        is_main: bool = True, wait=lambda: None, progress: bool = True):
    """Training data from a corpus folder, ``sim:NAME``, or recording files.

    Returns
    -------
    neurofm.train.data.TrainingData
    """
    if not data:
        raise ValueError("Give --data: a corpus folder (neurofm prepare), sim:tiny, or "
                         "recording files.")
    if len(data) == 1 and (data[0].startswith("sim:") or Path(data[0]).is_dir()):
        return open_training_data(data[0], cache_dir=cache_dir, is_main=is_main, wait=wait)
    pre = PreprocessConfig()
    dataset = WindowDataset.from_files(data, pre, window_seconds=run.window_seconds,
                                       progress=progress and is_main)
    for path, reason in dataset.skipped:
        logger.warning("skipped %s: %s", path, reason)
    preprocessing = {k: v for k, v in pre.to_dict().items() if k in _PREPROCESS_KEYS}
    preprocessing.update(sfreq=float(pre.sfreq), patch_size=int(dataset[0]["x"].shape[-1]),
                         window_seconds=run.window_seconds)
    return TrainingData(dataset, preprocessing, f"{len(data)} recording file(s)")


class _WindowItems(torch.utils.data.Dataset):
    """The windows ``indices`` of ``dataset``, reduced to what :func:`collate_windows` takes."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, [int(i) for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        item = self.dataset[self.indices[i]]
        return {k: item[k] for k in ("x", "sensors", "patch_valid")}


def _batches_forever(loader, sampler):
    epoch = 0
    while True:
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


@verbose
def run_tokenizer_training(training_data, run: TokenizerRun, out: str | Path, *,
                           device: str = "auto", progress: bool = True,
                           overwrite: bool = False, verbose=None) -> dict:
    """Train a tokenizer and write it to ``out``.

    ``out`` receives ``tokenizer/`` (config.json + model.safetensors), ``metrics.jsonl`` (the
    training log) and ``eval.json`` (held-out reconstruction, mean-spectrum baseline, codebook
    usage and perplexity). Launched by ``torchrun``, every rank trains on its share of each batch.

    Parameters
    ----------
    training_data : neurofm.train.data.TrainingData
    run : TokenizerRun
    out : str or Path
    device : {"auto", "cpu", "cuda"}
    progress : bool
        Show a progress bar (rank 0; never above INFO level).
    overwrite : bool
        Write into ``out`` although it holds files neurofm did not write (they are kept).
    verbose : bool, str, int or None
        Log level of the run (:func:`neurofm.logs.log_level`; None: the package's).

    Returns
    -------
    dict
        The held-out evaluation (rank 0; other ranks get an empty dict).
    """
    env = init_distributed(device)
    out = Path(out)
    error = None
    if env.is_main:  # the output-folder rule: a new, empty or earlier tokenizer folder
        try:
            claim_output_folder(out, TOKENIZER_COMMAND,
                                {"run": json.loads(json.dumps(asdict(run), default=str))},
                                overwrite=overwrite)
        except ValueError as err:
            error = str(err)
    raise_together(error, env)
    dataset = training_data.dataset
    train_idx, val_idx = np.arange(len(dataset)), np.array([], dtype=np.int64)
    subjects = getattr(dataset, "window_subjects", None)
    if run.val_fraction > 0 and subjects is not None and len(set(subjects)) >= 2:
        train_idx, val_idx = split_by_subject(subjects, run.val_fraction, seed=run.seed)
    if run.batch_size % env.world_size:
        raise ValueError(f"batch_size={run.batch_size} must divide by the number of processes "
                         f"({env.world_size}).")
    per_rank = run.batch_size // env.world_size
    if len(train_idx) < run.batch_size:
        raise ValueError(f"The data hold {len(train_idx)} training windows, fewer than one batch "
                         f"(batch_size={run.batch_size}); lower batch_size or add data.")
    train_items = _WindowItems(dataset, train_idx)
    if env.is_main:
        logger.info("Training a tokenizer on %s: %d training window(s), %d held out, %d steps, "
                    "global batch %d, %d process(es), into %s", training_data.description,
                    len(train_idx), len(val_idx), run.steps, run.batch_size, env.world_size, out)
    generator = torch.Generator().manual_seed(run.seed)
    sampler = (DistributedSampler(train_items, env.world_size, env.rank, seed=run.seed)
               if env.distributed else RandomSampler(train_items, generator=generator))
    loader = DataLoader(train_items, batch_size=per_rank, sampler=sampler, drop_last=True,
                        collate_fn=collate_windows)

    torch.manual_seed(run.seed)
    model = NeuralTokenizer(run.model_config(training_data.preprocessing))
    log_file = None
    if env.is_main:
        log_file = (out / "metrics.jsonl").open("w")

    def log(record: dict) -> None:
        if log_file is not None:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()

    history = train_tokenizer(model, _batches_forever(loader, sampler), run.train_config(),
                              device=env.device, progress=progress, on_log=log)
    result: dict = {}
    if env.is_main:
        log_file.close()
        eval_items = _WindowItems(dataset, val_idx if len(val_idx) else train_idx)
        eval_loader = DataLoader(eval_items, batch_size=per_rank, collate_fn=collate_windows)
        eval_batches = [b for _, b in zip(range(run.eval_batches), eval_loader)]
        mean_batches = [b for _, b in zip(range(run.eval_batches), loader)]
        result = evaluate_tokenizer(model, eval_batches, device=env.device,
                                    mean_amplitude=mean_amplitude_spectrum(mean_batches))
        result.update(held_out=bool(len(val_idx)), data=training_data.description,
                      steps=history[-1]["step"] if history else 0)
        model.save_pretrained(out / "tokenizer")
        (out / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "run.json").write_text(json.dumps(asdict(run), indent=2, default=str) + "\n")
    barrier(env)
    return result


@torch.no_grad()
def encode_recording(tokenizer: NeuralTokenizer, path: str, *, window_seconds: float | None = None,
                     batch_size: int = 16, montage: str | None = None,
                     device: str = "cpu") -> dict:
    """Code indices of one recording, preprocessed the way the tokenizer's data were.

    Parameters
    ----------
    tokenizer : NeuralTokenizer
    path : str
        Any file :func:`neurofm.data.read_raw` reads, or ``sample:NAME``.
    window_seconds : float or None
        Window length (default: the training windows' length, else 30 s).
    batch_size : int
        Windows per forward pass.
    montage : str or None
        Montage for channels without positions in the file.

    Returns
    -------
    dict of ndarray
        ``codes`` int64 ``[W, C, N, L]`` (``[W, K, N, L]`` with channel unification),
        ``start`` float64 ``[W]`` seconds, ``channels`` str ``[C]``, ``kinds`` int64 ``[C]``,
        ``patch_valid`` bool ``[W, N]``.
    """
    cfg = tokenizer.config
    pre = {k: v for k, v in cfg.preprocessing.items() if k in _PREPROCESS_KEYS}
    preprocess = PreprocessConfig.from_dict({**pre, "sfreq": cfg.sfreq, "montage": montage})
    if window_seconds is None:
        samples = cfg.preprocessing.get("window_samples")
        window_seconds = (samples / cfg.sfreq if samples
                          else cfg.preprocessing.get("window_seconds", 30.0))
    windows = load_windows(path, preprocess, window_seconds=window_seconds,
                           patch_seconds=cfg.patch_size / cfg.sfreq)
    if len(windows) == 0:
        raise ValueError(f"{path}: no window of {window_seconds:g} s could be made "
                         f"({'; '.join(windows.report) or 'recording too short'}).")
    tokenizer.to(device).eval()
    sensors = SensorBatch.from_layout(windows.sensors).to(device)
    codes = []
    for start in range(0, len(windows), batch_size):
        x = torch.from_numpy(windows.x[start:start + batch_size]).to(device)
        batch = SensorBatch.collate([sensors] * x.shape[0])
        codes.append(tokenizer.encode(x, batch).cpu())
    return {"codes": torch.cat(codes).numpy(), "start": np.asarray(windows.start),
            "channels": np.asarray(windows.sensors.names), "kinds": windows.sensors.kinds,
            "patch_valid": np.asarray(windows.patch_valid)}


def write_codes(tokenizer: NeuralTokenizer, path: str, out: str | Path, **options) -> dict:
    """Encode one recording (:func:`encode_recording`) and write its codes to an ``.npz`` file.

    Parameters
    ----------
    tokenizer : NeuralTokenizer
    path : str
        The recording (any file :func:`neurofm.data.read_raw` reads, or ``sample:NAME``).
    out : str or Path
        The ``.npz`` file to write (``np.load`` reads it back).
    **options
        ``window_seconds``, ``batch_size``, ``montage``, ``device`` of :func:`encode_recording`.

    Returns
    -------
    dict of ndarray
        What was written (see :func:`encode_recording`).
    """
    result = encode_recording(tokenizer, path, **options)
    np.savez_compressed(out, **result)
    return result
