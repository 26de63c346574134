"""The study's labelling tables from each subject's files: metrics/volumes.tsv and metrics/labelling.tsv.

volumes.tsv: one row per subject, protocol and region (volume in mL, the region's mean agreement), plus the
``labelled`` total and the ``brain_mask`` volume; a subject whose labelling failed has one row with
status failed and the reason its job logged. Its ``qc`` column flags volumes that are outliers in their
protocol and region (robust z beyond qc.z_warn, as the pair QC does) and low mean agreement.

labelling.tsv: the leave-one-out accuracy of every atlas labelled from the others, per region (Dice,
volume error in %), and per protocol a summary row (subject ``ALL``, label ``mean``).

Both tables have a ``route`` column: ``atlases`` (multi-atlas fusion) or ``template`` (design: template, the
template's labels); the summary rows are per protocol and route, over held-out subjects only (a template
input's own labels voted on the template's labels, so its accuracy is listed but not summarised).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ..evaluation.qc import robust_z
from ..io import write_text_atomic
from ..paths import Layout
from ..study.aggregate import first_error
from .plan import subject_outputs, template_route_files
from .volumes import ACCURACY_COLUMNS, VOLUME_COLUMNS

LOW_AGREEMENT = 0.5  # a region whose atlases agree on fewer than half its voxels' labels, on average


def _read(path: str, columns: list[str]) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t", dtype={"subject": str, "cohort": str, "protocol": str, "label": str},
                        keep_default_na=False, na_values=["nan"])
    table = table.reindex(columns=columns)
    if "route" in table:  # files of a version before the template route: the atlas route, held out
        table["route"] = table["route"].fillna("atlases").replace("", "atlases")
    if "held_out" in table:
        table["held_out"] = ~table["held_out"].astype(str).str.lower().isin(["false", "0"])
    return table


def volume_table(jobs: list[tuple[str, str, str]], volumes: list[str], logs: list[str],
                 qc: dict[str, Any] | None = None, routes: list[str] | None = None) -> pd.DataFrame:
    """jobs: (cohort, subject, protocol), with each one's volumes.tsv, log and route (default atlases), in the
    same order."""
    parts, failed = [], []
    for (c, s, p), path, log, route in zip(jobs, volumes, logs, routes or ["atlases"] * len(jobs)):
        if os.path.exists(path):
            parts.append(_read(path, VOLUME_COLUMNS))
        else:
            failed.append({"cohort": c, "subject": s, "protocol": p, "label": "", "volume_ml": float("nan"),
                           "agreement": float("nan"), "atlases": "", "status": "failed", "error": first_error((log,)),
                           "route": route})
    table = pd.concat(parts + [pd.DataFrame(failed, columns=VOLUME_COLUMNS)], ignore_index=True) if parts or failed \
        else pd.DataFrame(columns=VOLUME_COLUMNS)
    return flag_outliers(table, qc or {})


def flag_outliers(table: pd.DataFrame, qc: dict[str, Any]) -> pd.DataFrame:
    """qc and qc_reason per row: warn where a volume is a robust outlier of its protocol and region (with
    at least qc.min_cohort subjects), or where the atlases agreed little; failed rows fail."""
    z_warn, need = float(qc.get("z_warn", 3.5)), int(qc.get("min_cohort", 5))
    table = table.copy()
    table["qc"], table["qc_reason"] = "ok", ""
    table.loc[table["status"] != "ok", ["qc", "qc_reason"]] = ["fail", "labelling failed"]
    ok = table["status"] == "ok"
    for _, idx in table[ok].groupby(["protocol", "route", "label"]).groups.items():
        if len(idx) < need:
            continue
        z = robust_z(table.loc[idx, "volume_ml"].to_numpy(float), float(qc.get("min_spread", 0.02)))
        out = np.abs(z) > z_warn
        for i, zi in zip(np.asarray(idx)[out], z[out]):
            table.loc[i, ["qc", "qc_reason"]] = ["warn", f"volume robust z {zi:+.1f}"]
    low = ok & (table["agreement"].astype(float) < LOW_AGREEMENT) & (table["qc"] == "ok")
    table.loc[low, ["qc", "qc_reason"]] = ["warn", f"atlases agree on < {LOW_AGREEMENT:.0%} of its voxels"]
    return table


def accuracy_table(paths: list[str]) -> pd.DataFrame:
    """Every labelled subject's accuracy per region, then per protocol and route the mean over the held-out ones."""
    parts = [_read(p, ACCURACY_COLUMNS) for p in paths if os.path.exists(p)]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=ACCURACY_COLUMNS)
    table = table[table["label"].astype(str) != ""] if len(table) else table
    summary = []
    for (protocol, route), grp in table[table["held_out"].astype(bool)].groupby(["protocol", "route"]):
        per_subject = grp.groupby(["cohort", "subject"])
        summary.append({"cohort": grp["cohort"].iloc[0], "subject": "ALL", "protocol": protocol, "label": "mean",
                        "route": route, "held_out": True,
                        "dice": float(per_subject["dice"].mean().mean()),
                        "volume_ml": float(grp["volume_ml"].astype(float).mean()),
                        "manual_ml": float(grp["manual_ml"].astype(float).mean()),
                        "volume_error_pct": float(grp["volume_error_pct"].astype(float).abs().mean())})
    return pd.concat([table, pd.DataFrame(summary, columns=ACCURACY_COLUMNS)], ignore_index=True)


