"""Batch items that hold the GIL: in sequence, in two threads, in two forked processes (run_items).

antspyx holds the GIL in its calls, so a batch job's items of an ANTs-heavy stage wait on each other
in threads. This runs, through cohortreg.batches.items.run_items itself, 4 subjects' preprocessing and skull
stripping (LPBA40 and OASIS-TRT, default config, 2 mm) and 4 ANTs affines (LPBA40 S02..S05 to S01, on
the brains just made), each way, on one thread per item, and checks that every way writes the same
files (bitwise). Nothing else should run beside it.

    python bench/bench_fork_items.py      # bench/results/fork_items.json
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_classical import commit, machine  # noqa: E402
from cohortreg.batches.items import Item, pair_items, run_items, subject_items  # noqa: E402
from cohortreg.sheet.datasets import available, subject_files  # noqa: E402
from cohortreg.jobs import pin_threads  # noqa: E402
from cohortreg.paths import Layout  # noqa: E402

CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
WAYS = {"sequence": dict(workers=1), "2 threads": dict(workers=2), "2 processes": dict(workers=2, processes=True)}


def digest(items: list[Item]) -> str:
    h = hashlib.sha1()
    for it in items:
        for p in it.outputs:
            h.update(Path(p).read_bytes() if p.endswith((".nii.gz", ".mat")) else b"")
    return h.hexdigest()


def each_way(make, work: Path) -> dict:
    """make(L) -> items; each way in a fresh output folder (nothing kept from the last)."""
    out = {}
    for way, kw in WAYS.items():
        L = Layout(str(work / way.replace(" ", "_")))
        items = make(L)
        t0 = time.perf_counter()
        res = run_items(items, str(work / f"{way.replace(' ', '_')}.json"), **kw)
        out[way] = {"seconds": round(time.perf_counter() - t0, 2), "failed": res["failed"], "digest": digest(items)}
        print(f"  {way:12s} {out[way]['seconds']:7.2f} s", flush=True)
    out["same_files"] = len({v["digest"] for v in out.values()}) == 1
    return out


def main() -> int:
    if not available():
        print("shared data not found", file=sys.stderr)
        return 2
    pin_threads(1, CONFIG["seed"])  # as a batch job's items of one thread
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for cohort, ids in (("lpba40", ["S01", "S02", "S03", "S04", "S05"]), ("oasis", ["01", "02", "03", "04"])):
            rows = [{"subject": s, "t1": str(subject_files(cohort, s)[0]), "labels": str(subject_files(cohort, s)[1]),
                     "mask": "", "split": ""} for s in ids]
            make = lambda L, c=cohort, r=rows: subject_items(c, r, CONFIG["preprocess"], CONFIG["skullstrip"], L,  # noqa: E731
                                                            CONFIG["qc"])
            print(f"{cohort}: {len(rows)} subjects, preprocess and skull strip")
            results[f"subjects {cohort}"] = each_way(make, work / cohort)
        # the ANTs affine of S02..S05 to S01 on the brains of the sequence run (copied into each way's folder)
        brains = Layout(str(work / "lpba40" / "sequence"))
        settings = {**CONFIG["affine"], "engine": "ants"}
        pairs = [(s, "S01") for s in ("S02", "S03", "S04", "S05")]

        def make(L: Layout) -> list[Item]:
            for s in ("S01", "S02", "S03", "S04", "S05"):
                src = Path(brains.brain.format(cohort="lpba40", subject=s))
                dst = Path(L.brain.format(cohort="lpba40", subject=s))
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
            return pair_items("affine", "lpba40", pairs, "affine", settings, L)

        print("lpba40: 4 ANTs affines")
        results["ANTs affine lpba40"] = each_way(make, work / "affine")
    res = {"benchmark": "fork_items", "commit": commit(), "machine": machine(), "threads_per_item": 1,
           "results": results}
    path = ROOT / "bench" / "results" / "fork_items.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    for name, r in results.items():
        print(f"{name:22s} " + "  ".join(f"{w}: {r[w]['seconds']:.2f} s" for w in WAYS) + f"  same files: {r['same_files']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
