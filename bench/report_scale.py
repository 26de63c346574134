"""The report at cohort scale (issue 17): does a study of 2,000 pairs x 3 methods stay usable?

The report's own job (rules/report.smk: report_figures) on synthetic tables of that size: 2,000
pairs x 3 methods in pairs.tsv, 56 labels each in labels.tsv (336,000 rows), 2,001 subjects in
mi.tsv, and a small overlay PNG per result for the gallery. It times the figures, the MI-vs-Dice
table, the gallery (2 x worst_pairs pictures, not 6,000) and the settings tables, and states what
the Snakemake report then holds: with more results than report.inline_pairs, the figures, tables and
gallery only.

    python -m bench run report_scale [--snakemake]   # bench/results/report_scale.json
        # --snakemake: also snakemake --report on a 2,001-subject study whose report items exist
"""

from __future__ import annotations

import argparse

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.harness import ROOT, commit as bench_commit, machine, result_path
from cohortreg.study.report_figures import write_report_files

PAIRS, METHODS, LABELS, WORST = 2000, ["affine", "ants", "torch"], 56, 12


def tables(d: Path) -> dict[str, str]:
    rng = np.random.default_rng(0)
    movers = [f"{i:04d}" for i in range(1, PAIRS + 1)]
    base = {"affine": 0.60, "ants": 0.70, "torch": 0.71}
    rows = []
    for m in METHODS:
        dice = np.clip(base[m] + rng.normal(0, 0.03, PAIRS), 0, 1)
        for mov, dv in zip(movers, dice):
            rows.append({"cohort": "big", "moving": mov, "fixed": "0000", "method": m, "dice_mean": dv,
                         "hd95": rng.uniform(3, 8), "folding_frac": 0.0 if m == "affine" else rng.exponential(1e-5),
                         "seconds": rng.uniform(5, 30), "register_seconds": rng.uniform(2, 20),
                         "max_rss_mb": rng.uniform(300, 900), "status": "ok", "model": ""})
    pairs = pd.DataFrame(rows)
    labels = pd.DataFrame({"cohort": "big", "moving": np.repeat(pairs["moving"].to_numpy(), LABELS),
                           "fixed": "0000", "method": np.repeat(pairs["method"].to_numpy(), LABELS),
                           "label": np.tile(np.arange(1, LABELS + 1), len(pairs)),
                           "dice": rng.uniform(0.4, 0.9, len(pairs) * LABELS)})
    mi = pd.DataFrame({"cohort": "big", "subject": ["0000"] + movers, "mi_bits": rng.uniform(0.8, 1.2, PAIRS + 1),
                       "status": "ok"})
    paths = {}
    for name, df in (("pairs", pairs), ("labels", labels), ("mi", mi)):
        paths[name] = str(d / f"{name}.tsv")
        df.to_csv(paths[name], sep="\t", index=False)
    from PIL import Image

    pic = Image.fromarray(np.broadcast_to(np.linspace(0, 255, 700, dtype=np.uint8)[None, :, None], (250, 700, 3)).copy())
    for r in pairs.itertuples():
        p = d / "tree" / r.moving / r.method
        p.mkdir(parents=True, exist_ok=True)
        pic.save(p / "overlay.png")
    return paths


