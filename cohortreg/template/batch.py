"""A template round's registrations in batches (``template.batch_size``), through cohortreg.batches.items.

One job per input and iteration is 30 jobs a round for 30 inputs, 3,000 for a 1,000-subject
template: Snakemake's planning and a cluster's submissions then cost more than the work. A batch
job registers ``batch_size`` inputs to the round's template and writes the same per-input files,
logs and benchmark files as the per-input rule, with a manifest of its own; it keeps an item whose
stamp is unchanged, goes on past an item that fails, and, on a GPU, registers its items as one torch
stack (they all share the template's grid). The update that reads the round refuses to average a
round with a failed input and names it (``check_round``); the next run retries that item only.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Sequence

from ..batches.items import Item
from ..errors import InputError
from ..paths import Layout
from .build import copy_registration, is_copy, register_many_to_template

log = logging.getLogger("cohortreg")
INPUT_STEP = "iter-{iteration}/{cohort}/sub-{subject}"  # an input's registration in a round (Layout.template_witness)


def input_files(L: Layout, name: str, iteration: str, cohort: str, subject: str) -> dict[str, str]:
    """An input's registration files of a round, its log and its benchmark: the per-input rule's paths."""
    ids = dict(name=name, iteration=iteration, cohort=cohort, subject=subject)
    files = {k: L.template_input(f).format(**ids) for k, f in (
        ("manifest", "transforms.json"), ("warped", "warped_T1w.nii.gz"), ("warped_labels", "warped_dseg.nii.gz"))}
    files["log"] = L.template_witness(INPUT_STEP).format(**ids)
    files["benchmark"] = L.template_witness(INPUT_STEP, "benchmarks").format(**ids)
    return files


def copied(previous_manifest: str, outputs: Sequence[str]) -> None:
    copy_registration(previous_manifest, *outputs)
    log.info("template iteration is a copy of the last (template.stop_below_mm): registration copied from %s",
             previous_manifest)


def round_items(L: Layout, name: str, iteration: str, inputs: Sequence[Sequence[str]], template: str,
                method: str, params: dict[str, Any], affine_settings: dict[str, Any], affine_only: bool,
                threads: int, row: str = "", previous: str = "") -> list[Item]:
    """inputs: (cohort, subject, labels file or '') each. row, previous: with an early stop
    (template.stop_below_mm), this iteration's update.json and the round before's iteration id: a
    copied template's items copy their registration from that round."""
    from ..registration import resolve

    copy = is_copy(row)
    resolved = resolve(method, params)
    items = []
    for cohort, subject, labels in inputs:
        brain = L.brain.format(cohort=cohort, subject=subject)
        out = input_files(L, name, iteration, cohort, subject)
        outputs = [out["manifest"], out["warped"], out["warped_labels"]]
        job: tuple[str, ...] = ()
        if copy:
            before = input_files(L, name, previous, cohort, subject)["manifest"]
            run: Callable[[], Any] = lambda b=before, o=outputs: copied(b, o)
            needs = [before]
        else:
            job = (brain, labels, *outputs)
            run = lambda j=job: register_many_to_template(template, [j], method, params, affine_settings, threads,
                                                          affine_only)
            needs = [template, brain] + ([labels] if labels else [])
        key = f"template {name} iter-{iteration} {cohort}/{subject} [{'affine' if affine_only else method}]"
        items.append(Item(key, "template", run, outputs, out["log"], out["benchmark"],
                          {"method": method, "params": params, "affine": affine_settings, "affine_only": affine_only,
                           "copy": copy}, inputs=needs, needs=needs, job=job,
                          engine="affine" if affine_only else resolved.engine, model=resolved.model_file))
    return items


def register_round_together(items: Sequence[Item], template: str, method: str, params: dict[str, Any],
                            affine_settings: dict[str, Any], affine_only: bool, threads: int
                            ) -> Callable[[list[Item]], dict[str, float]] | None:
    """For run_items: a method that stacks pairs (torch on a GPU) registers the round's items in one
    call (cohortreg.batches.items.register_together); None where it would only loop, in the affine round,
    or where the items are copies (they have no job)."""
    from ..batches.items import register_together

    if affine_only or any(not it.job for it in items):
        return None
    return register_together(method, params, threads, lambda jobs: register_many_to_template(
        template, jobs, method, params, affine_settings, threads, affine_only))


def check_round(manifests: Sequence[str], iteration: str) -> None:
    """Refuse a round whose batches did not register every input: a template averaged over fewer
    inputs than it names would look valid and not be. Names each failed input and why."""
    failed, where = [], []
    for m in manifests:
        with open(m) as fh:
            doc = json.load(fh)
        bad = [f"{r['item']}: {r.get('error', r['status'])}" for r in doc["items"] if r["status"] != "ok"]
        failed += bad
        where += [m] if bad else []
    if failed:
        raise InputError(None, where[0], f"template round {iteration}: {len(failed)} input(s) not registered; the "
                         "next run retries them (fix or drop them from the sheet):\n  " + "\n  ".join(failed))
