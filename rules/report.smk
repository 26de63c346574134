# The study as a deliverable: MI(intensity; labels), the figures, the gallery of the worst pairs,
# the settings every method ran with; all of them items of Snakemake's own report:
#   snakemake --configfile study.yaml --config samples=sheet.tsv outdir=results --report results/report.html
# Captions: report/*.rst; the paper's figures: cohortreg/study/report_figures.py.
SHEET_FILE = [config["samples"]] if os.path.isfile(config["samples"]) else []  # a BIDS root is a folder
# (cohort, subject, preprocessed T1, labels, mask) of every labelled subject
MI_SUBJECTS = [(c, s, *(pat.format(cohort=c, subject=s) for pat in (L.preproc_t1, L.preproc_labels, L.brain_mask)))
               for (c, s), labels in SHEET["labels"].items() if labels]
# their files, or their batch manifests when batched (the batch jobs write the files)
MI_INPUTS = (BATCHES.manifests(METHODS, stages=("subjects",)) if BATCH_SIZE > 1 else
             [f for row in MI_SUBJECTS for f in row[2:]])


rule mutual_info:
    input:
        subjects=MI_INPUTS,
    output:
        mi=report(L.table("mi"), caption="../report/mi.rst", category="4. MI(i;s) and Dice", labels={"table": "mi"}),
    params:
        subjects=MI_SUBJECTS,
        bins=config["report"]["mi_bins"],
        code=CODE["report"],
    log:
        L.study_log("mutual_info"),
    benchmark:
        L.study_benchmark("mutual_info")
    threads: 1
    script:
        "../scripts/mutual_info.py"


rule method_choice:
    output:
        report(L.report_file("method_choice.txt"), caption="../report/method_choice.rst", category="0. Study design"),
    params:
        text=METHOD_CHOICE or f"methods as configured: {', '.join(METHODS)} (methods: auto was not used).",
    log:
        L.study_log("method_choice"),
    threads: 1
    script:  # not run: a run: job is a fresh snakemake process that parses the workflow again (snakemake#3130): 3 s here
        "../scripts/method_choice.py"


rule report_figures:
    input:
        pictures=picture_inputs(),
        pairs=L.table("pairs"),
        labels=L.table("labels"),
        stats=L.table("stats"),
        summary=L.table("summary"),
        domain_shift=L.table("domain_shift"),
        mi=L.table("mi"),
        sheet=SHEET_FILE,  # its checksum is in the provenance table
    output:
        dice=report(L.report_file("dice.png"), caption="../report/dice.rst", category="1. Accuracy"),
        hd95=report(L.report_file("hd95.png"), caption="../report/hd95.rst", category="1. Accuracy"),
        heatmap=report(L.report_file("label_dice.png"), caption="../report/label_dice.rst", category="1. Accuracy"),
        runtime=report(L.report_file("runtime.png"), caption="../report/runtime.rst", category="6. Runtime and memory"),
        mi_png=report(L.report_file("mi_dice.png"), caption="../report/mi_dice.rst", category="4. MI(i;s) and Dice"),
        mi_dice=report(L.table("mi_dice"), caption="../report/mi_dice.rst", category="4. MI(i;s) and Dice",
                       labels={"table": "mi_dice"}),
        gallery=report(directory(L.report_file("gallery")), patterns=["{name}.png"], caption="../report/gallery.rst",
                       category="3a. QC: worst pairs", labels={"picture": "{name}"}),
        **({"every_pair": report(directory(L.report_file("every_pair")),
                                 patterns=["{cohort}.{moving}.to.{fixed}.{method}.png"], caption="../report/qc_pair.rst",
                                 category="3b. QC: every pair", subcategory="{cohort}",
                                 labels={"moving": "{moving}", "fixed": "{fixed}", "method": "{method}"})}
           if BATCH_PICTURES else {}),
        # the study's tables as report items (copies: the aggregate job's params would list every pair
        # in the report, 6 MB per table at 2,000 pairs)
        pairs=report(L.report_file("pairs.tsv"), caption="../report/pairs.rst", category="1. Accuracy",
                     labels={"table": "pairs"}),
        summary=report(L.report_file("summary.tsv"), caption="../report/summary.rst", category="1. Accuracy",
                       labels={"table": "summary"}),
        stats=report(L.report_file("stats.tsv"), caption="../report/stats.rst", category="2. Paired statistics",
                     labels={"table": "stats"}),
        domain_shift=report(L.report_file("domain_shift.tsv"), caption="../report/domain_shift.rst",
                            category="5. Domain shift", labels={"table": "domain_shift"}),
        settings=report(L.report_file("settings.tsv"), caption="../report/settings.rst",
                        category="7. Settings and provenance", labels={"table": "settings"}),
        provenance=report(L.report_file("provenance.tsv"), caption="../report/provenance.rst",
                          category="7. Settings and provenance", labels={"table": "provenance"}),
    params:
        picture=lambda w: L.qc_picture,  # a pattern, formatted per pair in the script
        worst=config["report"]["worst_pairs"],
        settings=report_settings(),
        config=config,
        methods=METHODS,
        code=CODE["report"],
    log:
        L.study_log("report_figures"),
    benchmark:
        L.study_benchmark("report_figures")
    threads: 1
    resources:
        mem_mb=4000,
    script:
        "../scripts/report_figures.py"




# The tree as a BIDS derivative dataset, and the methods paragraph of what ran (cohortreg/study/derivative.py):
# after the tables, when every subject's skull-strip decision is in its qc.json.
rule dataset_description:
    input:
        pairs=L.table("pairs"),
        labelling=labelling_outputs(),
    output:
        description=L.dataset_description,
        citation=report(L.citation, caption="../report/citation.rst", category="7. Settings and provenance"),
    params:
        out=lambda w: L.out,
        settings={k: config[k] for k in ("preprocess", "skullstrip", "affine", "labelling")},
        engines={m: ENGINE[m] for m in METHODS},
        samples=config["samples"],
        subjects=[list(cs) for cs in SHEET.index],
        template=config["design"] == "template",
        labelling=bool(labelling_outputs()),
        code=CODE["derivative"],
    log:
        L.study_log("dataset_description"),
    threads: 1
    script:
        "../scripts/dataset_description.py"


rule mask_gallery:
    input:
        pairs=L.table("pairs"),  # every subject's mask and input check are made
    output:
        gallery=report(directory(L.report_file("masks")), patterns=["{name}.png"], caption="../report/masks.rst",
                       category="3c. QC: brain masks", labels={"picture": "{name}"}),
    params:
        out=lambda w: L.out,
        subjects=[list(cs) for cs in SHEET.index],
        code=CODE["report"],
    log:
        L.study_log("mask_gallery"),
    threads: 1
    script:
        "../scripts/mask_gallery.py"
