"""The models built from code: the `tiny` / `tiny-xl` presets and full-size random weights.

`build_tiny` makes small random-weight pipelines of each family with a fixed seed, tokenizer
included, so tests and demos run anywhere in seconds without a download; `build_random_weights`
makes SD 1.5 or SDXL at full size with random weights, for benchmarks of the real architectures.
"""

from typing import Any

import torch

from engine.quiet import quiet_libraries

with quiet_libraries():  # importing the pipelines is where transformers' torchvision advice fires
    from diffusers import (
        AutoencoderKL,
        DiffusionPipeline,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from engine.sources import ModelLoadError

TINY_SEED = 20240229  # the tiny models' weights come from this seed; change it and every test image changes


# ---------------------------------------------------------------------------------------------
# The tiny random-weight models
# ---------------------------------------------------------------------------------------------


def byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for the bytes (printable ASCII/Latin-1 kept)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = 0
    symbols = []
    for b in range(256):
        if b in keep:
            symbols.append(chr(b))
        else:
            symbols.append(chr(256 + extra))
            extra += 1
    return symbols


def _tiny_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer whose vocabulary is every byte, as a word piece and as a word end.

    Without merges every word splits into characters: crude, but it is a real CLIP BPE tokenizer
    (padding, truncation to 77, start/end tokens), built without a download.
    """
    symbols = byte_symbols()
    vocab: dict[str, int] = {}
    for s in symbols:
        vocab[s] = len(vocab)
    for s in symbols:
        vocab[s + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    tokenizer.model_max_length = 77
    return tokenizer


# The tiny presets' CLIP transformer; the tests' tiny IP-Adapter image encoder has the same one.
TINY_CLIP_SIZES = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
}


def _tiny_text_config(vocab_size: int, projection: int | None = None) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab_size,
        **TINY_CLIP_SIZES,
        max_position_embeddings=77,
        projection_dim=projection or 32,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        hidden_act="gelu",
    )


def _tiny_vae(blocks: int = 4) -> AutoencoderKL:
    """A small VAE with the real SD layout (four blocks, 8x downsampling, 4 latent channels) whose
    weights are set by hand instead of drawn at random.

    A random VAE decodes any latent to the same high-frequency texture and forgets its input, so
    no test could tell "close to the source" from "unrelated". This one is a fixed, nearly
    invertible map: the encoder average-pools each colour channel 8x (latent = colour / its RMS,
    the fourth channel the mean of the three), the decoder upsamples smoothly back. Every
    residual branch is zeroed, so the resnets and attention pass their input through. The
    GroupNorms carry each value as a (+x, -x) channel pair, whose group mean is 0 and whose
    silu(x) - silu(-x) is exactly x, so only a per-image contrast scale is lost.
    """
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=(8,) * blocks,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=128,
        scaling_factor=1.0,  # the latents already have about unit variance
    )
    with torch.no_grad():
        for module in vae.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
                module.weight.zero_()
                if module.bias is not None:
                    module.bias.zero_()
        pool = torch.zeros(3, 3)
        pool[:2, :2] = 0.25  # with the encoder's (0, 1, 0, 1) padding and stride 2: a 2x2 mean
        smooth = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
        _as_sign_pairs(vae.encoder.conv_in, 3)
        _filter_each_channel([d for block in vae.encoder.down_blocks for d in block.downsamplers or []], pool)
        for c in range(3):  # the posterior mean: colour c, and channel 3 the mean of the three
            vae.encoder.conv_out.weight[c, 2 * c, 0, 0] = 1.0
            vae.encoder.conv_out.weight[c, 2 * c + 1, 0, 0] = -1.0
            vae.encoder.conv_out.weight[3, 2 * c, 0, 0] = 1 / 3
            vae.encoder.conv_out.weight[3, 2 * c + 1, 0, 0] = -1 / 3
        vae.encoder.conv_out.bias[4:] = -10.0  # a tiny posterior variance
        for ch in range(8):
            vae.quant_conv.weight[ch, ch, 0, 0] = 1.0
        for ch in range(4):
            vae.post_quant_conv.weight[ch, ch, 0, 0] = 1.0
        _as_sign_pairs(vae.decoder.conv_in, 4)
        _filter_each_channel([u for block in vae.decoder.up_blocks for u in block.upsamplers or []], smooth)
        for c in range(3):
            vae.decoder.conv_out.weight[c, 2 * c, 1, 1] = 0.5
            vae.decoder.conv_out.weight[c, 2 * c + 1, 1, 1] = -0.5
            vae.decoder.conv_out.weight[c, 6, 1, 1] = 0.15  # a little of the mean channel in each colour
            vae.decoder.conv_out.weight[c, 7, 1, 1] = -0.15
    return vae


def _as_sign_pairs(conv: torch.nn.Conv2d, channels: int) -> None:
    """Input channel c comes out as the pair (+c, -c) at 2c and 2c + 1 (the 3x3 kernel's centre)."""
    for c in range(channels):
        conv.weight[2 * c, c, 1, 1] = 1.0
        conv.weight[2 * c + 1, c, 1, 1] = -1.0


def _filter_each_channel(resamplers: list[torch.nn.Module], kernel: torch.Tensor) -> None:
    """Each resampler's conv filters each of the 8 channels on its own with `kernel`."""
    for resampler in resamplers:
        for ch in range(8):
            resampler.conv.weight[ch, ch] = kernel


def _tiny_scheduler() -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        timestep_spacing="leading",
        steps_offset=1,
    )


def _pipeline(
    vae: AutoencoderKL, encoders: list[Any], tokenizer: CLIPTokenizer, unet: UNet2DConditionModel
) -> DiffusionPipeline:
    """The SD pipeline over these components, or SDXL's with two text encoders; the tiny
    scheduler and byte tokenizer, no safety checker."""
    if len(encoders) == 2:
        return StableDiffusionXLPipeline(
            vae=vae,
            text_encoder=encoders[0],
            text_encoder_2=encoders[1],
            tokenizer=tokenizer,
            tokenizer_2=_tiny_tokenizer(),
            unet=unet,
            scheduler=_tiny_scheduler(),
            force_zeros_for_empty_prompt=True,
        )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=encoders[0],
        tokenizer=tokenizer,
        unet=unet,
        scheduler=_tiny_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


# What the two tiny UNets share; each family adds its own conditioning on top (and the engine
# tests' tiny x4 upscaler its noise-level input).
TINY_UNET: dict[str, Any] = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 64),
    layers_per_block=1,
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    norm_num_groups=16,
)


