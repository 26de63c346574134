"""End to end from raw heads (issue 33): the README command on the IXI full heads, with nothing but the sheet set
(and methods affine and torch), under skull-stripping and bias-correction settings side by side.

Configurations, one workflow run each on the same 12 heads (the first is the reference, 11 pairs): ``auto`` (the
defaults), ``auto_n4`` (with preprocess.n4), ``atlas`` (the colin27 head and brain, as before auto existed).
Per run: mean Dice of affine and torch against the automated DLMUSE labels, the subjects whose input check failed,
the wall time. N4 is the default for heads only if the bench says it helps.

    python -m bench run raw_heads [--configs auto auto_n4 atlas]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import pandas as pd

from bench.harness import ROOT, commit, machine, result_path, snakemake_env
from cohortreg.sheet.datasets import SHARED_DATA, write_sheet

COLIN = SHARED_DATA / "colin27"
CONFIGS = {
    "auto": "",
    "auto_n4": "preprocess: {n4: true}\n",
    "atlas": f"skullstrip: {{method: atlas, template: {COLIN / 'ch2.nii.gz'}, template_mask: {COLIN / 'ch2bet.nii.gz'}}}\n",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS))
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args(argv)
    work = ROOT / "bench" / "work" / "raw_heads"
    work.mkdir(parents=True, exist_ok=True)
    sheet = write_sheet(work / "samples.tsv", {"ixi": 12})
    result = {"benchmark": "raw_heads", "commit": commit(), "machine": machine(), "cores": args.cores,
              "methods": ["affine", "torch"], "runs": {}}
    dest = result_path("raw_heads")
    for name in args.configs:
        (work / f"{name}.yaml").write_text(CONFIGS[name] or "{}\n")
        out = work / f"out_{name}"
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", str(args.cores),
                            "--keep-going", "--configfile", str(ROOT / "config" / "config.yaml"), str(work / f"{name}.yaml"),
                            "--config", f"samples={sheet}", f"outdir={out}", "methods=[affine,torch]"],
                           cwd=work, env=snakemake_env(), capture_output=True, text=True)
        wall = time.perf_counter() - t0
        pairs = pd.read_csv(out / "metrics" / "pairs.tsv", sep="\t")
        ok = pairs[pairs.status == "ok"]
        qc = {}
        for qc_file in sorted(out.glob("ixi/sub-*/anat/*_qc.json")):
            q = json.loads(qc_file.read_text())
            qc[qc_file.name.split("_")[0][4:]] = {"qc": q["qc"], "brain_ml": round(q["brain_ml"], 1),
                                                   "decision": (q.get("skullstrip") or {}).get("decision")}
        result["runs"][name] = {"returncode": r.returncode, "wall_s": round(wall, 1), "pairs_ok": int(len(ok)),
                                "pairs_failed": int((pairs.status != "ok").sum()),
                                "dice": {m: float(g.dice_mean.mean()) for m, g in ok.groupby("method")},
                                "dice_per_pair": {m: [round(x, 4) for x in g.dice_mean] for m, g in ok.groupby("method")},
                                "qc_failed_subjects": sorted(s for s, q in qc.items() if q["qc"] == "fail"),
                                "subjects": qc}
        print(name, json.dumps({k: v for k, v in result["runs"][name].items() if k not in ("subjects", "dice_per_pair")}),
              flush=True)
        dest.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
