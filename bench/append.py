"""Appending subjects to a finished, batched study of 1,000 subjects (issue 31 f): what reruns, what is kept.

A real run, no ``--touch``: a sheet of ``--subjects`` rows in two cohorts (``siteA`` cycling through the
shared LPBA40 scans, ``siteB`` through OASIS-TRT's; every row its own subject id, its T1 and labels the
shared files themselves, nothing copied) runs the README command with batching on (``batch_size: auto``
gives batches of 50 from 1,000 subjects) at ``--spacing`` mm. Then:

1. a dry run of the finished study must plan nothing;
2. one subject is appended to ``siteA``: the dry run and the run must hold only the batch jobs that hold
   it (its cohort's last subject batch, the affine and register batches with its pair) and the study's
   tables and report; every batch job logs how many items it kept;
3. every file of the finished study is compared (size and mtime) before and after: no file of another
   subject changes, and what changed is listed by kind.

    python -m bench run append --subjects 1000 --methods affine --spacing 4
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.harness import ROOT, header, result_path
from cohortreg.io import file_identity
from cohortreg.sheet.datasets import COHORTS, available, subject_files

SITES = {"siteA": "lpba40", "siteB": "oasis"}


def write_sheet(path: Path, n: int) -> None:
    """n rows, split over the two sites, each subject id its own."""
    rows = []
    for i in range(n):
        site = list(SITES)[i % len(SITES)]
        cohort = SITES[site]
        ids = COHORTS[cohort][1]
        t1, labels = subject_files(cohort, ids[(i // len(SITES)) % len(ids)])
        rows.append(f"{site}\t{site[-1].lower()}{i:05d}\t{t1}\t{labels}")
    path.write_text("cohort\tsubject\tt1\tlabels\n" + "\n".join(rows) + "\n")


def job_stats(log: str) -> dict[str, int]:
    """Snakemake's 'Job stats' table (the first one printed): rule -> jobs."""
    out: dict[str, int] = {}
    m = re.search(r"Job stats:\n(.*?)\n\s*total\s+\d+", log, re.S)
    if not m:
        return out
    for ln in m.group(1).splitlines():
        parts = ln.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def snakemake(work: Path, sheet: Path, args: argparse.Namespace, *extra: str) -> tuple[dict, str]:
    cfg = work / "spacing.yaml"  # written by main
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", str(args.cores),
           "--configfile", str(ROOT / "config" / "config.yaml"), str(cfg), "--config", f"samples={sheet}",
           f"outdir={work / 'out'}", f"methods=[{args.methods}]", *extra]
    t0 = time.time()
    r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    log = r.stdout + r.stderr
    stats = job_stats(log)
    return {"rc": r.returncode, "wall_s": round(time.time() - t0, 1), "jobs": sum(v for k, v in stats.items() if k != "all"),
            "jobs_per_rule": {k: v for k, v in stats.items() if k != "all"},
            "nothing_to_do": "Nothing to be done" in log}, log


def snapshot(out: Path) -> dict[str, list[object]]:
    """Every file of the study: its identity (path, size, mtime), as batch stamps follow it."""
    return {str(p.relative_to(out)): file_identity(str(p)) for p in out.rglob("*")
            if p.is_file() and ".snakemake" not in p.parts}


def kind(rel: str, new_subject: str) -> str:
    """Where a changed file belongs: the new subject's own, a batch's, a study-level table or report, a log,
    or another subject's (which must never change)."""
    if f"sub-{new_subject}" in rel:
        return "new subject"
    if re.search(r"sub-[a-z]\d{5}", rel):
        return "another subject"
    for prefix, name in (("batches/", "batch manifests and stamps"), ("logs/", "logs"), ("benchmarks/", "benchmarks"),
                         ("metrics/", "study tables"), ("report/", "report"), ("qc/", "qc")):
        if rel.startswith(prefix):
            return name
    return "other study-level"


def kept_lines(log_dir: Path, since: float) -> list[str]:
    """The 'N items, M kept' lines that batch jobs logged since this time."""
    lines = []
    for p in sorted(log_dir.rglob("*.log")):
        if p.stat().st_mtime >= since:
            lines += [f"{p.relative_to(log_dir)}: {ln.strip()}" for ln in p.read_text(errors="replace").splitlines() if " kept" in ln]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=1000)
    ap.add_argument("--methods", default="affine")
    ap.add_argument("--spacing", type=float, default=4.0)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/cohortreg_bench_append"),
                    help="outside the project: its sheet names the shared scans")
    ap.add_argument("--resume", action="store_true", help="keep a finished first run in --work")
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    if not available():
        print("shared data not found", file=sys.stderr)
        return 2
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    sheet = work / "samples.tsv"
    res = header("append", subjects=args.subjects, methods=args.methods, spacing_mm=args.spacing, cores=args.cores)
    dest = result_path("append", args.tag or f"{args.subjects}subjects")
    write_sheet(sheet, args.subjects)
    (work / "spacing.yaml").write_text(json.dumps({"preprocess": {"spacing": args.spacing}}))
    if not args.resume:
        first, log = snakemake(work, sheet, args)
        (work / "first.log").write_text(log)
        res["first_run"] = first
        print(f"first run: rc {first['rc']} in {first['wall_s']} s, {first['jobs']} jobs {first['jobs_per_rule']}", flush=True)
        if first["rc"]:
            print(log[-3000:])
            return 1
    finished, log = snakemake(work, sheet, args, "-n")
    res["finished_dry_run"] = finished
    print(f"finished study, dry run: {finished['jobs']} jobs, nothing to do: {finished['nothing_to_do']}", flush=True)
    before = snapshot(work / "out")
    cohort = SITES["siteA"]
    new = "a99999"
    t1, labels = subject_files(cohort, COHORTS[cohort][1][-1])
    sheet.write_text(sheet.read_text() + f"siteA\t{new}\t{t1}\t{labels}\n")
    planned, log = snakemake(work, sheet, args, "-n")
    (work / "append_dry.log").write_text(log)
    res["append_dry_run"] = planned
    print(f"one subject appended, dry run: {planned['jobs']} jobs {planned['jobs_per_rule']} in {planned['wall_s']} s",
          flush=True)
    since = time.time()
    appended, log = snakemake(work, sheet, args)
    (work / "append.log").write_text(log)
    res["append_run"] = appended
    print(f"one subject appended, run: rc {appended['rc']} in {appended['wall_s']} s, {appended['jobs']} jobs "
          f"{appended['jobs_per_rule']}", flush=True)
    after = snapshot(work / "out")
    changed = sorted(f for f in before if f in after and after[f] != before[f])
    made = sorted(set(after) - set(before))
    lost = sorted(set(before) - set(after))
    res["files"] = {"before": len(before), "changed": Counter(kind(f, new) for f in changed),
                    "new": Counter(kind(f, new) for f in made), "removed": lost[:50],
                    "changed_of_other_subjects": [f for f in changed if kind(f, new) == "another subject"][:50],
                    "changed_examples": changed[:80]}
    res["batch_logs_kept"] = kept_lines(work / "out" / "logs", since)
    res["subjects_in_sheet"] = args.subjects + 1
    dest.write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(json.dumps(res["files"], indent=1, default=str))
    print("\n".join(res["batch_logs_kept"][:40]))
    print(f"written {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
