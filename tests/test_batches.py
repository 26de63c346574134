"""batch_size > 1: several subjects per job, reruns still per subject, one bad scan stops nobody else."""

import gzip
import json
import os
import sys

import pandas as pd
import pytest

from cohortreg.batches.items import Item, backdate_failed, chains, chunk, forks_items, item_threads, pending, run_items
from tests.conftest import docutils_problems, planned_jobs, run_snakemake
from tests.test_workflow import add_bad_subjects, config_args


def test_chunks_follow_sheet_order():
    assert chunk(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]
    # appending subjects leaves the earlier batches as they were
    assert chunk(list("abcdefg"), 2)[:2] == chunk(list("abcde"), 2)[:2]


def _item(d, name, calls, fail=False, needs=()):
    src, out = d / f"{name}.in", d / f"{name}.out"
    if not src.exists():
        src.write_text(name)

    def run():
        calls.append(name)
        if fail:
            raise ValueError(f"subject {name!r}: {src}: cannot read it")
        out.write_text(src.read_text().upper())

    return Item(f"stage {name}", "preprocess", run, [str(out)], str(d / f"{name}.log"), str(d / f"{name}.bench.tsv"),
                {"k": 1}, inputs=[str(src)], needs=list(map(str, needs)))


def test_run_items_keeps_finished_items_and_isolates_a_failure(tmp_path):
    calls = []
    items = lambda: [_item(tmp_path, "a", calls), _item(tmp_path, "b", calls, fail=True),  # noqa: E731
                     _item(tmp_path, "c", calls, needs=[tmp_path / "gone.nii.gz"])]
    manifest = str(tmp_path / "batch-1.json")
    assert pending(items(), manifest) == 3
    out = run_items(items(), manifest)
    assert calls == ["a", "b"] and (tmp_path / "a.out").read_text() == "A"
    assert {r["item"]: r["status"] for r in out["items"]} == {"stage a": "ok", "stage b": "failed", "stage c": "skipped"}
    assert "ERROR subject 'b'" in (tmp_path / "b.log").read_text() and "cannot read it" in (tmp_path / "b.log").read_text()
    assert (tmp_path / "a.bench.tsv").read_text().startswith("s\tmax_rss\n")
    # rerun: the finished item is kept (not recomputed, not rewritten), the failed one is retried
    assert pending(items(), manifest) == 2  # b failed, c lacks its input: both still to do
    before = (tmp_path / "a.out").stat().st_mtime_ns
    calls.clear()
    run_items(items(), manifest)
    assert calls == ["b"] and (tmp_path / "a.out").stat().st_mtime_ns == before
    # a changed input reruns its item only
    (tmp_path / "a.in").write_text("new")
    calls.clear()
    run_items(items(), manifest)
    assert calls == ["a", "b"] and (tmp_path / "a.out").read_text() == "NEW"
    # a subject inserted earlier in the sheet moves 'a' into the next batch: its work is still found
    calls.clear()
    assert pending([_item(tmp_path, "a", calls)], str(tmp_path / "batch-2.json")) == 0
    run_items([_item(tmp_path, "a", calls)], str(tmp_path / "batch-2.json"))
    assert calls == []
    # the manifest with failures is backdated so that Snakemake reruns the batch next time
    assert backdate_failed([manifest]) == ["stage b", "stage c"] and os.stat(manifest).st_mtime == 0
    assert json.loads((tmp_path / "batch-1.json").read_text())["failed"] == ["stage b", "stage c"]


def test_a_local_batch_runs_thread_invariant_pairs_one_thread_each_when_every_core_has_one():
    assert item_threads(2, 2, n_pending=10, engine="torch", local=True) == 1
    assert item_threads(2, 2, n_pending=1, engine="torch", local=True) == 2   # one pair left: both threads on it
    assert item_threads(2, 2, n_pending=10, engine="torch", local=False) == 2  # a cluster job: one item's memory
    assert item_threads(2, 2, n_pending=10, engine="ants", local=True) == 2   # ITK's threads, antspyx holds the GIL
    assert item_threads(2, 2, n_pending=10, engine="learned", local=True) == 2  # not checked across thread counts
    assert item_threads(2, 1, n_pending=10, engine="torch", local=True) == 1
    # as many items at once as threads only where their declared memory fits the machine's
    assert item_threads(16, 2, n_pending=50, engine="torch", local=True, item_mb=6000, memory_mb=128000) == 1
    assert item_threads(16, 2, n_pending=50, engine="torch", local=True, item_mb=6000, memory_mb=64000) == 2


