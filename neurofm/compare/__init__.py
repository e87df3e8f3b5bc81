"""``neurofm compare``: models x tasks x modes in one command, beside the published numbers.

::

    from neurofm.compare import CompareSettings, run_comparison

    table = run_comparison(CompareSettings(
        models=["runs/cc_base/model", "cbramod:weights.pth", "criss_cross_base"],
        tasks=["bcic_iv_2a", "finger_movements"], modes=["probe", "finetune"], seeds=3,
        out="results/compare"))

Each cell is one :func:`neurofm.eval.run.run_evaluation` run (:mod:`neurofm.compare.cells`),
run once and kept (:mod:`neurofm.compare.run`); the table is written from the cells' results
(:mod:`neurofm.compare.table`). Tasks are the shipped task configs or config files
(:mod:`neurofm.compare.tasks`). Not to be confused with ``python -m benchmarks``, which measures
speed and memory, not how well models score.
"""

from neurofm.compare.run import CompareSettings, run_comparison
from neurofm.compare.tasks import find_task_config, shipped_tasks

__all__ = ["CompareSettings", "find_task_config", "run_comparison", "shipped_tasks"]
