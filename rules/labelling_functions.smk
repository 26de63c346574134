# Functions of rules/labelling.smk: each asks the study's LabellingPlan (cohortreg/labelling/plan.py) and adds
# what only the workflow knows at DAG time (the subject batches, a learned method's model); kept apart
# from its rules (snakemake --lint).


def labelling_subjects(w):
    """The subject and the atlases its job reads, (cohort, subject) each."""
    atlas_cohort = LABELLING.cohort_of[w.protocol]
    return [(w.cohort, w.subject)] + [(atlas_cohort, a) for a in LABELLING.candidates(w.cohort, w.subject, w.protocol)]


def labelling_inputs(w):
    """The sheet's T1 of the subject (its grid is the output's) and labels of its atlases (and its own, as an
    atlas: leave-one-out), and everyone's preprocessed brain: their files, or (batch_size > 1) their subject
    batches' manifests, ancient while this job's output was made from the same subjects (common.smk: carried)."""
    subjects = labelling_subjects(w)
    out = {"t1": ROW(w.cohort, w.subject)["t1"], "atlas_labels": [ROW(c, s)["labels"] for c, s in subjects[1:]]}
    if LABELLING.leave_one_out(w.cohort, w.subject, w.protocol):
        out["labels"] = ROW(w.cohort, w.subject)["labels"]
    if all(cs in SUBJECT_BATCH for cs in subjects):
        manifests = sorted({BATCHES.subject_manifest(c, s) for c, s in subjects})
        output = LABELLING.outputs(w.cohort, w.subject, w.protocol)["volumes"]
        out["subjects"] = carried(manifests, output, subject_data(subjects))
    else:
        out["brains"] = [L.brain.format(cohort=c, subject=s) for c, s in subjects]
        out["mask"] = L.brain_mask.format(cohort=w.cohort, subject=w.subject)
    method = LABELLING.settings.method
    out.update({"model": MODEL_FILE[MODEL_OF[method]]} if method in MODEL_OF else {})
    return out


def labelling_job(w):
    """The subject's and its atlases' files as the package call takes them (cohortreg.labelling.run)."""
    subjects = labelling_subjects(w)
    target = {"t1": ROW(w.cohort, w.subject)["t1"], "brain": L.brain.format(cohort=w.cohort, subject=w.subject),
              "mask": L.brain_mask.format(cohort=w.cohort, subject=w.subject),
              "labels": ROW(w.cohort, w.subject)["labels"] if LABELLING.leave_one_out(w.cohort, w.subject, w.protocol) else ""}
    atlases = [{"subject": s, "brain": L.brain.format(cohort=c, subject=s), "labels": ROW(c, s)["labels"]}
               for c, s in subjects[1:]]
    return {"target": target, "atlases": atlases}


def labelling_upstream(w):
    return subject_data(labelling_subjects(w))


def labelling_method_params(w):
    return params_of(LABELLING.settings.method)


def labelling_outputs():
    """What `all` asks for: the two tables (and through them every subject's labels), or nothing when off."""
    return [L.table("volumes"), L.table("labelling")] if LABELLING.on else []


def write_partial_labelling_tables():
    """On a failed run still write volumes.tsv and labelling.tsv, the failed subjects with their reasons;
    backdated (1970) so that the next run retries them (as write_partial_tables)."""
    if not LABELLING.on:
        return
    try:
        jobs = LABELLING.jobs()
        logs = [L.labelling_witness().format(cohort=c, subject=s, protocol=p) for c, s, p in jobs]
        table = write_labelling_tables(jobs, LABELLING.volume_files(), LABELLING.accuracy_files(), logs,
                                       L.table("volumes"), L.table("labelling"), config["qc"])
        for t in (L.table("volumes"), L.table("labelling")):
            os.utime(t, (0, 0))
        bad = table[table["status"] != "ok"]
        for r in bad.itertuples():
            logger.error(f"  labelling {r.cohort}/{r.subject} atlas-{r.protocol}: {r.error}")
    except Exception as exc:  # never mask the original failure
        logger.error(f"CohortReg: could not write partial labelling tables: {exc}")


for _f in (labelling_inputs, labelling_job, labelling_upstream, labelling_method_params):
    signed(_f)
