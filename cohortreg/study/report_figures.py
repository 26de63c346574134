"""The study report's figures and tables, from the study's own results (rules/report.smk).

The paper's case (Jena et al., NeurIPS 2024) is made with box plots of Dice per method and
dataset, paired tests between methods (metrics/stats.tsv), MI(i;s) against Dice, and the
domain-shift grid (metrics/domain_shift.tsv); a person judges registrations by their pictures
first. So: Dice and HD95 box plots per method and cohort, a label x method Dice heat map per
cohort, runtime and peak memory per method (from the benchmark files, via pairs.tsv), the MI
scatter, a gallery of the worst pairs' overlays (by Dice, then by folding) so that a study of
2,000 pairs shows 2 x N pictures rather than 6,000, and the settings and provenance tables.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..io import write_text_atomic
from ..evaluation.mutual_info import mi_dice, pairs_with_mi
from ..provenance import _version

LIBRARIES = ("snakemake", "torch", "antspyx", "monai", "nibabel", "numpy", "scipy", "pandas", "matplotlib", "pulp")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _read(path: str, **kw: Any) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"moving": str, "fixed": str, "subject": str}, **kw)


def _methods(df: pd.DataFrame, order: list[str]) -> list[str]:
    present = set(df["method"])
    return [m for m in order if m in present] + sorted(present - set(order))


def _empty(path: str, text: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 1.5))
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.axis("off")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def box_plot(pairs: pd.DataFrame, metric: str, path: str, methods: list[str], label: str) -> None:
    """One panel per cohort, one box per method, every pair a point."""
    plt = _plt()
    ok = pairs[(pairs["status"] == "ok") & pairs[metric].notna()]
    if ok.empty:
        return _empty(path, f"no finished pair has {metric}")
    cohorts = list(dict.fromkeys(ok["cohort"]))
    fig, axes = plt.subplots(len(cohorts), 1, figsize=(max(4.0, 1.5 + 0.75 * len(methods)), 0.6 + 3.0 * len(cohorts)),
                             squeeze=False)  # one row per cohort: a study of many methods stays readable
    rng = np.random.default_rng(0)
    for ax, cohort in zip(axes[:, 0], cohorts):
        grp = ok[ok["cohort"] == cohort]
        ms = _methods(grp, methods)
        data = [grp.loc[grp["method"] == m, metric].to_numpy(float) for m in ms]
        ax.boxplot(data, showfliers=False)
        for i, d in enumerate(data, 1):
            ax.plot(i + rng.uniform(-0.15, 0.15, len(d)), d, ".", color="k", alpha=0.5, ms=4)
        ax.set_xticks(range(1, len(ms) + 1), ms, rotation=30, ha="right")
        ax.set_title(f"{cohort} (n={grp[['moving', 'fixed']].drop_duplicates().shape[0]} pairs)")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def label_heatmap(labels: pd.DataFrame, pairs: pd.DataFrame, path: str, methods: list[str]) -> None:
    """Mean Dice per label (rows) and method (columns), one panel per cohort (cohorts label differently)."""
    plt = _plt()
    ok = pairs.loc[pairs["status"] == "ok", ["cohort", "moving", "fixed", "method"]]
    lab = labels.merge(ok, on=["cohort", "moving", "fixed", "method"]) if not labels.empty else labels
    if lab.empty:
        return _empty(path, "no per-label Dice")
    cohorts = list(dict.fromkeys(lab["cohort"]))
    n_rows = max(lab[lab["cohort"] == c]["label"].nunique() for c in cohorts)
    fig, axes = plt.subplots(1, len(cohorts), figsize=(2.5 + 0.6 * len(methods) * len(cohorts), 1.5 + 0.16 * n_rows),
                             squeeze=False)
    for ax, cohort in zip(axes[0], cohorts):
        grid = lab[lab["cohort"] == cohort].pivot_table(index="label", columns="method", values="dice", aggfunc="mean")
        grid = grid[[m for m in methods if m in grid.columns] + sorted(set(grid.columns) - set(methods))]
        im = ax.imshow(grid.to_numpy(float), aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=30, ha="right")
        ax.set_yticks(range(grid.shape[0]), [str(v) for v in grid.index], fontsize=6)
        ax.set_title(cohort)
        ax.set_ylabel("label")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.6, label="mean Dice")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def threads_label(rows: pd.DataFrame) -> str:
    """'2 threads', '1-2 threads' or '' (tables made before pairs.tsv had the column): seconds compare
    only at equal threads."""
    t = pd.to_numeric(rows.get("threads", pd.Series(dtype=float)), errors="coerce").dropna()
    if t.empty:
        return ""
    lo, hi = int(t.min()), int(t.max())
    return f"{lo}{'' if lo == hi else f'-{hi}'} thread{'' if hi == 1 else 's'}"


def runtime_plot(pairs: pd.DataFrame, path: str, methods: list[str]) -> None:
    """Job seconds (registration job, with imports and writing; the affine job apart) and peak memory per method."""
    plt = _plt()
    ok = pairs[pairs["status"] == "ok"]
    if ok.empty:
        return _empty(path, "no finished pair")
    ms = _methods(ok, methods)
    names = [f"{m}\n{threads_label(ok.loc[ok['method'] == m])}" for m in ms]
    fig, axes = plt.subplots(1, 3, figsize=(3 + 1.6 * len(ms), 3.6))
    for ax, (col, label) in zip(axes, (("seconds", "register job, s"), ("register_seconds", "registration call, s"),
                                       ("max_rss_mb", "peak memory, MB"))):
        data = [pd.to_numeric(ok.loc[ok["method"] == m, col], errors="coerce").dropna().to_numpy() for m in ms]
        ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=True)
        ax.set_xticks(range(1, len(ms) + 1), names, rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def mi_scatter(mi: pd.DataFrame, pairs: pd.DataFrame, corr: pd.DataFrame, path: str, methods: list[str]) -> None:
    """Each pair's Dice against its moving subject's MI(i;s), per method; cohort means as large markers."""
    plt = _plt()
    pts = pairs_with_mi(mi, pairs)
    if pts.empty:
        return _empty(path, "no subject with both MI and Dice")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    markers = dict(zip(dict.fromkeys(pts["cohort"]), "os^Dvx*P"))
    for i, meth in enumerate(_methods(pts, methods)):
        grp = pts[pts["method"] == meth]
        within = corr[(corr["method"] == meth) & (corr["level"] == "within")]
        r = "; ".join(f"{w.cohort} rho={w.spearman_rho:.2f}" for w in within.itertuples() if np.isfinite(w.spearman_rho))
        r = f" (within: {r})" if r else ""
        colour = f"C{i % 10}"
        for cohort, cg in grp.groupby("cohort"):
            ax.plot(cg["mi_bits"], cg["dice_mean"], markers[cohort], color=colour, alpha=0.45, ms=4)
            ax.plot(cg["mi_bits"].mean(), cg["dice_mean"].mean(), markers[cohort], color=colour, ms=11, mec="k")
        ax.plot([], [], "o", color=colour, label=meth + r)
    for cohort, mk in markers.items():
        ax.plot([], [], mk, color="grey", label=cohort)
    ax.set_xlabel("MI(intensity; labels) of the moving subject, bits")
    ax.set_ylabel("Dice (mean over labels)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def copy_pictures(picks: list[tuple[str, Any]], picture: str, out_dir: str) -> list[str]:
    """Copy the overlays of (name, pairs.tsv row) into out_dir as name.png, replacing it whole;
    returns the overlays that are missing."""
    tmp = Path(f"{out_dir}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    missing = []
    for name, r in picks:
        src = picture.format(cohort=r.cohort, moving=r.moving, fixed=r.fixed, method=r.method)
        if os.path.exists(src):
            shutil.copyfile(src, tmp / f"{name}.png")
        else:
            missing.append(src)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return missing


def gallery(pairs: pd.DataFrame, picture: str, out_dir: str, worst: int) -> list[str]:
    """Copy the overlays of the worst pairs by Dice and by folding into out_dir; returns what is missing."""
    ok = pairs[pairs["status"] == "ok"]
    picks = [("dice", ok[ok["dice_mean"].notna()].sort_values("dice_mean").head(worst)),
             ("folding", ok[ok["folding_frac"].fillna(0) > 0].sort_values("folding_frac", ascending=False).head(worst))]
    return copy_pictures([(f"worst-{what}-{rank:02d}_{r.cohort}_{r.moving}-to-{r.fixed}_{r.method}", r)
                          for what, rows in picks for rank, r in enumerate(rows.itertuples(), 1)], picture, out_dir)


def every_pair(pairs: pd.DataFrame, picture: str, out_dir: str) -> list[str]:
    """Every result's overlay as {cohort}.{moving}.to.{fixed}.{method}.png (ids hold no dots): the
    report's "every pair" items of a batched study, whose batch jobs write the overlays untracked."""
    return copy_pictures([(f"{r.cohort}.{r.moving}.to.{r.fixed}.{r.method}", r) for r in pairs.itertuples()
                          if r.status == "ok"], picture, out_dir)


