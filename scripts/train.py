"""Snakemake adapter: train one learned model (cohortreg.learn.train.train_from_files)."""
from cohortreg.jobs import job
from cohortreg.learn.train import train_from_files
from cohortreg.upstream import record

smk = snakemake  # noqa: F821
with job(smk, "train") as log:
    p = smk.params
    doc = train_from_files(p.settings, p.pairs, p.val, p.out, p.describe)
    log.info("model %s: %d steps, best validation Dice %.4f at step %d (affine alone %.4f)", smk.output.model,
             doc["steps_done"], doc["best_val_dice"], doc["best_step"], doc["affine_val_dice"])
    record(smk.output.model, p.data)  # what it was trained on (rules/learn.smk: training_inputs)