def build_tiny(xl: bool = False) -> DiffusionPipeline:
    """Build `tiny` (SD 1.x family) or `tiny-xl` (SDXL family) from code, the same weights every time."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        tokenizer = _tiny_tokenizer()
        vocab = len(tokenizer)
        if not xl:
            text_encoder = CLIPTextModel(_tiny_text_config(vocab))
            unet = UNet2DConditionModel(**TINY_UNET, cross_attention_dim=32, attention_head_dim=8)
            pipe = _pipeline(_tiny_vae(), [text_encoder], tokenizer, unet)
        else:
            text_encoder = CLIPTextModel(_tiny_text_config(vocab))
            text_encoder_2 = CLIPTextModelWithProjection(_tiny_text_config(vocab, projection=32))
            unet = UNet2DConditionModel(
                **TINY_UNET,
                cross_attention_dim=64,  # both encoders' hidden states side by side
                attention_head_dim=(2, 4),
                use_linear_projection=True,
                addition_embed_type="text_time",
                addition_time_embed_dim=8,
                projection_class_embeddings_input_dim=8 * 6 + 32,  # six time ids + pooled text
                transformer_layers_per_block=(1, 1),
            )
            pipe = _pipeline(_tiny_vae(), [text_encoder, text_encoder_2], tokenizer, unet)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ---------------------------------------------------------------------------------------------
# Full-size architectures with random weights (benchmarks without a download)
# ---------------------------------------------------------------------------------------------

_SD_VAE = {
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
}
RANDOM_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "sd15": {
        "unet": {
            "sample_size": 64,
            "block_out_channels": (320, 640, 1280, 1280),
            "layers_per_block": 2,
            "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            "cross_attention_dim": 768,
            "attention_head_dim": 8,
        },
        "vae": {**_SD_VAE, "sample_size": 512, "scaling_factor": 0.18215},
        "text": [
            {"hidden_size": 768, "intermediate_size": 3072, "layers": 12, "heads": 12, "act": "quick_gelu"}
        ],
    },
    "sdxl": {
        "unet": {
            "sample_size": 128,
            "block_out_channels": (320, 640, 1280),
            "layers_per_block": 2,
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            "transformer_layers_per_block": (1, 2, 10),
            "attention_head_dim": (5, 10, 20),
            "cross_attention_dim": 2048,
            "use_linear_projection": True,
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 256,
            "projection_class_embeddings_input_dim": 2816,
        },
        "vae": {**_SD_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
        "text": [
            {"hidden_size": 768, "intermediate_size": 3072, "layers": 12, "heads": 12, "act": "quick_gelu"},
            {
                "hidden_size": 1280,
                "intermediate_size": 5120,
                "layers": 32,
                "heads": 20,
                "act": "gelu",
                "proj": 1280,
            },
        ],
    },
}


def build_random_weights(arch: str, device: torch.device) -> DiffusionPipeline:
    """SD 1.5 or SDXL at full size with random weights, initialised directly on `device`.

    The timings of a denoising step do not depend on the weights' values, so benchmarks of the
    real architectures need no download. (The tokenizer is the tiny byte tokenizer.)
    """
    if arch not in RANDOM_ARCHITECTURES:
        raise ModelLoadError(f"unknown architecture {arch!r}: choose {', '.join(RANDOM_ARCHITECTURES)}")
    spec = RANDOM_ARCHITECTURES[arch]
    tokenizer = _tiny_tokenizer()
    vocab = len(tokenizer)
    encoders = []
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(TINY_SEED)
        for text in spec["text"]:
            config = CLIPTextConfig(
                vocab_size=vocab,
                hidden_size=text["hidden_size"],
                intermediate_size=text["intermediate_size"],
                num_hidden_layers=text["layers"],
                num_attention_heads=text["heads"],
                max_position_embeddings=77,
                projection_dim=text.get("proj", 768),
                hidden_act=text["act"],
                bos_token_id=vocab - 2,
                eos_token_id=vocab - 1,
                pad_token_id=vocab - 1,
            )
            encoders.append(CLIPTextModelWithProjection(config) if "proj" in text else CLIPTextModel(config))
        unet = UNet2DConditionModel(**spec["unet"])
        vae = AutoencoderKL(**spec["vae"])
    pipe = _pipeline(vae, encoders, tokenizer, unet)
    pipe.set_progress_bar_config(disable=True)
    return pipe
