"""The toy model's components, in diffusers and transformers classes only.

The same layout as Stable Diffusion 1.5, scaled down: an 8x `AutoencoderKL` with 4 latent
channels (built in `engine.training.autoencoder`), a `UNet2DConditionModel` with cross-attention,
a `CLIPTextModel` over the world's own vocabulary, and an Euler scheduler on SD's noise schedule.
Saved with `save_pretrained`, it loads through exactly the code path a Stable Diffusion
checkpoint takes.

Sizes were chosen by measuring training steps on the 2-core CPU this project trains on: attention
at the 8x8 latent level only (at 16x16 it doubled the step time and bought little: nine places are
one or two cells apart at 8x8), four heads, one resnet per level.
"""

from __future__ import annotations

from diffusers import DDPMScheduler, EulerDiscreteScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from engine.training.vocabulary import MAX_TOKENS

NATIVE = 128  # pixels on a side of the square bucket
TEXT_DIM = 128

# SD 1.5's noise schedule: a model trained on it samples with any scheduler diffusers has for SD.
NOISE_SCHEDULE = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
)


def make_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=NATIVE // 8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(48, 96),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=4,  # diffusers' legacy name: this is the number of heads
        norm_num_groups=16,
        cross_attention_dim=TEXT_DIM,
    )


def make_text_encoder(vocab_size: int) -> CLIPTextModel:
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=TEXT_DIM,
            intermediate_size=TEXT_DIM * 4,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            projection_dim=TEXT_DIM,
            bos_token_id=vocab_size - 2,
            eos_token_id=vocab_size - 1,
            pad_token_id=vocab_size - 1,
            hidden_act="gelu",
        )
    )


def training_noise() -> DDPMScheduler:
    return DDPMScheduler(**NOISE_SCHEDULE)


def sampling_scheduler() -> EulerDiscreteScheduler:
    # "trailing" spacing starts sampling at the last training step (pure noise), where a model
    # trained at 128 px has learned the background colours from noise alone.
    return EulerDiscreteScheduler(**NOISE_SCHEDULE, timestep_spacing="trailing", steps_offset=1)
