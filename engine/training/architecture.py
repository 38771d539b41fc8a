"""The toy model's components, in diffusers and transformers classes only.

The same layout as Stable Diffusion 1.5, scaled down: an 8x `AutoencoderKL` with 4 latent
channels (built in `engine.training.autoencoder`), a `UNet2DConditionModel` with cross-attention,
a `CLIPTextModel` over the world's own vocabulary, and an Euler scheduler on SD's noise schedule.
Saved with `save_pretrained`, it loads through exactly the code path a Stable Diffusion
checkpoint takes.

Sizes were chosen by measuring training steps on the 2-core CPU this project trains on: attention
at the 8x8 latent level only (at 16x16 it doubled the step time and bought little: nine places are
one or two cells apart at 8x8), four heads, one resnet per level. A third level at 4x4 (no
attention of its own; the middle block's cross-attention runs there) costs almost nothing per step
and is what lets the model tell left from right: a convolutional UNet knows where it is only from
its zero padding, and at 4x4 every cell is at most one cell from a border. With two levels the
same recipe put the named colour in the named place in under half the cells.
"""

from __future__ import annotations

from diffusers import DDPMScheduler, EulerDiscreteScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from engine.training.vocabulary import MAX_TOKENS

NATIVE = 128  # pixels on a side of the square bucket
TEXT_DIM = 128

# SD 1.5's noise schedule, rescaled to a zero signal-to-noise ratio at its last step, with
# v-prediction (Lin et al., "Common Diffusion Noise Schedules and Sample Steps are Flawed"; SD 2.x
# is v-prediction too): on SD's own schedule the last training step still shows 7% of the picture,
# so a model learns to take the layout from the low frequencies of its input, and at sampling time,
# starting from pure noise, puts objects wherever the noise happens to lean. Trained to predict
# v from pure noise, it must take the layout from the caption: "on the left" means the left.
# Every diffusers scheduler for SD reads these three settings from the saved scheduler config.
NOISE_SCHEDULE = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
)


def make_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=NATIVE // 8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(48, 96, 96),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
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
    # "trailing" spacing starts sampling at the last training step: pure noise, as in training.
    return EulerDiscreteScheduler(**NOISE_SCHEDULE, timestep_spacing="trailing", steps_offset=1)