def _meeting_item(d, name, order, meet):
    """An item that waits (up to 60 s) at ``meet`` for the other item to have started: it finishes only if
    the batch runs both at once; run one after the other, the first would time out and fail."""
    import logging

    out = d / f"{name}.out"

    def run():
        order.append(("start", name))
        logging.getLogger("cohortreg").warning("working on %s", name)
        meet.wait(timeout=60)  # raises BrokenBarrierError if the other item never starts
        out.write_text(name)
        order.append(("end", name))

    return Item(f"stage {name}", "preprocess", run, [str(out)], str(d / f"{name}.log"), str(d / f"{name}.bench.tsv"), {"k": 1})


def test_a_batch_runs_independent_items_side_by_side_and_dependent_ones_in_order(tmp_path):
    """The mechanism, not a speed ratio (a busy machine stretches any timing): two items with two workers
    are both running at one moment, each in its own thread."""
    import threading

    order = []
    meet = threading.Barrier(2)
    out = run_items([_meeting_item(tmp_path, "a", order, meet), _meeting_item(tmp_path, "b", order, meet)],
                    str(tmp_path / "two.json"), workers=2)
    assert [r["status"] for r in out["items"]] == ["ok", "ok"], out
    assert sorted(order[:2]) == [("start", "a"), ("start", "b")]  # both began before either ended (in either order)
    # each item's log holds its own lines only, though both wrote at once
    assert "working on a" in (tmp_path / "a.log").read_text() and "working on b" not in (tmp_path / "a.log").read_text()
    # a subject's skull strip (needs the preprocessing's output) stays after it, in one chain
    calls = []
    pre = _item(tmp_path, "pre", calls)
    strip = _item(tmp_path, "strip", calls, needs=[tmp_path / "pre.out"])
    other = _item(tmp_path, "other", calls)
    assert [[i.key for i in c] for c in chains([pre, strip, other])] == [["stage pre", "stage strip"], ["stage other"]]
    run_items([pre, strip, other], str(tmp_path / "chain.json"), workers=2)
    assert calls.index("pre") < calls.index("strip") and sorted(calls) == ["other", "pre", "strip"]


