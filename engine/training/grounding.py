"""Training scaffolding that teaches the toy model where things are: none of it ships.

A UNet knows where it is only from what zero padding at the borders tells its convolutions, and
nothing in these pictures asks it to tell left from right (skies and grounds teach top from
bottom). The first model learned "top" and "bottom" and drew "left" and "right" in the same place:
its text encoder gave the two words encodings 99.6% alike, because nothing downstream used the
difference. Two auxiliary losses fix the cause rather than the symptom:

- `PositionProbe`: 1x1 heads must read each cell's (x, y) from the features that feed the
  cross-attention, so those features carry where they are;
- `AttentionGrounding`: each object's words (its size, colour, kind and place) must put their
  cross-attention mass on that object's region, as TokenCompose (Wang et al., CVPR 2024) grounds
  tokens in segmentation masks. The words "left" and "right" then mean a region.

Both read the model's own activations through hooks and an attention processor set for training
only; the exported folder holds the ordinary diffusers classes and processors.
"""

from __future__ import annotations

import math

import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from engine.training.world import PLACES, Thing, thing_box

PLACE_WORDS = frozenset({"left", "right", "top", "bottom", "centre", "center", "middle"})

# Words that say nothing about one object's whereabouts: not grounded.
_UNGROUNDED = frozenset({"a", "an", "one", "on", "the", "at", "to", "in", "of", "side", "corner", "picture"})


class PositionProbe(torch.nn.Module):
    """Reads (x, y) in [-1, 1] from the features entering each cross-attention block of the UNet."""

    def __init__(self, unet) -> None:
        super().__init__()
        self._features: list[torch.Tensor] = []
        blocks = [b for b in unet.down_blocks if getattr(b, "has_cross_attention", False)]
        blocks.append(unet.mid_block)
        layers = [b.resnets[0] for b in blocks]
        self.heads = torch.nn.ModuleList(torch.nn.Conv2d(r.out_channels, 2, 1) for r in layers)
        for r in layers:
            r.register_forward_hook(self._keep)

    def _keep(self, _module, _inputs, out: torch.Tensor) -> None:
        # Only training steps: a preview sampled mid-run (under no_grad) must leave nothing behind
        # for the next step's loss.
        if torch.is_grad_enabled():
            self._features.append(out)

    def loss(self) -> torch.Tensor:
        total = torch.zeros(())
        for head, feature in zip(self.heads, self._features, strict=True):
            h, w = feature.shape[-2:]
            ys = torch.linspace(-1, 1, h).view(1, h, 1).expand(1, h, w)
            xs = torch.linspace(-1, 1, w).view(1, 1, w).expand(1, h, w)
            target = torch.cat([xs, ys]).unsqueeze(0)
            total = total + (head(feature) - target).pow(2).mean()
        self._features.clear()
        return total / len(self.heads)


class _Recording:
    """Cross-attention computed in the open, its probabilities kept for the grounding loss."""

    def __init__(self, kept: list[torch.Tensor]) -> None:
        self.kept = kept
        self.plain = AttnProcessor2_0()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        if encoder_hidden_states is None or hidden_states.ndim != 3:
            return self.plain(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kw)
        batch = hidden_states.shape[0]
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probs = attn.get_attention_scores(query, key, None)  # (batch * heads, cells, tokens)
        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        out = attn.to_out[1](attn.to_out[0](out))
        if torch.is_grad_enabled():  # not while a preview is sampled mid-run
            self.kept.append(probs.view(batch, attn.heads, *probs.shape[1:]).mean(1))
        return out


