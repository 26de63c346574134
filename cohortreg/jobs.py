"""What every Snakemake script does around its one package call: log, pin threads, report errors.

The log file is a failed subject's only witness on a cluster, so an error is written there as a
single ``ERROR`` line naming subject, file and reason (the cohort tables quote that line), then
re-raised so Snakemake marks the job failed and removes its partial outputs.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from contextlib import contextmanager
from typing import Any, Iterator

from .allocator import keep_freed_memory
from .lazy_ants import import_ants

log = logging.getLogger("cohortreg")


def pin_threads(threads: int, seed: int | None = None) -> None:
    """Threads reach every library explicitly; set before antspyx/torch start their thread pools."""
    n = str(max(int(threads), 1))
    for var in ("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = n
    if seed is not None:
        os.environ["ANTS_RANDOM_SEED"] = str(seed)
        seed_ants(seed)


def seed_ants(seed: int) -> None:
    """Make antspyx pass ``--random-seed`` to antsRegistration (MI sampling is random).

    antspyx 0.6.3 ignores ANTS_RANDOM_SEED and seeds from the clock unless its module-level
    seed is set; its public setter would also force one thread, so the attribute is set directly.
    Without this, the same pair gave affine Dice 0.640 in one run and 0.642 in the next.
    """
    ants = import_ants()

    ants.config._random_seed = int(seed)


@contextmanager
def job(smk: Any, what: str, threads: int | None = None) -> Iterator[logging.Logger]:
    """Context for a script body: logging to snakemake.log[0], threads pinned, errors logged then raised.

    threads: what each library may use, if not the job's own (a batch job running items in
    parallel pins each item's share)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if smk.log:
        os.makedirs(os.path.dirname(str(smk.log[0])) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(str(smk.log[0]), mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers,
                        force=True)
    pin_threads(smk.threads if threads is None else threads, smk.config.get("seed"))
    keep_freed_memory()
    log.info("%s: %s (threads=%s, host=%s, SLURM_JOB_ID=%s, CUDA_VISIBLE_DEVICES=%s)", what,
             dict(smk.wildcards.items()), smk.threads, os.uname().nodename, os.environ.get("SLURM_JOB_ID", "-"),
             os.environ.get("CUDA_VISIBLE_DEVICES", "-"))
    try:
        yield log
    except Exception as exc:
        log.error("%s", exc)
        log.info("traceback:\n%s", traceback.format_exc())
        raise SystemExit(1) from None
    log.info("%s: done", what)
