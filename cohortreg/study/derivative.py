"""The results tree as a BIDS derivative dataset, and the paragraph a study pastes into its methods section.

``OUT/dataset_description.json`` makes the tree read as a derivative (BIDS 1.9, "Derivatives": Name,
BIDSVersion, DatasetType derivative, GeneratedBy with CohortReg's version and code fingerprint, and
SourceDatasets when the input is a BIDS dataset), so BIDS tools index it beside the raw data.
``OUT/logs/CITATION.md`` names the steps that actually ran, with their settings and references, the way
fMRIPrep writes its boilerplate: a step that did not run (ANTs SyN in a torch-only study, deepbet where every
scan was already skull-stripped) is not cited.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from .. import __version__

BIDS_VERSION = "1.9.0"

REFERENCES = {
    "snakemake": "Mölder F. et al. Sustainable data analysis with Snakemake. F1000Research 10:33 (2021).",
    "antsx": "Tustison N.J. et al. The ANTsX ecosystem for quantitative biological and medical imaging. "
             "Scientific Reports 11:9068 (2021).",
    "n4": "Tustison N.J. et al. N4ITK: improved N3 bias correction. IEEE Transactions on Medical Imaging "
          "29(6):1310-1320 (2010).",
    "deepbet": "Fisch L. et al. deepbet: Fast brain extraction of T1-weighted MRI using Convolutional Neural "
               "Networks. Computers in Biology and Medicine 179:108845 (2024).",
    "syn": "Avants B.B. et al. Symmetric diffeomorphic image registration with cross-correlation: evaluating "
           "automated labeling of elderly and neurodegenerative brain. Medical Image Analysis 12(1):26-41 (2008).",
    "pytorch": "Paszke A. et al. PyTorch: an imperative style, high-performance deep learning library. "
               "NeurIPS 32 (2019).",
    "voxelmorph": "Balakrishnan G. et al. VoxelMorph: a learning framework for deformable medical image "
                  "registration. IEEE Transactions on Medical Imaging 38(8):1788-1800 (2019).",
    "monai": "Cardoso M.J. et al. MONAI: an open-source framework for deep learning in healthcare. "
             "arXiv:2211.02701 (2022).",
    "template": "Avants B.B. et al. The optimal template effect in hippocampus studies of diseased populations. "
                "NeuroImage 49(3):2457-2466 (2010).",
    "jlf": "Wang H. et al. Multi-atlas segmentation with joint label fusion. IEEE Transactions on Pattern Analysis "
           "and Machine Intelligence 35(3):611-623 (2013).",
    "scipy": "Virtanen P. et al. SciPy 1.0: fundamental algorithms for scientific computing in Python. Nature "
             "Methods 17:261-272 (2020).",
    "holm": "Holm S. A simple sequentially rejective multiple test procedure. Scandinavian Journal of Statistics "
            "6(2):65-70 (1979).",
}


def dataset_description(code: str, samples: str) -> dict[str, Any]:
    """The derivative's dataset_description.json; samples: the sheet or the BIDS root the study read."""
    out: dict[str, Any] = {
        "Name": "CohortReg registrations, metrics and labels",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "CohortReg", "Version": __version__,
                         "Description": f"code fingerprint {code} (cohortreg.provenance)"}],
    }
    root = Path(samples)
    if root.is_dir():  # a BIDS dataset: name it, and its DOI where it states one
        source: dict[str, Any] = {"URL": root.resolve().as_uri()}
        described = root / "dataset_description.json"
        if described.is_file():
            try:
                doc = json.loads(described.read_text())
            except ValueError:
                doc = {}
            if doc.get("DatasetDOI"):
                source["DOI"] = str(doc["DatasetDOI"])
            if doc.get("Name"):
                source["Name"] = str(doc["Name"])
        out["SourceDatasets"] = [source]
    return out


def skullstrip_decisions(qc_files: Iterable[str]) -> Counter[str]:
    """How many subjects each skull-strip decision took (their qc.json files; auto records one each)."""
    decisions: Counter[str] = Counter()
    for path in qc_files:
        try:
            strip = json.loads(Path(path).read_text()).get("skullstrip") or {}
        except (OSError, ValueError):
            continue
        decisions[str(strip.get("decision") or strip.get("method") or "unknown")] += 1
    return decisions