def snakemake_report(work: Path) -> dict:
    """``snakemake --report`` on a study of PAIRS + 1 subjects (batch_size auto: 50) whose report items
    exist (written by write_report_files from the synthetic tables): the DAG, the captions, the items."""
    import os
    import shutil
    import subprocess

    shutil.rmtree(work, ignore_errors=True)
    out = work / "out"
    (out / "metrics").mkdir(parents=True)
    (out / "report").mkdir()
    inputs = tables(work)
    for name in ("pairs", "labels", "mi"):
        shutil.copyfile(inputs[name], out / "metrics" / f"{name}.tsv")
    pairs = pd.read_csv(inputs["pairs"], sep="\t", dtype={"moving": str, "fixed": str})
    from cohortreg.study.domain_shift import domain_shift
    from cohortreg.study.paired_stats import paired_stats

    pairs.assign(model="").pipe(paired_stats, METHODS).to_csv(out / "metrics" / "stats.tsv", sep="\t", index=False)
    domain_shift(pairs).to_csv(out / "metrics" / "domain_shift.tsv", sep="\t", index=False)
    pd.DataFrame().to_csv(out / "metrics" / "summary.tsv", sep="\t")
    outputs = {k: str(out / "report" / f"{k}.{ext}") for k, ext in (
        ("dice", "png"), ("hd95", "png"), ("runtime", "png"), ("settings", "tsv"), ("provenance", "tsv"))}
    outputs.update(heatmap=str(out / "report" / "label_dice.png"), mi_png=str(out / "report" / "mi_dice.png"),
                   mi_dice=str(out / "metrics" / "mi_dice.tsv"), gallery=str(out / "report" / "gallery"))
    for table in ("summary", "stats", "domain_shift"):
        inputs[table] = str(out / "metrics" / f"{table}.tsv")
    outputs.update({t: str(out / "report" / f"{t}.tsv") for t in ("pairs", "summary", "stats", "domain_shift")})
    settings = {m: {"engine": m, "code": "x", "settings": {}} for m in METHODS}
    write_report_files(inputs, outputs, str(work / "tree" / "{moving}" / "{method}" / "overlay.png"), WORST, settings,
                       inputs["pairs"], {"methods": METHODS}, METHODS)
    (out / "report" / "method_choice.txt").write_text("methods as configured\n")
    sheet = work / "samples.tsv"
    sheet.write_text("cohort\tsubject\tt1\tlabels\n" + "".join(
        f"big\t{s}\t{work}/raw/{s}_T1w.nii.gz\t{work}/raw/{s}_dseg.nii.gz\n" for s in ["0000"] + list(pairs["moving"].unique())))
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "1", "--config",
                        f"samples={sheet}", f"outdir={out}", f"methods=[{','.join(METHODS)}]", "--report",
                        str(out / "report.html")], cwd=work, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.time() - t0
    html = out / "report.html"
    return {"snakemake_report_s": round(wall, 1), "snakemake_report_rc": r.returncode,
            "report_html_mb": round(html.stat().st_size / 1e6, 2) if html.exists() else None,
            "snakemake_tail": (r.stdout + r.stderr)[-600:] if r.returncode else ""}


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)  # --help, and no stray options
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        t0 = time.time()
        inputs = tables(d)
        t_tables = time.time() - t0
        outputs = {k: str(d / "report" / f"{k}.{ext}") for k, ext in (
            ("dice", "png"), ("hd95", "png"), ("heatmap", "png"), ("runtime", "png"), ("mi_png", "png"),
            ("mi_dice", "tsv"), ("settings", "tsv"), ("provenance", "tsv"))}
        outputs["gallery"] = str(d / "report" / "gallery")
        (d / "report").mkdir()
        settings = {m: {"engine": m, "code": "x", "settings": {"preset": "default"}} for m in METHODS}
        t0 = time.time()
        write_report_files(inputs, outputs, str(d / "tree" / "{moving}" / "{method}" / "overlay.png"), WORST, settings,
                           inputs["pairs"], {"methods": METHODS}, METHODS)
        t_report = time.time() - t0
        gallery = sorted(Path(outputs["gallery"]).glob("*.png"))
        sizes = {k: round(Path(v).stat().st_size / 1e6, 3) for k, v in outputs.items() if Path(v).is_file()}
    result = {"benchmark": "report_scale", "commit": bench_commit(), "machine": machine(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "pairs": PAIRS, "methods": METHODS, "labels": LABELS,
              "synthetic_tables_s": round(t_tables, 1), "report_figures_job_s": round(t_report, 1),
              "gallery_pictures": len(gallery), "report_items_mb": sizes,
              "note": "report_figures' work (figures, MI vs Dice, gallery, settings) on synthetic tables of 2,000 "
                      "pairs x 3 methods; above report.inline_pairs (300) the Snakemake report holds these items "
                      "only, not the 6,000 per-pair pictures"}
    if "--snakemake" in sys.argv:
        result["snakemake"] = snakemake_report(ROOT / "bench" / "work" / "report_scale")
        print(f"snakemake --report on {PAIRS + 1} subjects (batch_size auto): {result['snakemake']}")
    print(f"{PAIRS} pairs x {len(METHODS)} methods: report_figures {t_report:.1f} s, gallery {len(gallery)} pictures, "
          f"items {sum(sizes.values()):.2f} MB")
    out = result_path("report_scale")
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
