"""Several subjects or pairs per job (config ``batch_size``): a 20,000-subject DAG of a few thousand jobs.

Snakemake spends about a millisecond per job and per file on every run, dry-runs included, and a
cluster spends seconds per submission; one job per subject and stage is 140,000 jobs at 20,000
subjects. A batch job runs one stage for ``batch_size`` subjects (or pairs) of a cohort and
writes the same per-subject files, logs and benchmark files as the per-subject rules; its own
output is a manifest listing each item's status.

Re-running stays per item. Snakemake reruns a batch when any of its inputs or settings changed
(and, by its rules, removes the manifest first), but inside the job an item whose outputs exist
and whose stamp (its settings, its input files' sizes and mtimes, the package version) is
unchanged is kept, not recomputed. An item that fails is logged with an ERROR line naming the
subject, file and reason, its now stale outputs are removed, and the batch goes on: one bad scan
never stops the others. Its manifest is then backdated (``backdate_failed``) at the end of the
run, so the next run retries exactly the failed items.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from .. import __version__
from ..io import file_identity, write_text_atomic
from ..paths import Layout
from ..provenance import fingerprint

log = logging.getLogger("cohortreg")
T = TypeVar("T")


def chunk(items: Sequence[T], size: int) -> list[list[T]]:
    """Consecutive chunks in sheet order: subjects appended to a sheet only touch its last batch."""
    size = max(int(size), 1)
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def batch_id(index: int) -> str:
    return f"{index:05d}"


AUTO_FROM_SUBJECTS = 1000  # bench/results/scale_dry_run.json: planning 1,000 subjects one job each took 29 s
AUTO_BATCH = 50            # ... and 20,000 subjects in batches of 50 took 15 s and 275 MB
# A local run batches from this many subjects: each job is a fresh interpreter (1-2 s of imports,
# torch's alone 1.5-2.7 s) and a pair needs about seven, so one job per stage running its items side
# by side on --cores saves more than the stages lose by waiting for each other (LPBA40 at 2 mm:
# 10 pairs 15.0 -> 8.1 s a pair, bench/results/throughput_lpba40_2mm_auto.json; 3 pairs 17.6 ->
# 14.4 s, throughput_lpba40_2mm_4subjects_auto.json). Smaller studies (the demo, a first try) keep
# one job per subject, each shown by Snakemake as such, for a few seconds more.
AUTO_LOCAL_FROM = 8


def auto_batch_size(setting: int | str, n_subjects: int, local: bool = False) -> int:
    """config batch_size: a number as given; 'auto': batches of 50 from 1,000 subjects, where
    planning one job per subject and stage would take longer than the work of a rerun; on a local
    run (local) already from 8 subjects, where the jobs' start-up would cost more than the work.
    Below that, one job per subject and stage. Either way a rerun redoes only changed subjects: a
    batch job keeps its finished items by stamp."""
    if setting == "auto":
        big = n_subjects >= AUTO_FROM_SUBJECTS or (local and n_subjects >= AUTO_LOCAL_FROM)
        return AUTO_BATCH if big else 1
    return max(int(setting), 1)


@dataclass
class Item:
    """One subject's (or pair's) share of a batch stage.

    Its stamp (what decides whether a finished item is kept) covers its settings, its input files, the
    code of its stage (and of its method's engine: ``engine``) and, for a learned method, its model file.
    """

    key: str                      # e.g. "preprocess ph/02": names it in logs, manifests and the stamps file
    stage: str                    # cohortreg.provenance's stage whose code makes it: preprocess, ..., template
    run: Callable[[], Any]
    outputs: list[str]
    log: str
    benchmark: str
    settings: dict[str, Any]      # everything besides the input files that decides the result
    inputs: list[str] = field(default_factory=list)   # files read (the stamp follows their size and mtime)
    needs: list[str] = field(default_factory=list)    # earlier stages' outputs: missing = upstream failed
    report: Callable[[], dict[str, Any]] | None = None  # what the manifest records of a finished item
    job: tuple[str, ...] = ()     # register items: registration.pairs.register_pairs' arguments, to run several at once
    threads: int = 0              # register items: the threads the pair runs on (its benchmark file says so)
    engine: str = ""              # register and template items: the engine whose code makes it
    model: str = ""               # a learned method's model file: a retrained model recomputes the item


def stamp(item: Item) -> str:
    files = [file_identity(p) for p in item.inputs if p]
    # The seed reaches ANTs through jobs.pin_threads (config 'seed'): a changed seed is a changed item.
    blob = json.dumps({"settings": item.settings, "inputs": files, "version": fingerprint(item.stage, item.engine),
                       "model": file_identity(item.model) if item.model else None,
                       "seed": os.environ.get("ANTS_RANDOM_SEED")}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()


def _remove(paths: Iterable[str]) -> None:
    for p in paths:
        if os.path.exists(p):
            os.remove(p)


def _write_benchmark(path: str, seconds: float, threads: int = 0, rss_mb: float | None = None) -> None:
    """Snakemake's benchmark columns that the aggregation reads, and the item's threads where known.
    max_rss: the item's process's peak (rss_mb, from a forked item), else the batch process's peak
    so far: an upper bound for this item."""
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 if rss_mb is None else rss_mb
    head, row = f"s\tmax_rss", f"{seconds:.4f}\t{rss_mb:.2f}"
    if threads:
        head, row = f"{head}\tthreads", f"{row}\t{threads}"
    write_text_atomic(f"{head}\n{row}\n", path)


class _ItemLog:
    """The item's own log file (what the per-subject job would have written), beside the batch log.

    Items may run in parallel threads: the file takes only the records of the thread that opened it.
    """

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.handler = logging.FileHandler(path, mode="w")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        thread = threading.get_ident()
        self.handler.addFilter(lambda record: record.thread == thread)

    def __enter__(self) -> None:
        log.addHandler(self.handler)

    def __exit__(self, *exc: object) -> None:
        log.removeHandler(self.handler)
        self.handler.close()


class ItemProcessError(RuntimeError):
    """An item that failed in its own process (run_items' forked items); the child's traceback with it."""

    def __init__(self, message: str, child_traceback: str = "") -> None:
        super().__init__(message)
        self.child_traceback = child_traceback


# Items whose time is in antspyx calls, which hold the GIL, wait on each other in threads side by side.
# On this 2-core VM, one thread per item, in sequence / two threads / two processes (the same files;
# bench/results/fork_items.json): 4 ANTs affines 88.7 / 96.0 / 46.9 s; 4 OASIS-TRT subjects' preprocessing
# and skull stripping 10.5 / 7.2 / 5.3 s (5 LPBA40 subjects: 6.2 / 4.3 / 3.5 s). So run_items forks a
# process per item for those stages. Not for torch (it releases the GIL,
# and a fork after its thread pools have started is not safe, hence not once it is loaded), nor for short
# numpy-bound items: the affine method's register and metrics items (0.2-0.4 s) took their batch job from
# 4.3-4.5 s to 4.8-5.2 s forked (bench/results/throughput_lpba40_2mm_fork_ab.json).
def forks_items(stage: str, method: str = "", settings: dict[str, Any] | None = None) -> bool:
    """Whether a batch runs its items of ``stage`` side by side in forked processes (run_items): the
    subjects stage (resampling, N4, atlas skull stripping), the ANTs affine (settings: config['affine'])
    and the registrations of a method whose engine is ants (settings: its method_params), while this
    process has not loaded torch."""
    from ..registration import resolve

    if stage == "affine":  # stages.affine_files' default (config.yaml's); that function's source is the affine's stamp
        engine = (settings or {}).get("engine", "torch")
    else:
        engine = resolve(method, settings).engine if stage == "register" else ""
    return (stage == "subjects" or engine == "ants") and "torch" not in sys.modules


def _in_this_process(run: Callable[[], Any]) -> None:
    run()


_FORK_LOCK = threading.Lock()


def _in_child(run: Callable[[], Any]) -> float:
    """Run ``run`` in a forked child process and wait for it; return the child's peak RSS in MB.

    The child writes the item's files (atomically, as in a thread) and its log records (the handlers'
    files are shared), and reports back through a pipe; an exception there is raised here with its
    message (ItemProcessError), a child that dies is a failed item, never a hang."""
    with _FORK_LOCK:  # no other item's child may inherit this pipe's write end (its EOF would wait for it)
        sys.stdout.flush()
        sys.stderr.flush()
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no process to be had (memory, a process limit): this item fails, with the reason
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:  # the child: run, report, and leave without the parent's exit handlers
            code, report = 0, {}
            try:
                os.close(read_end)
                run()
            except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
                code, report = 1, {"error": str(exc) or type(exc).__name__, "traceback": traceback.format_exc()}
            try:
                report["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
                with os.fdopen(write_end, "w") as out:
                    out.write(json.dumps(report))
            finally:
                os._exit(code)
        os.close(write_end)
    with os.fdopen(read_end) as inp:
        text = inp.read()
    _, status = os.waitpid(pid, 0)
    report = json.loads(text) if text else {}
    if "error" in report:
        raise ItemProcessError(report["error"], report.get("traceback", ""))
    if os.WIFSIGNALED(status):
        raise ItemProcessError(f"its process was killed by {signal.Signals(os.WTERMSIG(status)).name}")
    if os.WEXITSTATUS(status) != 0:
        raise ItemProcessError(f"its process exited with status {os.WEXITSTATUS(status)}")
    return float(report.get("rss_mb", 0.0))


def chains(items: list[Item]) -> list[list[Item]]:
    """Items grouped so that an item needing another's output runs after it, in the same chain
    (a subject's skull strip after its preprocessing); chains are independent of each other."""
    producer: dict[str, int] = {}
    out: list[list[Item]] = []
    for it in items:
        owner = next((producer[p] for p in it.needs if p in producer), None)
        if owner is None:
            owner = len(out)
            out.append([])
        out[owner].append(it)
        for p in it.outputs:
            producer[p] = owner
    return out


def workers_for(threads: int, per_item: int, n_items: int) -> int:
    """Items a batch job runs at once: its threads divided among items of ``per_item`` threads."""
    return max(1, min(max(int(threads), 1) // max(int(per_item), 1), n_items))


def _finished(it: Item, current: str, known: str | None) -> bool:
    """An item run_items keeps: its stamp is the one it last succeeded with, and its outputs are there."""
    return current == known and all(os.path.exists(p) for p in it.outputs)


def pending(items: list[Item], manifest: str) -> int:
    """How many of ``items`` run_items would run now, at most (an item whose inputs are missing counts,
    though run_items skips it)."""
    stamps = {**_sibling_stamps(manifest + ".stamps"), **_read_json(manifest + ".stamps")}
    return sum(not _finished(it, stamp(it), stamps.get(it.key)) for it in items)


# Engines whose result is bitwise the same on any thread count (tests/test_torchreg.py): every reduction
# that shapes the torch engine's field is elementwise or split by slabs (torchreg.fields.grid_sample_parallel).
# Not the learned ones (their network's convolutions were not checked) nor ANTs (ITK's threads).
THREAD_INVARIANT = frozenset({"torch"})


def machine_mb() -> float:
    """This machine's memory in MB."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def item_threads(threads: int, per_item: int, n_pending: int, engine: str, local: bool,
                 item_mb: float = 0.0, memory_mb: float | None = None) -> int:
    """Threads per item of a local register batch job of ``threads``: one, side by side, for an engine
    whose result does not depend on its thread count (THREAD_INVARIANT), when every thread has an item
    to run and ``threads`` items of ``item_mb`` each (config resources.register.mem_mb) fit in the
    machine's memory (``memory_mb``, default machine_mb()); else per_item.

    An item's registration uses its threads, but its reading, ANTs resampling, label vote and writing are
    one thread's work, while the other core waits. On this 2-core VM one-thread torch items side by side
    took the README command's 10 LPBA40 registrations from 19.1 to 16.0 s, the same Dice
    (bench/results/throughput_lpba40_2mm_item_threads_ab.json; side_by_side.json: 17.4 -> 15.0 s).
    A cluster job keeps per_item: its memory request is one item's.
    """
    if local and engine in THREAD_INVARIANT and per_item > 1 and n_pending >= threads:
        if threads * item_mb <= (machine_mb() if memory_mb is None else memory_mb):  # twice the items at once
            return 1
    return per_item


def register_items(cohort: str, pairs: list[tuple[str, str]], method: str, settings: dict[str, Any], L: Layout,
                   threads: int, per_item: int, manifest: str, local: bool, item_mb: float) -> list[Item]:
    """A register batch job's items, each with its threads: per_item, or one each (item_threads) in a local
    job of a thread-invariant engine with a pair to run for every one of the job's ``threads``."""
    items = pair_items("register", cohort, pairs, method, settings, L, per_item)
    engine = items[0].engine if items else ""
    if local and per_item > 1 and engine in THREAD_INVARIANT:  # else no stamps to read
        one = item_threads(threads, per_item, pending(items, manifest), engine, local, item_mb)
        for it in items:
            it.threads = one
    return items


def run_items(items: list[Item], manifest: str,
              run_together: Callable[[list[Item]], dict[str, float]] | None = None,
              workers: int = 1, processes: bool = False) -> dict[str, Any]:
    """Run (or keep) every item, then write the manifest; never raises for one item's failure.

    run_together: runs several items in one call (the torch engine's GPU stack) and returns the
    seconds of each item it finished; what it did not finish, or all if it raised, runs alone.
    workers: independent chains of items (see :func:`chains`) run in that many threads at once.
    torch, numpy and zlib release the GIL, so torch stages use the cores they were given; antspyx
    calls hold it (two apply_transforms in threads took as long as in sequence), so ANTs-heavy
    items gain less: with ``processes`` (forks_items), items side by side each run in a forked
    process, and the stamps, manifest and benchmark files are still written here.
    """
    forked = processes and workers > 1 and hasattr(os, "fork")
    stamps_path = manifest + ".stamps"
    stamps: dict[str, str] = _read_json(stamps_path)
    siblings: list[dict[str, str]] = []
    lock = threading.Lock()

    def known(key: str) -> str | None:
        if key in stamps:
            return stamps[key]
        with lock:
            if not siblings:  # read once, and only when an item is new to this batch
                siblings.append(_sibling_stamps(stamps_path))
        return siblings[0].get(key)

    records: dict[str, dict[str, Any]] = {}
    current: dict[str, str] = {}

    def save_stamps() -> None:
        with lock:
            write_text_atomic(json.dumps(stamps, indent=0, sort_keys=True), stamps_path)

    def needs_running(it: Item) -> bool:
        """Record a skipped or kept item; True if it must run."""
        rec = records[it.key] = {"item": it.key}
        missing = [p for p in it.needs if not os.path.exists(p)]
        current[it.key] = stamp(it)
        if missing:
            _remove(it.outputs)  # made from inputs that are gone: stale
            rec.update(status="skipped", error=f"input missing (an earlier stage failed): {missing[0]}")
            log.warning("%s: skipped, %s", it.key, rec["error"])
            return False
        if _finished(it, current[it.key], known(it.key)):
            with lock:
                stamps[it.key] = current[it.key]
            rec.update(status="ok", kept=True)
            return False
        return True

    def execute(it: Item, together: dict[str, float]) -> None:
        rec = records[it.key]
        with _ItemLog(it.log):
            log.info("%s (batch job, host=%s, SLURM_JOB_ID=%s, CUDA_VISIBLE_DEVICES=%s)", it.key, os.uname().nodename,
                     os.environ.get("SLURM_JOB_ID", "-"), os.environ.get("CUDA_VISIBLE_DEVICES", "-"))
            t0 = time.perf_counter()
            try:
                if it.key in together:
                    seconds, rss_mb = together[it.key], None
                    log.info("%s: done with %d others in one call, %.1f s each", it.key, len(together) - 1, seconds)
                else:
                    rss_mb = _in_child(it.run) if forked else _in_this_process(it.run)
                    seconds = time.perf_counter() - t0
                    log.info("%s: done in %.1f s%s", it.key, seconds, " (own process)" if forked else "")
                _write_benchmark(it.benchmark, seconds, it.threads, rss_mb)
                with lock:
                    stamps[it.key] = current[it.key]
                rec.update(status="ok", seconds=round(seconds, 3))
            except Exception as exc:  # one item; the batch goes on
                log.error("%s", exc)
                log.info("traceback:\n%s", getattr(exc, "child_traceback", "") or traceback.format_exc())
                _remove(it.outputs)
                with lock:
                    stamps.pop(it.key, None)
                rec.update(status="failed", error=str(exc))
        save_stamps()

    def run_chain(chain: list[Item]) -> None:
        for it in chain:  # in order: a subject's skull strip reads what its preprocessing wrote
            if needs_running(it):
                execute(it, {})

    if run_together is None:
        groups = chains(items)
        run: Callable[[list[Item]], Any] = run_chain
    else:  # independent items (pairs of one stage): decide all, run the rest together
        todo = [it for it in items if needs_running(it)]
        together: dict[str, float] = {}
        if len(todo) > 1:
            try:
                together = run_together(todo)
            except Exception as exc:  # e.g. out of GPU memory: one at a time instead
                log.warning("running %d items together failed (%s); running them one at a time", len(todo), exc)
        groups = [[it] for it in todo]
        run = lambda chain: [execute(it, together) for it in chain]  # noqa: E731
    if workers > 1 and len(groups) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(groups)), thread_name_prefix="item") as pool:
            list(pool.map(run, groups))  # run_chain never raises for an item
    else:
        for chain in groups:
            run(chain)
    for it in items:
        if records[it.key]["status"] == "ok" and it.report:
            records[it.key].update(it.report())
    save_stamps()
    failed = [r["item"] for r in records.values() if r["status"] != "ok"]
    out = {"items": [records[it.key] for it in items], "failed": failed, "version": __version__}
    write_text_atomic(json.dumps(out, indent=1) + "\n", manifest)
    log.info("batch: %d items, %d kept, %d failed", len(records), sum(bool(r.get("kept")) for r in records.values()),
             len(failed))
    return out


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _sibling_stamps(stamps_path: str) -> dict[str, str]:
    """Stamps of the stage's other batches: a subject inserted mid-sheet shifts later subjects into
    other batches, and their finished work must still be found."""
    here = Path(stamps_path)
    out: dict[str, str] = {}
    for p in sorted(here.parent.glob("batch-*.stamps")):
        if p != here:
            out.update(_read_json(str(p)))
    return out


def backdate_failed(manifests: Iterable[str]) -> list[str]:
    """Set the mtime of every manifest that lists a failed item to 1970: older than its inputs, so the
    next run reruns that batch (keeping its finished items) and everything downstream of it."""
    out = []
    for m in manifests:
        try:
            with open(m) as fh:
                failed = json.load(fh).get("failed")
        except (OSError, ValueError):
            continue
        if failed:
            os.utime(m, (0, 0))
            out.extend(failed)
    return out


# What each batch stage runs per item, from the rows and pairs the rule passes in its params.

def subject_items(cohort: str, rows: list[dict[str, Any]], pre: dict[str, Any], strip: dict[str, Any],
                  L: Layout, qc: dict[str, Any] | None = None) -> list[Item]:
    from ..subject.stages import preprocess_files, skullstrip_files

    qc = qc or {}
    pct = (pre.get("lower_percentile", 0.5), pre.get("upper_percentile", 99.5))
    items = []
    for r in rows:
        s = r["subject"]
        fmt = lambda pat: pat.format(cohort=cohort, subject=s)  # noqa: E731
        t1, labels, raw_json = fmt(L.preproc_t1), fmt(L.preproc_labels), fmt(L.preproc_json)
        brain, mask, verdict = fmt(L.brain), fmt(L.brain_mask), fmt(L.subject_qc)
        raw = [r["t1"], r["labels"]] + ([r["mask"]] if strip["method"] == "provided" else [])
        items.append(Item(f"preprocess {cohort}/{s}", "preprocess", (lambda s=s, r=r, t1=t1, labels=labels, j=raw_json:
                                                       preprocess_files(s, r["t1"], r["labels"], pre, t1, labels, j)),
                          [t1, labels, raw_json], fmt(L.log("preprocess")), fmt(L.benchmark("preprocess")),
                          {"row": r, "settings": pre}, inputs=raw))
        items.append(Item(f"skullstrip {cohort}/{s}", "skullstrip",
                          (lambda s=s, r=r, t1=t1, brain=brain, mask=mask, j=raw_json, v=verdict:
                           skullstrip_files(s, t1, strip, r["t1"], r["mask"], brain, mask, pct, j, qc, v)),
                          [brain, mask, verdict], fmt(L.log("skullstrip")), fmt(L.benchmark("skullstrip")),
                          {"row": r, "settings": strip, "percentiles": pct, "qc": qc}, inputs=[t1, raw_json] + raw[2:],
                          needs=[t1, raw_json]))
    return items


def pair_items(stage: str, cohort: str, pairs: list[tuple[str, str]], method: str, settings: dict[str, Any],
               L: Layout, threads: int = 1) -> list[Item]:
    """stage: affine | register | metrics, for (moving, fixed) pairs of one cohort."""
    from ..study.aggregate import PairResult, pair_row
    from ..evaluation.pair import evaluate_pair
    from ..registration.pairs import register_pair
    from ..registration import resolve
    from ..subject.stages import affine_files

    resolved = resolve(method, settings) if stage == "register" else None
    items = []
    for moving, fixed in pairs:
        ids = dict(cohort=cohort, moving=moving, fixed=fixed, method=method)
        subj = lambda pat, s: pat.format(cohort=cohort, subject=s)  # noqa: E731
        f_brain, m_brain = subj(L.brain, fixed), subj(L.brain, moving)
        f_labels, m_labels, f_mask = subj(L.preproc_labels, fixed), subj(L.preproc_labels, moving), subj(L.brain_mask, fixed)
        qc_files = (subj(L.subject_qc, moving), subj(L.subject_qc, fixed))
        mat = L.affine.format(**ids)
        files = {k: pat.format(**ids) for k, pat in (
            ("manifest", L.method_file("transforms.json")), ("warped", L.warped_t1), ("warped_labels", L.warped_labels),
            ("json", L.method_file("metrics.json")), ("labels", L.method_file("labels.tsv")),
            ("picture", L.qc_picture))}
        key = f"{stage} {cohort}/{moving}->{fixed}" + ("" if stage == "affine" else f" [{method}]")
        if stage == "affine":
            needs = [f_brain, m_brain]
            item = Item(key, stage, lambda f=f_brain, m=m_brain, out=mat: affine_files(f, m, settings, out), [mat],
                        L.log("affine", pair=True).format(**ids), L.benchmark("affine", pair=True).format(**ids),
                        {"settings": settings}, inputs=needs, needs=needs)
        elif stage == "register":
            needs = [f_brain, m_brain, m_labels, mat]
            job = (*needs, files["manifest"], files["warped"], files["warped_labels"])
            item = Item(key, stage, lambda: None, [files["manifest"], files["warped"], files["warped_labels"]],
                        L.log("register").format(**ids), L.benchmark("register").format(**ids),
                        {"method": method, "settings": settings}, inputs=needs, needs=needs, job=job, threads=threads,
                        engine=resolved.engine, model=resolved.model_file)
            # the item's own threads, read when it runs: register_items may give each one thread after building it
            item.run = lambda it=item: register_pair(method, settings, *it.job, threads=it.threads)
        else:
            needs = [f_labels, m_labels, files["warped_labels"], f_mask, files["manifest"]]
            extra = [f_brain, files["warped"], *qc_files]
            result = PairResult(**ids, metrics=files["json"], labels=files["labels"],
                                benchmark=L.benchmark("register").format(**ids),
                                benchmark_affine=L.benchmark("affine", pair=True).format(**ids), logs=())
            item = Item(key, stage, lambda n=needs, o=files, i=ids, f=f_brain, q=qc_files:
                        evaluate_pair(*n, o["json"], o["labels"], i, f, o["warped"], q, settings, o["picture"]),
                        [files["json"], files["labels"], files["picture"]], L.log("metrics").format(**ids),
                        L.benchmark("metrics").format(**ids), {"qc": settings}, inputs=needs + extra,
                        needs=needs + extra,
                        report=lambda r=result: dict(zip(("row", "label_lines"), pair_row(r) or ({}, []))))
        items.append(item)
    return items


def register_together(method: str, settings: dict[str, Any], threads: int = 1,
                      register: Callable[[list[tuple[str, ...]]], list[dict[str, Any]]] | None = None
                      ) -> Callable[[list[Item]], dict[str, float]] | None:
    """For run_items: register items of a method that optimises several pairs at once (torch on a
    GPU) go through one call, ``register`` of their ``job`` tuples (default registration.pairs.register_pairs);
    None for a method that would only loop."""
    from ..registration.pairs import register_pairs
    from ..registration import get_method

    if get_method(method, settings)(settings, threads).stack_size() <= 1:
        return None
    register = register or (lambda jobs: register_pairs(method, settings, jobs, threads))

    def run(todo: list[Item]) -> dict[str, float]:
        done = register([it.job for it in todo])
        return {it.key: float(d["register_seconds"]) for it, d in zip(todo, done)}

    return run
