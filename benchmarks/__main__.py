"""``python -m benchmarks all --out results/ [--quick]``: every benchmark, then RESULTS.md."""

from benchmarks.run_all import main

raise SystemExit(main())
