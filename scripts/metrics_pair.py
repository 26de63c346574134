"""Snakemake adapter: metrics of one registered pair (cohortreg.pair.evaluate_pair)."""
from cohortreg.jobs import job
from cohortreg.pair import evaluate_pair

smk = snakemake  # noqa: F821
with job(smk, "metrics") as log:
    w = smk.wildcards
    rec = evaluate_pair(smk.input.fixed_labels, smk.input.moving_labels, smk.input.warped_labels,
                        smk.input.fixed_mask, smk.input.manifest, smk.output.json, smk.output.labels,
                        {"cohort": w.cohort, "moving": w.moving, "fixed": w.fixed, "method": w.method})
    log.info("dice_mean=%.4f hd95=%.2f folding=%.2e", rec["dice_mean"], rec["hd95"], rec["folding_frac"])
