"""Our own registration engine in PyTorch: the same code on CPU and CUDA.

Tensors are batch-first ``[N, C, D, H, W]``; displacements are in voxels of the grid they live
on, channel order = tensor axes (D, H, W), unless a docstring says mm.
"""
