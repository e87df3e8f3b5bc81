"""Run every benchmark script in ``benchmarks/`` and render ``benchmarks/RESULTS.md``.

Each script (``backbones.py``, ``pipeline.py``, ``simulation.py``, ``tokenizer.py``,
``training.py`` … every ``benchmarks/*.py`` that is not this runner) prints its own table and
writes one JSON file. This runner finds the scripts, asks each for its ``--help`` to learn how it
names its output file (``--out`` or ``--json``) and whether it has ``--quick``, runs them one after
another in child processes (a failing or timed-out script is recorded and the others go on),
keeps their logs, and renders every JSON into ``RESULTS.md``: the machine and date, one section
per script with its tables (lists of records become markdown tables) and links to its PNG plots.

Usage::

    python -m benchmarks all --out results/ [--quick] [--only training,pipeline]
    python -m benchmarks render --out results/      # RESULTS.md from existing JSON only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS_DIR = Path(__file__).resolve().parent
#: Files in ``benchmarks/`` that are not benchmark scripts.
NOT_SCRIPTS = {"__init__.py", "__main__.py", "run_all.py"}
#: Output-file flags a script may use, in order of preference.
OUTPUT_FLAGS = ("--out", "--json")
#: Longest table rendered per JSON list (the JSON keeps everything).
MAX_ROWS = 40


def discover_scripts(folder: Path = BENCHMARKS_DIR) -> list[str]:
    """Names (without ``.py``) of the benchmark scripts in ``folder``, sorted."""
    return sorted(p.stem for p in folder.glob("*.py")
                  if p.name not in NOT_SCRIPTS and not p.name.startswith("_"))


def script_options(name: str, folder: Path = BENCHMARKS_DIR) -> dict:
    """How to call one script: ``{"output_flag": "--out"|"--json"|None, "quick": bool}``.

    Read from the script's ``--help`` (so a script can change without this runner changing).
    """
    result = subprocess.run([sys.executable, str(folder / f"{name}.py"), "--help"],
                            capture_output=True, text=True, timeout=300, check=False)
    text = result.stdout
    flag = next((f for f in OUTPUT_FLAGS if re.search(rf"(^|\s){re.escape(f)}\b", text)), None)
    return {"output_flag": flag, "quick": bool(re.search(r"(^|\s)--quick\b", text)),
            "help_ok": result.returncode == 0,
            "help_error": result.stderr.strip().splitlines()[-1:] if result.returncode else []}


def run_script(name: str, out_dir: Path, *, quick: bool, timeout: float,
               folder: Path = BENCHMARKS_DIR) -> dict:
    """Run one benchmark script; return its record (status, seconds, JSON path, log path)."""
    record = {"script": f"{name}.py", "status": "ok", "seconds": 0.0, "json": None,
              "log": f"{name}.log"}
    options = script_options(name, folder)
    if not options["help_ok"]:
        record.update(status="failed", reason=f"--help failed: {options['help_error']}")
        return record
    command = [sys.executable, str(folder / f"{name}.py")]
    if quick and options["quick"]:
        command.append("--quick")
    json_path = out_dir / f"{name}.json"
    if options["output_flag"]:
        command += [options["output_flag"], str(json_path)]
    record["command"] = " ".join(command[1:])
    start = time.perf_counter()
    with open(out_dir / record["log"], "w") as log:
        try:
            result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                    timeout=timeout, cwd=folder.parent, check=False)
            if result.returncode != 0:
                record.update(status="failed", reason=f"exit status {result.returncode}")
        except subprocess.TimeoutExpired:
            record.update(status="timeout", reason=f"stopped after {timeout:.0f} s")
    record["seconds"] = time.perf_counter() - start
    if json_path.is_file():
        record["json"] = json_path.name
    elif record["status"] == "ok":
        record.update(status="failed", reason="wrote no JSON file")
    return record


def found_records(out_dir: Path) -> list[dict]:
    """Records for JSON files already in ``out_dir`` (rendering without a ``run_all.json``)."""
    return [{"script": p.name, "status": "ok", "seconds": None, "json": p.name,
             "log": None} for p in sorted(out_dir.glob("*.json")) if p.name != "run_all.json"]


def machine_description() -> dict:
    """Date, CPU, core count, load, Python and torch versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        torch_version = torch.__version__
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        torch_version, gpu = None, None
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu,
            "cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "gpu": gpu, "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch_version}


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return str(value).replace("|", "\\|")


