"""Label-free QC: implausible inputs, a mirrored header, cohort outliers, a non-zero background."""

import json
import os

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cohortreg.errors import InputError
from cohortreg.subject.preprocess import PreprocessSettings, preprocess_subject
from cohortreg.evaluation.qc import QCSettings, cohort_qc, lncc, pair_qc, raw_intensity_stats, robust_z, subject_qc
from cohortreg.subject.skullstrip import extract_brain
from cohortreg.subject.stages import preprocess_files, skullstrip_files
from tests.conftest import phantom, save

FAST = PreprocessSettings(spacing=None)
STRIP = {"method": "none", "template": "", "template_mask": "", "spacing": 2.0, "syn_iterations": [40, 20, 0],
         "threshold": 0.5, "refine_mm": 0.0}
PHANTOM_QC = {"brain_ml": [10, 3000]}  # a phantom is ~100 mL; real brains use the default range


def strip_subject(tmp_path, t1_path, qc=PHANTOM_QC, name="S1"):
    out = {k: str(tmp_path / f"{name}_{k}") for k in ("t1.nii.gz", "lab.nii.gz", "raw.json", "brain.nii.gz",
                                                         "mask.nii.gz", "qc.json")}
    preprocess_files(name, t1_path, "", {"spacing": None}, out["t1.nii.gz"], out["lab.nii.gz"], out["raw.json"])
    return skullstrip_files(name, out["t1.nii.gz"], STRIP, t1_path, "", out["brain.nii.gz"], out["mask.nii.gz"],
                            (0.5, 99.5), out["raw.json"], qc, out["qc.json"])


def test_a_good_subject_passes_and_an_int16_cast_one_fails(tmp_path):
    t1, _ = phantom()
    good = strip_subject(tmp_path, save(t1 * 1000, tmp_path / "good.nii.gz"))
    assert good["qc"] == "pass" and good["levels"] > 1000 and 50 < good["brain_ml"] < 150
    # float [0, 1] stored as int16: a handful of voxels and levels are left
    cast = save((t1 * 1.2).astype(np.int16), tmp_path / "cast.nii.gz")
    bad = strip_subject(tmp_path, cast, name="S2")
    assert bad["qc"] == "fail" and "distinct intensity levels" in bad["qc_reason"]
    with pytest.raises(InputError) as exc:  # qc.on_fail: error refuses it, naming subject and file
        strip_subject(tmp_path, cast, qc={**PHANTOM_QC, "on_fail": "error"}, name="S3")
    assert "subject 'S3'" in str(exc.value) and cast in str(exc.value) and "input QC failed" in str(exc.value)


def test_brain_volume_range_is_config():
    mask = np.ones((10, 10, 10), bool)  # 1000 voxels of 1 mL = 1000 mL
    raw = raw_intensity_stats(np.random.default_rng(0).random((10, 10, 10)))
    assert subject_qc(raw, mask, 1.0, QCSettings())["qc"] == "pass"
    assert "brain volume 1000 mL" in subject_qc(raw, mask, 1.0, QCSettings(brain_ml=(1200, 2000)))["qc_reason"]


def test_a_non_zero_background_is_shifted_not_mistaken_for_brain(tmp_path):
    t1, _ = phantom()
    ref = preprocess_subject("S1", save(t1 * 1000, tmp_path / "a.nii.gz"), settings=FAST)
    shifted = preprocess_subject("S1", save(t1 * 1000 - 500, tmp_path / "b.nii.gz"), settings=FAST)
    assert shifted.raw["background"] == -500
    np.testing.assert_allclose(shifted.t1.get_fdata(), ref.t1.get_fdata(), atol=1e-5)
    brain, mask = extract_brain("S1", shifted.t1, "none")
    assert np.asanyarray(mask.dataobj).sum() == np.count_nonzero(t1)
    # a border value that is not the darkest: refused with what was expected
    odd = np.where(t1 > 0, t1 * 1000 - 900, 0.0).astype(np.float32) + 100
    p = save(odd, tmp_path / "odd.nii.gz")
    with pytest.raises(InputError, match="expected the background at the scan's lowest value") as exc:
        preprocess_subject("S1", p, settings=FAST)
    assert "subject 'S1'" in str(exc.value) and p in str(exc.value)


def test_percentiles_reach_the_brain_image(tmp_path):
    t1, _ = phantom()
    img = preprocess_subject("S1", save(t1 * 1000, tmp_path / "a.nii.gz"), settings=FAST).t1
    b1, _ = extract_brain("S1", img, "none", percentiles=(0.5, 99.5))
    b2, _ = extract_brain("S1", img, "none", percentiles=(10, 90))
    inside = np.asanyarray(b1.dataobj) > 0
    assert np.mean(np.asanyarray(b2.dataobj)[inside] >= 1.0) > np.mean(np.asanyarray(b1.dataobj)[inside] >= 1.0) + 0.05


def test_lncc_is_high_for_the_same_image_and_low_for_noise():
    t1, lab = phantom()
    noise = np.random.default_rng(1).random(t1.shape).astype(np.float32)
    assert lncc(t1, t1, lab > 0) > 0.99 and lncc(t1, noise, lab > 0) < 0.2


def table(lnccs, handed=None):
    n = len(lnccs)
    df = pd.DataFrame({"cohort": "c", "moving": [f"{i:02d}" for i in range(1, n + 1)], "fixed": "00", "method": "torch",
                       "lncc": lnccs, "sdlogj": 0.3 + 0.01 * np.arange(n) % 0.03, "status": "ok", "qc": "pass",
                       "qc_reason": ""})
    h = {("c", "00"): 1, **{("c", m): 1 for m in df.moving}, **(handed or {})}
    return cohort_qc(df, h, QCSettings())


