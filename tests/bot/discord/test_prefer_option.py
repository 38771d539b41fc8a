"""`/prefer option` through SimCord: a member's `--name` bundles of parameters."""

from __future__ import annotations

import pytest

from tests.bot.discord.test_buttons import imagine


async def _option(world, member, option, value=None):
    kwargs = {"option": option} | ({"value": value} if value is not None else {})
    result = await member.slash(world.channel, "prefer option set", **kwargs)
    assert result.ephemeral
    return result.response.content


async def test_an_option_stands_for_its_parameters_and_can_be_listed_and_removed(world, engine):
    assert "`--cinematic` in your prompts now stands for `--ar 2:1 --stylize 250`" in await _option(
        world, world.alice, "cinematic", "--ar 2:1   --stylize 250"
    )
    _, job = await imagine(world, world.alice, "a harbour at dawn --cinematic --seed 3")
    assert job.prompt == "a harbour at dawn --ar 2:1 --seed 3 --stylize 250"
    assert engine.requests[-1].stylize == 250

    listed = await world.alice.slash(world.channel, "prefer option list")
    assert "`--cinematic` = `--ar 2:1 --stylize 250`" in listed.response.content
    other = await world.bob.slash(world.channel, "prefer option list")
    assert "no options" in other.response.content  # options are the member's own

    assert await _option(world, world.alice, "cinematic") == "Removed `--cinematic`."
    result = await world.alice.slash(world.channel, "imagine", prompt="a harbour --cinematic")
    assert result.ephemeral and "`--cinematic` is not a parameter" in result.response.content


async def test_a_suffix_may_use_an_option(world):
    await _option(world, world.alice, "wide", "--ar 2:1")
    result = await world.alice.slash(world.channel, "prefer suffix", value="--wide")
    assert "Your prompts now end with `--wide`" in result.response.content
    _, job = await imagine(world, world.alice, "a harbour")
    assert job.prompt == "a harbour --ar 2:1"


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("ar", "--stylize 20", "`--ar` is a parameter already"),
        ("bad name!", "--ar 2:1", "an option name is 1-32 letters"),
        ("words", "a castle --ar 2:1", "may hold parameters only"),
        ("wide", "--ar 9:1", "`--ar` must be between 1:4 and 4:1"),
        ("loop", "--loop", "`--loop` is not a parameter"),
    ],
)
async def test_an_option_that_cannot_work_is_refused_and_not_stored(world, option, value, expected):
    answer = await _option(world, world.alice, option, value)
    assert answer.startswith("That option does not work:") and expected in answer
    assert await world.services.store.prompt_options(world.alice.id) == {}
