"""Pictures a user handed in (an image prompt, /blend's sources, /describe's upload), kept so
that the job can run or be looked at again after a restart.

They live in `inputs/` under the data directory, apart from `images/`, because they are not a
job's results (the store's orphan sweep only knows result images). A job row names them by
their path relative to the data directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from engine.api import ImageData
from storage.files import ImageFiles


async def save_input_image(files: ImageFiles, name: str, image: ImageData) -> str:
    """Write `image` as `inputs/<name>.png` (atomically); returns that relative path."""
    relative = f"inputs/{name}.png"
    target = Path(files.data_dir) / relative

    def write() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        picture = image.to_pil()  # type: ignore[no-untyped-call]  # engine.api keeps PIL lazy
        picture.save(temporary, format="PNG", compress_level=1)
        temporary.replace(target)

    await asyncio.to_thread(write)
    return relative


async def remove_input_images(files: ImageFiles, relatives: Iterable[str]) -> None:
    """Remove inputs that no row names (their submission was refused or failed to be written)."""
    for relative in relatives:
        await asyncio.to_thread((Path(files.data_dir) / relative).unlink, missing_ok=True)


async def load_input_image(files: ImageFiles, relative: str) -> ImageData:
    """A kept input as raw pixels, for the engine."""
    picture = await asyncio.to_thread(files.open_image, relative)
    return ImageData.from_pil(picture)