def test_cohort_outliers_and_a_mirrored_header_are_flagged_good_pairs_are_not():
    rng = np.random.default_rng(0)
    lnccs = list(0.89 + 0.005 * rng.standard_normal(10))
    out = table(lnccs)
    assert (out.qc == "pass").all()
    out = table(lnccs[:-1] + [0.70])  # one pair far below its cohort: fails, with the robust z
    assert out.qc.iloc[-1] == "fail" and "below its cohort" in out.qc_reason.iloc[-1] and (out.qc.iloc[:-1] == "pass").all()
    out = table(lnccs)
    out = cohort_qc(out.assign(sdlogj=[0.36] * 9 + [0.9]), {}, QCSettings())  # an irregular warp warns, never fails
    assert out.qc.iloc[-1] == "warn" and "warp irregularity" in out.qc_reason.iloc[-1]
    out = table(lnccs, handed={("c", "03"): -1})
    assert out.qc.iloc[2] == "fail" and "suspected left-right flip" in out.qc_reason.iloc[2]
    assert (out.drop(index=2).qc == "pass").all()


def test_pair_qc_carries_the_inputs_and_folding():
    qc, why = pair_qc([("moving", {"qc": "fail", "qc_reason": "brain volume 3 mL outside"}), ("fixed", {"qc": "pass"})],
                      0.0, QCSettings())
    assert qc == "fail" and why == "moving: brain volume 3 mL outside"
    qc, why = pair_qc([], 0.05, QCSettings())
    assert qc == "fail" and "folds" in why
    assert abs(robust_z(np.array([1.0, 1.0, 1.0, 1.0]))).max() == 0
    # a tight cohort: 0.02 below a median of 0.85 is no outlier; 0.27 below is
    z = robust_z(np.array([0.85, 0.851, 0.849, 0.852, 0.848, 0.83, 0.58]))
    assert abs(z[5]) < 3.5 and z[6] < -7


def test_sidecars_are_json(tmp_path):
    t1, _ = phantom()
    strip_subject(tmp_path, save(t1 * 1000, tmp_path / "good.nii.gz"))
    doc = json.loads((tmp_path / "S1_qc.json").read_text())
    assert doc["qc"] == "pass" and doc["handedness"] == 1 and isinstance(nib.load(tmp_path / "S1_mask.nii.gz"), nib.Nifti1Image)


def test_on_fail_error_fails_the_metrics_job_of_a_failed_pair(tmp_path):
    """evaluate_pair raises (so the pair's row says failed, with the reason) instead of writing a flagged row."""
    from cohortreg.evaluation.pair import evaluate_pair

    t1, lab = phantom()
    f = {k: save(v, tmp_path / f"{k}.nii.gz") for k, v in (("t1", t1), ("lab", lab), ("mask", (lab > 0).astype(np.uint8)))}
    (tmp_path / "transforms.json").write_text(json.dumps({"forward": [], "warp": None, "version": "v"}))
    bad = tmp_path / "bad_qc.json"
    bad.write_text(json.dumps({"qc": "fail", "qc_reason": "brain volume 3 mL outside", "handedness": 1}))
    args = (f["lab"], f["lab"], f["lab"], f["mask"], str(tmp_path / "transforms.json"), str(tmp_path / "m.json"),
            str(tmp_path / "l.tsv"), {"cohort": "c", "moving": "02", "fixed": "01", "method": "affine"}, f["t1"], f["t1"],
            (str(bad), str(bad)))
    rec = evaluate_pair(*args, {"on_fail": "mark"})
    assert rec["qc"] == "fail" and rec["lncc"] > 0.99 and rec["dice_mean"] == 1.0
    (tmp_path / "m.json").unlink()
    with pytest.raises(InputError, match="QC failed for 02 -> 01") as exc:
        evaluate_pair(*args, {"on_fail": "error"})
    assert "brain volume 3 mL" in str(exc.value) and not (tmp_path / "m.json").exists()


def test_the_mask_gallery_shows_flagged_subjects_and_the_extreme_masks(tmp_path):
    import json

    from cohortreg.evaluation.mask_gallery import mask_gallery
    from cohortreg.paths import Layout

    L = Layout(str(tmp_path / "out"))
    subjects = [("c", f"{i:02d}") for i in range(12)]
    for i, (c, s) in enumerate(subjects):
        t1 = np.zeros((16, 18, 14), np.float32)
        t1[3:13, 3:15, 2:12] = 1.0
        for pattern, data in ((L.preproc_t1, t1), (L.brain_mask, (t1 > 0).astype(np.uint8))):
            path = pattern.format(cohort=c, subject=s)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            nib.save(nib.Nifti1Image(data, np.eye(4)), path)
        verdict = {"brain_ml": 1000.0 + i, "qc": "fail" if i == 5 else "pass", "qc_reason": "brain volume" if i == 5 else ""}
        with open(L.subject_qc.format(cohort=c, subject=s), "w") as f:
            json.dump(verdict, f)
    names = sorted(os.path.basename(p) for p in mask_gallery(subjects + [("c", "gone")], L, str(tmp_path / "g"), 2))
    assert names == ["flagged-00_c_05.png", "largest-03_c_11.png", "largest-04_c_10.png", "smallest-01_c_00.png",
                     "smallest-02_c_01.png"]
