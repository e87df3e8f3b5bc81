"""``python -m benchmarks``: finding scripts, calling them the way each names its output, and
rendering RESULTS.md — on small stand-in scripts, so no real benchmark runs here."""

import json
import textwrap

from benchmarks import run_all

OUT_SCRIPT = """\
import argparse, json
from pathlib import Path
p = argparse.ArgumentParser()
p.add_argument("--quick", action="store_true")
p.add_argument("--out", type=Path, default=Path("x.json"))
a = p.parse_args()
print("| case | speed |")
a.out.write_text(json.dumps({"quick": a.quick, "machine": {"cores": 2},
                             "results": [{"case": "ours", "speed": 2.5, "ratio": 1.25},
                                         {"case": "peer", "speed": 2.0, "ratio": 1.0}],
                             "ratios": {"ours_vs_peer": 1.25}}))
a.out.with_suffix(".png").write_bytes(b"png")
"""
JSON_FLAG_SCRIPT = """\
import argparse, json
p = argparse.ArgumentParser()
p.add_argument("--json", default="y.json")
a = p.parse_args()
open(a.json, "w").write(json.dumps({"windows_per_s": 10.0}))
"""
FAILING_SCRIPT = """\
import argparse, sys
argparse.ArgumentParser().parse_args()
sys.exit(3)
"""


def make_scripts(folder):
    for name, body in (("alpha", OUT_SCRIPT), ("beta", JSON_FLAG_SCRIPT),
                       ("gamma", FAILING_SCRIPT), ("_helper", "x = 1\n"), ("run_all", "")):
        (folder / f"{name}.py").write_text(textwrap.dedent(body))


def test_discovers_scripts_and_reads_their_flags(tmp_path):
    make_scripts(tmp_path)
    assert run_all.discover_scripts(tmp_path) == ["alpha", "beta", "gamma"]
    assert run_all.script_options("alpha", tmp_path)["output_flag"] == "--out"
    assert run_all.script_options("alpha", tmp_path)["quick"] is True
    beta = run_all.script_options("beta", tmp_path)
    assert beta["output_flag"] == "--json" and beta["quick"] is False


def test_runs_scripts_records_failures_and_renders_tables(tmp_path):
    scripts, out = tmp_path / "scripts", tmp_path / "results"
    scripts.mkdir()
    out.mkdir()
    make_scripts(scripts)
    records = [run_all.run_script(name, out, quick=True, timeout=120, folder=scripts)
               for name in ("alpha", "beta", "gamma")]
    assert [r["status"] for r in records] == ["ok", "ok", "failed"]
    assert json.loads((out / "alpha.json").read_text())["quick"] is True
    assert "--quick" not in records[1]["command"]  # beta has no --quick
    assert records[2]["reason"] == "exit status 3" and records[2]["json"] is None
    assert "| case | speed |" in (out / "alpha.log").read_text()

    machine = run_all.machine_description()
    md = run_all.render_results(out, records, machine, tmp_path / "RESULTS.md").read_text()
    assert machine["date"] in md and f"{machine['cores']} cores" in md
    assert "| `gamma.py` | failed (exit status 3) |" in md
    assert md.startswith("# Benchmark results\n\nMeasured ")
    assert "| case | speed | ratio |" in md and "| ours | 2.5 | 1.25 |" in md
    assert "**ratios**" in md and "| 1.25 |" in md
    assert "![alpha](results/alpha.png)" in md
    assert "- windows_per_s: 10" in md


def test_record_tables_finds_lists_and_objects_of_records():
    data = {"a": 1, "rows": [{"x": 1}], "nested": {"cases": {"one": {"t": 1.0}, "two": {"t": 2}}},
            "flat": {"k": 3}}
    found = dict(run_all.record_tables(data))
    assert found["rows"] == [{"x": 1}]
    assert found["nested.cases"] == [{"name": "one", "t": 1.0}, {"name": "two", "t": 2}]
    assert found["flat"] == [{"k": 3}]
    assert "a" not in found