def test_items_fork_where_torch_is_neither_used_nor_loaded(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    ants_affine = {"engine": "ants"}
    assert forks_items("subjects") and forks_items("affine", settings=ants_affine) and forks_items("register", "ants")
    assert forks_items("register", "my_syn", {"engine": "ants", "preset": "fast"})  # a method_params entry of ants
    assert not forks_items("affine", settings={"engine": "torch"}) and not forks_items("affine", settings={})
    assert not forks_items("register", "torch") and not forks_items("register", "learned_io")
    assert not forks_items("register", "learned") and not forks_items("register", "affine")  # short numpy-bound items
    assert not forks_items("metrics", "ants")
    monkeypatch.setitem(sys.modules, "torch", sys)  # loaded: its thread pools may have started
    assert not forks_items("subjects") and not forks_items("affine", settings=ants_affine)


def _gil_item(d, name, how="ok", partner=""):
    """An item whose work holds the GIL (a Python loop, as antspyx's calls do), or that fails or dies.
    partner: the item must meet it (its start file, up to 60 s) before it finishes, which it can only
    if both run at once."""
    import logging
    import signal
    import time

    out = d / f"{name}.out"

    def run():
        logging.getLogger("cohortreg").warning("working on %s in %d", name, os.getpid())
        (d / f"{name}.started").write_text(str(os.getpid()))
        if how == "raise":
            raise ValueError(f"subject {name!r}: {out}: cannot read it")
        if how == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        total = 0
        for i in range(2_000_000):
            total += i % 7
        deadline = time.monotonic() + 60
        while partner and not (d / f"{partner}.started").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: {partner} never ran beside it")
            time.sleep(0.01)
        out.write_text(f"{name} {total} {os.getpid()}")

    return Item(f"stage {name}", "preprocess", run, [str(out)], str(d / f"{name}.log"), str(d / f"{name}.bench.tsv"), {"k": 1})


def test_items_that_hold_the_gil_run_side_by_side_in_processes_and_their_failures_stay_theirs(tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="cohortreg")  # the batch's own lines and tracebacks, in the items' logs
    # the mechanism, not a speed ratio (the retired fork_items benchmark measured the gain: bench/results/fork_items.json): with processes, each
    # item runs in a process of its own, both at once, and computes what it computes in this process
    items = [_gil_item(tmp_path, "pa", partner="pb"), _gil_item(tmp_path, "pb", partner="pa")]
    out = run_items(items, str(tmp_path / "pa.json"), workers=2, processes=True)
    run_items([_gil_item(tmp_path, "ta")], str(tmp_path / "ta.json"))
    assert [r["status"] for r in out["items"]] == ["ok", "ok"], out
    pids_of = {n: (tmp_path / f"{n}.out").read_text().split()[2] for n in ("pa", "pb")}
    assert str(os.getpid()) not in pids_of.values() and len(set(pids_of.values())) == 2  # each in its own process
    assert (tmp_path / "pa.out").read_text().split()[1] == (tmp_path / "ta.out").read_text().split()[1]
    # the child's log lines reach the item's own log; its benchmark file has the child's peak memory
    lines = (tmp_path / "pa.log").read_text().splitlines()
    expected = ["INFO stage pa (batch job, host=", f"WARNING working on pa in {pids_of['pa']}", "INFO stage pa: done in "]
    assert len(lines) == 3 and all(want in line for want, line in zip(expected, lines)), lines
    assert lines[2].endswith(" s (own process)")
    assert float((tmp_path / "pa.bench.tsv").read_text().split()[3]) > 1  # the child's peak RSS, MB
    # a failure in a child is its item's, with the child's message and traceback; a killed child is a
    # failed item, not a hang; the other items finish, and a rerun keeps them
    (tmp_path / "bad.out").write_text("stale")
    items = [_gil_item(tmp_path, "good"), _gil_item(tmp_path, "bad", "raise"), _gil_item(tmp_path, "dead", "die")]
    out = run_items(items, str(tmp_path / "mixed.json"), workers=2, processes=True)
    status = {r["item"]: (r["status"], r.get("error", "")) for r in out["items"]}
    assert status["stage good"] == ("ok", "")
    assert status["stage bad"][0] == "failed" and "subject 'bad'" in status["stage bad"][1]
    assert status["stage dead"] == ("failed", "its process was killed by SIGKILL"), status
    assert not (tmp_path / "bad.out").exists()  # stale outputs of a failed item are removed
    log = (tmp_path / "bad.log").read_text()
    assert "ERROR subject 'bad'" in log and "in run\n    raise ValueError" in log  # the child's traceback
    assert pending(items, str(tmp_path / "mixed.json")) == 2


def test_an_item_that_gets_no_process_fails_with_the_reason_and_leaks_nothing(tmp_path, monkeypatch):
    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    out = run_items([_gil_item(tmp_path, "a"), _gil_item(tmp_path, "b")], str(tmp_path / "m.json"), workers=2,
                    processes=True)
    assert [(r["status"], "Resource temporarily unavailable" in r["error"]) for r in out["items"]] == [("failed", True)] * 2
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds  # both ends of each pipe closed


@pytest.mark.workflow
def test_batched_run_matches_the_contract_and_retries_only_the_failed(phantom_cohort):
    d = phantom_cohort
    raw = add_bad_subjects(d)
    args = config_args(d, "batch_size=2")
    with open(d / "fast.yaml", "a") as f:
        f.write("affine: {engine: ants}\n")  # its items, like the subjects', run in processes (batches.forks_items)
    r = run_snakemake("-n", "--cores", "2", *args, cwd=d)
    plan = [rule for rule, _ in planned_jobs(r.stdout + r.stderr)]
    # 5 subjects in batches of 2 -> 3 subject jobs; 4 pairs -> 2 pair batches x (affine + 2 x register with
    # its metrics: batch_fuse)
    assert sorted(set(plan)) == ["affine_batch", "aggregate", "dataset_description", "mask_gallery", "method_choice",
                                 "mutual_info", "register_batch", "report_figures", "subjects_batch"]
    # + the report's: method choice, MI table, figures, brain masks, and the derivative's description
    assert len(plan) == 3 + 2 * (1 + 2) + 1 + 5, plan
    r = run_snakemake("--cores", "2", "--keep-going", *args, cwd=d)
    assert r.returncode != 0 and "the next run retries them" in r.stderr, r.stderr[-3000:]
    pairs = pd.read_csv(d / "out" / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str, "fixed": str})
    ok = pairs[pairs.status == "ok"]
    assert set(ok.moving) == {"02", "03"} and len(ok) == 4 and (ok["dice_mean"] > 0.88).all(), pairs
    assert (ok["seconds"] > 0).all() and (ok["max_rss_mb"] > 0).all()
    failed = pairs[pairs.status == "failed"].set_index(["moving", "method"])
    assert len(failed) == 4
    assert "subject '04'" in failed.loc[("04", "ants"), "error"] and "truncated" in failed.loc[("04", "ants"), "error"]
    assert "subject '05'" in failed.loc[("05", "affine"), "error"] and "does not exist" in failed.loc[("05", "affine"), "error"]
    # the subjects' items ran side by side each in its own process (batches.forks_items), the rest in threads
    logs = d / "out" / "logs"
    assert "(own process)" in (logs / "preprocess" / "ph" / "sub-02.log").read_text()
    assert "(own process)" in (logs / "affine" / "ph" / "sub-02_to-01.log").read_text()
    assert "(own process)" not in (logs / "register" / "ph" / "sub-02_to-01_affine.log").read_text()
    assert "(own process)" not in (logs / "register" / "ph" / "sub-02_to-01_ants.log").read_text()  # one at a time
    # the browsable per-subject tree is the same as without batches
    done = d / "out" / "ph" / "sub-02" / "to-01" / "ants"
    assert (done / "transforms.json").exists() and (done / "sub-02_space-01_desc-warped_dseg.nii.gz").exists()
    # the next run plans the batches holding failed subjects (not the first subject batch), keeps
    # every finished file, and a fixed subject then completes
    stamp = (done / "metrics.json").stat().st_mtime_ns
    r = run_snakemake("-n", "--cores", "2", *args, cwd=d)
    plan = planned_jobs(r.stdout + r.stderr)
    assert sorted(w["batch"] for rule, w in plan if rule == "subjects_batch") == ["00001", "00002"], plan
    (d / "broken_T1w.nii.gz").write_bytes(gzip.compress(raw))
    r = run_snakemake("--cores", "2", "--keep-going", *args, cwd=d)
    assert r.returncode != 0  # 05's T1 is still missing
    pairs = pd.read_csv(d / "out" / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str, "fixed": str})
    assert set(pairs[pairs.status == "ok"].moving) == {"02", "03", "04"}
    assert (done / "metrics.json").stat().st_mtime_ns == stamp
    # without the subject whose T1 is missing the run succeeds, and then there is nothing left to do
    lines = (d / "samples.tsv").read_text().splitlines()
    (d / "samples.tsv").write_text("\n".join(ln for ln in lines if not ln.startswith("ph\t05")) + "\n")
    r = run_snakemake("--cores", "2", *args, cwd=d)
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_snakemake("-n", "--cores", "2", *args, cwd=d)
    assert planned_jobs(r.stdout + r.stderr) == []
    assert (done / "metrics.json").stat().st_mtime_ns == stamp
    # the report shows every pair's overlay, as without batches (the batch jobs write them untracked)
    ok = pd.read_csv(d / "out" / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str, "fixed": str})
    ok = ok[ok.status == "ok"]
    shown = sorted(p.name for p in (d / "out" / "report" / "every_pair").glob("*.png"))
    assert shown == sorted(f"ph.{r.moving}.to.{r.fixed}.{r.method}.png" for r in ok.itertuples()), shown
    r = run_snakemake("--cores", "1", *args, "--report", d / "report.html", cwd=d)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not docutils_problems(r.stdout + r.stderr), docutils_problems(r.stdout + r.stderr)  # every caption renders
    html = (d / "report.html").read_text()
    assert "3b. QC: every pair" in html and "ph.02.to.01.ants.png" in html, html[-2000:]


