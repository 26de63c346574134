"""Snakemake adapter: metrics and QC of one registered pair (cohortreg.evaluation.pair.evaluate_pair)."""
from cohortreg.jobs import job
from cohortreg.evaluation.pair import evaluate_pair

smk = snakemake  # noqa: F821
with job(smk, "metrics") as log:
    w, i = smk.wildcards, smk.input
    rec = evaluate_pair(i.fixed_labels, i.moving_labels, i.warped_labels, i.fixed_mask, i.manifest, smk.output.json,
                        smk.output.labels, {"cohort": w.cohort, "moving": w.moving, "fixed": w.fixed, "method": w.method},
                        i.fixed_brain, i.warped, (i.moving_qc, i.fixed_qc), smk.params.qc,
                        smk.output.picture)
    log.info("dice_mean=%.4f hd95=%.2f folding=%.2e lncc=%.3f qc=%s %s", rec["dice_mean"], rec["hd95"],
             rec["folding_frac"], rec["lncc"], rec["qc"], rec["qc_reason"])
