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
from cohortreg.sheet.datasets import COHORTS, SHARED_DATA, available, subject_files  # noqa: E402


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


def pair_parser(doc: str | None) -> argparse.ArgumentParser:
    """The profile benches' shared options: a cohort of the shared data and its moving subject."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--cohort", choices=sorted(COHORTS), default="lpba40")
    ap.add_argument("--moving", default=None, help="subject id (default: the cohort's second)")
    return ap


def pair_ids(args: argparse.Namespace) -> tuple[str, str]:
    """(fixed, moving) subject ids: the cohort's first, and --moving or its second."""
    ids = COHORTS[args.cohort][1]
    return ids[0], args.moving or ids[1]


def prepare(out: Path, cohort: str, fixed_id: str, moving_id: str, cfg: dict[str, Any],
            run: Callable[[str, Callable[[], Any]], Any] = lambda name, call: call()) -> dict[str, str]:
    """Both subjects preprocessed and skull stripped (the sheet's brains: ``method: none``), the moving one's
    affine to the fixed one: the files a register item reads (``{role}_{t1,labels,pre,brain,mask,qc}``,
    ``affine``). Each stage goes through ``run(name, call)`` (the subject profile times each)."""
    from cohortreg.subject.stages import affine_files, preprocess_files, skullstrip_files

    pre, strip, qc = cfg["preprocess"], {**cfg["skullstrip"], "method": "none"}, cfg.get("qc", {})
    pct = (pre["lower_percentile"], pre["upper_percentile"])
    files: dict[str, str] = {}
    for role, sid in (("fixed", fixed_id), ("moving", moving_id)):
        raw_t1, raw_labels = (str(p) for p in subject_files(cohort, sid))
        f = {k: str(out / f"{sid}_{k}") for k in ("t1.nii.gz", "labels.nii.gz", "pre.json", "brain.nii.gz",
                                                  "mask.nii.gz", "qc.json")}
        run(f"preprocess {sid}", lambda: preprocess_files(sid, raw_t1, raw_labels, pre, f["t1.nii.gz"],
                                                          f["labels.nii.gz"], f["pre.json"]))
        run(f"skullstrip {sid}", lambda: skullstrip_files(sid, f["t1.nii.gz"], strip, raw_t1, "", f["brain.nii.gz"],
                                                          f["mask.nii.gz"], pct, f["pre.json"], qc, f["qc.json"]))
        files.update({f"{role}_{k.split('.')[0]}": v for k, v in f.items()})
    files["affine"] = str(out / "affine.mat")
    run(f"affine {moving_id} to {fixed_id}",
        lambda: affine_files(files["fixed_brain"], files["moving_brain"], cfg["affine"], files["affine"]))
    return files


def main() -> int:
    ap = pair_parser(__doc__)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the affine stage's default is 1)")
    args = ap.parse_args()
    if not available():
        print(f"shared data not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    import torch

    import cohortreg.subject.stages  # noqa: F401  (timed apart from the stages)
    imports = round(time.perf_counter() - t0, 3)
    torch.set_num_threads(args.threads)
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    fixed_id, moving_id = pair_ids(args)
    stages: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        prepare(Path(tmp), args.cohort, fixed_id, moving_id, cfg, lambda name, call: stages.update({name: profiled(call)}))
    res = {"benchmark": f"profile_subject_{args.cohort}_2mm", "commit": bench_commit(), "machine": machine(),
           "threads": args.threads, "import_s (torch + cohortreg.subject.stages)": imports, "stages": stages}
    print(f"imports {imports} s")
    write_profile(res, ROOT / "bench" / "results" / f"profile_subject_{args.cohort}_2mm.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