def word_regions(
    tokenizer, text: str, spans: list[tuple[Thing, str]], size: tuple[int, int], grid: tuple[int, int]
) -> list[tuple[int, torch.Tensor, str]]:
    """(token index, boolean mask over the attention grid's cells, the object's place) for every
    grounded word."""
    width, height = size
    gh, gw = grid
    ys = (torch.arange(gh, dtype=torch.float32) + 0.5) * height / gh
    xs = (torch.arange(gw, dtype=torch.float32) + 0.5) * width / gw
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    out: list[tuple[int, torch.Tensor, str]] = []
    limit = tokenizer.model_max_length - 1
    start = 0
    for thing, phrase in spans:
        at = text.find(phrase, start)
        if at < 0:
            continue
        start = at + len(phrase)
        first = len(tokenizer(text[:at]).input_ids) - 1  # BOS counted, EOS not: the phrase's first token
        words = phrase.split()
        if len(tokenizer(phrase).input_ids) - 2 != len(words):
            continue  # a word outside the vocabulary: positions would not line up
        x, y, r = thing_box(thing, width, height)
        reach = max(r, 0.6 * width / gw)
        mask = ((cx - x) ** 2 + (cy - y) ** 2 <= reach**2).flatten()
        if not mask.any():
            continue
        for i, word in enumerate(words):
            if word not in _UNGROUNDED and first + i < limit:
                out.append((first + i, mask, thing.place if word in PLACE_WORDS else ""))
    return out


class AttentionGrounding:
    """Installs the recording processor on every cross-attention of the UNet; `loss` reads them."""

    def __init__(self, unet) -> None:
        self.kept: list[torch.Tensor] = []
        recording = _Recording(self.kept)
        cross = {name for name in unet.attn_processors if name.endswith("attn2.processor")}
        unet.set_attn_processor(
            {name: (recording if name in cross else AttnProcessor2_0()) for name in unet.attn_processors}
        )

    @staticmethod
    def grid(latent_shape: tuple[int, ...]) -> tuple[int, int]:
        """The cross-attention grid for latents of that shape: one stride-2 step down (ceil)."""
        h, w = latent_shape[-2:]
        return math.ceil(h / 2), math.ceil(w / 2)

    def loss(self, regions: list[list[tuple[int, torch.Tensor, str]]]) -> torch.Tensor:
        """Mean over layers and grounded words of -log(the word's attention mass inside its region)."""
        total, count = torch.zeros(()), 0
        for probs in self.kept:  # (batch, cells, tokens)
            for b, words in enumerate(regions):
                if not words:
                    continue
                index = torch.tensor([j for j, _, _ in words])
                masks = torch.stack([m for _, m, _ in words], dim=1).to(probs.dtype)  # (cells, words)
                maps = probs[b][:, index]  # (cells, words)
                share = (maps * masks).sum(0) / maps.sum(0).clamp_min(1e-8)
                total = total - torch.log(share.clamp_min(1e-6)).sum()
                count += len(words)
        self.kept.clear()
        return total / max(1, count)


class PlaceWordProbe(torch.nn.Module):
    """Reads a place word's (x, y) in [-1, 1] from the text encoder's output at that word.

    The first model's encoder gave "left" and "right" outputs 99.6% alike (nothing downstream used
    the difference, so nothing kept it); this head makes the encoding say which side it names.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.head = torch.nn.Linear(width, 2)

    def loss(self, states: torch.Tensor, regions: list[list[tuple[int, torch.Tensor, str]]]) -> torch.Tensor:
        rows, index, targets = [], [], []
        for b, words in enumerate(regions):
            for j, _mask, place in words:
                if place:
                    fx, fy = PLACES[place]
                    rows.append(b)
                    index.append(j)
                    targets.append((2 * fx - 1, 2 * fy - 1))
        if not rows:
            return torch.zeros(())
        picked = states[torch.tensor(rows), torch.tensor(index)]
        return (self.head(picked) - torch.tensor(targets)).pow(2).mean()


def scene_regions(
    tokenizer, batch: list[tuple[str, list[tuple[Thing, str]]]], size: tuple[int, int], latent_shape
) -> list[list[tuple[int, torch.Tensor, str]]]:
    grid = AttentionGrounding.grid(latent_shape)
    return [word_regions(tokenizer, text, spans, size, grid) for text, spans in batch]
