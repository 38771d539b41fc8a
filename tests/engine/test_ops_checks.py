"""The step budget: `--quality` scales every operation's steps, in the engine only."""

from __future__ import annotations

import pytest

from engine.ops.checks import MIN_IMG2IMG_STEPS, effective_steps


@pytest.mark.parametrize(
    ("steps", "quality", "strength", "expected"),
    [
        (8, 1.0, 1.0, 8),
        (8, 2.0, 1.0, 16),
        (8, 0.5, 1.0, 4),
        (4, 0.5, 1.0, 2),  # text-to-image needs no floor: every step denoises
        (30, 0.25, 0.2, 8),  # a budget that leaves denoising steps is kept as it is
        (8, 0.25, 0.25, MIN_IMG2IMG_STEPS),  # 2 steps x 0.25 would leave none
        (30, 0.25, 0.1, 10),  # a very low strength needs more than the floor for one step
        (2, 2.0, 0.3, 4),
        (3, 0.25, 0.25, 3),  # the floor never exceeds the steps asked for
    ],
)
def test_quality_scales_the_budget_with_a_floor_for_img2img(steps, quality, strength, expected):
    assert effective_steps(steps, quality, strength) == expected


@pytest.mark.parametrize(
    ("steps", "quality", "strength", "message"),
    [
        (0, 1.0, 1.0, "steps must be between 1 and 150, got 0"),
        (8, 5.0, 1.0, "quality must be between 0.1 and 4, got 5"),
        (8, 1.0, 0.0, "strength must be between 0.01 and 1, got 0"),
    ],
)
def test_bad_budgets_are_refused_by_name(steps, quality, strength, message):
    with pytest.raises(ValueError, match=message):
        effective_steps(steps, quality, strength)
