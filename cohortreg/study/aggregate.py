"""Cohort tables from per-pair results: pairs.tsv, labels.tsv, summary.tsv.

Works on a partial run too: pairs whose metrics are missing appear with status ``failed`` and
the first error their logs recorded, so a failed subject is listed, never silently dropped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io import write_text_atomic
from ..evaluation.metrics import LABEL_HEADER
from ..evaluation.qc import cohort_qc, qc_settings

PAIR_COLUMNS = ["cohort", "moving", "fixed", "method", "dice_mean", "hd95", "folding_frac", "sdlogj", "seconds",
                "seconds_affine", "max_rss_mb", "n_labels", "status", "error",
                # added by the QC and provenance issue (13); the columns above are unchanged
                "qc", "qc_reason", "lncc", "register_seconds", "version",
                # added by the learned-registration issue (14)
                "model",
                # added by the throughput issue (15): the threads the pair's registration ran on (compare
                # `seconds` across methods at equal threads; a local torch batch runs its pairs one thread each)
                "threads"]
_HANDED = ("moving_handedness", "fixed_handedness")
SUMMARY_METRICS = ["dice_mean", "hd95", "folding_frac", "sdlogj", "seconds"]


@dataclass(frozen=True)
class PairResult:
    """Where one (pair, method)'s results and its witnesses (benchmarks, logs) live."""

    cohort: str
    moving: str
    fixed: str
    method: str
    metrics: str
    labels: str
    benchmark: str
    benchmark_affine: str
    logs: tuple[str, ...]
    threads: float = float("nan")  # a per-pair job's threads; a batch item writes its own in its benchmark file


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def read_benchmark(path: str) -> tuple[float, float, float]:
    """(seconds, max RSS in MB, threads) from a Snakemake benchmark TSV (last repeat); nan when absent
    (threads: only a batch item's file has them, cohortreg.batches.items).

    Plain text parsing, not pandas: a 20,000-pair cohort has 40,000 of these small files.
    """
    if not path or not os.path.exists(path):
        return float("nan"), float("nan"), float("nan")
    with open(path) as fh:
        lines = [ln.rstrip("\n").split("\t") for ln in fh if ln.strip()]
    if len(lines) < 2:
        return float("nan"), float("nan"), float("nan")
    rec = dict(zip(lines[0], lines[-1]))
    return tuple(_number(rec.get(k, "nan")) for k in ("s", "max_rss", "threads"))  # type: ignore[return-value]


def read_label_lines(path: str, ids: tuple[str, str, str, str]) -> list[str]:
    """A per-pair labels.tsv's data lines, prefixed by the pair's ids (text in, text out: no parsing,
    so 20,000 pairs x 100 labels stay a few seconds)."""
    prefix = "\t".join(ids) + "\t"
    with open(path) as fh:
        lines = fh.read().splitlines()
    return [prefix + ln for ln in lines[1:] if ln.strip()]


def first_error(logs: tuple[str, ...]) -> str:
    """The first error line a pair's jobs logged, so the table says why a pair failed."""
    for log in logs:
        if not os.path.exists(log):
            continue
        with open(log, errors="replace") as fh:
            lines = fh.read().splitlines()
        for line in lines:
            if "ERROR" in line:
                return line.split("ERROR", 1)[1].strip(" :")
        for line in reversed(lines):
            if "Error" in line:
                return line.strip()
    return "no result (job failed or did not run; see logs/)"


def pair_row(r: PairResult) -> tuple[dict[str, Any], list[str]] | None:
    """One finished pair's pairs.tsv row and labels.tsv lines, from its files; None if unfinished."""
    if not os.path.exists(r.metrics):
        return None
    rec = json.loads(Path(r.metrics).read_text())
    secs, rss, threads = read_benchmark(r.benchmark)
    secs_aff, rss_aff, _ = read_benchmark(r.benchmark_affine)
    row = {"cohort": r.cohort, "moving": r.moving, "fixed": r.fixed, "method": r.method}
    row.update({k: rec.get(k, np.nan) for k in ("dice_mean", "hd95", "folding_frac", "sdlogj", "n_labels", "lncc",
                                                "register_seconds")})
    row.update(seconds=secs, seconds_affine=secs_aff, max_rss_mb=float(np.nanmax([rss, rss_aff, -1.0])),
               status="ok", error="", qc=rec.get("qc", "pass"), qc_reason=rec.get("qc_reason", ""),
               version=rec.get("version", ""), model=rec.get("model", ""),
               threads=threads if np.isfinite(threads) else r.threads, **{k: rec.get(k, 0) for k in _HANDED})
    labels = read_label_lines(r.labels, (r.cohort, r.moving, r.fixed, r.method)) if os.path.exists(r.labels) else []
    return row, labels