def sha256(path: str) -> str:
    if not path or not os.path.isfile(path):
        return ""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def project_commit() -> str:
    """The workflow's git commit (with '+dirty' for uncommitted changes), or '' outside a clone."""
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return ""
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def settings_table(settings: dict[str, dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{"method": m, "engine": s["engine"], "code": s["code"],
                          "settings": json.dumps(s["settings"], sort_keys=True, default=str)}
                         for m, s in settings.items()])


def provenance_table(sheet: str, config: dict[str, Any]) -> pd.DataFrame:
    rows = [("cohortreg", __version__), ("commit", project_commit() or "unknown (not a git clone)"),
            ("sample sheet", sheet), ("sample sheet sha256", sha256(sheet)),
            ("python", platform.python_version()), ("host", platform.node()), ("date", time.strftime("%Y-%m-%d %H:%M:%S")),
            ("config", json.dumps({k: v for k, v in config.items() if k != "method_params"}, sort_keys=True,
                                  default=str))]
    rows += [(lib, _version(lib)) for lib in LIBRARIES]
    return pd.DataFrame(rows, columns=["key", "value"])


def write_report_files(inputs: dict[str, str], outputs: dict[str, str], picture: str, worst: int,
                       settings: dict[str, dict[str, Any]], sheet: str, config: dict[str, Any],
                       methods: list[str]) -> list[str]:
    """Every file of rule report_figures; returns lines for the log."""
    pairs, labels, mi = _read(inputs["pairs"]), _read(inputs["labels"]), _read(inputs["mi"])
    corr = mi_dice(mi, pairs)
    write_text_atomic(corr.to_csv(sep="\t", index=False, float_format="%.6g"), outputs["mi_dice"])
    box_plot(pairs, "dice_mean", outputs["dice"], methods, "Dice (mean over labels)")
    box_plot(pairs, "hd95", outputs["hd95"], methods, "HD95, mm (mean over labels)")
    label_heatmap(labels, pairs, outputs["heatmap"], methods)
    runtime_plot(pairs, outputs["runtime"], methods)
    mi_scatter(mi, pairs, corr, outputs["mi_png"], methods)
    missing = gallery(pairs, picture, outputs["gallery"], worst)
    if "every_pair" in outputs:
        missing += every_pair(pairs, picture, outputs["every_pair"])
    for table in ("pairs", "summary", "stats", "domain_shift"):  # the report's copies of the study's tables
        if table in outputs:
            write_text_atomic(Path(inputs[table]).read_text(), outputs[table])
    write_text_atomic(settings_table(settings).to_csv(sep="\t", index=False), outputs["settings"])
    write_text_atomic(provenance_table(sheet, config).to_csv(sep="\t", index=False), outputs["provenance"])
    notes = [f"{len(pairs)} results, {int((pairs['status'] == 'ok').sum())} ok; gallery of the worst {worst} by Dice "
             "and by folding"]
    notes += [f"overlay missing (not in the gallery): {p}" for p in missing]
    for r in corr.itertuples():
        notes.append(f"MI vs Dice [{r.method}] {r.level} {r.cohort}: n={r.n} Pearson r={r.pearson_r:.3f} "
                     f"(p={r.pearson_p:.2g}), Spearman rho={r.spearman_rho:.3f} (p={r.spearman_p:.2g})")
    if corr["cohort"].nunique() > 2 and (corr["level"] == "within").any():
        notes.append("MI vs Dice: pooled over cohorts, the correlation is mostly between cohorts; read 'within'")
    return notes