def test_batch_jobs_of_a_cuda_method_ask_for_a_gpu_and_runtime_scales_with_the_batch(phantom_cohort):
    d = phantom_cohort
    (d / "gpu.yaml").write_text("method_params:\n  torch: {device: cuda}\nresources:\n"
                                "  register: {threads: 2, mem_mb: 6000, runtime: 100}\n"
                                "  subject: {threads: 1, mem_mb: 2000, runtime: 30}\n"
                                "  affine: {threads: 1, mem_mb: 2000, runtime: 30}\n"
                                "  metrics: {threads: 1, mem_mb: 4000, runtime: 30}\nslurm: {max_runtime: 150}\n")
    r = run_snakemake("-n", "--cores", "2", "--configfile", d / "gpu.yaml", "--config", f"samples={d / 'samples.tsv'}",
                      f"outdir={d / 'out'}", "methods=[ants,torch]", "batch_size=2", cwd=d)
    assert r.returncode == 0, r.stderr
    jobs = {}
    for block in (r.stdout + r.stderr).split("rule ")[1:]:
        name = block.split(":", 1)[0]
        res = next((x for x in block.splitlines() if "resources:" in x), "")
        wild = next((x for x in block.splitlines() if "wildcards:" in x), "")
        jobs.setdefault(name, []).append((wild, res))
    (torch_wild, torch_res), = [j for j in jobs["register_batch"] if "method=torch" in j[0]]
    (ants_wild, ants_res), = [j for j in jobs["register_batch"] if "method=ants" in j[0]]
    assert "gpu=1" in torch_res and "gpu=1" not in ants_res
    # 2 pairs x 100 min, capped at slurm.max_runtime; 2 subjects x 2 stages x 30 min
    assert "runtime=150" in torch_res and "runtime=150" in ants_res
    assert all("runtime=120" in res for _, res in jobs["subjects_batch"]), jobs["subjects_batch"]


