# Functions of rules/report.smk (its input, param and resource functions and the helpers they use),
# kept apart from its rules (snakemake --lint); included just before it.


def report_settings():
    """What every method ran with (the paper's instrumentation bias), as the jobs got it."""
    out = {}
    for m in METHODS:
        params = {k: v for k, v in params_of(m).items() if k != "model_file"}
        out[m] = {"engine": ENGINE[m], "code": METHOD_CODE[m], "settings": params}
    return out


def picture_inputs():
    """Every pair's overlay: inputs, so that a study made before the overlays existed gets them (an
    output nothing asks for is not rerun when missing, and its job's provenance triggers are then
    off). With batches the metrics batch jobs write them (their manifests are the tables' inputs)."""
    if BATCH_SIZE > 1:
        return []
    pat = L.qc_picture
    return [pat.format(cohort=r.cohort, moving=r.moving, fixed=r.fixed, method=r.method) for r in RESULTS]


def report_outputs():
    return [*rules.report_figures.output, rules.method_choice.output[0], L.dataset_description, L.citation,
            L.report_file("masks")]
