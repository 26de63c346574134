"""Scale (issue 4): dry-run of the real workflow on large synthetic sheets, and aggregation of 20k pairs.

For each N, writes a sheet of N subjects in 4 cohorts (every row points at one small NIfTI, so
no real data are needed), times sheet reading + validation in-process, then times
``snakemake -n`` of the real Snakefile (wall seconds and peak RSS of the process). Then builds
the per-pair files of a 20,000-pair run (metrics.json, labels.tsv with 56 labels, two benchmark
files) and times ``cohortreg.study.aggregate.write_tables`` on them.

    python -m bench run scale --sizes 1000 5000 20000 --batch-sizes 1 50 --aggregate 20000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.harness import ROOT, commit, machine, result_path
from cohortreg.study.aggregate import PairResult, pair_row, write_tables
from cohortreg.sheet.samples import design_pairs, read_sheet

COHORTS = 4


def write_sheet(d: Path, n: int) -> Path:
    import nibabel as nib

    img = d / "tiny_T1w.nii.gz"
    if not img.exists():
        nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4)), img)
    rows = ["cohort\tsubject\tt1"] + [f"study{i % COHORTS}\ts{i:06d}\t{img.name}" for i in range(n)]
    sheet = d / f"samples_{n}.tsv"
    sheet.write_text("\n".join(rows) + "\n")
    return sheet


def dry_run(d: Path, sheet: Path, methods: str, batch_size: int = 1) -> dict:
    t0 = time.perf_counter()
    sheet_df = read_sheet(str(sheet))
    n_pairs = len(design_pairs(sheet_df, "reference", {}, ""))
    t_sheet = time.perf_counter() - t0
    rss_file = d / "rss.txt"  # GNU time's peak RSS of this one process (getrusage's children max is cumulative)
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-o", str(rss_file), "-f", "%M", sys.executable, "-m", "snakemake",
                        "-s", str(ROOT / "Snakefile"), "-n", "--quiet", "rules",
                        "--cores", "2", "--config", f"samples={sheet}", f"outdir={d / 'out'}", f"methods=[{methods}]",
                        f"batch_size={batch_size}"],
                       cwd=d, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    rss = float(rss_file.read_text().split()[-1]) if rss_file.exists() else float("nan")
    totals = [int(ln.split()[-1]) for ln in r.stdout.splitlines() if ln.strip().startswith("total")]
    jobs = totals[0] if totals else 0  # the job-stats table is printed twice
    return {"subjects": len(sheet_df), "pairs": n_pairs, "methods": methods, "batch_size": batch_size,
            "rc": r.returncode, "jobs": jobs,
            "sheet_seconds": t_sheet, "dry_run_seconds": wall,
            "peak_rss_mb": rss / 1024,
            "stderr_tail": r.stderr[-500:] if r.returncode else ""}


def aggregate(d: Path, n: int) -> dict:
    agg = d / f"agg_{n}"
    labels = "label\tdice\thd95\tfixed_voxels\twarped_voxels\n" + "".join(
        f"{k}\t0.7\t3.0\t1000\t990\n" for k in range(1, 57))
    bench = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n" \
            "42.1\t0:00:42\t1800.5\t2500\t1700\t1750\t10\t20\t180\t80\n"
    results = []
    for i in range(n):
        p = agg / f"p{i:06d}"
        if not (p / "metrics.json").exists():
            p.mkdir(parents=True, exist_ok=True)
            (p / "metrics.json").write_text(json.dumps({"dice_mean": 0.7, "hd95": 3.0, "folding_frac": 0.0,
                                                        "sdlogj": 0.1, "n_labels": 56}))
            (p / "labels.tsv").write_text(labels)
            (p / "b.tsv").write_text(bench)
            (p / "a.tsv").write_text(bench)
        results.append(PairResult(f"study{i % COHORTS}", f"s{i:06d}", "s000000", "ants", str(p / "metrics.json"),
                                  str(p / "labels.tsv"), str(p / "b.tsv"), str(p / "a.tsv"), ()))
    manifests = []  # batch_size 50: the metrics batch jobs' manifests carry the rows
    for b, start in enumerate(range(0, n, 50)):
        m = agg / f"batch-{b:05d}.json"
        if not m.exists():
            items = [{"item": str(i), "status": "ok", **dict(zip(("row", "label_lines"), pair_row(results[i])))}
                     for i in range(start, min(start + 50, n))]
            m.write_text(json.dumps({"items": items}))
        manifests.append(str(m))
    out = {"pairs": n, "label_rows": 56 * n, "cache": drop_caches()}
    t0 = time.perf_counter()
    pairs = write_tables(results, str(agg / "pairs.tsv"), str(agg / "labels.tsv"), str(agg / "summary.tsv"))
    out["seconds"] = time.perf_counter() - t0
    out["cache_batch"] = drop_caches()
    t0 = time.perf_counter()
    pairs_b = write_tables(results, str(agg / "pairs_b.tsv"), str(agg / "labels_b.tsv"), str(agg / "summary_b.tsv"),
                           manifests)
    out["seconds_batch_manifests"] = time.perf_counter() - t0
    assert pairs_b.equals(pairs), "the two paths must give the same table"
    return out


def drop_caches() -> str:
    """Time reads from disk, not from the page cache, where the kernel lets us (root)."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "cold (page cache dropped)"
    except OSError:
        return "page cache not dropped (warm if the files were just read)"


def slurm_state() -> str:
    """With the SLURM plugin installed, every snakemake call first asks scontrol for the config:
    immediate with a controller up, about 10 s of waiting without one. Say which it was."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "plugin not installed"
    if not shutil.which("scontrol"):
        return "plugin installed, no scontrol"
    up = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30).returncode == 0
    return "plugin installed, controller " + ("up" if up else "down (each call waits ~10 s on scontrol)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 5000, 20000])
    ap.add_argument("--methods", default="affine,ants")
    ap.add_argument("--batch-sizes", type=int, nargs="*", default=[1, 50], help="config batch_size values")
    ap.add_argument("--aggregate", type=int, default=20000)
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "work" / "scale")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, b in ((n, b) for n in args.sizes for b in args.batch_sizes):
        rows.append(dry_run(args.work, write_sheet(args.work, n), args.methods, b))
        r = rows[-1]
        print(f"{n:6d} subjects  batch {b:3d}  {r['jobs']:7d} jobs  sheet {r['sheet_seconds']:6.2f} s  dry-run "
              f"{r['dry_run_seconds']:7.1f} s  peak RSS {r['peak_rss_mb']:7.0f} MB  rc {r['rc']}", flush=True)
    agg = aggregate(args.work, args.aggregate) if args.aggregate else None
    if agg:
        print(f"aggregate {agg['pairs']} pairs ({agg['label_rows']} label rows): {agg['seconds']:.1f} s from per-pair "
              f"files, {agg['seconds_batch_manifests']:.1f} s from batch manifests ({agg['cache']})")
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average_at_end": os.getloadavg(), "commit": commit(),
            "slurm": slurm_state(), "machine": machine()}
    for name, data in (("dry_run", rows), ("aggregate", agg)):
        if data:  # each part has its own file
            res = result_path("scale", name)
            res.write_text(json.dumps({"benchmark": f"scale_{name}", **meta, "results": data}, indent=2) + "\n")
            print(f"written {res}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
