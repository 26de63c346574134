"""Benchmarks (README: Benchmarks). Each Snakemake they start skips the SLURM plugin's 9 s `scontrol`
wait on a machine whose SLURM controller is down (cohortreg/cluster/slurm_probe.py): the README command's
install has no SLURM plugin, and a cluster's controller answers at once."""

import os

from cohortreg.cluster.slurm_probe import quick_scontrol_path

os.environ["PATH"] = quick_scontrol_path()
