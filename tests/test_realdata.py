"""The real workflow on real scans from ../shared/data (skipped with a reason when it is absent)."""

import numpy as np
import nibabel as nib
import pandas as pd
import pytest

from cohortreg.sheet.datasets import SHARED_DATA, write_sheet
from cohortreg.jobs import pin_threads
from cohortreg.subject.preprocess import PreprocessSettings, preprocess_subject
from cohortreg.subject.skullstrip import AtlasSettings, extract_brain, mask_dice
from tests.conftest import docutils_problems, needs_shared_data, run_snakemake

pytestmark = [needs_shared_data, pytest.mark.realdata]


@pytest.mark.workflow
def test_lpba40_three_subjects_syn_and_torch_beat_affine(tmp_path):
    sheet = write_sheet(tmp_path / "samples.tsv", {"lpba40": 3})
    (tmp_path / "coarse.yaml").write_text("preprocess:\n  spacing: 3.0\n")
    r = run_snakemake("--cores", "2", "--configfile", tmp_path / "coarse.yaml", "--config", f"samples={sheet}",
                      f"outdir={tmp_path / 'out'}", "methods=[affine,ants,torch]", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    pairs = pd.read_csv(tmp_path / "out" / "metrics" / "pairs.tsv", sep="\t")
    assert len(pairs) == 6 and (pairs.status == "ok").all()
    dice = pairs.pivot(index="moving", columns="method", values="dice_mean")
    # LPBA40 is roughly aligned already (Dice ~0.56 before registration, README of the data).
    assert (dice["affine"] > 0.58).all(), dice
    assert (dice["ants"] > dice["affine"] + 0.02).all(), dice
    assert (dice["torch"] > dice["affine"] + 0.02).all(), dice
    assert (dice["torch"] >= dice["ants"] - 0.02).all(), dice  # issue 3: within 0.02 of ANTs or better
    assert (pairs.loc[pairs.method != "affine", "folding_frac"] < 1e-3).all()
    labels = pd.read_csv(tmp_path / "out" / "metrics" / "labels.tsv", sep="\t")
    assert labels.groupby(["moving", "method"]).size().min() >= 50  # 56 LPBA structures
    check_study_report(tmp_path, sheet, dice)


def check_study_report(tmp_path, sheet, dice):
    """Issue 17 on the same run: the study's tables, pictures and Snakemake's report."""
    out = tmp_path / "out"
    stats = pd.read_csv(out / "metrics" / "stats.tsv", sep="\t")
    row = stats.set_index(["metric", "method_a", "method_b"]).loc[("dice_mean", "affine", "torch")]
    assert row.n == 2 and row.mean_diff == pytest.approx((dice["affine"] - dice["torch"]).mean(), abs=1e-5)  # %.6g tables
    mi = pd.read_csv(out / "metrics" / "mi.tsv", sep="\t")
    assert len(mi) == 3 and (mi.status == "ok").all() and mi.mi_bits.between(0.1, mi.label_entropy_bits.min()).all()
    gallery = sorted(p.name for p in (out / "report" / "gallery").glob("*.png"))
    assert len(gallery) == 6 and gallery[0].startswith("worst-dice-01_lpba40_") and gallery[0].endswith("_affine.png")
    r = run_snakemake("--cores", "1", "--configfile", tmp_path / "coarse.yaml", "--config", f"samples={sheet}",
                      f"outdir={out}", "methods=[affine,ants,torch]", "--report", out / "report.html", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    html = (out / "report.html").read_text(errors="replace")
    assert not docutils_problems(r.stdout + r.stderr), docutils_problems(r.stdout + r.stderr)  # every caption renders
    for needle in ("CohortReg study report", "2. Paired statistics", "3a. QC: worst pairs", "3b. QC: every pair",
                   "4. MI(i;s) and Dice", "7. Settings and provenance", "sub-S02_space-S01_desc-overlay_T1w.png"):
        assert needle in html, needle


def test_atlas_skull_strip_on_candi_head():
    pin_threads(2, seed=42)
    colin = SHARED_DATA / "colin27"
    pre = preprocess_subject("sub-030", str(SHARED_DATA / "candi" / "sub-030_t1w.nii.gz"),
                             settings=PreprocessSettings(spacing=2.0))
    atlas = AtlasSettings(template=str(colin / "ch2.nii.gz"), template_mask=str(colin / "ch2bet.nii.gz"))
    _, mask = extract_brain("sub-030", pre.t1, "atlas", atlas=atlas)
    import ants

    from cohortreg.io import ants_to_nib, nib_to_ants

    aseg = nib.as_closest_canonical(nib.load(str(SHARED_DATA / "candi" / "sub-030_aseg.nii.gz")))
    ref = ants.resample_image_to_target(nib_to_ants(aseg), nib_to_ants(pre.t1), interp_type="nearestNeighbor")
    ref = np.asarray(ants_to_nib(ref).dataobj) > 0
    # The warped template hull scored 0.899 (it kept sulcal CSF, which the aseg region has not, and
    # cut the cerebellum); refined to tissue it scores 0.957 at native resolution with N4
    # (bench/results/skullstrip_candi.json) and 0.963 here (2 mm, no N4). Issue 2's aim: 0.93.
    assert mask_dice(np.asarray(mask.dataobj), ref) > 0.93
