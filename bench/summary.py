"""The README's headline table, from the committed results, and the history of retired benchmarks.

Each headline row reads the newest result of its benchmark (``bench/results/<benchmark>/``, whose file name
contains the row's tag), or, before the benchmark has run under the suite, its earlier flat result file.
``python -m bench summary`` prints the table; tests/test_docs.py checks that README.md shows exactly it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench.harness import RESULTS, ROOT

START, END = "<!-- bench-summary:start -->", "<!-- bench-summary:end -->"


def latest(benchmark: str, tag: str, legacy: str) -> Path:
    """The newest suite result of a benchmark whose name contains tag, else (or with tag "-") the earlier flat file."""
    runs = sorted((RESULTS / benchmark).glob(f"*{tag}*.json" if tag else "*.json")) \
        if (RESULTS / benchmark).is_dir() and tag != "-" else []
    return runs[-1] if runs else RESULTS / legacy


def _method(doc: dict[str, Any], method: str, key: str) -> float:
    return next(float(r[key]) for r in doc["summary"] if r["method"] == method)


def _run(doc: dict[str, Any], config: str, key: str = "wall_per_pair_s") -> float:
    return next(float(r[key]) for r in doc["runs"] if r["config"] == config)


def _dry_run(doc: dict[str, Any], subjects: int, batch: int) -> float:
    return next(float(r["dry_run_seconds"]) for r in doc["results"] if r["subjects"] == subjects
                and r.get("batch_size", 1) == batch)


def _labelling(doc: dict[str, Any], method: str, key: str, fmt: str, fusion: str = "majority") -> str:
    return " / ".join(format(doc["cohorts"][c]["results"][f"{method}/K5/{fusion}"][key], fmt) for c in ("lpba40", "oasis"))


@dataclass(frozen=True)
class Row:
    what: str
    files: tuple[tuple[str, str, str], ...]          # (benchmark, tag, earlier flat file) per file read
    values: Callable[..., tuple[str, str]]            # the files' JSON -> (CohortReg, reference)


ROWS = (
    Row("Deformable accuracy, LPBA40 (10 pairs, 2 mm), mean Dice",
        (("classical", "lpba", "classical_2mm_default_lpba_d09891c.json"),),
        lambda d: (f"torch {_method(d, 'torch', 'dice_mean'):.3f}", f"ANTs SyN {_method(d, 'ants', 'dice_mean'):.3f}")),
    Row("Deformable accuracy, OASIS-TRT (11 pairs, 2 mm), mean Dice",
        (("classical", "oasis", "classical_2mm_default_oasis_d09891c.json"),),
        lambda d: (f"torch {_method(d, 'torch', 'dice_mean'):.3f}", f"ANTs SyN {_method(d, 'ants', 'dice_mean'):.3f}")),
    Row("Registration job, s per pair (LPBA40 / OASIS-TRT)",
        (("classical", "lpba", "classical_2mm_default_lpba_d09891c.json"),
         ("classical", "oasis", "classical_2mm_default_oasis_d09891c.json")),
        lambda a, b: (f"torch {_method(a, 'torch', 'seconds'):.1f} / {_method(b, 'torch', 'seconds'):.1f}",
                      f"ANTs SyN {_method(a, 'ants', 'seconds'):.1f} / {_method(b, 'ants', 'seconds'):.1f}")),
    Row("End to end, 10 LPBA40 pairs at 2 mm, wall s per pair",
        (("throughput", "lpba40", "throughput_lpba40_2mm_ab_final.json"),),
        lambda d: (f"{_run(d, 'batched_after'):.2f} (batched)", f"{_run(d, 'torch_affine_after'):.2f} (one job per pair and stage)")),
    Row("Planning 20,000 subjects (dry run, s)",  # the newest batched dry run; one job per subject as last measured
        (("scale", "dry_run", "scale_dry_run.json"), ("scale", "-", "scale_dry_run.json")),
        lambda new, old: (f"{_dry_run(new, 20000, 50):.1f} (batches of 50)",
                          f"{_dry_run(old, 20000, 1):.1f} (one job per subject)")),
    Row("One subject appended to a finished, batched 1,000-subject study: jobs run (seconds)",
        (("append", "1000subjects", "append"),),
        lambda d: (f"{d['append_run']['jobs']} ({d['append_run']['wall_s']:.0f} s): its batches and the tables; "
                   f"{len(d['files']['changed_of_other_subjects'])} files of other subjects changed",
                   f"first run {d['first_run']['jobs']} jobs ({d['first_run']['wall_s'] / 60:.0f} min)")),
    Row("Multi-atlas labelling, leave-one-out, K=5, mean Dice (LPBA40 / OASIS-TRT)",
        (("labelling", "-", "labelling_2mm.json"),),  # the run with ANTs SyN beside torch
        lambda d: (f"torch {_labelling(d, 'torch', 'dice_mean', '.3f')}", f"ANTs SyN {_labelling(d, 'ants', 'dice_mean', '.3f')}")),
    Row("Multi-atlas labelling, K=5, fused by jlf, mean Dice and s per subject (LPBA40 / OASIS-TRT)",
        (("labelling", "jlf", "labelling_2mm.json"),),
        lambda d: (f"jlf {_labelling(d, 'torch', 'dice_mean', '.3f', 'jlf')} in {_labelling(d, 'torch', 'seconds_per_target', '.0f', 'jlf')} s",
                   f"majority, same registrations {_labelling(d, 'torch', 'dice_mean', '.3f')} in "
                   f"{_labelling(d, 'torch', 'seconds_per_target', '.0f')} s")),
    Row("Labelling, s per subject end to end (LPBA40 / OASIS-TRT)",
        (("labelling", "timing", "labelling_2mm_timing.json"),),
        lambda d: (f"torch {_labelling(d, 'torch', 'seconds_per_target', '.1f')}",
                   f"ANTs SyN {_labelling(d, 'ants', 'seconds_per_target', '.1f')}")),
    Row("Brain masks of raw IXI heads (12, Philips 3T), mean Dice to the DLMUSE brain (lowest)",
        (("skullstrip", "heads", "skullstrip/2026-12-05-6dc6ad0-heads.json"),),
        lambda d: (f"auto {d['summary']['auto']['ixi_dice_mean']:.3f} ({d['summary']['auto']['ixi_dice_min']:.3f}), "
                   f"{d['summary']['auto']['seconds_per_subject_mean']:.1f} s",
                   f"atlas (colin27) {d['summary']['atlas']['ixi_dice_mean']:.3f} ({d['summary']['atlas']['ixi_dice_min']:.3f}), "
                   f"{d['summary']['atlas']['seconds_per_subject_mean']:.1f} s")),
    Row("README command on the raw IXI heads (11 pairs), torch mean Dice to DLMUSE labels",
        (("raw_heads", "", "raw_heads/2026-12-05-6dc6ad0.json"),),
        lambda d: (f"auto {d['runs']['auto']['dice']['torch']:.3f}, {len(d['runs']['auto']['qc_failed_subjects'])} QC "
                   f"failures; with N4 {d['runs']['auto_n4']['dice']['torch']:.3f}",
                   f"atlas mask {d['runs']['atlas']['dice']['torch']:.3f}")),
    Row("Template's labels on held-out subjects, mean Dice (LPBA40 / OASIS-TRT)",
        (("template_route", "template_route_2mm", "template_route_2mm.json"),),
        lambda d: (" / ".join(f"{d['cohorts'][c]['template']['dice_mean']:.3f}" for c in ("lpba40", "oasis")),
                   "multi-atlas K=5 " + " / ".join(f"{d['cohorts'][c]['atlases']['dice_mean']:.3f}"
                                                    for c in ("lpba40", "oasis")))),
    Row("Template, 30 inputs of two cohorts, 4 iterations (min)",
        (("template", "template_2mm_rerun", "template_2mm_rerun.json"),),
        lambda d: (f"torch {d['build']['wall_s'] / 60:.1f}", "")),
)

# Benchmarks whose questions are answered (their answers are in the code's defaults and in docs/benchmark-notes.md);
# their scripts are in the git history, their result files stay.
RETIRED = {
    "affine, affine_steps, affine_threads, affine_torch": ("the affine's engine, steps, levels and threads",
                                                          "affine_settings_2mm.*, affine_steps_2mm*.json, "
                                                          "affine_torch_2mm.json, affine_torch_threads.txt"),
    "ants_presets": ("ANTs SyN's presets", "ants_presets_lpba_S02_to_S01_2mm.txt"),
    "torch_settings": ("the torch engine's presets", "torch_settings_*.txt, torch_grid_*.txt"),
    "stretch": ("FireANTs' accuracy at antspyx SyN's time", "stretch_lpba_2mm.json"),
    "fork_items": ("batch items that hold the GIL: threads or forked processes", "fork_items.json"),
    "label_warp": ("label warping: ANTs' genericLabel against the corner vote", "label_warp.json"),
    "learned_crop, learned_train_crop, learned_io_modes": ("the learned network on the brains' box; what a network "
                                                          "buys instance optimisation",
                                                          "learned_crop_check.txt, learned_train_crop_oasis.json, "
                                                          "learned_io_modes_*.json"),
    "skullstrip (CANDI, atlas only)": ("the atlas skull strip on the CANDI heads", "skullstrip_candi.json"),
    "profile_1mm, profile_pair, profile_subject": ("where a registration, a pair and a subject spend their time",
                                                   "profile_*.json"),
    "rerun_scale": ("the README command at 20,000 subjects (its append step is not meaningful under Snakemake "
                    "9.27's --touch; the append benchmark runs it for real at 1,000)", "rerun_scale.json"),
}


def cell_link(path: Path) -> str:
    """A link to a result file, named by its benchmark and date (the commit is in the file, not the README's text)."""
    if path.parent != RESULTS:  # bench/results/<benchmark>/<date>-<commit>[-tag].json
        text = f"{path.parent.name}, {path.stem[:10]}"
    else:  # an earlier flat file: its name without the commit some carry
        text = re.sub(r"_[0-9a-f]{7}(?=\.json$)", "", path.name)
    return f"[{text}]({path.relative_to(ROOT).as_posix()})"


def headline_table() -> str:
    lines = ["| what | CohortReg | reference | result file |", "|---|---|---|---|"]
    for row in ROWS:
        paths = [latest(*f) for f in row.files]
        ours, ref = row.values(*(json.loads(p.read_text()) for p in paths))
        files = ", ".join(dict.fromkeys(cell_link(p) for p in paths))
        lines.append(f"| {row.what} | {ours} | {ref} | {files} |")
    return "\n".join(lines)


def history() -> str:
    lines = ["Retired benchmarks (answered; result files kept in bench/results/):"]
    lines += [f"  {name}: {question} -> {files}" for name, (question, files) in RETIRED.items()]
    return "\n".join(lines)


def readme_table(readme: Path = ROOT / "README.md") -> str:
    """The table README.md shows between its bench-summary markers."""
    text = readme.read_text()
    return text[text.index(START) + len(START):text.index(END)].strip()
