"""Model presets: the defaults that make a model feel right, kept as plain data.

A preset names where the weights come from and carries everything that differs between model
families: the native resolution (what `--ar` sizes are built around), the size step, the default
steps and guidance, the Vary and Upscale strengths (an SDXL strength is not an SD 1.5 one), and the
house-style text that `--stylize` scales. No torch here: the bot reads presets to size requests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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


_SD_STYLE = "highly detailed, beautiful lighting, rich colour, sharp focus, masterpiece"

_TINY = Preset(
    name="tiny",
    family=Family.SD,
    source="builtin:tiny",
    native_width=128,
    native_height=128,
    size_step=16,
    default_steps=8,
    default_guidance=5.0,
    vary_subtle=0.35,
    vary_strong=0.7,
    upscale_subtle=0.25,
    upscale_creative=0.5,
    house_style="vivid painting",
    upscale_tile=256,
    description="small random-weight SD 1.x-family pipeline built locally: tests and demos",
)
_SD15 = Preset(
    name="sd15",
    family=Family.SD,
    source="stable-diffusion-v1-5/stable-diffusion-v1-5",
    native_width=512,
    native_height=512,
    size_step=64,
    default_steps=30,
    default_guidance=7.0,
    vary_subtle=0.4,
    vary_strong=0.75,
    upscale_subtle=0.2,
    upscale_creative=0.4,
    house_style=_SD_STYLE,
    upscale_tile=768,
    description="Stable Diffusion 1.5 (512x512)",
)
# Few-step models: strength * steps must leave at least one step.
_SD_TURBO = replace(
    _SD15,
    name="sd-turbo",
    source="stabilityai/sd-turbo",
    default_steps=4,
    default_guidance=0.0,
    vary_subtle=0.5,
    upscale_subtle=0.5,
    upscale_creative=0.75,
    description="SD-Turbo: 1-4 steps, no classifier-free guidance (512x512)",
)

# Each preset is written out where it is the first of its kind; a relative differs from it only
# where it says so.
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="toy",
            family=Family.SD,
            source="package:toy_model",
            native_width=128,
            native_height=128,
            size_step=16,
            default_steps=20,
            default_guidance=5.0,
            vary_subtle=0.45,
            vary_strong=0.75,
            upscale_subtle=0.25,
            upscale_creative=0.45,
            outpaint_strength=1.0,
            house_style="",  # the toy world has no style words; --stylize changes nothing here
            upscale_tile=256,
            description="the project's own small model (128 px), trained on a world of coloured shapes; "
            "shipped in the package (docs/toy-model.md)",
        ),
        _TINY,
        replace(
            _TINY,
            name="tiny-xl",
            family=Family.SDXL,
            source="builtin:tiny-xl",
            vary_subtle=0.3,
            vary_strong=0.65,
            description="small random-weight SDXL-family pipeline built locally: tests and demos",
        ),
        _SD15,
        replace(
            _SD15,
            name="sd21",
            source="stabilityai/stable-diffusion-2-1",
            native_width=768,
            native_height=768,
            upscale_tile=1024,
            description="Stable Diffusion 2.1 (768x768, v-prediction)",
        ),
        replace(
            _SD15,
            name="sdxl",
            family=Family.SDXL,
            source="stabilityai/stable-diffusion-xl-base-1.0",
            native_width=1024,
            native_height=1024,
            default_guidance=6.0,
            vary_subtle=0.3,
            vary_strong=0.65,
            upscale_creative=0.35,
            upscale_tile=1024,
            description="SDXL 1.0 base (1024x1024)",
        ),
        _SD_TURBO,
        replace(
            _SD_TURBO,
            name="sdxl-turbo",
            family=Family.SDXL,
            source="stabilityai/sdxl-turbo",
            description="SDXL-Turbo: 1-4 steps, no classifier-free guidance (512x512)",
        ),
    )
}


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
