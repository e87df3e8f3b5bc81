"""Entry point of one pretraining process: ``python -m neurofm.pretrain --config FILE``.

The launch documented for clusters (``torchrun --nproc_per_node=N -m neurofm.pretrain --config
...``; multi-node with ``--nnodes`` and ``--rdzv-endpoint``). It is
``python -m neurofm.worker pretrain ...``: :mod:`neurofm.worker` is the one worker entry point of
both training jobs.
"""

from __future__ import annotations

import sys

from neurofm import worker


def main(argv: list[str] | None = None) -> int:
    return worker.main(["pretrain", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
