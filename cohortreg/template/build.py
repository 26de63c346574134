"""Template building, one job function per step (rules/template.smk runs them):

- :func:`register_to_template`: one input to the current template (affine, then the configured
  deformable method), the warped brain and labels on the template grid;
- :func:`update_template`: one iteration's means and shape update -> the next template and that
  iteration's convergence row;
- :func:`finish_template`: the final template's labels (per cohort), brain mask, convergence table and
  figure, and ``template_description.json``.

Each step is its own job with its own files, so a killed build resumes at the subject and iteration
where it stopped. Iteration 0 registers every input affinely to the initial reference (the first input,
or a chosen subject or file, on a grid grown by ``pad_mm``); its update, with no warp, is the
affine-aligned weighted mean: the initial template.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import nibabel as nib
import numpy as np

from ..io import nib_to_ants, save_atomic, write_text_atomic
from ..transforms.files import read_affine_mat, read_field
from .labels import mean_dice, vote
from .shape import centroid_lps, field_norm, mean_affine, shape_update, weighted_mean


@dataclass(frozen=True)
class TemplateSettings:
    name: str = "study"
    cohorts: tuple[str, ...] = ()
    iterations: int = 4
    method: str = "torch"
    gradient_step: float = 0.25
    init: str = "mean"            # mean | a subject id (cohort/subject) | a NIfTI file
    weighting: str = "cohort"
    sharpen: bool = True
    pad_mm: float = 10.0
    update_steps: int = 4         # the scaled mean warp is applied this many times (ANTs: 4)
    affine_update: str = "no_rigid"  # no_rigid (ANTs -y 0) | full (-y 1, the default of ANTs' script)
    stop_below_mm: float | None = None  # early stop on the mean shape update (is_copy, copy_registration)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Input:
    """One subject's result of a round: what update_template and finish_template read."""

    cohort: str
    subject: str
    manifest: str                 # transforms.json of the registration to the round's template
    warped: str                   # brain on the template grid
    warped_labels: str = ""       # labels on the template grid ('' = none)


def settings_from(config_template: dict[str, Any]) -> TemplateSettings:
    """config['template'] as TemplateSettings (the keys a build reads; lists as tuples)."""
    names = {f.name for f in fields(TemplateSettings)} - {"extra"}
    return TemplateSettings(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in config_template.items() if k in names})


def round_inputs(inputs: Sequence[Sequence[str]], files: Sequence[Sequence[str]], batches: Sequence[str] = (),
                 iteration: int = 0) -> list[Input]:
    """A round's inputs: (cohort, subject) each, and the round's (manifests, warped, labels) file lists in the
    same order. A batched round's manifests (batches) must list every input as registered (batch.check_round)."""
    if batches:
        from .batch import check_round

        check_round(list(batches), f"{iteration:02d}")
    manifests, warped, labels = files
    return [Input(c, s, m, w, lab) for (c, s), m, w, lab in zip(inputs, manifests, warped, labels)]


def padded_grid(reference: nib.Nifti1Image, pad_mm: float) -> nib.Nifti1Image:
    """The reference's grid grown by pad_mm on every side (a brain of another cohort may be larger),
    with the reference's data in it."""
    zooms = np.asarray(reference.header.get_zooms()[:3], float)
    pad = np.ceil(float(pad_mm) / zooms).astype(int)
    data = np.pad(np.asarray(reference.dataobj, dtype=np.float32), [(p, p) for p in pad])
    aff = reference.affine.copy()
    aff[:3, 3] = reference.affine[:3, :3] @ (-pad) + reference.affine[:3, 3]
    return nib.Nifti1Image(data, aff)


def initial_reference(path: str, pad_mm: float, out: str) -> None:
    """Iteration 0's target: the reference brain on its padded grid, intensities scaled to mean 1."""
    ref = padded_grid(nib.load(path), pad_mm)
    data = np.asarray(ref.dataobj, dtype=np.float32)
    save_atomic(nib.Nifti1Image(data / max(float(data[data > 0].mean()), 1e-12), ref.affine), out)


