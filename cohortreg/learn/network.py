"""The network: MONAI's VoxelMorph (a U-Net that predicts a field, optionally integrated by scaling
and squaring), on a coarse copy of the working grid, padded to a multiple of its pooling factor.

Shapes: images [N, 1, D, H, W]; fields [N, 3, D, H, W] in voxels of their own grid, channel i
along axis i (the torch engine's convention, and MONAI's ``Warp``). The network is fully
convolutional, so pairs of any grid go through it; only the channels are fixed.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..torchreg.fields import resize_field


def build_network(channels: tuple[int, ...] = (8, 16, 16, 16), integration_steps: int = 7) -> torch.nn.Module:
    """VoxelMorph with ``channels`` (pairs: encoder, decoder per level) and a two-convolution head."""
    from monai.networks.nets import VoxelMorph, VoxelMorphUNet

    channels = tuple(int(c) for c in channels)
    backbone = VoxelMorphUNet(spatial_dims=3, in_channels=2, unet_out_channels=channels[0], channels=channels,
                              final_conv_channels=(channels[0], channels[0]))
    return VoxelMorph(backbone=backbone, integration_steps=int(integration_steps), half_res=False)


def pooling_factor(channels: tuple[int, ...]) -> int:
    """How many voxels one coarsest-level voxel spans: each encoder level halves the grid."""
    return 2 ** (len(channels) // 2)


def pad_to_multiple(x: torch.Tensor, factor: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Zero-pad the end of each spatial axis to a multiple of ``factor``; voxel (0, 0, 0) stays put, so
    cropping the output back to the input's shape maps a field back exactly."""
    shape = tuple(x.shape[2:])
    pad = [(-s) % factor for s in shape]
    return F.pad(x, (0, pad[2], 0, pad[1], 0, pad[0])), shape


def crop_to(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return x[:, :, :shape[0], :shape[1], :shape[2]]


def coarse_shape(shape: tuple[int, ...], grid_scale: int) -> tuple[int, ...]:
    return tuple(max(int(round(s / grid_scale)), 8) for s in shape)


def downsample(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return F.interpolate(x, size=shape, mode="trilinear", align_corners=True) if tuple(x.shape[2:]) != shape else x


def network_inputs(fixed: torch.Tensor, moving: torch.Tensor, grid_scale: int, factor: int
                   ) -> tuple[tuple[int, ...], tuple[int, ...], torch.Tensor, torch.Tensor]:
    """(full grid, coarse grid, fixed, moving): both images at 1/grid_scale, padded for the pooling."""
    full = tuple(fixed.shape[2:])
    small = coarse_shape(full, grid_scale)
    fp, _ = pad_to_multiple(downsample(fixed, small), factor)
    mp, _ = pad_to_multiple(downsample(moving, small), factor)
    return full, small, fp, mp


def predict(net: torch.nn.Module, fixed: torch.Tensor, moving: torch.Tensor, grid_scale: int,
            factor: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(field on the fixed grid, coarse field, coarse warped moving) for images on the fixed grid.

    The network sees both images at 1/grid_scale of the grid (padded for its pooling); its field is
    cropped back and resized to the full grid with its units rescaled (torchreg.fields.resize_field).
    """
    full, small, fp, mp = network_inputs(fixed, moving, grid_scale, factor)
    warped, ddf = net(mp, fp)
    ddf = crop_to(ddf, small)
    return resize_field(ddf, full), ddf, crop_to(warped, small)


def infer(net: torch.nn.Module, fixed: torch.Tensor, moving: torch.Tensor, grid_scale: int,
          factor: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(forward field, inverse field) on the fixed grid, for inference: no warped moving image.

    With integration steps the network's output is a stationary velocity v and its map is exp(v),
    so the inverse is exp(-v), integrated on the coarse grid like the forward (8x cheaper than the
    fixed-point inverse on the full grid, and exact up to the same integration error). Without
    integration the inverse is None: the caller inverts the displacement.
    """
    full, small, fp, mp = network_inputs(fixed, moving, grid_scale, factor)
    velocity = net.backbone(torch.cat([mp, fp], dim=1))
    if not getattr(net, "diffeomorphic", False):
        return resize_field(crop_to(velocity, small), full), None
    forward = crop_to(net.dvf2ddf(velocity), small)
    inverse = crop_to(net.dvf2ddf(-velocity), small)
    return resize_field(forward, full), resize_field(inverse, full)


def describe(net_args: dict[str, Any]) -> str:
    return f"VoxelMorph(channels={tuple(net_args['channels'])}, integration_steps={net_args['integration_steps']})"
