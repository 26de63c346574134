# CohortReg: register brain MRI across cohorts.
#   snakemake --cores 2 --config samples=sheet.tsv outdir=results methods=[affine,ants]
from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "rules/common.smk"
include: "rules/preprocess.smk"
include: "rules/register.smk"
include: "rules/metrics.smk"


rule all:
    input:
        rules.aggregate.output,
    default_target: True


onerror:
    write_partial_tables()