@pytest.mark.workflow
def test_a_torch_batch_optimises_its_pairs_as_one_stack(phantom_cohort):
    """stack: 2 forces on CPU what a GPU does by default: the batch's two pairs in one optimisation,
    with the result of registering them one at a time."""
    d = phantom_cohort
    dice = {}
    for stack in (2, 1):
        (d / "stack.yaml").write_text(f"method_params:\n  torch: {{preset: fast, stack: {stack}}}\n"
                                      "preprocess:\n  spacing: null\n")
        out = d / f"out{stack}"
        r = run_snakemake("--cores", "2", "--configfile", d / "stack.yaml", "--config", f"samples={d / 'samples.tsv'}",
                          f"outdir={out}", "methods=[affine,torch]", "batch_size=2", cwd=d)
        assert r.returncode == 0, r.stderr[-3000:]
        pairs = pd.read_csv(out / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str})
        dice[stack] = pairs[pairs.method == "torch"].set_index("moving")["dice_mean"]
        for moving in ("02", "03"):
            tx = json.loads((out / "ph" / f"sub-{moving}" / "to-01" / "torch" / "transforms.json").read_text())
            log = (out / "logs" / "register" / "ph" / f"sub-{moving}_to-01_torch.log").read_text()
            assert (tx["extra"].get("stacked_with") == 2) == (stack == 2)
            assert ("done with 1 others in one call" in log) == (stack == 2)
    # (the phantoms differ by an affine map only, so a deformable method has nothing to gain here)
    assert (dice[2] - dice[1]).abs().max() < 0.005 and dice[1].min() > 0.7, dice


