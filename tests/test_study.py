"""The study as a deliverable (issue 17): paired statistics, MI(i;s), the overlay, the domain-shift
grid and methods: auto, each against a known answer."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cohortreg.study.domain_shift import domain_shift
from cohortreg.study.method_choice import choose_methods
from cohortreg.evaluation.mutual_info import mi_dice, mutual_information
from cohortreg.study.paired_stats import STATS_COLUMNS, holm, paired_stats
from cohortreg.evaluation.qc_picture import TITLE_PX, overlay, panel_shape, write_overlay


def table(values: dict[str, list[float]], cohort: str = "c", metric: str = "dice_mean") -> pd.DataFrame:
    rows = []
    for method, vals in values.items():
        for i, v in enumerate(vals):
            rows.append({"cohort": cohort, "moving": f"{i + 2:02d}", "fixed": "01", "method": method, metric: v,
                         "status": "ok"})
    return pd.DataFrame(rows)


def test_paired_statistics_match_scipy_on_a_hand_made_table():
    a = [0.71, 0.69, 0.74, 0.70, 0.73, 0.68, 0.72, 0.75]
    b = [0.70, 0.66, 0.70, 0.71, 0.69, 0.65, 0.70, 0.71]
    c = [0.60, 0.62, 0.61, 0.59, 0.63, 0.58, 0.60, 0.64]
    pairs = table({"torch": a, "ants": b, "affine": c})
    pairs.loc[len(pairs)] = {"cohort": "c", "moving": "99", "fixed": "01", "method": "torch", "dice_mean": 0.9,
                             "status": "ok"}  # only torch finished this pair: left out of every comparison
    pairs.loc[len(pairs)] = {"cohort": "c", "moving": "98", "fixed": "01", "method": "ants", "dice_mean": np.nan,
                             "status": "failed"}
    out = paired_stats(pairs, ["torch", "ants", "affine"], metrics=["dice_mean"])
    assert list(out.columns) == STATS_COLUMNS
    assert out[["method_a", "method_b"]].values.tolist() == [["torch", "ants"], ["torch", "affine"], ["ants", "affine"]]
    row = out.iloc[0]
    d = np.subtract(a, b)
    assert row.n == 8 and row.mean_a == pytest.approx(np.mean(a)) and row.mean_b == pytest.approx(np.mean(b))
    assert row.mean_diff == pytest.approx(d.mean())
    assert row.p_ttest == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert row.p_wilcoxon == pytest.approx(stats.wilcoxon(a, b).pvalue)
    lo, hi = stats.t.interval(0.95, 7, loc=d.mean(), scale=stats.sem(d))
    assert (row.ci_low, row.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert row.effect_size == pytest.approx(d.mean() / d.std(ddof=1))
    p = [stats.wilcoxon(x, y).pvalue for x, y in ((a, b), (a, c), (b, c))]
    assert out.p_holm.tolist() == pytest.approx(holm(p).tolist())


def test_holm_on_a_known_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone: 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = holm([0.5, np.nan, 0.9])
    assert np.isnan(out[1]) and out[[0, 2]].tolist() == [1.0, 1.0]  # 0.5 x 2 = 1, then monotone: 0.9 -> 1


def test_identical_methods_give_no_p_value_rather_than_a_false_one():
    row = paired_stats(table({"a": [0.0] * 5, "b": [0.0] * 5}, metric="folding_frac"), metrics=["folding_frac"]).iloc[0]
    assert row.n == 5 and row.mean_diff == 0 and np.isnan(row.p_ttest) and np.isnan(row.p_wilcoxon)


def test_mi_of_an_image_that_is_a_function_of_its_labels_is_the_label_entropy():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, size=(30, 30, 30))
    image = np.array([10.0, 50.0, 20.0, 90.0, 70.0, 35.0])[labels]
    p = np.bincount(labels.ravel()) / labels.size
    entropy = float(-(p * np.log2(p)).sum())
    rec = mutual_information(image, labels, bins=64)
    assert rec["mi_bits"] == pytest.approx(entropy, abs=1e-9)
    assert rec["label_entropy_bits"] == pytest.approx(entropy) and rec["mi_fraction"] == pytest.approx(1.0)


def test_mi_of_independent_noise_is_about_zero_and_the_mask_counts():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, size=(40, 40, 40))
    noise = rng.normal(size=labels.shape)
    rec = mutual_information(noise, labels, bins=32)
    bias = 31 * 3 / (2 * labels.size * np.log(2))  # the plug-in estimate's expected upward bias
    assert rec["mi_bits"] < 3 * bias and rec["mi_bits"] < 0.005
    mask = np.zeros(labels.shape, bool)
    mask[:20] = True
    assert mutual_information(noise, labels, mask, 32)["n_voxels"] == mask.sum()
    with pytest.raises(ValueError, match="empty mask"):
        mutual_information(noise, labels, np.zeros(labels.shape), 32)


def test_mi_against_dice_correlates_per_subject():
    mi = pd.DataFrame({"cohort": "c", "subject": [f"{i:02d}" for i in range(2, 8)],
                       "mi_bits": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "status": "ok"})
    pairs = table({"torch": [0.60, 0.62, 0.65, 0.64, 0.70, 0.72]})
    row = mi_dice(mi, pairs).set_index("level").loc["within"]
    assert row.n == 6 and row.pearson_r == pytest.approx(stats.pearsonr(mi.mi_bits, pairs.dice_mean).statistic)
    assert row.spearman_rho == pytest.approx(stats.spearmanr(mi.mi_bits, pairs.dice_mean).statistic)


def test_mi_against_dice_pooled_over_two_cohorts_is_told_apart_from_within():
    """Two cohorts, no relation inside either, different MI and Dice: pooled |r| near 1, within about 0."""
    rng = np.random.default_rng(3)
    mis, pairs = [], []
    for cohort, mi0, dice0 in (("a", 0.2, 0.72), ("b", 1.0, 0.60)):
        m = pd.DataFrame({"cohort": cohort, "subject": [f"{i:02d}" for i in range(2, 22)],
                          "mi_bits": mi0 + rng.normal(0, 0.02, 20), "status": "ok"})
        p = table({"torch": list(dice0 + rng.normal(0, 0.01, 20))}, cohort=cohort)
        mis.append(m)
        pairs.append(p)
    out = mi_dice(pd.concat(mis), pd.concat(pairs)).set_index(["level", "cohort"])
    assert out.loc[("pooled", ""), "pearson_r"] < -0.95
    assert abs(out.loc[("within", "a"), "pearson_r"]) < 0.6 and abs(out.loc[("within", "b"), "pearson_r"]) < 0.6
    assert np.isnan(out.loc[("cohort", ""), "pearson_r"])  # two cohort means: no correlation to state


def test_overlay_png_has_the_expected_size_and_is_not_blank(tmp_path):
    import nibabel as nib
    from PIL import Image

    rng = np.random.default_rng(2)
    shape = (40, 48, 36)
    zz = np.indices(shape)
    brain = np.exp(-(((zz - np.array(shape)[:, None, None, None] / 2) ** 2).sum(0)) / 200.0) * 1000
    labels = (zz[0] // 10 + 1) * (brain > 100)
    files = {}
    for name, arr in (("fixed", brain), ("warped", np.roll(brain, 2, 0) + rng.normal(0, 5, shape)),
                      ("labels", labels.astype(np.int16)), ("mask", (brain > 100).astype(np.uint8))):
        files[name] = str(tmp_path / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(arr, np.diag([2.0, 2.0, 2.0, 1.0])), files[name])
    out = str(tmp_path / "qc.png")
    arrays = [np.asarray(nib.load(files[k]).dataobj) for k in ("fixed", "warped", "labels", "mask")]
    assert write_overlay(out, *arrays, "c 02 -> 01") == \
        panel_shape(shape, 2) == (2 * 48 + TITLE_PX, 2 * (48 + 2 * 40))
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape[:2] == panel_shape(shape, 2)
    body = img[TITLE_PX:]
    assert body.std() > 20 and (body > 0).mean() > 0.2                 # not blank
    colour = (np.ptp(body.astype(int), axis=2) > 60).mean()
    assert 0.005 < colour < 0.3                                          # label contours drawn, not everywhere
    assert (img[:TITLE_PX] > 128).any()                                  # the title line is written
    flat = overlay(np.zeros(shape), np.zeros(shape), np.zeros(shape, int), np.zeros(shape))
    assert flat.shape[:2] == panel_shape(shape, 2) and flat.max() == 0   # an empty input gives a black picture


def test_domain_shift_grid_puts_the_classical_figure_of_the_same_pairs_beside():
    rows = []
    for cohort in ("a", "b"):
        for mov in ("02", "03", "04"):
            rows.append({"cohort": cohort, "moving": mov, "fixed": "01", "method": "torch", "dice_mean": 0.70,
                         "status": "ok", "model": ""})
            if mov != "04":  # the learned method finished two of the three pairs
                rows.append({"cohort": cohort, "moving": mov, "fixed": "01", "method": "vxm", "status": "ok",
                             "dice_mean": 0.72 if cohort == "a" else 0.50, "model": "vxm (a)"})
    rows[-3]["dice_mean"] = 0.60  # torch on b/03
    rows[-1]["dice_mean"] = 0.10  # torch on b/04, which the learned method did not finish: not in its reference
    out = domain_shift(pd.DataFrame(rows)).set_index("test_cohort")
    assert out.loc["a", "in_domain"] and not out.loc["b", "in_domain"]
    assert out.loc["a", "train_cohorts"] == "a" and out.loc["a", "model"] == "vxm" and out.loc["b", "n"] == 2
    assert out.loc["a", "dice_gap"] == pytest.approx(0.02)
    assert out.loc["b", "reference_dice_mean"] == pytest.approx(0.65) and out.loc["b", "dice_gap"] == pytest.approx(-0.15)
    assert domain_shift(table({"torch": [0.7]}).assign(model="")).empty


def sheet(n_train: int, cohort: str = "oasis", labels: bool = True) -> pd.DataFrame:
    rows = [{"cohort": cohort, "subject": f"t{i}", "t1": "x", "labels": "y" if labels else "", "split": "test"}
            for i in range(5)]
    rows += [{"cohort": cohort, "subject": f"r{i}", "t1": "x", "labels": "y" if labels else "", "split": "train"}
             for i in range(n_train)]
    return pd.DataFrame(rows)


def test_methods_auto_picks_classical_without_labelled_training_subjects_and_says_why():
    choice = choose_methods(sheet(30, labels=False), ["oasis"], {"min_labelled_train": 20}, {"steps": 10})
    assert choice.methods == ["affine", "torch"] and choice.method_params == {}
    assert "oasis: 0 labelled training subjects (fewer than 20)" in choice.reasoning
    assert "classical only" in choice.reasoning and "Jena et al." in choice.reasoning


def test_methods_auto_adds_weak_learned_io_with_enough_labelled_subjects_of_the_test_cohort(tmp_path):
    s = pd.concat([sheet(25, "oasis"), sheet(3, "lpba40")])
    choice = choose_methods(s, ["oasis", "lpba40"], {"min_labelled_train": 20}, {"steps": 10, "engine": "learned"})
    assert choice.methods == ["affine", "torch", "auto_oasis", "auto_oasis_io"]
    assert choice.method_params["auto_oasis"] == {"steps": 10, "engine": "learned", "supervision": "weak",
                                                  "train_cohorts": ["oasis"]}
    assert choice.method_params["auto_oasis_io"] == {"engine": "learned_io", "model": "auto_oasis"}
    assert "lpba40: 3 labelled training subjects" in choice.reasoning
    mi = tmp_path / "mi.tsv"  # an earlier run measured that oasis' intensities carry its labels: classical
    mi.write_text("cohort\tsubject\tmi_fraction\tstatus\noasis\t01\t0.8\tok\n")
    gated = choose_methods(s, ["oasis"], {"min_labelled_train": 20, "max_mi_fraction": 0.5}, {}, str(mi))
    assert gated.methods == ["affine", "torch"] and "80% of its label entropy" in gated.reasoning


@pytest.mark.workflow
def test_methods_auto_in_the_workflow_plans_classical_and_logs_why(phantom_cohort):
    from tests.conftest import planned_jobs, run_snakemake

    d = phantom_cohort
    r = run_snakemake("-n", "--cores", "1", "--config", f"samples={d / 'samples.tsv'}", f"outdir={d / 'out'}",
                      "methods=auto", cwd=d)
    assert r.returncode == 0, r.stderr[-3000:]
    log = r.stdout + r.stderr
    assert "methods: auto" in log and "ph: 1 labelled training subjects (fewer than 20)" in log, log[-3000:]
    methods = {w["method"] for rule, w in planned_jobs(log) if rule == "register_method"}
    assert methods == {"affine", "torch"}
