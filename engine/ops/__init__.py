"""The operations (imagine, vary, upscale, outpaint) and the pieces they share.

Every operation runs the same denoising loop (`sampler.py`) over the resident model's components,
so composable guidance, per-cell seeds, previews, cancel and `--stop` behave the same everywhere.
"""