def _is_scalar(value) -> bool:
    return not isinstance(value, (dict, list))


def record_tables(data, path: str = "") -> list[tuple[str, list[dict]]]:
    """Every table-shaped part of a JSON value, with where it sits (``results``, ``a.b``).

    A list of objects is a table; an object of objects is a table with a ``name`` column; a
    nested object of scalars is a one-row table. Top-level scalars are left to
    :func:`scalar_facts`.
    """
    if isinstance(data, list):
        return [(path or "(top level)", data)] if data and all(
            isinstance(x, dict) for x in data) else []
    if not isinstance(data, dict) or not data:
        return []
    values = list(data.values())
    if path and all(isinstance(v, dict) and v and all(map(_is_scalar, v.values()))
                    for v in values):
        return [(path, [{"name": k, **v} for k, v in data.items()])]
    if path and all(map(_is_scalar, values)):
        return [(path, [data])]
    found = []
    for key, value in data.items():
        found += record_tables(value, f"{path}.{key}" if path else str(key))
    return found


def markdown_records(rows: list[dict]) -> str:
    """A markdown table of records (columns: the union of scalar keys, first-seen order)."""
    columns: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in columns and _is_scalar(value):
                columns.append(key)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:MAX_ROWS]:
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    if len(rows) > MAX_ROWS:
        lines.append(f"\n({len(rows) - MAX_ROWS} more rows in the JSON file)")
    return "\n".join(lines)


def scalar_facts(data: dict) -> list[str]:
    """``key: value`` lines of a JSON object's top-level scalars (settings of the run)."""
    return [f"{k}: {_cell(v)}" for k, v in data.items() if _is_scalar(v)]


def _written(path: Path) -> str:
    if not path.is_file():
        return "—"
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M")


def plots_by_json(out_dir: Path, stems: list[str]) -> dict[str, list[Path]]:
    """PNG files of ``out_dir`` grouped by the JSON they belong to: the longest JSON name that
    starts the PNG's name (``backbones_scaling.png`` goes to ``backbones_scaling.json`` when
    that exists, else to ``backbones.json``)."""
    groups: dict[str, list[Path]] = {}
    for png in sorted(out_dir.glob("*.png")):
        owners = [s for s in stems if png.stem.startswith(s)]
        if owners:
            groups.setdefault(max(owners, key=len), []).append(png)
    return groups


