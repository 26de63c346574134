"""Scale with the default config (issue 13): the README command on a 20,000-subject sheet, no option set.

1. ``snakemake -n`` of the real workflow with the default config (``batch_size: auto``): wall
   seconds, peak RSS and jobs.
2. Every output that plan lists is made (empty files, newer than the inputs) and
   ``snakemake --touch`` records them as Snakemake's own (its metadata: params, code), so the
   study looks finished; a dry-run then plans nothing.
3. One subject is appended to the sheet: the dry-run must plan only that subject's batch jobs
   and what reads them (its cohort's last subject batch, the pair batches with its pair, the
   tables), in about the same seconds.

Sheets point every row at one tiny NIfTI (bench/bench_scale.py), so no real data are needed.

Caveat (2026-12-05, Snakemake 9.27): ``--touch`` no longer records Snakemake's metadata, so step 3 sees
a study without it, which behaves as ``--rerun-triggers mtime``: a batch job whose manifest exists is kept
although its input list grew, and the appended subject gets no jobs. A real study has the metadata (the
rerun tests run real studies); this bench's step 3 needs another way to make a finished study.

    python bench/bench_rerun_scale.py --subjects 20000
    python bench/bench_rerun_scale.py --subjects 1000 --out rerun_scale_1000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_classical import commit as bench_commit, machine  # noqa: E402
from bench.bench_scale import write_sheet  # noqa: E402


def dry_run(d: Path, sheet: Path, methods: str, *extra: str) -> tuple[dict, str]:
    rss_file = d / "rss.txt"
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-o", str(rss_file), "-f", "%M", sys.executable, "-m", "snakemake",
                        "-s", str(ROOT / "Snakefile"), *(extra or ("-n",)), "--cores", "2", "--config", f"samples={sheet}",
                        f"outdir={d / 'out'}", f"methods=[{methods}]"],
                       cwd=d, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    out = r.stdout + r.stderr
    rules = Counter(ln.strip().split()[1].rstrip(":") for ln in out.splitlines()
                    if ln.strip().startswith(("rule ", "localrule ")) and ln.strip().endswith(":"))
    rules.pop("all", None)
    return {"rc": r.returncode, "seconds": round(wall, 2), "peak_rss_mb": round(float(rss_file.read_text().split()[-1]) / 1024, 1),
            "jobs": sum(rules.values()), "jobs_per_rule": dict(rules),
            "batch_size_log": [ln.strip() for ln in out.splitlines() if "batch_size auto" in ln][:1]}, out


def outputs(text: str) -> list[str]:
    files = []
    for ln in text.splitlines():
        s = ln.strip()
        if s.startswith("output:"):
            files += [f.strip() for f in s[len("output:"):].split(",") if f.strip()]
        elif s.startswith(("log:", "benchmark:")):  # a job's witnesses: a finished job has them too
            files += [f.strip() for f in s.split(":", 1)[1].split(",") if f.strip() and "(check" not in f]
    return files


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=20000)
    ap.add_argument("--methods", default="affine,ants")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "work" / "rerun_scale")
    ap.add_argument("--out", default="rerun_scale", help="bench/results/OUT.json")
    args = ap.parse_args()
    d = args.work
    d.mkdir(parents=True, exist_ok=True)
    sheet = write_sheet(d, args.subjects)
    past = time.time() - 86400
    os.utime(d / "tiny_T1w.nii.gz", (past, past))
    first, text = dry_run(d, sheet, args.methods)
    print(f"plan {args.subjects} subjects, default config: {first['seconds']} s, {first['peak_rss_mb']} MB, "
          f"{first['jobs']} jobs {first['batch_size_log']}", flush=True)
    made = outputs(text)
    stamp = time.time() - 3600
    for f in made:
        p = Path(f)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix:
            p.touch()
        else:  # a directory() output (the report's gallery)
            p.mkdir(exist_ok=True)
        os.utime(p, (stamp, stamp))
    touched, text = dry_run(d, sheet, args.methods, "--touch", "--max-jobs-per-second", "10000")
    print(f"touch: rc {touched['rc']} in {touched['seconds']} s", flush=True)
    if touched["rc"]:
        print(text[-3000:], flush=True)
    finished, _ = dry_run(d, sheet, args.methods)
    print(f"after making its {len(made)} outputs: {finished['jobs']} jobs planned in {finished['seconds']} s", flush=True)
    sheet.write_text(sheet.read_text() + f"study0\tnew001\t{(d / 'tiny_T1w.nii.gz').name}\n")
    added, _ = dry_run(d, sheet, args.methods)
    print(f"one subject added: {added['jobs']} jobs {added['jobs_per_rule']} in {added['seconds']} s", flush=True)
    commit = bench_commit()
    res = ROOT / "bench" / "results" / f"{args.out}.json"
    res.write_text(json.dumps({"benchmark": "rerun_scale", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": commit,
                               "machine": machine(), "subjects": args.subjects, "methods": args.methods,
                               "default_config_plan": first, "outputs_made": len(made), "finished_plan": finished,
                               "one_subject_added": added}, indent=1) + "\n")
    print(f"written {res}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
