"""Model presets: the defaults that make a model feel right, kept as plain data (presets.toml).

A preset names where the weights come from and carries everything that differs between model
families: the native resolution (what `--ar` sizes are built around), the size step, the default
steps and guidance, the Vary and Upscale strengths (an SDXL strength is not an SD 1.5 one), and the
house-style text that `--stylize` scales. No torch here: the bot reads presets to size requests.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, replace
from importlib import resources

from engine.api import Family


@dataclass(frozen=True)
class Preset:
    name: str
    family: Family
    # a Hub repo id, "builtin:<name>" for the locally built random-weight models, or
    # "package:<folder>" for weights shipped inside the engine package (the toy model)
    source: str
    native_width: int
    native_height: int
    size_step: int
    default_steps: int
    default_guidance: float
    vary_subtle: float  # img2img strength of Vary (Subtle)
    vary_strong: float  # img2img strength of Vary (Strong)
    upscale_subtle: float  # refine strength of Upscale (Subtle)
    upscale_creative: float  # refine strength of Upscale (Creative)
    outpaint_strength: float = 1.0  # how much of the new area is re-noised (1.0: all of it)
    house_style: str = ""  # mixed into the conditioning with weight from --stylize
    upscale_tile: int = 1024  # upscale in overlapping tiles of this size once the output is larger
    description: str = ""

    @property
    def builtin(self) -> bool:
        return self.source.startswith("builtin:")

    @property
    def packaged(self) -> bool:
        return self.source.startswith("package:")


class PresetError(ValueError):
    """presets.toml names a key that is not a field, gives a value of the wrong type, leaves a
    field out, inherits from a preset not written above it, or names a preset in a way that could
    never be chosen (capitals, spaces)."""


_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*")

# What a field's annotation (a string, under `from __future__ import annotations`) accepts.
_ACCEPTS: dict[str, tuple[tuple[type, ...], str]] = {
    "str": ((str,), "text"),
    "int": ((int,), "a whole number"),
    "float": ((int, float), "a number"),
    "Family": ((str,), "text"),
}


def parse_presets(text: str) -> dict[str, Preset]:
    """The presets written in `text` (presets.toml's format), in the order they are written."""
    presets: dict[str, Preset] = {}
    types = {f.name: str(f.type) for f in dataclasses.fields(Preset) if f.name != "name"}
    for name, table in tomllib.loads(text).items():
        if not isinstance(table, dict):
            raise PresetError(f"{name!r} is not a preset: write each one as a [table]")
        if not _NAME.fullmatch(name):
            # `get_preset` lowercases what it is given: a name in capitals could never be chosen
            raise PresetError(f"preset {name!r}: a name is lowercase letters, digits, '.' and '-'")
        values = dict(table)
        parent = values.pop("inherit", None)
        if parent is not None and not isinstance(parent, str):
            raise PresetError(f"preset {name!r}: inherit = {parent!r} is not a preset's name")
        for key, value in values.items():
            if key not in types:
                raise PresetError(f"preset {name!r}: {key!r} is not a preset field")
            # bool is an int to Python, never a size or a strength here
            accepted, what = _ACCEPTS[types[key]]
            if isinstance(value, bool) or not isinstance(value, accepted):
                raise PresetError(f"preset {name!r}: {key} = {value!r} is not {what}")
        if "family" in values:
            try:
                values["family"] = Family(values["family"])
            except ValueError:
                families = ", ".join(f.value for f in Family)
                raise PresetError(f"preset {name!r}: family must be one of {families}") from None
        if parent is None:
            missing = [
                f.name
                for f in dataclasses.fields(Preset)
                if f.default is dataclasses.MISSING and f.name not in values and f.name != "name"
            ]
            if missing:
                raise PresetError(f"preset {name!r} inherits nothing and leaves out {', '.join(missing)}")
            presets[name] = Preset(name=name, **values)
        elif parent in presets:
            presets[name] = replace(presets[parent], name=name, **values)
        else:
            raise PresetError(f"preset {name!r} inherits from {parent!r}, which is not written above it")
    return presets


# Package data, read once at import: the bot sizes requests from it, so it must not need torch.
PRESETS: dict[str, Preset] = parse_presets(
    resources.files("engine").joinpath("presets.toml").read_text("utf-8")
)


# The file in a model folder that names the preset whose defaults the folder takes
# (engine.models.folder_preset; the training's export writes "toy").
PRESET_HINT = "imagine-preset.txt"


def get_preset(name: str) -> Preset | None:
    """The preset of that name (case-insensitive), or None."""
    return PRESETS.get(name.strip().lower())


def preset_for_family(family: Family, name: str, native: int | None = None) -> Preset:
    """Defaults for a model that is not a preset (a Hub id, a folder, a checkpoint file).

    SD 1.x/2.x get SD 1.5's numbers, SDXL-family models get SDXL's; `native` overrides the
    native resolution when the model's own config says otherwise.
    """
    base = PRESETS["sdxl" if family is Family.SDXL else "sd15"]
    size = native or base.native_width
    return replace(
        base,
        name=name,
        source=name,
        native_width=size,
        native_height=size,
        description=f"{family.value} model loaded from {name}",
    )
