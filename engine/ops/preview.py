"""Progress previews: latents to a small RGB picture by a fixed linear map, without the VAE.

A full VAE decode per step would cost as much as a denoising step on a GPU; a 4x3 projection of
the latent channels costs nothing and is close enough to show the composition forming.
"""

from __future__ import annotations

import torch

from engine.api import Family, ImageData
from engine.ops.grid import make_grid
from engine.ops.images import tensor_to_images

# Approximate colour of each latent channel, fitted by eye to the SD VAEs' latent spaces
# (rows: latent channels; columns: R, G, B). Random-weight tiny models get the same map: their
# previews are as meaningless as their pictures, but the path is the same.
_SD_FACTORS = torch.tensor(
    [
        [0.30, 0.21, 0.21],
        [0.19, 0.29, 0.17],
        [-0.16, 0.19, 0.26],
        [-0.18, -0.27, -0.47],
    ]
)
_SDXL_FACTORS = torch.tensor(
    [
        [0.37, 0.42, 0.43],
        [-0.25, 0.00, 0.11],
        [0.11, 0.11, -0.04],
        [-0.32, -0.25, -0.22],
    ]
)
_SDXL_BIAS = torch.tensor([0.16, 0.13, 0.09])

MIN_CELL = 64  # previews are upscaled (nearest) to at least this many pixels a side


def latents_to_preview(latents: torch.Tensor, family: Family) -> ImageData:
    """(N, 4, h, w) latents (or x0 estimates) as one small picture: a 2x2 grid for four cells."""
    factors = _SDXL_FACTORS if family is Family.SDXL else _SD_FACTORS
    x = latents.detach().float().cpu()
    rgb = torch.einsum("nchw,cr->nrhw", x, factors)
    if family is Family.SDXL:
        rgb = rgb + _SDXL_BIAS.view(1, 3, 1, 1)
    if rgb.shape[-1] < MIN_CELL or rgb.shape[-2] < MIN_CELL:
        factor = -(-MIN_CELL // min(rgb.shape[-1], rgb.shape[-2]))
        rgb = rgb.repeat_interleave(factor, dim=-1).repeat_interleave(factor, dim=-2)
    cells = tensor_to_images(rgb.clamp(-1, 1))
    grid = make_grid(cells)
    return grid if grid is not None else cells[0]
