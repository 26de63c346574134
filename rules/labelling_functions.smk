# Functions of rules/labelling.smk: each asks the study's LabellingPlan (cohortreg/labelling/plan.py) and adds
# what only the workflow knows at DAG time (the subject batches, a learned method's model); kept apart
# from its rules (snakemake --lint).


def labelled_with(cohort, subject, protocol):
    """The subject and the atlases its labelling reads, (cohort, subject) each."""
    atlas_cohort = LABELLING.cohort_of[protocol]
    return [(cohort, subject)] + [(atlas_cohort, a) for a in LABELLING.candidates(cohort, subject, protocol)]


def labelling_job_of(cohort, subject, protocol):
    """The subject's and its atlases' files as the package call takes them (cohortreg.labelling.run)."""
    subjects = labelled_with(cohort, subject, protocol)
    row = ROW(cohort, subject)
    target = {"t1": row["t1"], "brain": L.brain.format(cohort=cohort, subject=subject),
              "mask": L.brain_mask.format(cohort=cohort, subject=subject),
              "labels": row["labels"] if LABELLING.leave_one_out(cohort, subject, protocol) else ""}
    atlases = [{"subject": s, "brain": L.brain.format(cohort=c, subject=s), "labels": ROW(c, s)["labels"]}
               for c, s in subjects[1:]]
    return {"subject": subject, "target": target, "atlases": atlases}


def batch_labelled(w):
    """A labelling batch's subjects (its subject batch's)."""
    return BATCHES.subjects_of(w.cohort, w.batch)


def labelling_files(jobs, subjects, output):
    """A labelling job's inputs: the sheet's T1 of each subject (its grid is the output's) and labels of its
    atlases (and its own, as an atlas: leave-one-out), and everyone's preprocessed brain: their files, or
    (batch_size > 1) their subject batches' manifests, ancient while ``output`` was made from the same
    subjects (common.smk: carried)."""
    out = {"raw": sorted({f for j in jobs for f in [j["target"]["t1"], j["target"]["labels"]] +
                          [a["labels"] for a in j["atlases"]] if f})}
    if all(cs in SUBJECT_BATCH for cs in subjects):
        manifests = sorted({BATCHES.subject_manifest(c, s) for c, s in subjects})
        out["subjects"] = carried(manifests, output, subject_data(subjects))
    else:
        out["brains"] = sorted({f for j in jobs for f in [j["target"]["brain"], j["target"]["mask"]] +
                                [a["brain"] for a in j["atlases"]]})
    out.update({"model": LABELLING_MODEL} if LABELLING_MODEL else {})
    return out


def labelling_inputs(w):
    job = labelling_job_of(w.cohort, w.subject, w.protocol)
    output = LABELLING.outputs(w.cohort, w.subject, w.protocol)["volumes"]
    return labelling_files([job], labelled_with(w.cohort, w.subject, w.protocol), output)


def label_batch_jobs(w):
    return [labelling_job_of(w.cohort, s, w.protocol) for s in batch_labelled(w)]


def label_batch_subjects(w):
    return sorted({cs for s in batch_labelled(w) for cs in labelled_with(w.cohort, s, w.protocol)})


def label_batch_inputs(w):
    output = L.batch("labelling/{protocol}").format(cohort=w.cohort, batch=w.batch, protocol=w.protocol)
    return labelling_files(label_batch_jobs(w), label_batch_subjects(w), output)


def labelling_job(w):
    return labelling_job_of(w.cohort, w.subject, w.protocol)


def labelling_upstream(w):
    return subject_data(labelled_with(w.cohort, w.subject, w.protocol))


def label_batch_upstream(w):
    return subject_data(label_batch_subjects(w))


def labelling_method_params(w):
    return params_of(LABELLING.settings.method)


def label_batch_manifests():
    return [L.batch("labelling/{protocol}").format(cohort=c, batch=b, protocol=p) for c, b, p in LABEL_BATCH_JOBS]


def labelling_outputs():
    """What `all` asks for: the two tables (and through them every subject's labels), or nothing when off;
    with a template route whose template has no labels, its log-Jacobian maps."""
    if LABELLING.on or (TEMPLATE_ROUTE and TEMPLATE_ROUTE.protocols):
        return [L.table("volumes"), L.table("labelling")]
    return template_route_files() if TEMPLATE_ROUTE else []


def labelling_table_inputs():
    """Every subject's files, or with batches the batch manifests (the files are written inside them)."""
    if LABEL_BATCH_JOBS:
        out = {"batches": label_batch_manifests()}
    else:
        out = {"volumes": LABELLING.volume_files(), "accuracy": LABELLING.accuracy_files()}
    return {**out, "template_route": template_route_files()} if TEMPLATE_ROUTE else out


