"""The toy model's own training: a procedural world of captioned scenes, and the recipe that
turns it into the diffusers model shipped as the `toy` preset (see docs/toy-model.md).

Imported only to train or to evaluate; the engine never imports it to draw.
"""