def rows_from_manifests(paths: list[str]) -> dict[tuple[str, ...], tuple[dict[str, Any], list[str]]]:
    """Rows the metrics batch jobs already gathered (batch_size > 1): a few hundred files to read
    instead of four per pair."""
    out = {}
    for p in paths:
        if not os.path.exists(p):
            continue
        for item in json.loads(Path(p).read_text()).get("items", []):
            if item.get("status") == "ok" and "row" in item:
                row = item["row"]
                out[(row["cohort"], row["moving"], row["fixed"], row["method"])] = (row, item.get("label_lines", []))
    return out


def collect(results: list[PairResult], manifests: list[str] | None = None,
            qc: dict[str, Any] | None = None) -> tuple[pd.DataFrame, str]:
    """One row per pair (failed ones with their error), judged against its cohort (cohortreg.evaluation.qc), and
    the text of the per-(pair, label) table."""
    gathered = rows_from_manifests(manifests) if manifests else {}
    rows: list[dict] = []
    label_lines: list[str] = ["cohort\tmoving\tfixed\tmethod\t" + LABEL_HEADER]
    for r in results:
        found = gathered.get((r.cohort, r.moving, r.fixed, r.method)) or pair_row(r)
        if found:
            rows.append(found[0])
            label_lines.extend(found[1])
        else:
            rows.append({"cohort": r.cohort, "moving": r.moving, "fixed": r.fixed, "method": r.method,
                         "status": "failed", "error": first_error(r.logs)})
    handed = {}
    for row in rows:
        for role, key in zip(("moving", "fixed"), _HANDED):
            if row.get(key):
                handed[(row["cohort"], row[role])] = int(row[key])
    pairs = cohort_qc(pd.DataFrame(rows).reindex(columns=PAIR_COLUMNS), handed, qc_settings(qc))
    return pairs, "\n".join(label_lines) + "\n"


def summarise(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per cohort and method: n pairs ok / failed, and mean, std, median of each metric."""
    out = []
    for (cohort, method), grp in pairs.groupby(["cohort", "method"], sort=False):
        ok = grp[grp["status"] == "ok"]
        row = {"cohort": cohort, "method": method, "n_ok": len(ok), "n_failed": int((grp["status"] != "ok").sum()),
               "n_qc_warn": int((ok["qc"] == "warn").sum()), "n_qc_fail": int((ok["qc"] == "fail").sum()),
               "versions": ",".join(sorted(set(ok["version"].dropna().astype(str)) - {""}))}
        for m in SUMMARY_METRICS:
            vals = pd.to_numeric(ok[m], errors="coerce")
            row.update({f"{m}_mean": vals.mean(), f"{m}_std": vals.std(ddof=0), f"{m}_median": vals.median()})
        out.append(row)
    return pd.DataFrame(out)


def write_tables(results: list[PairResult], pairs_tsv: str, labels_tsv: str, summary_tsv: str,
                 manifests: list[str] | None = None, qc: dict[str, Any] | None = None,
                 stats_tsv: str | None = None, shift_tsv: str | None = None,
                 methods: list[str] | None = None) -> pd.DataFrame:
    """The cohort tables; with stats_tsv and shift_tsv also the paired statistics (cohortreg.study.paired_stats)
    and the domain-shift grid (cohortreg.study.domain_shift), on the pairs that finished."""
    pairs, labels = collect(results, manifests, qc)
    tables = [(pairs, pairs_tsv), (summarise(pairs), summary_tsv)]
    if stats_tsv:
        from .paired_stats import paired_stats

        tables.append((paired_stats(pairs, methods), stats_tsv))
    if shift_tsv:
        from .domain_shift import domain_shift

        tables.append((domain_shift(pairs), shift_tsv))
    write_text_atomic(labels, labels_tsv)
    for table, path in tables:
        write_text_atomic(table.to_csv(sep="\t", index=False, float_format="%.6g"), path)
    return pairs


def log_findings(pairs: pd.DataFrame, log: Any) -> None:
    """What a person must not miss: failed pairs, QC flags (worst first) and results of two code versions."""
    ok = pairs["status"] == "ok"
    log.info("%d rows, %d failed", len(pairs), int((~ok).sum()))
    flagged = pairs[ok & (pairs["qc"] != "pass")].sort_values("qc", key=lambda s: s.map({"fail": 0, "warn": 1}))
    for r in flagged.itertuples():
        log.warning("QC %s: %s/%s -> %s [%s]: %s", r.qc, r.cohort, r.moving, r.fixed, r.method, r.qc_reason)
    versions = pairs.loc[ok, ["method", "version"]].dropna().drop_duplicates()
    for method, grp in versions.groupby("method"):
        if len(grp) > 1:
            log.warning("method %s: rows made by %d code versions (%s): rerun the older ones for one study-wide "
                        "version (pairs.tsv column 'version')", method, len(grp), ", ".join(sorted(grp["version"])))