def render_results(out_dir: Path, records: list[dict], machine: dict,
                   results_md: Path) -> Path:
    """Write ``results_md`` from the JSON files and PNGs in ``out_dir``."""
    try:
        link_base = Path(os.path.relpath(out_dir, results_md.parent))
    except ValueError:
        link_base = out_dir
    measured = "Rendered" if machine.get("rendered_only") else "Measured"
    lines = ["# Benchmark results", "",
             f"{measured} {machine['date']} on {machine['cpu']} ({machine['cores']} cores"
             + (f", {machine['gpu']}" if machine.get("gpu") else "") + f"), "
             f"{machine['platform']}, Python {machine['python']}, torch {machine['torch']}"
             + ("." if machine.get("rendered_only") else
                f"; load average at the start {machine['load_average']} (other jobs were "
                "sharing the machine when it is above the core count).")
             + " Seconds: the scripts' wall time when run by this runner.", "",
             ("Regenerate with `python -m benchmarks all --out results/` (add `--quick` for a "
              "short run). Each section is one script of `benchmarks/`; ratios compare against "
              "the peer named in the script, measured in the same run. `Written` is when the "
              "script wrote its JSON file."), "",
             "| Script | Status | Seconds | Written (UTC) | JSON | Log |",
             "|---|---|---:|---|---|---|"]
    for r in records:
        status = r["status"] + (f" ({r['reason']})" if r.get("reason") else "")
        json_link = f"[{r['json']}]({(link_base / r['json']).as_posix()})" if r.get("json") \
            else "—"
        log_link = f"[log]({(link_base / r['log']).as_posix()})" if r.get("log") else "—"
        written = _written(out_dir / r["json"]) if r.get("json") else "—"
        seconds = "—" if r.get("seconds") is None else f"{r['seconds']:.0f}"
        lines.append(f"| `{r['script']}` | {status} | {seconds} | {written} | "
                     f"{json_link} | {log_link} |")
    lines.append("")
    pngs = plots_by_json(out_dir, [Path(r["json"]).stem for r in records if r.get("json")])
    for r in records:
        if not r.get("json"):
            continue
        name = Path(r["json"]).stem
        lines += [f"## {r['script']}", ""]
        try:
            data = json.loads((out_dir / r["json"]).read_text())
        except json.JSONDecodeError as err:
            lines += [f"The JSON file could not be read: {err}.", ""]
            continue
        if isinstance(data, dict):
            facts = scalar_facts(data)
            if facts:
                lines += ["- " + "\n- ".join(facts), ""]
        for where, rows in record_tables(data):
            lines += [f"**{where}**", "", markdown_records(rows), ""]
        for png in pngs.get(name, []):
            lines += [f"![{png.stem}]({(link_base / png.name).as_posix()})", ""]
    results_md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return results_md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the benchmark scripts of benchmarks/ and render benchmarks/RESULTS.md.")
    parser.add_argument("action", choices=("all", "render", "list"),
                        help="all: run every script, then render; render: only render from "
                             "the JSON already in --out; list: print the scripts found")
    parser.add_argument("--out", type=Path, default=Path("results"),
                        help="folder for the JSON files, PNGs and logs (default results/)")
    parser.add_argument("--quick", action="store_true",
                        help="pass --quick to every script that has it")
    parser.add_argument("--only", default=None,
                        help="comma-separated scripts to run (default: all found)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds before a script is stopped (default 3600)")
    parser.add_argument("--results-md", type=Path, default=BENCHMARKS_DIR / "RESULTS.md",
                        help="markdown file to write (default benchmarks/RESULTS.md)")
    args = parser.parse_args(argv)

    scripts = discover_scripts()
    if args.only:
        wanted = [s.strip().removesuffix(".py") for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(wanted) - set(scripts))
        if unknown:
            parser.error(f"unknown script(s) {', '.join(unknown)}; found: {', '.join(scripts)}")
        scripts = wanted
    if args.action == "list":
        print("\n".join(scripts))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    runs_json = args.out / "run_all.json"
    machine = machine_description()
    if args.action == "render":
        if runs_json.is_file():
            saved = json.loads(runs_json.read_text())
            records, machine = saved["records"], saved["machine"]
        else:
            records = found_records(args.out)
            machine["rendered_only"] = True  # the JSON files were measured earlier
            if not records:
                parser.error(f"no benchmark JSON in {args.out}: run `python -m benchmarks all "
                             f"--out {args.out}` first")
    else:
        records = []
        for i, name in enumerate(scripts, start=1):
            print(f"[{i}/{len(scripts)}] {name}.py ...", flush=True)
            record = run_script(name, args.out, quick=args.quick, timeout=args.timeout)
            records.append(record)
            print(f"[{i}/{len(scripts)}] {name}.py: {record['status']} in "
                  f"{record['seconds']:.0f} s" + (f" ({record['reason']})"
                                                  if record.get("reason") else ""), flush=True)
        runs_json.write_text(json.dumps({"machine": machine, "quick": args.quick,
                                         "records": records}, indent=1))
    path = render_results(args.out, records, machine, args.results_md)
    print(f"Wrote {path}")
    return 0 if all(r["status"] == "ok" for r in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
