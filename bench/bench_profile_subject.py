"""Where a subject's per-subject chain spends its time at 2 mm (issue 15: profile, then remove what
does no work): preprocessing, skull strip (the sheet's brains: ``method: none``) and the torch affine
to the reference, each stage as the batch job calls it, under cProfile, in this one process (imports
timed apart). The default config; LPBA40 or OASIS-TRT subjects from ``../shared/data``.

    python bench/bench_profile_subject.py --cohort lpba40 --moving S02   # bench/results/profile_subject_lpba40_2mm.json
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_classical import commit as bench_commit, machine  # noqa: E402
from cohortreg.datasets import COHORTS, SHARED_DATA, available, subject_files  # noqa: E402


def profiled(call: Callable[[], Any], top: int = 12) -> dict[str, Any]:
    """Wall seconds of one call and its functions with the most own time."""
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(call)
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{Path(file).name}:{line}({func})", "calls": calls,
                     "own_s": round(tottime, 4), "cumulative_s": round(cumtime, 4)})
    rows.sort(key=lambda r: -r["own_s"])
    return {"wall_s": round(wall, 3), "top_own": rows[:top]}


def write_profile(res: dict[str, Any], path: Path, rows: int = 8) -> None:
    """Write a profile's JSON and print each stage's wall time and its functions with the most own time."""
    path.write_text(json.dumps(res, indent=1) + "\n")
    for name, st in res["stages"].items():
        print(f"\n{name}: {st['wall_s']} s")
        for r in st["top_own"][:rows]:
            print(f"  {r['own_s']:7.3f} own {r['cumulative_s']:7.3f} cum {r['calls']:6d}x  {r['function']}")
    print(f"wrote {path}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cohort", choices=sorted(COHORTS), default="lpba40")
    ap.add_argument("--moving", default=None, help="subject id (default: the cohort's second)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the affine stage's default is 1)")
    args = ap.parse_args()
    if not available():
        print(f"shared data not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    import torch

    from cohortreg.stages import affine_files, preprocess_files, skullstrip_files
    imports = round(time.perf_counter() - t0, 3)
    torch.set_num_threads(args.threads)
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    pre, strip, qc = cfg["preprocess"], {**cfg["skullstrip"], "method": "none"}, cfg.get("qc", {})
    pct = (pre["lower_percentile"], pre["upper_percentile"])
    ids = COHORTS[args.cohort][1]
    fixed_id, moving_id = ids[0], args.moving or ids[1]
    stages: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for sid in (fixed_id, moving_id):
            raw_t1, raw_labels = (str(p) for p in subject_files(args.cohort, sid))
            t1, labels, js = str(out / f"{sid}_t1.nii.gz"), str(out / f"{sid}_labels.nii.gz"), str(out / f"{sid}.json")
            stages[f"preprocess {sid}"] = profiled(lambda: preprocess_files(sid, raw_t1, raw_labels, pre, t1, labels, js))
            brain, mask, verdict = (str(out / f"{sid}_{k}") for k in ("brain.nii.gz", "mask.nii.gz", "qc.json"))
            stages[f"skullstrip {sid}"] = profiled(lambda: skullstrip_files(sid, t1, strip, raw_t1, "", brain, mask, pct,
                                                                          js, qc, verdict))
        mat = str(out / "affine.mat")
        stages[f"affine {moving_id} to {fixed_id}"] = profiled(lambda: affine_files(
            str(out / f"{fixed_id}_brain.nii.gz"), str(out / f"{moving_id}_brain.nii.gz"), cfg["affine"], mat))
    res = {"benchmark": f"profile_subject_{args.cohort}_2mm", "commit": bench_commit(), "machine": machine(),
           "threads": args.threads, "import_s (torch + cohortreg.stages)": imports, "stages": stages}
    print(f"imports {imports} s")
    write_profile(res, ROOT / "bench" / "results" / f"profile_subject_{args.cohort}_2mm.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