TIMING = ("seconds", "seconds_affine", "max_rss_mb", "register_seconds", "threads")


@pytest.mark.workflow
def test_fused_register_and_metrics_change_no_value_and_rerun_only_the_metrics(phantom_cohort):
    """batch_fuse: a batch's metrics run in its register job. pairs.tsv is that of one job per pair and
    stage (atol 1e-6, timings aside); a changed pair-level qc setting then recomputes the metrics only."""
    d = phantom_cohort
    (d / "fast.yaml").write_text("method_params:\n  torch: {preset: fast}\n")
    tables = {}
    for name, extra in (("per_pair", "batch_size=1"), ("fused", "batch_size=2")):
        args = ("--configfile", d / "fast.yaml", "--config", f"samples={d / 'samples.tsv'}", f"outdir={d / name}",
                "methods=[affine,torch]", extra)
        if name == "fused":
            r = run_snakemake("-n", "--cores", "2", *args, cwd=d)
            plan = [rule for rule, _ in planned_jobs(r.stdout + r.stderr)]
            assert "metrics_batch" not in plan and plan.count("register_batch") == 2, plan
        r = run_snakemake("--cores", "2", *args, cwd=d)
        assert r.returncode == 0, r.stderr[-3000:]
        tables[name] = pd.read_csv(d / name / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str, "fixed": str}
                                   ).sort_values(["moving", "method"]).reset_index(drop=True)
    log = (d / "fused" / "logs" / "batches" / "ph" / "affine" / "register" / "batch-00000.log").read_text()
    assert "2 items, 2 at a time with 1 threads each" in log, log[-2000:]
    # torch's pairs too (batches.item_threads): one thread each, side by side, against the per-pair jobs' 2 threads
    log = (d / "fused" / "logs" / "batches" / "ph" / "torch" / "register" / "batch-00000.log").read_text()
    assert "2 items, 2 at a time with 1 threads each" in log, log[-2000:]
    a, b = tables["per_pair"], tables["fused"]
    assert len(a) == 4 and (a.status == "ok").all() and (b.status == "ok").all()
    # pairs.tsv says on how many threads each pair ran: torch's per-pair jobs 2, its batch items 1 each
    assert a.groupby("method").threads.unique().map(list).to_dict() == {"affine": [1], "torch": [2]}
    assert b.groupby("method").threads.unique().map(list).to_dict() == {"affine": [1], "torch": [1]}
    numeric = [c for c in a.columns if pd.api.types.is_numeric_dtype(a[c]) and c not in TIMING]
    assert {"dice_mean", "hd95", "folding_frac", "sdlogj", "lncc"} <= set(numeric)
    pd.testing.assert_frame_equal(a[numeric], b[numeric], check_exact=False, atol=1e-6, rtol=0)
    others = [c for c in a.columns if c not in numeric and c not in TIMING]
    pd.testing.assert_frame_equal(a[others], b[others])
    # a pair-level threshold changed: the fused jobs rerun, keep their registrations, redo the metrics
    pair_dir = d / "fused" / "ph" / "sub-02" / "to-01" / "torch"
    before = {f: (pair_dir / f).stat().st_mtime_ns for f in ("transforms.json", "metrics.json")}
    (d / "fast.yaml").write_text("method_params:\n  torch: {preset: fast}\nqc:\n  max_folding: 0.02\n")
    args = ("--configfile", d / "fast.yaml", "--config", f"samples={d / 'samples.tsv'}", f"outdir={d / 'fused'}",
            "methods=[affine,torch]", "batch_size=2")
    r = run_snakemake("-n", "--cores", "2", *args, cwd=d)
    plan = sorted({rule for rule, _ in planned_jobs(r.stdout + r.stderr)})
    assert "subjects_batch" not in plan and "affine_batch" not in plan and "register_batch" in plan, plan
    r = run_snakemake("--cores", "2", *args, cwd=d)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (pair_dir / "transforms.json").stat().st_mtime_ns == before["transforms.json"]
    assert (pair_dir / "metrics.json").stat().st_mtime_ns != before["metrics.json"]
    manifest = json.loads((d / "fused" / "batches" / "ph" / "torch" / "register" / "batch-00000.json").read_text())
    assert all(item.get("kept") for item in manifest["items"]), manifest


