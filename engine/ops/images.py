"""Moving pictures between `ImageData`, PIL and the VAE's tensors, and fitting them to sizes."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from engine.api import ImageData


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB pixels as a (1, 3, H, W) float tensor in [-1, 1], the VAE's input range."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_images(pixels: torch.Tensor) -> list[ImageData]:
    """The VAE's (N, 3, H, W) output in [-1, 1] as 8-bit pictures."""
    array = ((pixels.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
    array = array.permute(0, 2, 3, 1).cpu().numpy()
    return [ImageData(width=a.shape[1], height=a.shape[0], rgb=a.tobytes()) for a in array]


def to_array(image: ImageData) -> np.ndarray:
    return np.frombuffer(image.rgb, dtype=np.uint8).reshape(image.height, image.width, 3)


def from_array(array: np.ndarray) -> ImageData:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return ImageData(width=array.shape[1], height=array.shape[0], rgb=array.tobytes())


def cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover width x height, then crop the centre (an image prompt fills the frame)."""
    scale = max(width / image.width, height / image.height)
    w, h = max(width, round(image.width * scale)), max(height, round(image.height * scale))
    resized = image.convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
    left, top = (w - width) // 2, (h - height) // 2
    return resized.crop((left, top, left + width, top + height))


def round_to_step(value: float, step: int) -> int:
    """The nearest multiple of `step`, at least one step."""
    return max(step, round(value / step) * step)


def resize_exact(image: ImageData, width: int, height: int) -> ImageData:
    """`image` at exactly width x height (Lanczos); the same object when it already is."""
    if (image.width, image.height) == (width, height):
        return image
    return ImageData.from_pil(image.to_pil().resize((width, height), Image.Resampling.LANCZOS))
