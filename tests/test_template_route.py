"""The template route (design: template): the template's labels in every registered subject's own space, its
log-Jacobian map in template space, their rows beside the atlas route's, and on real scans a study whose
held-out subject is labelled through the template, with the reruns the README documents."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cohortreg.labelling.plan import LabellingSettings, TemplateRoute
from cohortreg.labelling.tables import accuracy_table
from cohortreg.labelling.template_route import log_jacobian
from cohortreg.labelling.volumes import ACCURACY_COLUMNS
from cohortreg.paths import Layout
from cohortreg.sheet.samples import SheetError
from tests.conftest import docutils_problems, needs_shared_data, planned_jobs, run_snakemake

L = Layout("OUT")


def _affine_mat(path, scale):
    import ants

    tx = ants.create_ants_transform(transform_type="AffineTransform", dimension=3,
                                    matrix=np.diag([scale] * 3), translation=(1.0, -2.0, 0.5))
    ants.write_transform(tx, str(path))
    return str(path)


def test_the_log_jacobian_is_the_affines_and_the_warps_log_volume_change(tmp_path):
    grid = np.diag([2.0, 2.0, 2.0, 1.0])
    template = tmp_path / "tpl.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((12, 10, 8), np.float32), grid), template)
    mat = _affine_mat(tmp_path / "affine.mat", 1.1)
    # affine only: log det A everywhere, on the template's grid
    img, side = log_jacobian({"forward": [mat], "warp": None}, str(template))
    assert img.shape == (12, 10, 8) and np.allclose(img.affine, grid)
    assert np.allclose(img.get_fdata(), 3 * np.log(1.1), atol=1e-5) and side["AffineLogJacobian"] == pytest.approx(3 * np.log(1.1))
    # a warp stretching x by 20 % (u_x = 0.2 x in LPS mm): log 1.2 more, the affine's share unchanged
    x_lps = -(np.arange(12) * 2.0)  # the grid's x in LPS mm (RAS x flipped)
    u = np.zeros((12, 10, 8, 1, 3), np.float32)
    u[..., 0, 0] = (0.2 * x_lps)[:, None, None]
    warp = tmp_path / "warp.nii.gz"
    w = nib.Nifti1Image(u, grid)
    w.header.set_intent("vector")
    nib.save(w, warp)
    img, side = log_jacobian({"forward": [str(warp), mat], "warp": str(warp)}, str(template))
    assert np.allclose(img.get_fdata(), np.log(1.2) + 3 * np.log(1.1), atol=1e-4) and side["FoldedVoxels"] == 0
    # a folding warp (u_x = -2 x): NaN where det <= 0, counted
    u[..., 0, 0] = (-2.0 * x_lps)[:, None, None]
    nib.save(nib.Nifti1Image(u, grid), warp)
    img, side = log_jacobian({"forward": [str(warp), mat], "warp": str(warp)}, str(template))
    assert np.isnan(img.get_fdata()).all() and side["FoldedVoxels"] == 12 * 10 * 8


def test_the_route_is_planned_only_for_a_template_design_with_a_method_of_the_study():
    s = LabellingSettings.from_config({})
    args = ([("lpba40", "S04"), ("ixi", "I1")], "ci", {("lpba40", "S01")}, ["lpba40", "oasis"], L)
    assert TemplateRoute.build("reference", s, ["torch"], *args) is None
    r = TemplateRoute.build("template", s, ["ants", "torch"], *args)
    assert r.method == "torch" and r.fixed == "tpl-ci" and r.protocols == {"lpba40": "lpba40", "oasis": "oasis"}
    assert r.jobs() == [("lpba40", "S04", "lpba40"), ("lpba40", "S04", "oasis"), ("ixi", "I1", "lpba40"),
                        ("ixi", "I1", "oasis")]
    assert not r.held_out("lpba40", "S01") and r.held_out("lpba40", "S04")
    # only the subject's own protocol measures it; its files are named by protocol, on its own tree
    assert r.manual_labels("lpba40", "S04", "l.nii.gz") == {"lpba40": "l.nii.gz"} and r.manual_labels("ixi", "I1", "") == {}
    out = r.outputs("ixi", "I1")
    assert out["logjac"] == "OUT/ixi/sub-I1/anat/sub-I1_space-ci_desc-logjac_jacobian.nii.gz"
    assert out["protocols"]["oasis"]["dseg"] == "OUT/ixi/sub-I1/anat/sub-I1_atlas-oasis_desc-template_dseg.nii.gz"
    # labelling off: the study's first method; labelling.cohorts limits the protocols
    assert TemplateRoute.build("template", s, ["ants"], *args).method == "ants"
    only = TemplateRoute.build("template", LabellingSettings.from_config({"cohorts": ["oasis"]}), ["torch"], *args)
    assert list(only.protocols) == ["oasis"]
    with pytest.raises(SheetError, match="labelling.method: 'torch' is not one of the study's methods"):
        TemplateRoute.build("template", LabellingSettings.from_config({"atlases": 3}), ["ants"], *args)


def test_the_summary_counts_held_out_subjects_per_route_and_reads_older_files(tmp_path):
    def write(name, rows, columns=ACCURACY_COLUMNS):
        pd.DataFrame(rows, columns=columns).to_csv(tmp_path / name, sep="\t", index=False)
        return str(tmp_path / name)

    base = {"cohort": "c", "protocol": "c", "label": "1", "volume_ml": 1.0, "manual_ml": 1.0, "volume_error_pct": 0.0}
    files = [write("a.tsv", [{**base, "subject": "A", "dice": 0.8, "route": "template", "held_out": True}]),
             write("b.tsv", [{**base, "subject": "B", "dice": 0.99, "route": "template", "held_out": False}]),
             write("old.tsv", [{**base, "subject": "C", "dice": 0.7}], ACCURACY_COLUMNS[:-2])]  # before the route
    table = accuracy_table(files)
    summary = table[table.subject == "ALL"].set_index("route")
    assert summary.loc["template", "dice"] == pytest.approx(0.8)  # B's own labels voted on the template's
    assert summary.loc["atlases", "dice"] == pytest.approx(0.7)
    assert set(table[table.subject == "B"].held_out) == {False}


TPL_CONFIG = """preprocess: {spacing: 4.0}
affine: {engine: torch}
template: {name: ci, iterations: 1, method: torch}
method_params: {torch: {preset: fast, device: cpu}}
design: template
methods: [torch]
labelling: {atlases: 2}
"""


@needs_shared_data
@pytest.mark.realdata
@pytest.mark.workflow
def test_a_held_out_subject_gets_the_templates_labels_on_its_grid_and_an_appended_one_reruns_nothing_else(tmp_path):
    from cohortreg.sheet.datasets import write_sheet

    sheet = write_sheet(tmp_path / "samples.tsv", {"lpba40": ["S01", "S02", "S03", "S04"]},
                        split=lambda c, s: "test" if s == "S04" else "train")
    out = tmp_path / "out"
    (tmp_path / "tpl.yaml").write_text(TPL_CONFIG)
    args = ["--cores", "2", "--configfile", str(tmp_path / "tpl.yaml"), "--config", f"samples={sheet}", f"outdir={out}"]
    r = run_snakemake(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    anat = out / "lpba40" / "sub-S04" / "anat"
    raw = nib.load(sheet.read_text().splitlines()[4].split("\t")[2])
    dseg = nib.load(anat / "sub-S04_atlas-lpba40_desc-template_dseg.nii.gz")
    assert dseg.shape == raw.shape and np.allclose(dseg.affine, raw.affine)  # the subject's own grid
    manual = np.asarray(nib.load(sheet.read_text().splitlines()[4].split("\t")[3]).dataobj)
    assert set(np.unique(dseg.dataobj)) <= set(np.unique(manual))  # only the protocol's labels
    agreement = nib.load(anat / "sub-S04_atlas-lpba40_desc-templateagreement_probseg.nii.gz").get_fdata()
    assert 0 <= agreement.min() and agreement.max() <= 1 and agreement[np.asarray(dseg.dataobj) > 0].mean() > 0.5
    # the log-Jacobian: on the template's grid, finite, not constant (a deformable method), its affine share said
    logjac = nib.load(anat / "sub-S04_space-ci_desc-logjac_jacobian.nii.gz")
    template = nib.load(out / "templates" / "ci" / "tpl-ci_T1w.nii.gz")
    assert logjac.shape == template.shape and np.allclose(logjac.affine, template.affine)
    values = logjac.get_fdata()
    assert np.isfinite(values).all() and values.std() > 0.01
    side = json.loads((anat / "sub-S04_space-ci_desc-logjac_jacobian.json").read_text())
    assert side["FoldedVoxels"] == 0 and abs(side["AffineLogJacobian"]) < 0.5
    # both routes in the tables; S04 held out from the template (a test subject), labelled from it well
    acc = pd.read_csv(out / "metrics" / "labelling.tsv", sep="\t", dtype={"subject": str})
    summary = acc[acc.subject == "ALL"].set_index("route")
    assert set(summary.index) == {"atlases", "template"} and summary.loc["template", "dice"] > 0.6, summary
    assert acc[(acc.route == "template") & (acc.subject == "S04")].held_out.all()
    volumes = pd.read_csv(out / "metrics" / "volumes.tsv", sep="\t", dtype={"subject": str})
    template_rows = volumes[volumes.route == "template"]
    assert set(template_rows.subject) == {"S04"} and (template_rows.status == "ok").all()
    assert set(volumes[volumes.route == "atlases"].subject) == {"S01", "S02", "S03", "S04"}
    # nothing reruns
    r = run_snakemake("-n", *args, cwd=tmp_path)
    assert planned_jobs(r.stdout + r.stderr) == [], r.stdout[-2000:]
    # the report: its "Regional volumes" section, every caption rendered
    r = run_snakemake(*args, "--report", tmp_path / "report.html", cwd=tmp_path)
    assert r.returncode == 0 and not docutils_problems(r.stdout + r.stderr), r.stderr[-3000:]
    assert "9. Regional volumes" in (tmp_path / "report.html").read_text(errors="replace")
    # a new unlabelled test subject: its own subject jobs, registration, atlas labelling and template route,
    # then the tables; the template and the others' results are kept
    rows = sheet.read_text().splitlines()
    t1 = rows[4].split("\t")[2].replace("S04", "S05")
    sheet.write_text("\n".join(rows + [f"lpba40\tS05\t{t1}\t\ttest"]) + "\n")
    r = run_snakemake("-n", *args, cwd=tmp_path)
    plan = planned_jobs(r.stdout + r.stderr)
    own = {rule for rule, w in plan if w.get("subject") == "S05" or w.get("moving") == "S05"}
    assert own == {"preprocess_subject", "skullstrip_subject", "affine_pair", "register_method", "metrics_pair",
                   "label_subject", "template_route"}, plan
    others = {rule for rule, w in plan if w.get("subject", w.get("moving")) not in ("S05", None)}
    assert not others, plan
    assert not any(rule.startswith("template_") and rule != "template_route" for rule, _ in plan), plan
