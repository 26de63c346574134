"""Snakemake adapter: the study design's paragraph on how the methods were chosen, for the report."""
smk = snakemake  # noqa: F821
with open(smk.output[0], "w") as fh:
    fh.write(smk.params.text + "\n")
