# CohortReg: register brain MRI across cohorts.
#   snakemake --cores 2 --config samples=sheet.tsv outdir=results methods=[affine,ants]
from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "report/workflow.rst"


include: "rules/resources.smk"
include: "rules/common.smk"
include: "rules/learn_functions.smk"
include: "rules/learn.smk"
include: "rules/results.smk"
include: "rules/preprocess.smk"
include: "rules/register.smk"
include: "rules/batch_functions.smk"
include: "rules/batch.smk"
include: "rules/metrics.smk"
include: "rules/template_functions.smk"
include: "rules/template.smk"
include: "rules/labelling_functions.smk"
include: "rules/labelling.smk"
include: "rules/report_functions.smk"
include: "rules/report.smk"


rule all:
    input:
        rules.aggregate.output,
        report_outputs(),
        labelling_outputs(),
    default_target: True


onsuccess:
    retry_failed_batches(fail=True)


onerror:
    retry_failed_batches()
    write_partial_tables()
    write_partial_labelling_tables()
