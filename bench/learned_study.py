"""The learned benchmarks' study (not a benchmark itself): the held-out splits of LPBA40 and OASIS-TRT and the
workflow config that trains and evaluates the learned methods beside the classical ones (bench/learned.py and
bench/study.py both run it)."""

from __future__ import annotations

from pathlib import Path

from cohortreg.sheet.datasets import write_sheet as datasets_write_sheet

SPLITS = {"lpba40": {"test": [f"S{i:02d}" for i in range(1, 10)], "val": ["S10"], "train": [f"S{i:02d}" for i in range(11, 21)]},
          "oasis": {"test": ["10", "11", "12"], "val": ["09"], "train": [f"{i:02d}" for i in range(1, 9)]}}
SHORT = {"lpba40": "lpba", "oasis": "oasis"}


def write_sheet(path: Path) -> Path:
    """The test subjects first in each cohort: the first is the reference."""
    order = {c: sp["test"] + sp["val"] + sp["train"] for c, sp in SPLITS.items()}
    which = {(c, sid): w for c, sp in SPLITS.items() for w, ids in sp.items() for sid in ids}
    return datasets_write_sheet(path, order, split=lambda c, s: which[(c, s)])


def config(work: Path, minutes: float, classical: list[str], io_sweep: list[int], models_from: Path | None = None,
           batch_size: int = 1, schedules: list[list[int]] | None = None, train_cohorts: list[str] | None = None,
           torch_schedules: list[list[int]] | None = None, residual_schedules: list[list[int]] | None = None) -> dict:
    methods = list(classical)
    params: dict = {"ants": {"preset": "default"}, "torch": {"preset": "default", "device": "cpu"}}
    for sched in torch_schedules or []:  # torch from zero on an IO schedule's budget: what the network buys
        name = f"torch_{'_'.join(str(i) for i in sched)}"
        params[name] = {"engine": "torch", "device": "cpu", "iterations": list(sched)}
        methods.append(name)
    for cohort in train_cohorts or list(SPLITS):
        for sup in ("unsupervised", "weak"):
            name = f"vxm_{SHORT[cohort]}_{'weak' if sup == 'weak' else 'unsup'}"
            params[name] = {"engine": "learned", "train_cohorts": [cohort], "supervision": sup, "steps": 100000,
                            "max_minutes": minutes, "val_every": 50, "checkpoint_every": 50, "device": "cpu"}
            if models_from is not None:  # a model file of one's own: the workflow does not train
                params[name]["checkpoint"] = str(models_from / name / "model.pt")
            params[name + "_io"] = {"engine": "learned_io", "model": name, "device": "cpu"}
            methods += [name, name + "_io"]
            # IO iterations on the 4/2/1 levels, on every model; residual: the prediction kept, a correction optimised
            for prefix, extra, scheds in (("io", {}, schedules), ("io_res", {"residual": True}, residual_schedules)):
                for sched in scheds or []:
                    variant = f"{name}_{prefix}_{'_'.join(str(i) for i in sched)}"
                    params[variant] = {"engine": "learned_io", "model": name, "device": "cpu", **extra,
                                       "iterations": list(sched)}
                    methods.append(variant)
    sweep_model = "vxm_lpba_weak" if "lpba40" in (train_cohorts or SPLITS) else f"vxm_{SHORT[train_cohorts[0]]}_weak"
    for n in io_sweep:  # IO iterations [n, n/2, n/4] on the 4/2/1 levels: 100 is torch's default, 50 learned_io's
        name = f"{sweep_model}_io{n}"
        params[name] = {"engine": "learned_io", "model": sweep_model, "device": "cpu",
                        "iterations": [n, max(n // 2, 0), max(n // 4, 0)]}
        methods.append(name)
    # the IO of earlier releases on the sweep's model: the plain greedy scheme from the prediction, which
    # smooths the prediction away through its levels (residual: false), on learned_io's old default
    params[f"{sweep_model}_io_plain"] = {"engine": "learned_io", "model": sweep_model, "device": "cpu",
                                         "residual": False, "iterations": [50, 25, 12]}
    methods.append(f"{sweep_model}_io_plain")
    return {"samples": str(write_sheet(work / "samples.tsv")), "outdir": str(work / "out"), "methods": methods,
            "method_params": params, "preprocess": {"spacing": 2.0}, "batch_size": batch_size}
