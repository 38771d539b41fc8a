"""LoRA styles: small weight deltas the operator installs, which members pick per prompt.

`IMAGINE_LORA_DIR` names a folder of `.safetensors` LoRA files (the diffusers/PEFT or kohya
format that `load_lora_weights` reads); each file's stem is the style's name. A style is loaded
onto the resident pipeline the first time a job asks for it (diffusers' `load_lora_weights`,
which needs `peft`) and kept as a named adapter; each job then switches the adapters on at its
weight, or off. The img2img and inpaint pipelines share the same UNet and text encoder modules,
so they see the same adapter. Jobs with a style run alone (no batching across styles).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from engine.api import LoraChoice

log = logging.getLogger(__name__)

LORA_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def installed_loras(folder: str | Path | None) -> dict[str, Path]:
    """The styles in `folder`, by name (the file name without `.safetensors`, lower case)."""
    if not folder:
        return {}
    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"the LoRA folder {str(path)!r} (IMAGINE_LORA_DIR) is not a folder")
    found: dict[str, Path] = {}
    for file in sorted(path.glob("*.safetensors"), key=lambda f: f.stem.lower()):
        name = file.stem.lower()
        if LORA_NAME.fullmatch(name):
            found[name] = file
        else:
            log.warning("LoRA file %s skipped: its name is not 1-64 letters, digits, '.', '_' or '-'", file)
    return found


class LoraAdapters:
    """The LoRA styles of one pipeline: which are loaded, which one is on."""

    def __init__(self, pipe: Any, folder: str | Path | None) -> None:
        self.pipe = pipe
        self.files = installed_loras(folder)
        self.loaded: set[str] = set()
        self.active: LoraChoice | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.files)

    def apply(self, choice: LoraChoice | None) -> None:
        """Switch to `choice` (None: no style). Raises ValueError for a style not installed."""
        if choice == self.active:
            return
        if choice is None:
            self.pipe.disable_lora()
            self.active = None
            return
        path = self.files.get(choice.name)
        if path is None:
            known = ", ".join(self.files) or "none"
            raise ValueError(f"the LoRA style {choice.name!r} is not installed (installed: {known})")
        if choice.name not in self.loaded:
            log.info("loading LoRA style %s from %s", choice.name, path)
            self.pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=choice.name)
            self.loaded.add(choice.name)
        self.pipe.enable_lora()
        self.pipe.set_adapters([choice.name], adapter_weights=[float(choice.weight)])
        self.active = choice


__all__ = ["LORA_NAME", "LoraAdapters", "installed_loras"]