def test_the_affine_baselines_register_jobs_take_one_thread_and_run_side_by_side(phantom_cohort):
    """RegistrationMethod.threaded: the affine method's work is one thread's, so its register job asks
    for one (per pair), and its batch job for two pairs of one thread each (the fused test below checks
    that its log ran them two at a time); torch keeps the family's 2."""
    d = phantom_cohort
    for batch_size, rule in ((1, "register_method"), (2, "register_batch")):
        r = run_snakemake("-n", "--cores", "2", "--config", f"samples={d / 'samples.tsv'}", f"outdir={d / 'out'}",
                          "methods=[affine,torch]", f"batch_size={batch_size}", cwd=d)
        assert r.returncode == 0, r.stderr[-2000:]
        threads = {}
        for block in (r.stdout + r.stderr).split("rule ")[1:]:
            if block.startswith(rule + ":"):
                method = block.split("method=")[1].split(",")[0].split()[0]
                line = next((x for x in block.splitlines() if x.strip().startswith("threads:")), "threads: 1")
                threads.setdefault(method, set()).add(int(line.split(":")[1]))
        # per pair: 1 against 2; a batch: 2 pairs x 1 thread against 1 pair x 2 threads
        assert threads == ({"affine": {1}, "torch": {2}} if batch_size == 1 else {"affine": {2}, "torch": {2}}), threads


def _phantom_sheet(d, n):
    from tests.conftest import phantom, save
    rows = ["cohort\tsubject\tt1\tlabels"]
    for i in range(1, n + 1):
        t1, lab = phantom(shape=(20, 22, 18), shift=(0.3 * i, 0, 0), seed=i)
        save(t1 * 1000, d / f"s{i}_T1w.nii.gz")
        save(lab, d / f"s{i}_dseg.nii.gz")
        rows.append(f"ph\t{i:02d}\ts{i}_T1w.nii.gz\ts{i}_dseg.nii.gz")
    (d / "samples.tsv").write_text("\n".join(rows) + "\n")


def test_batch_size_auto_batches_a_local_run_of_eight_subjects_and_never_a_cluster_one(tmp_path):
    """auto (cohortreg.batches.items.auto_batch_size): 8+ subjects on this machine are planned as one job
    per stage (items side by side on --cores), 7 one job each; under a cluster executor (--jobs) a
    sheet keeps one job per subject below 1,000; a study that trains a learned model batches too."""
    def plan(n, *extra, methods="[affine,torch]"):
        d = tmp_path / f"n{n}{len(extra)}{len(methods)}"
        d.mkdir()
        _phantom_sheet(d, n)
        r = run_snakemake("-n", *extra, "--config", f"samples={d / 'samples.tsv'}", f"outdir={d / 'out'}",
                          f"methods={methods}", cwd=d)
        assert r.returncode == 0, r.stderr[-3000:]
        return {rule for rule, _ in planned_jobs(r.stdout + r.stderr)}, r.stdout + r.stderr

    rules, log = plan(8, "--cores", "2")
    assert {"subjects_batch", "affine_batch", "register_batch"} <= rules and "preprocess_subject" not in rules, rules
    assert "8 subjects on this machine: batch_size auto -> 50" in log, log[-3000:]
    rules, log = plan(7, "--cores", "2")
    assert {"preprocess_subject", "affine_pair", "register_method"} <= rules and "subjects_batch" not in rules, rules
    rules, _ = plan(8, "--cores", "2", methods="[torch,learned]")  # training reads the batches' files
    assert {"subjects_batch", "affine_batch", "train_model", "register_batch"} <= rules, rules
    pytest.importorskip("snakemake_executor_plugin_slurm")
    rules, _ = plan(8, "--executor", "slurm", "--jobs", "10")
    assert "preprocess_subject" in rules and "subjects_batch" not in rules, rules
