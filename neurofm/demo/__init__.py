"""``neurofm demo``: the whole toolkit end to end on simulated and real data, on a laptop CPU.

simulate a pretraining corpus (EEG caps + MEG) -> prepare -> pretrain a criss-cross transformer
and a bidirectional Mamba (torchrun, 2 processes) -> save Hub-style model folders -> frozen probe
and fine-tune on held-out tasks -> one table (pretrained vs random-init vs supervised baselines,
with 95 % CIs) and ``report.md``. See ``docs/demo.md``.

::

    from neurofm.demo import QUICK, run_demo
    run = run_demo(QUICK, "neurofm-demo")
    print(run.facts["report"]["table"])
"""

from neurofm.demo.pipeline import STAGES, DemoRun, run_demo, stage_record
from neurofm.demo.settings import (
    FULL,
    PRESETS,
    QUICK,
    CorpusPart,
    DemoSettings,
    ModelPlan,
    TaskPlan,
)

__all__ = [
    "FULL",
    "PRESETS",
    "QUICK",
    "STAGES",
    "CorpusPart",
    "DemoRun",
    "DemoSettings",
    "ModelPlan",
    "TaskPlan",
    "run_demo",
    "stage_record",
]
