# The results the run promises: one (pair, method) each, with the files that witness it, and the
# cohort tables written even when some pairs failed.


def pair_results():
    """Where each (pair, method)'s results and witnesses are. Patterns built once: 40,000 results
    at 20,000 subjects, each with seven log paths."""
    pre, strip = L.log("preprocess"), L.log("skullstrip")
    aff_log, reg_log, met_log = L.log("affine", pair=True), L.log("register"), L.log("metrics")
    metrics, labels = L.method_file("metrics.json"), L.method_file("labels.tsv")
    bench, bench_aff = L.benchmark("register"), L.benchmark("affine", pair=True)
    out = []
    threads = {m: job_threads(m) for m in METHODS}  # once per method, not per pair (40,000 results at 20,000 subjects)
    for p in PAIRS:  # a learned method's pairs leave out the subjects that trained its model
        ids0 = dict(cohort=p.cohort, moving=p.moving, fixed=p.fixed)
        subj_logs = tuple(pat.format(cohort=p.cohort, subject=s) for s in (p.moving, p.fixed) for pat in (pre, strip))
        aff = aff_log.format(**ids0, method="")
        for m in METHODS:
            if not evaluates(m, p.cohort, p.moving, p.fixed):
                continue
            ids = dict(ids0, method=m)
            out.append(PairResult(**ids, metrics=metrics.format(**ids), labels=labels.format(**ids),
                                  benchmark=bench.format(**ids), benchmark_affine=bench_aff.format(**ids),
                                  logs=subj_logs + (aff, reg_log.format(**ids), met_log.format(**ids)),
                                  threads=threads[m]))
    return out


def write_partial_tables():
    """On a failed run (e.g. --keep-going with a bad subject) still write the cohort tables.

    They are stamped with a 1970 mtime: older than any input, so the next run sees them as out
    of date and retries the failed subjects instead of taking the partial tables as final.
    """
    try:
        tab = STUDY_TABLES
        pairs = write_tables(RESULTS, tab["pairs"], tab["labels"], tab["summary"], qc=config["qc"],
                             stats_tsv=tab["stats"], shift_tsv=tab["domain_shift"], methods=METHODS)
        for t in tab.values():
            os.utime(t, (0, 0))
        bad = pairs[pairs["status"] != "ok"]
        logger.error(f"CohortReg: {len(bad)} of {len(pairs)} pair results failed; see {L.table('pairs')}:")
        for r in bad.itertuples():
            logger.error(f"  {r.cohort}/{r.moving} -> {r.fixed} [{r.method}]: {r.error}")
    except Exception as exc:  # never mask the original failure
        logger.error(f"CohortReg: could not write partial tables: {exc}")



RESULTS = pair_results()
# The aggregation's tables: backdated together when a run leaves them partial (here, rules/batch.smk).
STUDY_TABLES = {name: L.table(name) for name in ("pairs", "labels", "summary", "stats", "domain_shift")}
# Each (pair, method)'s overlay is a report item of its own up to this many results; above, the
# report shows the gallery of the worst pairs only (the pictures stay in the tree).
INLINE_PICTURES = BATCH_SIZE <= 1 and len(RESULTS) <= config["report"]["inline_pairs"]
# With batches the batch jobs write the overlays untracked: report_figures copies them into one
# report directory instead (report/every_pair), up to the same number.
BATCH_PICTURES = BATCH_SIZE > 1 and len(RESULTS) <= config["report"]["inline_pairs"]


def aggregate_inputs():
    if BATCH_SIZE > 1:  # per-pair benchmark files are written by the batch jobs, not tracked
        return {"metrics": BATCHES.manifests(METHODS, stages=("metrics",))}
    return {"metrics": [r.metrics for r in RESULTS],
            "benchmarks": [b for r in RESULTS for b in (r.benchmark, r.benchmark_affine)]}