def write_labelling_tables(jobs: list[tuple[str, str, str]], volumes: list[str], accuracies: list[str], logs: list[str],
                           volumes_tsv: str, labelling_tsv: str, qc: dict[str, Any] | None = None,
                           figure: str | None = None, routes: list[str] | None = None) -> pd.DataFrame:
    table = volume_table(jobs, volumes, logs, qc, routes)
    acc = accuracy_table(accuracies)
    write_text_atomic(table.to_csv(sep="\t", index=False, float_format="%.6g"), volumes_tsv)
    write_text_atomic(acc.to_csv(sep="\t", index=False, float_format="%.6g"), labelling_tsv)
    if figure:
        labelling_figure(table, acc, figure)
    return table


def labelling_figure(volumes: pd.DataFrame, accuracy: pd.DataFrame, path: str) -> None:
    """The report's "Regional volumes" picture: each protocol's leave-one-out Dice per atlas (left), and the
    labelled volume per cohort and protocol with the flagged subjects named (right)."""
    from ..study.report_figures import _plt

    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    rows = accuracy[(accuracy["subject"] != "ALL") & accuracy["held_out"].astype(bool)]
    per_subject = rows.groupby(["protocol", "route", "subject"])["dice"].mean().reset_index()
    groups = sorted({(p, r) for p, r in zip(per_subject["protocol"], per_subject["route"])})
    for i, (p, r) in enumerate(groups):
        d = per_subject[(per_subject["protocol"] == p) & (per_subject["route"] == r)]["dice"]
        left.scatter(np.full(len(d), i), d, alpha=0.7)
        left.hlines(d.mean(), i - 0.3, i + 0.3, color="k")
    left.set_xticks(range(len(groups)), [f"atlas-{p}\n{r}" for p, r in groups])
    left.set_ylabel("mean Dice per held-out subject")
    left.set_title("Accuracy (atlases: each labelled from the others)")
    total = volumes[(volumes["label"].astype(str) == "labelled") & (volumes["status"] == "ok")].copy()
    boxes = sorted({(c, p, r) for c, p, r in zip(total["cohort"], total["protocol"], total["route"])})
    data = [total[(total["cohort"] == c) & (total["protocol"] == p) & (total["route"] == r)]["volume_ml"].astype(float)
            for c, p, r in boxes]
    if boxes:
        right.boxplot(data, tick_labels=[f"{c}\natlas-{p}" + (f"\n{r}" if r != "atlases" else "") for c, p, r in boxes])
    flagged = volumes[volumes["qc"] != "ok"].drop_duplicates(["cohort", "subject", "protocol"])
    right.set_ylabel("labelled volume (mL)")
    named = ", ".join(f"{r.cohort}/{r.subject}" for r in flagged.head(6).itertuples())
    right.set_title(f"Labelled volume; {len(flagged)} flagged" + (f": {named}" if named else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_study_tables(L: Layout, jobs: list[tuple[str, str, str]], qc: dict[str, Any] | None = None,
                       figure: str | None = None, route_jobs: list[tuple[str, str, str]] | None = None,
                       template: str = "") -> pd.DataFrame:
    """volumes.tsv and labelling.tsv of every (cohort, subject, protocol), its files and logs spelled by L, and
    with a template route (design: template; route_jobs, the template's name) its rows too."""
    files = [subject_outputs(L, *j) for j in jobs]
    vols, accs = [f["volumes"] for f in files], [f["accuracy"] for f in files]
    logs = [L.labelling_witness().format(cohort=c, subject=s, protocol=p) for c, s, p in jobs]
    routes = ["atlases"] * len(jobs)
    if route_jobs:
        t_vols, t_accs, t_logs = template_route_files(L, route_jobs, template)
        jobs, vols, accs, logs = jobs + route_jobs, vols + t_vols, accs + t_accs, logs + t_logs
        routes += ["template"] * len(t_vols)
    return write_labelling_tables(jobs, vols, accs, logs, L.table("volumes"), L.table("labelling"), qc, figure, routes)
