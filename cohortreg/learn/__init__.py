"""Learned registration: the network (MONAI's VoxelMorph), its training data, training and checkpoints.

The workflow trains a model per learned method (rules/learn.smk) and the registration methods
``learned`` and ``learned_io`` (cohortreg.registration.learned) run it, the second refining its
prediction per pair with the torch engine's greedy optimiser (instance optimisation).
"""