def register_to_template(template: str, brain: str, labels: str, method: str, params: dict[str, Any],
                         affine_settings: dict[str, Any], out_manifest: str, out_warped: str, out_labels: str,
                         threads: int = 1, affine_only: bool = False) -> dict[str, Any]:
    """One input to the current template, as a pair of the workflow (registration.pairs.register_pair): the affine
    stage's .mat (template -> subject), then the method (the ``affine`` method alone in round 0), the
    warped brain and labels on the template grid, and transforms.json. Without labels the warped
    labels are an empty map (the rule's output)."""
    return register_many_to_template(template, [(brain, labels, out_manifest, out_warped, out_labels)], method, params,
                                     affine_settings, threads, affine_only)[0]


def register_many_to_template(template: str, jobs: Sequence[tuple[str, str, str, str, str]], method: str,
                              params: dict[str, Any], affine_settings: dict[str, Any], threads: int = 1,
                              affine_only: bool = False) -> list[dict[str, Any]]:
    """Several inputs to the same template in one call: every affine first, then the method's
    register_many over all of them (all share the template's grid, so torch stacks them on a GPU).
    jobs: (brain, labels or '', out_manifest, out_warped, out_labels) each."""
    from contextlib import ExitStack

    from ..registration.pairs import register_pairs
    from ..subject.stages import affine_files

    with ExitStack() as stack:
        pairs = []
        for brain, labels, manifest, warped, out_labels in jobs:
            outdir = Path(manifest).parent
            outdir.mkdir(parents=True, exist_ok=True)
            tmp = stack.enter_context(tempfile.TemporaryDirectory(dir=outdir))  # the method stages it as affine.mat
            mat = str(Path(tmp) / "affine.mat")
            affine_files(template, brain, affine_settings, mat)
            pairs.append((template, brain, labels, mat, manifest, warped, out_labels))
        extra = register_pairs("affine" if affine_only else method, {} if affine_only else params, pairs, threads)
    unlabelled = [out_labels for _, labels, _, _, out_labels in jobs if not labels]
    if unlabelled:
        tpl = nib.load(template)
        for out_labels in unlabelled:
            save_atomic(nib.Nifti1Image(np.zeros(tpl.shape[:3], np.int32), tpl.affine), out_labels)
    return extra