def _list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def citation(config: dict[str, Any], engines: dict[str, str], decisions: Counter[str], subjects: int,
             template: bool = False, labelling: bool = False) -> str:
    """The methods paragraph. config: the run's; engines: each method run -> its engine; decisions: the
    skull-strip decisions per subject (skullstrip_decisions); template: the study registered to a built template;
    labelling: atlas labels were made."""
    cited: list[str] = ["snakemake", "antsx"]
    pre, strip, affine = config["preprocess"], config["skullstrip"], config["affine"]
    spacing = f"resampled to {pre['spacing']:g} mm isotropic voxels" if pre.get("spacing") else "kept on their own grid"
    steps = [f"The {subjects} T1-weighted scans were processed with CohortReg {__version__} [1], a Snakemake "
             "workflow [snakemake], using ANTsPy [antsx] for image input, resampling and transforms."]
    s = f"Each scan was reoriented to RAS, {spacing}"
    if pre.get("n4"):
        s += ", corrected for intensity inhomogeneity with N4 [n4]"
        cited.append("n4")
    steps.append(s + f", and its intensities were scaled by the {pre['lower_percentile']:g}th and "
                     f"{pre['upper_percentile']:g}th percentiles of the brain.")
    method = strip["method"]
    deepbet_runs = sum(n for d, n in decisions.items() if "deepbet" in d and "passed through" not in d)
    if method == "deepbet" or (method == "auto" and deepbet_runs):
        cited.append("deepbet")
        if method == "auto":
            kept = subjects - deepbet_runs
            steps.append(f"{deepbet_runs} full-head scans were skull-stripped with deepbet [deepbet]"
                         + (f"; {kept} scans that were already skull-stripped were used as given." if kept else "."))
        else:
            steps.append("Brains were extracted with deepbet [deepbet].")
    elif method == "atlas":
        steps.append("Brains were extracted by registering a head template with its brain mask to each scan "
                     f"(ANTs) and refining the warped mask to tissue by {strip['refine_mm']:g} mm.")
    elif method == "provided":
        steps.append("Brain masks were provided with the scans.")
    else:
        steps.append("The scans were already skull-stripped and were used as given.")
    if affine.get("engine", "torch") == "torch":
        steps.append("Each pair was aligned by a rigid then affine registration maximising global normalised "
                     "cross-correlation, implemented in PyTorch [pytorch].")
        cited.append("pytorch")
    else:
        steps.append(f"Each pair was aligned by a rigid then affine ANTs registration ({affine.get('metric', 'mattes')} "
                     "mutual information).")
    used = sorted(set(engines.values()))
    described = []
    if "ants" in used:
        described.append("ANTs' symmetric normalisation (SyN) [syn]")
        cited.append("syn")
    if "torch" in used:
        described.append("CohortReg's greedy multi-scale deformable registration (local normalised "
                         "cross-correlation, Gaussian-smoothed updates and field), implemented in PyTorch [pytorch]")
        cited.append("pytorch")
    if {"learned", "learned_io"} & set(used):
        described.append("a VoxelMorph network [voxelmorph] built with MONAI [monai] and trained by the workflow"
                         + (", refined per pair by instance optimisation" if "learned_io" in used else ""))
        cited += ["voxelmorph", "monai"]
    if "affine" in used:
        described.append("the affine alignment alone, as a baseline")
    if described:
        steps.append(f"Deformable registration used {_list(described)} (methods: "
                     f"{', '.join(f'{m} ({e})' for m, e in engines.items())}).")
    if template:
        steps.append("Every scan was registered to an unbiased template built from the study's scans by iterative "
                     "averaging and shape updates [template].")
        cited.append("template")
    if labelling:
        fusion = config.get("labelling", {}).get("fusion", "majority")
        k = config.get("labelling", {}).get("atlases", 0)
        if k:
            steps.append(f"Each scan was labelled by registering {k} labelled scans of each labelling protocol to it "
                         + ("and fusing their labels by joint label fusion [jlf]." if fusion == "jlf" else
                            f"and fusing their labels by {fusion} voting."))
            cited += ["jlf"] if fusion == "jlf" else []
        if template:
            steps.append("The template's labels were also carried to each scan through the inverse of its "
                         "registration to the template, and log-Jacobian maps were computed in template space.")
    steps.append("Registration accuracy was measured by the Dice overlap and the 95th-percentile Hausdorff distance "
                 "of the warped labels; methods were compared on the same pairs by paired t-tests and Wilcoxon "
                 "signed-rank tests [scipy] with Holm's correction [holm].")
    cited += ["scipy", "holm"]
    order = list(dict.fromkeys(cited))
    number = {key: i + 2 for i, key in enumerate(order)}  # [1] is CohortReg itself
    text = " ".join(steps)
    for key, n in number.items():
        text = text.replace(f"[{key}]", f"[{n}]")
    lines = ["# Methods (generated by CohortReg for this run)", "",
             "Paste into a methods section; it names the steps that ran, with their settings.", "", text, "",
             "## References", "", f"1. CohortReg {__version__}."]
    lines += [f"{number[k]}. {REFERENCES[k]}" for k in order]
    return "\n".join(lines) + "\n"
