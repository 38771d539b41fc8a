"""A tiny randomly initialised BLIP captioner saved as a transformers folder, for /describe.

The same idea as the engine's `tiny` preset: real transformers classes (the processor, the
model, `from_pretrained`), a few thousand random weights, built and saved by the test itself.
Its captions are random words from the small vocabulary below; the tests check the plumbing.
"""

from __future__ import annotations

from pathlib import Path

WORDS = [
    "a",
    "red",
    "blue",
    "green",
    "small",
    "large",
    "lighthouse",
    "cat",
    "dog",
    "tree",
    "house",
    "sky",
    "sea",
    "dusk",
    "night",
    "sun",
    "moon",
    "on",
    "in",
    "at",
    "with",
    "the",
    "of",
    "painting",
    "photo",
    "drawing",
    "boat",
    "hill",
    "field",
    "river",
    "city",
    "street",
    "road",
]


def build_tiny_captioner(folder: Path, seed: int = 0) -> Path:
    """Save a tiny BLIP (processor and model) under `folder`; returns the folder."""
    # transformers and torch are heavy; only the tests that build a captioner import them.
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipProcessor,
    )
    from transformers.models.blip import BlipImageProcessorPil

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *WORDS]
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(vocab)}, do_lower_case=True)
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    image_processor = BlipImageProcessorPil(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    config = BlipConfig(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
            "projection_dim": 32,
        },
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "encoder_hidden_size": 32,
            "max_position_embeddings": 64,
            "bos_token_id": vocab.index("[DEC]"),
            "pad_token_id": 0,
            "sep_token_id": vocab.index("[SEP]"),
            "eos_token_id": vocab.index("[SEP]"),
            "projection_dim": 32,
        },
        projection_dim=32,
    )
    torch.manual_seed(seed)
    BlipForConditionalGeneration(config).save_pretrained(folder)
    return folder
