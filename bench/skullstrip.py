"""Brain masks on raw heads (issue 33): auto, deepbet and atlas on the IXI and CANDI heads, and on stripped brains.

Each head is preprocessed as the workflow does (reorient, resample to the working grid, no N4), then masked by
each method; the reference is the non-zero region of its label map (IXI: the automated DLMUSE parcellation,
intracranial CSF included; CANDI sub-030: its aseg; sub-031 has none: volume and seconds only), carried to the
working grid by nearest neighbour. Per subject and method: Dice, volume error in %, seconds (the first deepbet
call of the process also loads its two networks: reported apart). Stripped brains (LPBA40, OASIS-TRT): auto's
decision, and whether its mask is exactly the scan's non-zero region (the README command's results then do
not change).

    python -m bench run skullstrip                  # IXI (12) + CANDI (2) heads, 4 LPBA40 + 4 OASIS-TRT brains
"""

from __future__ import annotations

import argparse
import json
import time

import nibabel as nib
import numpy as np

from bench.harness import commit, machine, result_path
from cohortreg.jobs import pin_threads
from cohortreg.sheet.datasets import SHARED_DATA
from cohortreg.subject.preprocess import PreprocessSettings, preprocess_subject
from cohortreg.subject.skullstrip import AtlasSettings, _deepbet_model, clean_mask, extract_brain, mask_dice


def heads() -> list[tuple[str, str, str, str | None]]:
    """(cohort, subject, raw T1, reference label map or None)."""
    ixi = sorted((SHARED_DATA / "ixi").glob("sub-*"))
    out = [("ixi", d.name[4:], str(d / "t1w_head.nii.gz"), str(d / "labels_dlmuse.nii.gz")) for d in ixi]
    candi = SHARED_DATA / "candi"
    for sub in ("sub-030", "sub-031"):
        aseg = candi / f"{sub}_aseg.nii.gz"
        out.append(("candi", sub, str(candi / f"{sub}_t1w.nii.gz"), str(aseg) if aseg.exists() else None))
    return out


def reference_on(t1: nib.Nifti1Image, labels: str) -> np.ndarray:
    import ants

    from cohortreg.io import ants_to_nib, nib_to_ants

    lab = nib.as_closest_canonical(nib.load(labels))
    lab = nib.Nifti1Image((np.asarray(lab.dataobj) > 0).astype(np.float32), lab.affine)
    ref = ants.resample_image_to_target(nib_to_ants(lab), nib_to_ants(t1), interp_type="nearestNeighbor")
    return np.asarray(ants_to_nib(ref).dataobj) > 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="auto,deepbet,atlas")
    ap.add_argument("--spacing", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    pin_threads(args.threads, seed=42)
    colin = SHARED_DATA / "colin27"
    atlas = AtlasSettings(template=str(colin / "ch2.nii.gz"), template_mask=str(colin / "ch2bet.nii.gz"))
    t0 = time.perf_counter()
    _deepbet_model()
    load_s = time.perf_counter() - t0
    result = {"benchmark": "skullstrip", "commit": commit(), "machine": machine(), "threads": args.threads,
              "spacing_mm": args.spacing, "n4": False, "deepbet_load_s": round(load_s, 2),
              "atlas": "colin27 ch2 + ch2bet > 0", "heads": [], "stripped": []}
    dest = result_path("skullstrip", "heads")
    methods = args.methods.split(",")
    for cohort, sub, raw, labels in heads():
        pre = preprocess_subject(sub, raw, settings=PreprocessSettings(spacing=args.spacing))
        ref = reference_on(pre.t1, labels) if labels else None
        voxel_ml = float(np.prod(pre.t1.header.get_zooms()[:3])) / 1000.0
        row = {"cohort": cohort, "subject": sub, "reference_ml": float(ref.sum() * voxel_ml) if ref is not None else None}
        for method in methods:
            evidence: dict = {}
            t = time.perf_counter()
            _, mask = extract_brain(sub, pre.t1, method, atlas=atlas, raw_t1_path=raw, evidence=evidence)
            seconds = time.perf_counter() - t
            m = np.asarray(mask.dataobj) > 0
            entry = {"seconds": round(seconds, 2), "mask_ml": round(float(m.sum() * voxel_ml), 1)}
            if ref is not None:
                entry["dice"] = round(mask_dice(m, ref), 4)
                entry["volume_error_pct"] = round(100.0 * (m.sum() - ref.sum()) / ref.sum(), 2)
            if method == "auto":
                entry["decision"] = evidence.get("decision")
            row[method] = entry
        result["heads"].append(row)
        print(json.dumps(row), flush=True)
        dest.write_text(json.dumps(result, indent=1) + "\n")
    for folder, ids in (("lpba40", ["S01", "S02", "S03", "S04"]), ("oasis-trt-20", ["01", "02", "03", "04"])):
        for sid in ids:
            raw = str(SHARED_DATA / folder / f"sub-{sid}" / "t1w_brain.nii.gz")
            pre = preprocess_subject(sid, raw, settings=PreprocessSettings(spacing=args.spacing))
            evidence = {}
            t = time.perf_counter()
            _, mask = extract_brain(sid, pre.t1, "auto", raw_t1_path=raw, evidence=evidence)
            seconds = time.perf_counter() - t
            same = bool(np.array_equal(np.asarray(mask.dataobj) > 0, clean_mask(np.asarray(pre.t1.dataobj) > 0)))
            result["stripped"].append({"cohort": folder, "subject": sid, "decision": evidence.get("decision"),
                                       "same_mask_as_none": same, "seconds": round(seconds, 2)})
    summary = {}
    for method in methods:
        scored = [r[method] for r in result["heads"] if r["cohort"] == "ixi" and "dice" in r[method]]
        summary[method] = {"ixi_dice_mean": float(np.mean([e["dice"] for e in scored])),
                           "ixi_dice_min": float(np.min([e["dice"] for e in scored])),
                           "ixi_abs_volume_error_pct_mean": float(np.mean([abs(e["volume_error_pct"]) for e in scored])),
                           "candi_sub030_dice": next((r[method]["dice"] for r in result["heads"]
                                                      if r["subject"] == "sub-030"), None),
                           "seconds_per_subject_mean": float(np.mean([r[method]["seconds"] for r in result["heads"]]))}
    result["summary"] = summary
    dest.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(json.dumps(result["stripped"], indent=1))
    print(f"written {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