def _normalised(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(image / its mean over its brain, brain mask): each input, whatever its cohort's intensity
    scale, contributes on the same scale (ANTs' 'mean of normalised images')."""
    data = np.asarray(nib.load(path).dataobj, dtype=np.float32)
    mask = data > 1e-3 * float(data.max() or 1.0)
    return data / max(float(data[mask].mean()) if mask.any() else 1.0, 1e-12), mask


def _sharpen(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """ANTs' Laplacian sharpening (ImageMath Sharpen), as the template script's default does."""
    from ..lazy_ants import import_ants

    img = nib_to_ants(nib.Nifti1Image(data.astype(np.float32), affine))
    return import_ants().iMath(img, "Sharpen").numpy().astype(np.float32)


def round_mean(inputs: Sequence[Input], weights: Sequence[float], affine: np.ndarray, sharpen: bool
               ) -> tuple[np.ndarray, np.ndarray]:
    """(weighted mean of a round's normalised warped brains, Laplacian-sharpened if asked; the brain
    mask where at least half the weight has brain)."""
    arrays, masks = zip(*(_normalised(i.warped) for i in inputs))
    mean = weighted_mean(arrays, weights).astype(np.float32)
    if sharpen:
        mean = np.where(mean > 0, _sharpen(mean, affine), 0).astype(np.float32)
    return mean, weighted_mean(masks, weights) >= 0.5


def sharpness(data: np.ndarray, mask: np.ndarray) -> float:
    """Mean gradient magnitude over mean intensity inside the mask: higher = crisper template."""
    if not mask.any():
        return float("nan")
    g = np.sqrt(sum(d ** 2 for d in np.gradient(data.astype(np.float64))))
    return float(g[mask].mean() / max(float(data[mask].mean()), 1e-12))


def cohort_votes(inputs: Sequence[Input], weights: Sequence[float]):
    """Per cohort with labels: (cohort, its warped label maps, their weighted vote, labels, probabilities)."""
    for cohort in sorted({i.cohort for i in inputs}):
        mine = [(i, w) for i, w in zip(inputs, weights) if i.cohort == cohort and i.warped_labels]
        maps = [np.asarray(nib.load(i.warped_labels).dataobj).astype(np.int64) for i, _ in mine]
        if maps and any(m.any() for m in maps):
            yield (cohort, maps, *vote(maps, [w for _, w in mine]))


def cohort_label_dice(inputs: Sequence[Input], weights: Sequence[float]) -> dict[str, float]:
    """Per cohort with labels: the mean Dice of its warped label maps to their weighted vote."""
    return {c: float(np.mean([mean_dice(m, consensus) for m in maps]))
            for c, maps, consensus, _, _ in cohort_votes(inputs, weights)}


def read_row(row: str) -> dict[str, Any]:
    """An iteration's update.json ({} for none): ``converged`` marks the final template of an early
    stop (template.stop_below_mm), ``copy_of`` an iteration that copies it."""
    return json.loads(Path(row).read_text()) if row else {}


def is_copy(row: str) -> bool:
    """Whether the iteration of this update.json is a copy of the one before (an early stop's later iterations)."""
    return read_row(row).get("copy_of") is not None


def copy_registration(previous_manifest: str, out_manifest: str, out_warped: str, out_labels: str) -> None:
    """An input's registration to a template copied from its registration to the identical template of
    the iteration before: every file of that folder (the transforms its manifest lists, relative to it),
    the manifest last, so that a half-copied folder is never taken for a finished one."""
    import shutil

    src, dst = Path(previous_manifest).parent, Path(out_manifest).parent
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.is_file() and f.name != Path(previous_manifest).name:
            shutil.copyfile(f, dst / f.name)
    for made in (out_warped, out_labels):
        if not Path(made).exists():
            raise FileNotFoundError(f"{previous_manifest}: the earlier registration has no {Path(made).name}")
    write_text_atomic(Path(previous_manifest).read_text(), out_manifest)


def update_template(template: str, inputs: Sequence[Input], weights: Sequence[float], settings: TemplateSettings,
                    iteration: int, out_template: str, out_row: str, out_png: str = "",
                    previous_row: str = "") -> dict[str, Any]:
    """The next template from round ``iteration`` (the inputs registered to iteration ``iteration``'s
    template): the weighted mean of the normalised warped brains (sharpened), then the shape update
    through the mean affine and the mean warp (none in the affine-only round 0). Its convergence row
    describes that round: its labels' agreement, its mean warp, and the update it led to.

    With ``settings.stop_below_mm``: a deformable update that moves the template less than that (mean,
    mm) makes the final template (``converged`` in its row); after it (``previous_row`` converged) the
    template is copied as it is, with a row that says which iteration it copies (``copy_of``)."""
    tpl = nib.load(template)
    prev = read_row(previous_row) if settings.stop_below_mm is not None else {}
    if prev.get("converged"):
        data = np.asarray(tpl.dataobj, dtype=np.float32)
        save_atomic(nib.Nifti1Image(data, tpl.affine), out_template)
        row = {"iteration": iteration, "inputs": len(inputs), "converged": True,
               "copy_of": prev.get("copy_of", prev["iteration"] + 1)}
        write_text_atomic(json.dumps(row, indent=1) + "\n", out_row)
        if out_png:
            slices_png(data, f"tpl-{settings.name} iteration {iteration + 1} (= {row['copy_of']}: stopped)", out_png)
        return row
    mean, mask = round_mean(inputs, weights, tpl.affine, settings.sharpen)
    docs = [json.loads(Path(i.manifest).read_text()) for i in inputs]
    mats = [read_affine_mat(str(Path(i.manifest).parent / next(p for p in d["forward"] if p.endswith(".mat"))))
            for i, d in zip(inputs, docs)]
    warps = [str(Path(i.manifest).parent / d["warp"]) for i, d in zip(inputs, docs) if d.get("warp")]
    field = weighted_mean([read_field(w) for w in warps], weights) if len(warps) == len(inputs) else None
    centre = centroid_lps(tpl, np.asarray(tpl.dataobj))
    affine = mean_affine(mats, weights, centre, rigid=settings.affine_update == "full")
    new, disp = shape_update(nib.Nifti1Image(mean, tpl.affine), affine, field,
                             settings.gradient_step if field is not None else 0.0, settings.update_steps)
    save_atomic(nib.Nifti1Image(new, tpl.affine), out_template)
    warp_norm = field_norm(field)[mask] if field is not None and mask.any() else np.zeros(1, np.float32)
    row = {"iteration": iteration, "inputs": len(inputs), "update_mean_mm": float(disp[mask].mean()) if mask.any() else 0.0,
           "update_max_mm": float(disp[mask].max()) if mask.any() else 0.0, "warp_mean_mm": float(warp_norm.mean()),
           "warp_max_mm": float(warp_norm.max()), "sharpness": sharpness(mean, mask),
           **{f"dice_{c}": d for c, d in cohort_label_dice(inputs, weights).items()}}
    if settings.stop_below_mm is not None:
        row["converged"] = field is not None and row["update_mean_mm"] < float(settings.stop_below_mm)
    write_text_atomic(json.dumps(row, indent=1) + "\n", out_row)
    if out_png:
        slices_png(new, f"tpl-{settings.name} iteration {iteration + 1}", out_png)
    return row


def reference_as_initial(template: str, settings: TemplateSettings, out_template: str, out_row: str, out_png: str) -> None:
    """template.init a subject or a file: that reference is the initial template, as it is."""
    img = nib.load(template)
    save_atomic(nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine), out_template)
    write_text_atomic(json.dumps({"iteration": 0, "inputs": 0, "note": f"template.init: {settings.init}"}) + "\n", out_row)
    slices_png(np.asarray(img.dataobj, dtype=np.float32), f"tpl-{settings.name} initial ({settings.init})", out_png)


def finish_template(template: str, inputs: Sequence[Input], weights: Sequence[float], settings: TemplateSettings,
                    rows: Sequence[str], outputs: dict[str, str], description: dict[str, Any]) -> None:
    """The deliverables of a built template (TemplateFlow-style names, see Layout.template_file)."""
    tpl = nib.load(template)
    data = np.asarray(tpl.dataobj, dtype=np.float32)
    mean, mask = round_mean(inputs, weights, tpl.affine, settings.sharpen)
    save_atomic(nib.Nifti1Image(data, tpl.affine), outputs["T1w"])
    save_atomic(nib.Nifti1Image(mask.astype(np.uint8), tpl.affine), outputs["mask"])
    # the last round's row, measured as every update measures its round: on the sharpened mean
    final = {"iteration": len(rows), "inputs": len(inputs), "sharpness": sharpness(mean, mask)}
    labelled = {}
    for cohort, maps, consensus, labels, prob in cohort_votes(inputs, weights):
        final[f"dice_{cohort}"] = float(np.mean([mean_dice(m, consensus) for m in maps]))
        dseg, probseg = outputs["dseg"].format(cohort=cohort), outputs["probseg"].format(cohort=cohort)
        save_atomic(nib.Nifti1Image(consensus.astype(np.int32), tpl.affine), dseg)
        img = nib.Nifti1Image(prob, tpl.affine)
        img.header.set_slope_inter(1.0 / 255.0, 0.0)  # readers see probabilities in [0, 1]
        save_atomic(img, probseg)
        write_text_atomic(json.dumps({"labels": [int(v) for v in labels], "subjects": len(maps)}, indent=1) + "\n",
                          probseg.replace(".nii.gz", ".json"))
        labelled[cohort] = {"dseg": Path(dseg).name, "probseg": Path(probseg).name, "labels": len(labels) - 1}
    table = [json.loads(Path(r).read_text()) for r in rows] + [final]
    import pandas as pd

    df = pd.DataFrame(table)
    write_text_atomic(df.to_csv(sep="\t", index=False, float_format="%.6g"), outputs["convergence"])
    convergence_png(df, settings.name, outputs["convergence_png"])
    doc = {**description, "name": f"tpl-{settings.name}", "labels": labelled,
           "inputs": [{"cohort": i.cohort, "subject": i.subject, "weight": w} for i, w in zip(inputs, weights)]}
    write_text_atomic(json.dumps(doc, indent=1, default=str) + "\n", outputs["description"])


def template_as_subject(name: str, t1: str, mask: str, labels: str, qc: dict[str, Any], outputs: dict[str, str]) -> None:
    """A built template's files under the names of a subject's (design: template): its T1w is the
    brain, its cohort labels the labels, and its input QC is computed like any subject's."""
    from ..evaluation.qc import qc_settings, raw_intensity_stats, subject_qc

    img, m = nib.load(t1), nib.load(mask)
    data = np.asarray(img.dataobj, dtype=np.float32)
    lab = (np.asarray(nib.load(labels).dataobj).astype(np.int32) if labels else np.zeros(data.shape, np.int32))
    for key, out in (("t1", data), ("brain", data)):
        save_atomic(nib.Nifti1Image(out, img.affine), outputs[key])
    save_atomic(nib.Nifti1Image(lab, img.affine), outputs["labels"])
    save_atomic(nib.Nifti1Image(np.asarray(m.dataobj).astype(np.uint8), img.affine), outputs["mask"])
    raw = {**raw_intensity_stats(data), "handedness": 0, "template": name}  # no scan header to judge
    write_text_atomic(json.dumps(raw, indent=1, default=float) + "\n", outputs["raw_json"])
    voxel_ml = float(np.prod(img.header.get_zooms()[:3])) / 1000.0
    verdict = subject_qc(raw, np.asarray(m.dataobj), voxel_ml, qc_settings(qc))
    write_text_atomic(json.dumps(verdict, indent=1) + "\n", outputs["qc"])


def slices_png(data: np.ndarray, title: str, out: str) -> None:
    """Three orthogonal mid-slices (RAS voxel axes) in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import write_atomic

    c = [s // 2 for s in data.shape]
    views = [data[c[0]].T, data[:, c[1]].T, data[:, :, c[2]].T]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    vmax = float(np.percentile(data[data > 0], 99.5)) if (data > 0).any() else 1.0
    for ax, v in zip(axes, views):
        ax.imshow(v, cmap="gray", origin="lower", vmin=0, vmax=vmax)
        ax.axis("off")
    fig.suptitle(title)
    write_atomic(out, lambda tmp: fig.savefig(tmp, dpi=80, bbox_inches="tight"), ".png")
    plt.close(fig)


def convergence_png(df: Any, name: str, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import write_atomic

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    upd = df.dropna(subset=["warp_mean_mm"]) if "warp_mean_mm" in df else df.iloc[0:0]
    axes[0].plot(upd.iteration, upd.warp_mean_mm, "o-", label="mean warp to template (mm)")
    axes[0].plot(upd.iteration, upd.update_mean_mm, "s--", label="mean shape update (mm)")
    axes[0].set_xlabel("iteration")
    axes[0].legend(fontsize=7)
    for col in [c for c in df.columns if c.startswith("dice_")]:
        axes[1].plot(df.iteration, df[col], "o-", label=col[5:])
    axes[1].set_title("Dice of warped labels to the template labels", fontsize=8)
    axes[1].legend(fontsize=7)
    axes[2].plot(df.iteration, df.sharpness, "o-")
    axes[2].set_title("sharpness (mean |grad| / mean)", fontsize=8)
    fig.suptitle(f"tpl-{name}: convergence")
    write_atomic(out, lambda tmp: fig.savefig(tmp, dpi=80, bbox_inches="tight"), ".png")
    plt.close(fig)
