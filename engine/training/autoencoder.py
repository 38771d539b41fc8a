"""The toy model's VAE starts as an exact colour map, built by hand, then is fine-tuned.

Trained from random weights on two CPU cores, a small `AutoencoderKL` still shifted colours after
20 minutes (a red circle came back brown in 6 of 10 pictures): the colour a prompt names must
survive the round trip, so this VAE starts where colour is already right. Its encoder averages
each colour over 8x8 pixels (latent channels red, green, blue and their mean), its decoder
upsamples smoothly back; every residual branch starts at zero, so fine-tuning adds sharpness on
top of a map that already keeps every colour, the way zero-initialised residual blocks train.

GroupNorm would rescale every picture by its own contrast. Each group therefore carries one value
as a (+x, -x) pair next to a large constant pair (+K, -K): the group's mean stays 0 and its spread
is K to within x^2 / K^2, so the normalisation is a fixed gain the affine weights undo, and
silu(x) - silu(-x) = x recovers the value exactly.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL

from engine.training.architecture import NATIVE

K = 20.0  # the constant pair's size: colour values (|x| <= 1) shift the group's spread by < 0.25%
WIDTH = 16  # four groups of four channels: (+x, -x, +K, -K) for red, green, blue and their mean


def make_vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(WIDTH,) * 4,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=NATIVE,
    )


def _values_in(conv: torch.nn.Conv2d, sources: list[list[tuple[int, float]]]) -> None:
    """conv's centre tap puts input mix `sources[g]` into channel pair (4g, 4g+1), and K into (4g+2, 4g+3)."""
    centre = conv.kernel_size[0] // 2
    for g, mix in enumerate(sources):
        for channel, weight in mix:
            conv.weight[4 * g, channel, centre, centre] = weight
            conv.weight[4 * g + 1, channel, centre, centre] = -weight
        conv.bias[4 * g + 2] = K
        conv.bias[4 * g + 3] = -K


def _values_out(conv: torch.nn.Conv2d, outputs: int) -> None:
    """conv_out reads value g as silu(+x) - silu(-x) from channel pair (4g, 4g+1)."""
    centre = conv.kernel_size[0] // 2
    for g in range(outputs):
        conv.weight[g, 4 * g, centre, centre] = 1.0
        conv.weight[g, 4 * g + 1, centre, centre] = -1.0


@torch.no_grad()
def colour_exact_vae() -> AutoencoderKL:
    """The hand-built starting point (see the module docstring); `calibrate` sets its gains."""
    vae = make_vae()
    for module in vae.modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
            module.weight.zero_()
            if module.bias is not None:
                module.bias.zero_()
    third = 1.0 / 3.0
    mean = [(0, third), (1, third), (2, third)]
    _values_in(vae.encoder.conv_in, [[(0, 1.0)], [(1, 1.0)], [(2, 1.0)], mean])
    pool = torch.zeros(3, 3)
    pool[:2, :2] = 0.25  # with the encoder's (0, 1, 0, 1) padding and stride 2: a 2x2 mean
    for block in vae.encoder.down_blocks:
        for down in block.downsamplers or []:
            for ch in range(WIDTH):
                down.conv.weight[ch, ch] = pool
    _values_out(vae.encoder.conv_out, 4)  # the posterior mean: red, green, blue, mean
    vae.encoder.conv_out.bias[4:] = -12.0  # a tiny posterior variance
    for ch in range(8):
        vae.quant_conv.weight[ch, ch, 0, 0] = 1.0
    for ch in range(4):
        vae.post_quant_conv.weight[ch, ch, 0, 0] = 1.0
    _values_in(vae.decoder.conv_in, [[(0, 1.0)], [(1, 1.0)], [(2, 1.0)], [(3, 1.0)]])
    smooth = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    for block in vae.decoder.up_blocks:
        for up in block.upsamplers or []:
            for ch in range(WIDTH):
                up.conv.weight[ch, ch] = smooth
    _values_out(vae.decoder.conv_out, 3)
    calibrate(vae)
    return vae


@torch.no_grad()
def calibrate(vae: AutoencoderKL, size: int = NATIVE) -> None:
    """Set each output GroupNorm's gain to the spread its constant pair gives at `size`.

    The normalised value is x / spread; a gain of `spread` gives x back. The spread is measured
    rather than computed, as the decoder's smoothing thins the constant pair along the borders.
    """
    for norm, run in (
        (vae.encoder.conv_norm_out, lambda x: vae.encode(x)),
        (vae.decoder.conv_norm_out, lambda x: vae.decode(vae.encode(x).latent_dist.mean)),
    ):
        seen: list[torch.Tensor] = []
        hook = norm.register_forward_pre_hook(lambda _m, args, into=seen: into.append(args[0]))
        run(torch.zeros(1, 3, size, size))
        hook.remove()
        x = seen[0]
        groups = x.reshape(1, norm.num_groups, -1)
        spread = torch.sqrt(groups.var(dim=-1, unbiased=False) + norm.eps)[0]
        norm.weight.copy_(spread.repeat_interleave(WIDTH // norm.num_groups))
        norm.bias.zero_()