# the template route (design: template): cohortreg.labelling.template_route, one job per subject or per
# pair batch of its method
def template_route_files():
    """Every subject's template-route files (its log-Jacobian, its volumes per protocol), or with batches the
    manifests of the template-route batches."""
    if ROUTE_BATCH_JOBS:
        return [L.batch("template_route").format(cohort=c, batch=b) for c, b in ROUTE_BATCH_JOBS]
    r = TEMPLATE_ROUTE
    return [f for c, s in r.subjects for k, f in flat_outputs(r.outputs(c, s)).items() if k == "logjac" or
            k.endswith("_volumes")]


def template_route_batch_jobs():
    """(cohort, batch) of every pair batch with a subject of the template route (batch_size > 1)."""
    if not TEMPLATE_ROUTE or BATCH_SIZE <= 1:
        return []
    return [(c, batch_id(i)) for c, bs in BATCHES.pair_batches.items() for i in range(len(bs))
            if route_pairs(c, batch_id(i))]


def route_pairs(cohort, batch):
    r = TEMPLATE_ROUTE
    return [mv for mv, fx in BATCHES.pairs_of(cohort, batch) if fx == r.fixed and (cohort, mv) in ROUTE_SUBJECTS]


def template_route_job_of(cohort, subject):
    """A subject's template-route call (cohortreg.labelling.template_route.label_from_template)."""
    r, row = TEMPLATE_ROUTE, ROW(cohort, subject)
    manifest = L.method_file("transforms.json").format(cohort=cohort, moving=subject, fixed=r.fixed, method=r.method)
    protocols = {p: {k: tpl(L.template_file(f"cohort-{{cohort}}_{k}.nii.gz"), cohort=c) for k in ("dseg", "probseg")}
                 for p, c in r.protocols.items()}
    return {"subject": subject, "manifest": manifest, "held_out": r.held_out(cohort, subject),
            "target": {"t1": row["t1"], "mask": L.brain_mask.format(cohort=cohort, subject=subject),
                       "labels": r.manual_labels(cohort, subject, row["labels"])},
            "template": {"brain": L.brain.format(cohort=cohort, subject=r.fixed), "protocols": protocols},
            "outputs": r.outputs(cohort, subject)}


def template_route_files_of(jobs):
    """The files a template-route job reads besides its registrations: the sheet's T1 and labels, the template's
    brain and label maps."""
    raw = sorted({f for j in jobs for f in [j["target"]["t1"], *j["target"]["labels"].values()]})
    tpl_files = sorted({f for j in jobs for f in [j["template"]["brain"]] +
                        [x for files in j["template"]["protocols"].values() for x in files.values()]})
    return {"raw": raw, "template": tpl_files}


def template_route_inputs(w):
    job = template_route_job_of(w.cohort, w.subject)
    r = TEMPLATE_ROUTE
    return {**template_route_files_of([job]), "manifest": job["manifest"], "mask": job["target"]["mask"],
            **({"model": MODEL_FILE[MODEL_OF[r.method]]} if r.method in MODEL_OF else {})}


def template_route_job(w):
    return template_route_job_of(w.cohort, w.subject)


def template_route_batch_items(w):
    return [template_route_job_of(w.cohort, s) for s in route_pairs(w.cohort, w.batch)]


def template_route_batch_inputs(w):
    """The method's register batch (it writes the registrations), the subjects' batches (their masks), the
    template's files and the sheet's."""
    jobs = template_route_batch_items(w)
    subjects = [s for s in (j["subject"] for j in jobs)]
    return {**template_route_files_of(jobs),
            "register": L.batch(f"{TEMPLATE_ROUTE.method}/register").format(cohort=w.cohort, batch=w.batch),
            "subjects": BATCHES.subject_manifests(w.cohort, subjects)}


def write_partial_labelling_tables():
    """On a failed run still write volumes.tsv and labelling.tsv, the failed subjects with their reasons;
    backdated (1970) so that the next run retries them (as write_partial_tables)."""
    if not labelling_outputs() or labelling_outputs()[0] != L.table("volumes"):
        return
    try:
        table = write_study_tables(L, LABELLING.jobs(), config["qc"],
                                   route_jobs=TEMPLATE_ROUTE.jobs() if TEMPLATE_ROUTE else [], template=TEMPLATE.name)
        for t in (L.table("volumes"), L.table("labelling")):
            os.utime(t, (0, 0))
        bad = table[table["status"] != "ok"]
        for r in bad.itertuples():
            logger.error(f"  labelling {r.cohort}/{r.subject} atlas-{r.protocol}: {r.error}")
    except Exception as exc:  # never mask the original failure
        logger.error(f"CohortReg: could not write partial labelling tables: {exc}")


for _f in (labelling_inputs, labelling_job, labelling_upstream, labelling_method_params, label_batch_jobs,
           label_batch_inputs, label_batch_upstream, template_route_inputs, template_route_job,
           template_route_batch_items, template_route_batch_inputs):
    signed(_f)
