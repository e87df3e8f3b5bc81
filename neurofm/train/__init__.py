"""Training jobs: pretraining (config, the loop, checkpoints, metrics and export) and, beside
it, tokenizer training and encoding (:mod:`~neurofm.train.tokenizer_loop`,
:mod:`~neurofm.train.tokenizer_jobs`).

``train(load_config("pretrain/configs/sim_tiny.yaml"))`` runs on one process or, launched by
``torchrun --nproc_per_node=N -m neurofm.pretrain --config ...`` (or ``-m neurofm.worker
pretrain ...``, the worker of both jobs), on every rank.
"""

from neurofm.train.checkpoint import CheckpointManager
from neurofm.train.config import (
    DataConfig,
    ModelConfig,
    ObjectiveConfig,
    OptimConfig,
    PretrainConfig,
    RunConfig,
    load_config,
)
from neurofm.train.data import TrainingData
from neurofm.train.loop import NonFiniteLossError, TrainResult, train

__all__ = [
    "CheckpointManager",
    "DataConfig",
    "ModelConfig",
    "NonFiniteLossError",
    "ObjectiveConfig",
    "OptimConfig",
    "PretrainConfig",
    "RunConfig",
    "TrainResult",
    "TrainingData",
    "load_config",
    "train",
]
