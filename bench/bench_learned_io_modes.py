"""IO variants side by side on a workflow outdir with a trained model (issue 14): torch from zero on each IO budget, learned, learned_io plain and residual. Usage: bench_learned_io_modes.py OUTDIR MODEL OUT.json all|VARIANTS [lpba40|oasis]. Results: bench/results/learned_io_modes_*.json.
import sys, time, json, glob
sys.path.insert(0, "/work/main")
import numpy as np, nibabel as nib
from pathlib import Path
from cohortreg.pair import register_pair, warp_jacobian
from cohortreg.metrics import dice_per_label
O = Path(sys.argv[1]); model = sys.argv[2]; outj = sys.argv[3]
COH = sys.argv[5] if len(sys.argv) > 5 else "lpba40"
REF = "S01" if COH == "lpba40" else "10"
pairs = [f"S0{i}" for i in range(2, 10)] if COH == "lpba40" else ["11", "12"]
def files(s):
    a = O / f"{COH}/sub-{s}/anat"
    return str(next(a.glob("*desc-brain_T1w.nii.gz"))), str(next(a.glob("*desc-preproc_dseg.nii.gz")))
fb, fl = files(REF)
F = np.asarray(nib.load(fl).dataobj)
M = {"torch": ("torch", {}), "torch_50_25_12": ("torch", {"iterations": [50, 25, 12]}),
     "torch_25_12_6": ("torch", {"iterations": [25, 12, 6]}),
     "learned": ("learned", {"model_file": model}),
     "io_greedy_50_25_12": ("learned_io", {"model_file": model}),
     "io_res_50_25_12": ("learned_io", {"model_file": model, "residual": True}),
     "io_res_25_12_6": ("learned_io", {"model_file": model, "residual": True, "iterations": [25, 12, 6]}),
     "io_res_0_25_6": ("learned_io", {"model_file": model, "residual": True, "iterations": [0, 25, 6]}),
     "io_res_0_12_6": ("learned_io", {"model_file": model, "residual": True, "iterations": [0, 12, 6]}),
     "io_res_0_0_12": ("learned_io", {"model_file": model, "residual": True, "iterations": [0, 0, 12]}),
     "io_greedy_25_12_6": ("learned_io", {"model_file": model, "iterations": [25, 12, 6]})}
if len(sys.argv) > 4 and sys.argv[4] != "all": M = {k: v for k, v in M.items() if k in sys.argv[4].split(",")}
rows = []
for s in pairs:
    mb, ml = files(s)
    aff = str(O / f"{COH}/sub-{s}/to-{REF}/init/affine.mat")
    for name, (meth, p) in M.items():
        w = Path(f"/tmp/prof/ev/{s}/{name}"); w.mkdir(parents=True, exist_ok=True)
        ex = register_pair(meth, {"engine": meth, "device": "cpu", **p}, fb, mb, ml, aff, str(w / "transforms.json"),
                           str(w / "warped.nii.gz"), str(w / "labels.nii.gz"), threads=2)
        W = np.asarray(nib.load(w / "labels.nii.gz").dataobj)
        d = dice_per_label(F, W); dm = float(np.mean(list(d.values())))
        fold = float((warp_jacobian(str(w / "fwd_warp.nii")) <= 0).mean()) if meth != "affine" else 0.0
        rows.append({"pair": s, "variant": name, "dice": dm, "folding": fold, "register_s": ex["register_seconds"]})
        print(s, name, round(dm, 4), round(fold, 6), round(ex["register_seconds"], 3), flush=True)
import pandas as pd
df = pd.DataFrame(rows)
t = df.groupby("variant", sort=False)[["dice", "folding", "register_s"]].mean()
t["x_torch"] = t.register_s / t.loc["torch", "register_s"] if "torch" in t.index else np.nan
print(t.round(4).to_string())
json.dump({"rows": rows, "table": t.reset_index().to_dict("records")}, open(outj, "w"), indent=1)
