"""Composable guidance: every `::` segment is its own conditioning term.

For each cell the UNet sees the unconditional embedding and one embedding per term in a single
batch, and the step's noise estimate is

    eps = eps_uncond + g * sum_i w_i * (eps_i - eps_uncond)

with the weights normalised so the positive ones sum to 1. Negative weights (`b::-0.5`) push
away from their term; each `--no x` is the term `x` with weight -0.5, as in Midjourney. A plain
prompt (one segment, no `--no`) is exactly classifier-free guidance, and with guidance <= 1
(few-step models) it skips the unconditional pass entirely.

House style, `--chaos` and `--weird` act on the embeddings, which costs no extra UNet work:
- house style: each positive term's embedding moves towards the preset's style text by
  `0.5 * stylize / 1000` (`--style raw` or `--stylize 0`: not at all);
- chaos: each cell gets its own embedding noise and guidance jitter, in proportion to chaos;
- weird: embedding noise of its own plus a colour cast in the starting noise, in proportion to
  weird/3000: off-distribution pictures.
All per-cell randomness comes from the cell's own seed, so a cell can be reproduced alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.api import Family, PromptSpec
from engine.models import LoadedModel

NO_WEIGHT = -0.5  # `--no x` is `x::-0.5`
CHAOS_SALT = 0x6368616F  # "chao": the chaos stream of a cell's seed, apart from its noise stream
WEIRD_SALT = 0x77656972  # "weir"


@dataclass
class Terms:
    """The conditioning terms of one request, before per-cell changes."""

    texts: list[str]
    weights: list[float]  # normalised; one per text
    use_uncond: bool


@dataclass
class Conditioning:
    """Per-cell embeddings ready for the UNet: `embeds[n, t]`, term 0 is unconditional when used."""

    embeds: torch.Tensor  # (N, T, seq, dim)
    pooled: torch.Tensor | None  # (N, T, pooled_dim), SDXL only
    weights: list[float]  # one per conditional term
    use_uncond: bool
    guidance: torch.Tensor  # (N,) per-cell guidance scale

    @property
    def terms(self) -> int:
        return self.embeds.shape[1]


def plan_terms(prompt: PromptSpec, guidance: float) -> Terms:
    """Turn segments and `--no` into weighted terms; raise a clear ValueError on an impossible mix."""
    texts: list[str] = []
    weights: list[float] = []
    for text, weight in prompt.segments:
        if weight == 0:
            continue
        texts.append(text.strip())
        weights.append(float(weight))
    for term in prompt.negative:
        if term.strip():
            texts.append(term.strip())
            weights.append(NO_WEIGHT)
    positive = sum(w for w in weights if w > 0)
    if positive <= 0:
        raise ValueError("the prompt needs at least one segment with a positive weight")
    weights = [w / positive for w in weights]
    plain = len(texts) == 1
    return Terms(texts=texts, weights=weights, use_uncond=not (plain and guidance <= 1.0))


def _encode(model: LoadedModel, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
    pipe = model.pipe
    with torch.no_grad():
        if model.family is Family.SDXL:
            embeds, _, pooled, _ = pipe.encode_prompt(
                prompt=texts, device=model.device, num_images_per_prompt=1, do_classifier_free_guidance=False
            )
            return embeds, pooled
        embeds, _ = pipe.encode_prompt(texts, model.device, 1, False)
        return embeds, None


def _fixed(model: LoadedModel, key: str, make) -> tuple[torch.Tensor, torch.Tensor | None]:
    """An encoding that is the same for every job on this model: made on first use, then kept."""
    if key not in model.fixed_encodings:
        model.fixed_encodings[key] = make()
    return model.fixed_encodings[key]


def _uncond(model: LoadedModel) -> tuple[torch.Tensor, torch.Tensor | None]:
    def make() -> tuple[torch.Tensor, torch.Tensor | None]:
        embeds, pooled = _encode(model, [""])
        if model.family is Family.SDXL and model.pipe.config.get("force_zeros_for_empty_prompt", False):
            # SDXL was trained with zeroed embeddings as its unconditional input.
            return torch.zeros_like(embeds), torch.zeros_like(pooled)
        return embeds, pooled

    return _fixed(model, "uncond", make)


def _cell_generator(seed: int, salt: int) -> torch.Generator:
    return torch.Generator("cpu").manual_seed((int(seed) ^ salt) & 0xFFFF_FFFF_FFFF_FFFF)


def build_conditioning(
    model: LoadedModel,
    prompt: PromptSpec,
    seeds: list[int] | tuple[int, ...],
    guidance: float,
    *,
    stylize: int = 100,
    style: str | None = None,
    chaos: int = 0,
    weird: int = 0,
) -> Conditioning:
    """Encode the terms once, then apply house style, chaos and weird per cell."""
    terms = plan_terms(prompt, guidance)
    embeds, pooled = _encode(model, terms.texts)  # (T, seq, dim)
    style_text = model.preset.house_style
    amount = (
        0.0 if (style or "").lower() == "raw" or not style_text else 0.5 * min(max(stylize, 0), 1000) / 1000
    )
    if amount > 0:
        s_embeds, s_pooled = _fixed(model, "style", lambda: _encode(model, [style_text]))
        positive = torch.tensor([w > 0 for w in terms.weights], device=embeds.device).view(-1, 1, 1)
        embeds = torch.where(positive, torch.lerp(embeds, s_embeds.expand_as(embeds), amount), embeds)
        if pooled is not None:
            pooled = torch.where(
                positive[:, :, 0], torch.lerp(pooled, s_pooled.expand_as(pooled), amount), pooled
            )
    if terms.use_uncond:
        u_embeds, u_pooled = _uncond(model)
        embeds = torch.cat([u_embeds, embeds])
        if pooled is not None:
            pooled = torch.cat([u_pooled, pooled])

    n = len(seeds)
    cell_embeds = embeds.unsqueeze(0).repeat(n, 1, 1, 1)
    cell_pooled = pooled.unsqueeze(0).repeat(n, 1, 1) if pooled is not None else None
    scale = max(guidance, 1.0)
    cell_guidance = torch.full((n,), scale)
    if chaos > 0 or weird > 0:
        first = 1 if terms.use_uncond else 0  # the unconditional term stays put
        std = embeds[first:].float().std().item()
        for i, seed in enumerate(seeds):
            shape = cell_embeds[i, first:].shape
            if chaos > 0:
                g = _cell_generator(seed, CHAOS_SALT)
                noise = torch.randn(shape, generator=g).to(cell_embeds)
                cell_embeds[i, first:] += 0.6 * chaos / 100 * std * noise
                jitter = torch.rand((), generator=g).item() * 2 - 1
                cell_guidance[i] = scale * (1 + 0.5 * chaos / 100 * jitter)
            if weird > 0:
                g = _cell_generator(seed, WEIRD_SALT)
                noise = torch.randn(shape, generator=g).to(cell_embeds)
                cell_embeds[i, first:] += 1.0 * weird / 3000 * std * noise
                cell_guidance[i] = cell_guidance[i] * (1 + 0.5 * weird / 3000)
    return Conditioning(
        embeds=cell_embeds,
        pooled=cell_pooled,
        weights=terms.weights,
        use_uncond=terms.use_uncond,
        guidance=cell_guidance.to(model.device),
    )


def weird_colour_cast(seed: int, weird: int, channels: int) -> torch.Tensor:
    """A per-channel offset of the starting noise for `--weird` (zero when weird is 0)."""
    if weird <= 0:
        return torch.zeros(1, channels, 1, 1)
    g = _cell_generator(seed, WEIRD_SALT + 1)
    return 0.8 * weird / 3000 * torch.randn((1, channels, 1, 1), generator=g)


def combine(noise: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    """Fold the UNet's (T*N, ...) output, term-major, into one guided estimate per cell."""
    n = cond.embeds.shape[0]
    per_term = noise.view(cond.terms, n, *noise.shape[1:])
    if not cond.use_uncond:
        return per_term[0]
    uncond = per_term[0]
    total = torch.zeros_like(uncond)
    for i, w in enumerate(cond.weights):
        total = total + w * (per_term[i + 1] - uncond)
    g = cond.guidance.to(noise.dtype).view(n, *([1] * (noise.dim() - 1)))
    return uncond + g * total
