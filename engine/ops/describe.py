"""describe (/describe): prompts for a picture, from a captioning model the operator configures.

Any image-to-text model that transformers loads with `AutoProcessor` and
`AutoModelForImageTextToText` (BLIP, BLIP-2, GIT, ...) from a local folder. The four prompts are the
four best beams of one beam search; if some decode to the same words (a small model, a simple
picture), seeded sampling adds different ones until there are `count`, or gives up after a few
tries and answers with fewer (never with a duplicate).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from engine.api import DescribeRequest
from engine.ops.checks import check_source
from engine.ops.generate import OpResult
from engine.quiet import quiet_libraries

log = logging.getLogger(__name__)

MAX_NEW_TOKENS = 40
SAMPLING_TRIES = 8
MAX_PROMPTS = 8


@dataclass
class Captioner:
    """A loaded captioning model and its processor, on the engine's device."""

    processor: Any
    model: Any
    device: torch.device

    @classmethod
    def load(cls, source: str, device: torch.device) -> Captioner:
        # transformers' auto classes are imported here, not at module level: only an engine with
        # a captioner configured pays for them.
        from transformers import AutoModelForImageTextToText, AutoProcessor

        try:
            with quiet_libraries():
                processor = AutoProcessor.from_pretrained(source)
                model = AutoModelForImageTextToText.from_pretrained(source).to(device).eval()
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(
                f"the captioning model in IMAGINE_CAPTIONER ({source}) could not be loaded: {exc}"
            ) from exc
        log.info("captioner loaded from %s", source)
        return cls(processor, model, device)

    def captions(self, picture: Any, count: int) -> list[str]:
        """Up to `count` distinct, non-empty captions of a PIL picture."""
        inputs = self.processor(images=picture, return_tensors="pt").to(self.device)
        found: list[str] = []

        def add(sequences: torch.Tensor) -> None:
            for text in self.processor.batch_decode(sequences, skip_special_tokens=True):
                text = " ".join(text.split())
                if text and text not in found and len(found) < count:
                    found.append(text)

        with torch.no_grad():
            beams = max(count, 2)
            add(
                self.model.generate(
                    **inputs, num_beams=beams, num_return_sequences=count, max_new_tokens=MAX_NEW_TOKENS
                )
            )
            for attempt in range(SAMPLING_TRIES):
                if len(found) >= count:
                    break
                torch.manual_seed(attempt)  # the same picture gets the same prompts
                add(
                    self.model.generate(
                        **inputs,
                        do_sample=True,
                        top_k=50,
                        num_return_sequences=count,
                        max_new_tokens=MAX_NEW_TOKENS,
                    )
                )
        return found


def run_describe(captioner: Captioner, req: DescribeRequest, max_pixels: int) -> OpResult:
    check_source(req.image, 1, max_pixels)
    if not 1 <= req.count <= MAX_PROMPTS:
        raise ValueError(f"/describe makes 1 to {MAX_PROMPTS} prompts, not {req.count}")
    texts = captioner.captions(req.image.to_pil(), req.count)
    if not texts:
        raise ValueError("the captioning model found no words for this image")
    return OpResult(images=[], seeds=[], texts=texts)
