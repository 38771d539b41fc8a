"""What a speed path costs in pixels: mean absolute difference and SSIM against the plain path.

SSIM (Wang et al. 2004, 11x11 Gaussian window, sigma 1.5, on luminance) stands in for a learned
perceptual metric: LPIPS needs downloaded network weights, which no machine of ours can fetch.
1.0 is identical; differences a viewer cannot see usually stay above 0.98.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.api import ImageData


def as_array(image: ImageData) -> np.ndarray:
    """(H, W, 3) float64 levels 0-255."""
    return np.frombuffer(image.rgb, dtype=np.uint8).reshape(image.height, image.width, 3).astype(np.float64)


def mean_pixel_difference(a: list[ImageData], b: list[ImageData]) -> float:
    """Mean absolute difference in 8-bit levels over matching images."""
    return float(np.mean([np.abs(as_array(x) - as_array(y)).mean() for x, y in zip(a, b, strict=True)]))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g /= g.sum()
    return (g[:, None] * g[None, :]).reshape(1, 1, size, size)


def ssim(a: ImageData, b: ImageData) -> float:
    """Structural similarity of two same-size images' luminance (1.0: identical)."""

    def luminance(image: ImageData) -> torch.Tensor:
        rgb = torch.from_numpy(as_array(image))
        y = rgb @ torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
        return y.reshape(1, 1, *y.shape)

    x, y = luminance(a), luminance(b)
    window = _gaussian_window()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
    var_x = F.conv2d(x * x, window) - mu_x**2
    var_y = F.conv2d(y * y, window) - mu_y**2
    cov = F.conv2d(x * y, window) - mu_x * mu_y
    score = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(score.mean())


def mean_ssim(a: list[ImageData], b: list[ImageData]) -> float:
    return float(np.mean([ssim(x, y) for x, y in zip(a, b, strict=True)]))
