"""The results tree as a BIDS derivative (dataset_description.json's required fields) and the methods paragraph,
which cites exactly the steps that ran."""

import json
from collections import Counter

import yaml

from cohortreg.study.derivative import citation, dataset_description, skullstrip_decisions
from tests.conftest import ROOT

CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_dataset_description_has_the_fields_bids_requires_of_a_derivative(tmp_path):
    doc = dataset_description("0.1.0+abc", str(tmp_path / "sheet.tsv"))
    # BIDS 1.9 dataset_description.json: Name and BIDSVersion required; derivatives: GeneratedBy required
    # (each with Name), DatasetType "derivative"
    assert isinstance(doc["Name"], str) and doc["Name"] and doc["BIDSVersion"].count(".") == 2
    assert doc["DatasetType"] == "derivative"
    assert doc["GeneratedBy"][0]["Name"] == "CohortReg" and "0.1.0+abc" in doc["GeneratedBy"][0]["Description"]
    assert "SourceDatasets" not in doc  # a sample sheet is no dataset
    bids = tmp_path / "ds"
    bids.mkdir()
    (bids / "dataset_description.json").write_text(json.dumps({"Name": "My study", "BIDSVersion": "1.8.0",
                                                               "DatasetDOI": "doi:10.1/xyz"}))
    doc = dataset_description("v", str(bids))
    assert doc["SourceDatasets"] == [{"URL": bids.resolve().as_uri(), "DOI": "doi:10.1/xyz", "Name": "My study"}]
    json.dumps(doc)  # serialisable as it is written


def test_the_citation_names_the_methods_that_ran_and_only_those():
    torch_only = citation(CONFIG, {"affine": "affine", "torch": "torch"}, Counter({"stripped: passed through": 10}), 10)
    assert "SyN" not in torch_only and "Avants B.B. et al. Symmetric diffeomorphic" not in torch_only
    assert "deepbet" not in torch_only and "already skull-stripped" in torch_only  # every scan was a brain
    assert "PyTorch" in torch_only and "Mölder F." in torch_only
    both = citation(CONFIG, {"ants": "ants", "vxm": "learned"}, Counter({"head: stripped by deepbet": 3,
                                                                        "stripped: passed through": 2}), 5)
    assert "symmetric normalisation (SyN)" in both and "Symmetric diffeomorphic image registration" in both
    assert "VoxelMorph" in both and "MONAI" in both and "3 full-head scans were skull-stripped with deepbet" in both
    assert "Fisch L. et al. deepbet" in both
    # every reference is cited in the text, and every [n] in the text has its reference
    text, refs = both.split("## References")
    numbers = {int(line.split(".")[0]) for line in refs.strip().splitlines()}
    import re

    assert {int(n) for n in re.findall(r"\[(\d+)\]", text)} == numbers


def test_skull_strip_decisions_are_counted_from_the_subjects_qc(tmp_path):
    files = []
    for i, decision in enumerate(["head: stripped by deepbet", "stripped: passed through", None]):
        path = tmp_path / f"{i}.json"
        path.write_text(json.dumps({"qc": "pass", "skullstrip": {"method": "auto", "decision": decision}
                                    if decision else {"method": "none"}}))
        files.append(str(path))
    files.append(str(tmp_path / "missing.json"))  # a failed subject: no qc.json
    assert skullstrip_decisions(files) == Counter({"head: stripped by deepbet": 1, "stripped: passed through": 1,
                                                   "none": 1})
