"""Snakemake adapter: brain extraction for one subject (cohortreg.skullstrip)."""
import nibabel as nib

from cohortreg.io import save_atomic
from cohortreg.jobs import job
from cohortreg.skullstrip import AtlasSettings, extract_brain, provided_mask

smk = snakemake  # noqa: F821
with job(smk, "skullstrip"):
    subject = smk.wildcards.subject
    t1 = nib.load(smk.input.t1)
    s = dict(smk.params.settings)
    method = s.pop("method")
    mask = provided_mask(subject, t1, smk.params.raw_t1, smk.params.mask) if method == "provided" else None
    brain, m = extract_brain(subject, t1, method, mask, AtlasSettings(**s), smk.params.mask)
    save_atomic(brain, smk.output.brain)
    save_atomic(m, smk.output.mask)
