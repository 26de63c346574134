# Atlas labels in every subject's own space (cohortreg/labelling/): `labelling: {atlases: K}` registers K
# labelled subjects of each protocol (a cohort with labels) to every subject of the sheet and fuses their
# labels on the subject's own input grid; metrics/volumes.tsv and metrics/labelling.tsv collect them.
# One job per subject and protocol, or (batch_size > 1) per subject batch and protocol.
import dataclasses
from cohortreg.batches.items import batch_id
from cohortreg.labelling.plan import LabellingPlan, TemplateRoute, flat_outputs
from cohortreg.labelling.tables import write_study_tables

LABELLING = LabellingPlan.build(config.get("labelling"), SHEET, L)
LABELLING_METHOD = resolve(LABELLING.settings.method, configured(LABELLING.settings.method))
LABELLING_CODE = LABELLING_METHOD.code("labelling")  # the labelling code and its method's engine's
LABELLING_MODEL = MODEL_FILE[MODEL_OF[LABELLING_METHOD.name]] if LABELLING_METHOD.name in MODEL_OF else ""
LABEL_BATCH_JOBS = LABELLING.batch_jobs(BATCHES.subject_batches) if LABELLING.on and BATCH_SIZE > 1 else []
# design: template: the template's labels in every subject's own space and its log-Jacobian map in template
# space, from the subject's registration to the template by one of the study's methods (labelling/plan.py)
TEMPLATE_ROUTE = TemplateRoute.build(config["design"], LABELLING.settings, METHODS, [(p.cohort, p.moving) for p in PAIRS],
                                     TEMPLATE.name, set(TEMPLATE.inputs), TEMPLATE.labelled_cohorts, L)
if TEMPLATE_ROUTE:  # not a learned method's training subjects (they have no registration to evaluate)
    TEMPLATE_ROUTE = dataclasses.replace(TEMPLATE_ROUTE, subjects=tuple(
        (c, s) for c, s in TEMPLATE_ROUTE.subjects if evaluates(TEMPLATE_ROUTE.method, c, s, TEMPLATE_ROUTE.fixed)))
ROUTE_SUBJECTS = set(TEMPLATE_ROUTE.subjects) if TEMPLATE_ROUTE else set()
ROUTE_BATCH_JOBS = template_route_batch_jobs()


wildcard_constraints:
    protocol="[A-Za-z0-9]+",


rule label_subject:
    input:
        unpack(labelling_inputs),
    output:
        dseg=L.atlas_dseg,
        agreement=L.atlas_agreement,
        volumes=L.atlas_file("volumes.tsv"),
        accuracy=L.atlas_file("accuracy.tsv"),
    params:
        job=labelling_job,
        settings=config["labelling"],
        method=LABELLING_METHOD.name,
        method_params=labelling_method_params,
        affine=config["affine"],
        seed=config["seed"],
        workdir=lambda w: L.atlas_workdir.format(cohort=w.cohort, subject=w.subject, protocol=w.protocol),
        code=LABELLING_CODE,
        upstream=labelling_upstream,  # recorded beside the output (cohortreg.upstream)
    log:
        L.labelling_witness(),
    benchmark:
        L.labelling_witness("benchmarks")
    threads: res("register", "threads")
    resources:
        mem_mb=grows("register", "mem_mb"),
        runtime=grows("register", "runtime", per_item=max(LABELLING.settings.atlases, 1)),
        **slurm_resources(),
    script:
        "../scripts/label_subject.py"


rule label_batch:
    input:
        unpack(label_batch_inputs),
    output:
        manifest=L.batch("labelling/{protocol}"),
    params:
        out=lambda w: L.out,  # the tree's root, for cohortreg.paths.Layout (a function: not a file prefix)
        jobs=label_batch_jobs,
        settings=config["labelling"],
        method=LABELLING_METHOD.name,
        method_params=labelling_method_params,
        engine=LABELLING_METHOD.engine,
        model=LABELLING_MODEL,
        affine=config["affine"],
        seed=config["seed"],
        code=LABELLING_CODE,
        upstream=label_batch_upstream,  # recorded beside the output (cohortreg.upstream)
    log:
        L.batch("labelling/{protocol}", "logs"),
    benchmark:
        L.batch("labelling/{protocol}", "benchmarks")
    threads: batch_threads("register")
    resources:
        mem_mb=grows("register", "mem_mb", per_item=batch_workers("register")),
        runtime=grows("register", "runtime", per_item=BATCH_SIZE * max(LABELLING.settings.atlases, 1)),
        **slurm_resources(),
    script:
        "../scripts/label_batch.py"


rule labelling_tables:
    input:
        **labelling_table_inputs(),
    output:
        volumes=report(L.table("volumes"), caption="../report/volumes.rst", category="9. Regional volumes"),
        labelling=report(L.table("labelling"), caption="../report/labelling.rst", category="9. Regional volumes"),
        figure=report(L.report_file("labelling.png"), caption="../report/labelling.rst", category="9. Regional volumes"),
        flagged=report(directory(L.report_file("labelling_flagged")), patterns=["{name}.png"],
                       caption="../report/labelling.rst", category="9. Regional volumes", labels={"picture": "{name}"}),
    params:
        out=lambda w: L.out,
        jobs=LABELLING.jobs(),
        route_jobs=TEMPLATE_ROUTE.jobs() if TEMPLATE_ROUTE else [],
        template=TEMPLATE.name,
        qc=config["qc"],
        code=CODE["labelling_tables"],
    log:
        L.study_log("labelling_tables"),
    threads: 1
    script:
        "../scripts/labelling_tables.py"


if TEMPLATE_ROUTE:

    rule template_route:
        input:
            unpack(template_route_inputs),
        output:
            **flat_outputs(TEMPLATE_ROUTE.outputs("{cohort}", "{subject}")),
        params:
            job=template_route_job,
            code=CODE["template_route"],
        log:
            L.template_route_witness(),
        benchmark:
            L.template_route_witness("benchmarks")
        threads: 1
        resources:
            mem_mb=grows("metrics", "mem_mb"),
            runtime=grows("metrics", "runtime"),
            **slurm_resources(),
        script:
            "../scripts/template_route.py"

    rule template_route_batch:
        input:
            unpack(template_route_batch_inputs),
        output:
            manifest=L.batch("template_route"),
        params:
            out=lambda w: L.out,  # the tree's root, for cohortreg.paths.Layout (a function: not a file prefix)
            jobs=template_route_batch_items,
            code=CODE["template_route"],
        log:
            L.batch("template_route", "logs"),
        benchmark:
            L.batch("template_route", "benchmarks")
        threads: batch_threads("metrics")
        resources:
            mem_mb=grows("metrics", "mem_mb", per_item=batch_workers("metrics")),
            runtime=grows("metrics", "runtime", per_item=BATCH_SIZE),
            **slurm_resources(),
        script:
            "../scripts/template_route_batch.py"
