"""Labelling with batch_size > 1: one job per subject batch and protocol, each subject an item.

A study of 20,000 subjects and four protocols plans 1,600 labelling jobs instead of 80,000. An item is
kept while its stamp holds (its settings, the atlases it was given, its inputs' size and mtime, the
labelling code and its method's engine's), as every batch stage's items are (cohortreg.batches.items).
"""

from __future__ import annotations

from typing import Any

from ..batches.items import Item
from ..paths import Layout
from .plan import subject_outputs
from .run import label_subject


def labelling_items(cohort: str, protocol: str, jobs: list[dict[str, Any]], settings: dict[str, Any], method: str,
                    method_params: dict[str, Any], affine: dict[str, Any], L: Layout, threads: int = 1,
                    engine: str = "", model: str = "") -> list[Item]:
    """jobs: one per subject of the batch: {"subject", "target", "atlases"} (as rules/labelling_functions.smk's
    labelling_job gives them)."""
    items = []
    for j in jobs:
        s, target, atlases = j["subject"], j["target"], j["atlases"]
        ids = {"cohort": cohort, "subject": s, "protocol": protocol}
        outputs = subject_outputs(L, cohort, s, protocol)
        workdir = L.atlas_workdir.format(**ids)
        made = [target["brain"], target["mask"]] + [a["brain"] for a in atlases]  # by the subject batches
        items.append(Item(
            f"labelling {cohort}/{s} atlas-{protocol}", "labelling",
            (lambda ids=ids, t=target, a=atlases, w=workdir, o=outputs:
             label_subject(ids, t, a, settings, method, method_params, affine, w, o, threads)),
            list(outputs.values()), L.labelling_witness().format(**ids), L.labelling_witness("benchmarks").format(**ids),
            {"labelling": settings, "method": method, "params": method_params, "affine": affine,
             "atlases": [a["subject"] for a in atlases]},
            inputs=made + [target["t1"], target.get("labels", "")] + [a["labels"] for a in atlases],
            needs=made, engine=engine, model=model, threads=threads))
    return items
