"""Running on SLURM: the installable profile and the controller probe."""
