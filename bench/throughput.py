"""End-to-end throughput of the README command (issue 15): wall time per pair, whole run included.

Runs ``snakemake --cores 2 --config samples=... outdir=... methods=[affine,torch]`` on LPBA40
S01..S11 (10 pairs to S01) or OASIS-TRT sub-01..sub-12 (11 pairs to sub-01) at 2 mm, once per
configuration, one after the other in this one process (side by side, nothing else running):

- ``before``: the settings of the last release, written out (``affine.engine: ants``,
  ``batch_size: 1``), whatever the defaults are now;
- ``torch_affine``: the torch affine, one job per subject or pair and stage;
- ``batched``: the torch affine, one batch job per stage running its items side by side;
- ``per_job_1thread``, ``batched_1thread``: the same with one-thread registrations, two at once;
- ``default``: nothing set but the README command's own options.

For each it prints the stage table of issue 15 (jobs, mean job seconds from Snakemake's
benchmark files, which include process start and imports), the wall time per pair, and mean Dice
per method; and the fixed cost of a job: a fresh interpreter importing what each script imports.

    python -m bench run throughput --cohort lpba40     # bench/results/throughput_lpba40_2mm.json
    python -m bench run throughput --configs default batched --baseline /tmp/old --tag ab
        # each configuration run by an earlier checkout (/tmp/old, e.g. a git worktree) and by this one,
        # alternately in this one process: before and after measured side by side
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bench.harness import ROOT, commit as bench_commit, machine, result_path
from cohortreg.sheet.datasets import SHARED_DATA, available, write_sheet

CONFIGS = {"before": ["affine={engine: ants}", "batch_size=1"],          # the last release's defaults
           "torch_affine": ["affine={engine: torch}", "batch_size=1"],     # one job per pair and stage
           "batched": ["affine={engine: torch}", "batch_size=50"],         # one job per stage, items in parallel
           # one-thread registrations: two side by side (per job, or as a batch job's two workers)
           # (a dict: written to a config file, as --config would pass its numbers as strings)
           "per_job_1thread": ["affine={engine: torch}", "batch_size=1", {"resources": {"register": {"threads": 1}}}],
           "batched_1thread": ["affine={engine: torch}", "batch_size=50", {"resources": {"register": {"threads": 1}}}],
           "default": []}  # the README command: batch_size auto (batches on this machine from 8 subjects)
SUBJECTS = {"lpba40": 11, "oasis": 12}
IMPORTS = {  # what a job's interpreter imports before its first line of work
    "python": "pass",
    "snakemake.script (every script job)": "import snakemake.script",
    "cohortreg.subject.stages (preprocess, skull strip, affine)": "import cohortreg.subject.stages",
    "cohortreg.registration.pairs, cohortreg.evaluation.pair (register, metrics)": "import cohortreg.registration.pairs, cohortreg.evaluation.pair",
    "torch": "import torch",
    "ants (cohortreg.lazy_ants)": "from cohortreg.lazy_ants import import_ants; import_ants()",
    "register job (pair + torch + ants)": "import cohortreg.registration.pairs, torch; from cohortreg.lazy_ants import import_ants; import_ants()",
}


def import_seconds(repeats: int = 3) -> dict[str, float]:
    """Median wall seconds of a fresh interpreter running each import line (page cache warm)."""
    out = {}
    for name, line in IMPORTS.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", line], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            times.append(time.perf_counter() - t0)
        out[name] = round(sorted(times)[len(times) // 2], 3)
    return out


def stage_table(outdir: Path) -> pd.DataFrame:
    """Per stage: jobs (per-subject/pair jobs, or batch jobs), items, mean seconds per job and per item."""
    rows = []
    bench = outdir / "benchmarks"
    for stage_dir in sorted(p for p in bench.iterdir() if p.is_dir() and p.name != "batches"):
        files = list(stage_dir.rglob("*.tsv"))
        for method in sorted({_method(f, stage_dir.name) for f in files}):
            mine = [f for f in files if _method(f, stage_dir.name) == method]
            s = [float(pd.read_csv(f, sep="\t").s.iloc[-1]) for f in mine]
            rows.append({"stage": stage_dir.name if not method else f"{stage_dir.name} [{method}]",
                         "items": len(s), "mean_item_s": sum(s) / len(s)})
    # batch jobs (benchmarks/batches/{cohort}/{stage}[/...]/batch-N.tsv): one row per stage, jobs not items
    for f in sorted((bench / "batches").rglob("*.tsv")) if (bench / "batches").is_dir() else []:
        rel = f.relative_to(bench / "batches").parts
        rows.append({"stage": "batch job " + "/".join(rel[1:-1]), "items": 1,
                     "mean_item_s": float(pd.read_csv(f, sep="\t").s.iloc[-1])})
    df = pd.DataFrame(rows)
    return df.groupby("stage", sort=False).agg(jobs=("items", "sum"), mean_s=("mean_item_s", "mean"),
                                               total_s=("mean_item_s", "sum")).reset_index() if len(df) else df


def _method(f: Path, stage: str) -> str:
    if stage not in ("register", "metrics"):
        return ""
    m = re.match(r"sub-.+?_to-.+?_(.+)\.tsv$", f.name)
    return m.group(1) if m else ""


def job_count(log: str) -> int:
    m = re.search(r"^total\s+(\d+)", log, re.M)
    return int(m.group(1)) if m else -1


def run(work: Path, name: str, sheet: Path, cores: int, root: Path = ROOT, label: str = "") -> dict:
    """One configuration with the workflow of checkout ``root`` (label: which one, in names and results)."""
    name_out = f"{name}_{label}" if label else name
    out = work / f"run-{name_out}"  # not ./default: Snakemake reads a folder of that name in its cwd as a profile
    if out.exists():
        shutil.rmtree(out)
    files = []
    for i, extra in enumerate(o for o in CONFIGS[name] if isinstance(o, dict)):
        files += ["--configfile", str(work / f"{name_out}_{i}.yaml")]
        Path(files[-1]).write_text(json.dumps(extra))  # JSON is YAML
    cmd = [sys.executable, "-m", "snakemake", "-s", str(root / "Snakefile"), "--cores", str(cores), *files,
           "--config", f"samples={sheet}", f"outdir={out}", "methods=[affine,torch]",
           *(o for o in CONFIGS[name] if isinstance(o, str))]
    t0 = time.time()
    r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)})
    wall = time.time() - t0
    (work / f"{name_out}.log").write_text(r.stdout + r.stderr)
    pairs = pd.read_csv(out / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str, "fixed": str})
    n_pairs = int(pairs.groupby(["moving", "fixed"]).ngroups)
    code = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    return {"config": name_out, "code": code, "options": CONFIGS[name], "returncode": r.returncode, "wall_s": round(wall, 1),
            "pairs": n_pairs, "wall_per_pair_s": round(wall / max(n_pairs, 1), 2), "jobs": job_count(r.stdout + r.stderr),
            "failed": int((pairs.status != "ok").sum()),
            "dice": pairs[pairs.status == "ok"].groupby("method").dice_mean.mean().round(4).to_dict(),
            "register_seconds": pairs[pairs.status == "ok"].groupby("method").register_seconds.mean().round(3).to_dict(),
            "stages": stage_table(out).round(3).to_dict("records"),
            "per_pair": pairs[["moving", "method", "dice_mean", "seconds", "register_seconds"]].to_dict("records")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cohort", choices=sorted(SUBJECTS), default="lpba40")
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS))
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--subjects", type=int, default=None,
                    help="the cohort's first N subjects (default 11 LPBA40, 12 OASIS-TRT); the result name says N")
    ap.add_argument("--tag", default="", help="suffix of the result name (a subset of the configurations)")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="an earlier checkout: each configuration runs with it, then with this one")
    args = ap.parse_args(argv)
    if not available():
        print(f"shared data not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    n = args.subjects or SUBJECTS[args.cohort]
    work = ROOT / "bench" / "work" / f"throughput_{args.cohort}{'' if n == SUBJECTS[args.cohort] else n}"
    work.mkdir(parents=True, exist_ok=True)
    sheet = write_sheet(work / "samples.tsv", {args.cohort: n})
    imports = import_seconds()
    runs = []
    for name in args.configs:
        if args.baseline:
            runs.append(run(work, name, sheet, args.cores, args.baseline.resolve(), "before"))
        runs.append(run(work, name, sheet, args.cores, ROOT, "after" if args.baseline else ""))
    name = f"throughput_{args.cohort}_2mm{'' if n == SUBJECTS[args.cohort] else f'_{n}subjects'}"
    res = result_path("throughput", f"{name}{'_' + args.tag if args.tag else ''}")
    res.write_text(json.dumps({"benchmark": f"throughput_{args.cohort}_2mm", "commit": bench_commit(),
                               "machine": machine(), "cores": args.cores, "subjects": n, "import_seconds": imports, "runs": runs},
                              indent=1, default=str) + "\n")
    pd.set_option("display.width", 200)
    print("fresh interpreter, seconds:")
    for k, v in imports.items():
        print(f"  {v:6.2f}  {k}")
    for r in runs:
        print(f"\n== {r['config']} ({r['code']}) {' '.join(map(str, r['options']))}: {r['wall_s']} s for {r['pairs']} pairs = "
              f"{r['wall_per_pair_s']} s/pair, {r['jobs']} jobs, rc {r['returncode']}, failed {r['failed']}")
        print("   Dice:", r["dice"], " register_seconds:", r["register_seconds"])
        print(pd.DataFrame(r["stages"]).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"wrote {res}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
