# What each job asks of the scheduler: threads, memory and runtime that grow with the attempt, GPUs,
# SLURM partition and account; and the signature cache that keeps planning 20,000 subjects fast.
import inspect


def signed(func):
    """Store a callable's parameters on it, through Snakemake's own overwrite_function_params hook.

    Snakemake runs inspect.signature on every input function, param function and resource of
    every job (twice for a callable resource): at 5,000 subjects that was half the dry run.
    Done once here, the lookup is an attribute read. Harmless where the hook is missing.
    """
    try:
        from snakemake.common import overwrite_function_params

        overwrite_function_params(func, inspect.signature(func).parameters)
    except Exception:  # an older or newer Snakemake: it inspects the function itself
        pass
    return func


try:  # every resource, constants included, is evaluated through Resource.evaluate(*args, **kwargs)
    from snakemake.resources import Resource as _Resource

    signed(_Resource.evaluate)
except Exception:
    pass


def res(family, key):
    return config["resources"][family][key]


def grows(family, key, per_item=1):
    """Memory and runtime grow with the attempt: a job SLURM killed for either is retried with more.
    per_item: the batch rules' runtime is per subject or pair, times the items in the batch."""
    base = res(family, key) * per_item
    cap = config["slurm"].get("max_runtime", 0) if key == "runtime" else 0
    if cap:
        return signed(lambda wildcards, attempt: min(base * attempt, cap))
    return signed(lambda wildcards, attempt: base * attempt)


def slurm_resources(partition=None):
    """slurm_partition / slurm_account only where set: each resource costs Snakemake work per job."""
    out = {"slurm_partition": partition or config["slurm"]["partition"], "slurm_account": config["slurm"]["account"]}
    return {k: v for k, v in out.items() if v}


def method_threads(method):
    """A register job's threads per pair: the register family's, or 1 for a method whose work is one
    thread's (the affine baseline: its job would hold a second core idle)."""
    return pair_threads(method, params_of(method), res("register", "threads"))


def given_cores():
    """--cores as a number, or None (a dry run without it)."""
    try:
        return int(workflow.cores)
    except (TypeError, ValueError):
        return None


def job_threads(method):
    """A per-pair register job's threads as it runs (pairs.tsv's threads): method_threads, which Snakemake
    caps at --cores on this machine. A batch item records its own (cohortreg.batches.items.item_threads)."""
    n = method_threads(method)
    return min(n, given_cores() or n) if LOCAL_RUN else n


def register_threads(wildcards):
    return method_threads(wildcards.method)


def method_resources():
    """register_method's gpu and partition: functions of the method only when some method may want
    a GPU (a function resource is evaluated per job), plain values otherwise."""
    if not any(gpus_for(m) for m in METHODS):
        return slurm_resources()
    return {"gpu": signed(gpus), **slurm_resources(partition=signed(slurm_partition))}


def slurm_partition(wildcards):
    """SLURM partition of a method's job: the GPU one for GPU jobs, else the CPU one ('' = default).

    Only register_method needs a function; other rules take config["slurm"]["partition"] as a
    plain value (a function resource costs Snakemake an inspect.signature per job: seconds at 20k).
    """
    return partition_for(gpus(wildcards))


def partition_for(gpu):
    """The GPU partition for a job with a GPU (where one is configured), else the CPU one."""
    if gpu and config["slurm"]["gpu_partition"]:
        return config["slurm"]["gpu_partition"]
    return config["slurm"]["partition"]



def gpus_for(method):
    """gpu=1 (the SLURM plugin's --gpus=1) for a GPU-capable method set to device cuda or to gpu: true."""
    params = params_of(method)
    wants = bool(params.get("gpu", False)) or str(params.get("device", "cpu")).startswith("cuda")
    return int(get_method(method, params).uses_gpu and wants)


def gpus(wildcards):
    return gpus_for(wildcards.method)


signed(register_threads)
