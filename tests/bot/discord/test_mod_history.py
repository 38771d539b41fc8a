"""`/mod history` (filters, pages, thumbnails, opening a job) and `/mod job` (details, images,
lineage several levels deep, message links) through SimCord."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.bot.discord.test_mod_helpers import make_job


def titles(message) -> list[str]:
    return [embed.title for embed in message.embeds]


def job_ids(message) -> list[str]:
    return [title.split(" ", 1)[1] for title in titles(message)]


async def test_history_pages_newest_first_over_many_jobs(world):
    made = [await make_job(world, world.alice, f"ship number {i}", seed=i, post=False) for i in range(12)]
    newest_first = [job.id for job in reversed(made)]

    result = await world.mod.slash(world.channel, "mod history")

    assert result.ephemeral
    page = result.response
    assert job_ids(page.message) == newest_first[:5]
    assert all(
        embed.thumbnail.url and embed.thumbnail.url.startswith("attachment://") for embed in page.embeds
    )
    assert len(page.attachments) == 5
    first = page.embeds[0]
    assert "ship number 11" in first.description
    assert f"<@{world.alice.id}>" in first.fields[0].value
    assert first.fields[1].value == "done"

    await world.mod.click(page, label="Older ▶")
    assert job_ids(page.message) == newest_first[5:10]
    await world.mod.click(page, label="Older ▶")
    assert job_ids(page.message) == newest_first[10:]
    older = next(c for row in page.message.components for c in row.children if c.label == "Older ▶")
    assert older.disabled  # the last page

    await world.mod.click(page, label="◀ Newer")
    assert job_ids(page.message) == newest_first[5:10]


async def test_history_filters_by_user_text_and_status(world):
    await make_job(world, world.alice, "a red fox", post=False)
    await make_job(world, world.bob, "a red barn", post=False)
    failed = await make_job(world, world.bob, "a blue barn", status="failed", post=False)
    await world.services.store.create_job(
        kind="imagine",
        status="blocked",
        user_id=world.bob.id,
        user_name="bob",
        guild_id=world.guild.id,
        raw_prompt="something nasty",
        blocked_rule="nasty",
    )

    by_bob = await world.mod.slash(world.channel, "mod history", user=world.bob)
    assert len(by_bob.response.embeds) == 3

    red = await world.mod.slash(world.channel, "mod history", text="RED")
    assert sorted(e.description for e in red.response.embeds) == ["a red barn", "a red fox"]

    failures = await world.mod.slash(world.channel, "mod history", status="failed")
    assert job_ids(failures.response.message) == [failed.id]

    blocked = await world.mod.slash(world.channel, "mod history", status="blocked")
    [embed] = blocked.response.embeds
    assert "blocked" in embed.fields[1].value and "nasty" in embed.fields[1].value


async def test_history_date_range(world):
    await make_job(world, world.alice, "today's picture", post=False)
    today = datetime.now(UTC).date()  # jobs are stamped by the store's clock, which is real time
    hit = await world.mod.slash(world.channel, "mod history", since=str(today), until=str(today))
    assert len(hit.response.embeds) == 1
    miss = await world.mod.slash(world.channel, "mod history", until=str(today - timedelta(days=1)))
    assert miss.response.content == "No jobs match."

    bad = await world.mod.slash(world.channel, "mod history", since="last tuesday")
    assert bad.ephemeral and "Can't read the date 'last tuesday'" in bad.response.content


async def test_selecting_a_job_opens_its_details(world):
    job = await make_job(world, world.alice, "a castle in the clouds")
    page = (await world.mod.slash(world.channel, "mod history")).response

    opened = await world.mod.select(page, [job.id], custom_id="modhistory:open")

    details = opened.response
    assert details.embeds[0].title == f"Job {job.id}"
    assert "a castle in the clouds" in details.embeds[0].description


async def test_job_details_show_images_links_and_deep_lineage(world):
    root = await make_job(world, world.alice, "a forest")
    cell = await make_job(world, world.bob, "a forest", parent=root, kind="upscale", index=1)
    vary = await make_job(world, world.alice, "a forest", parent=cell, kind="vary_strong")
    deeper = await make_job(world, world.bob, "a forest", parent=vary, kind="upscale", index=0)
    sibling = await make_job(world, world.alice, "a forest", parent=root, kind="vary", index=3)

    result = await world.mod.slash(world.channel, "mod job", id=cell.id)

    details = result.response
    embed = details.embeds[0]
    lineage = embed.description.split("**Lineage**", 1)[1]
    lines = [line for line in lineage.strip().splitlines() if line.strip()]
    assert root.id[:8] in lines[0] and "this job" in lines[1] and cell.id[:8] in lines[1]
    assert vary.id[:8] in lines[2] and deeper.id[:8] in lines[3]
    assert lines[3].index("↳") > lines[2].index("↳")  # the grandchild is indented under the child
    assert sibling.id[:8] not in lineage  # not derived from this job
    links = next(field.value for field in embed.fields if field.name == "Messages")
    assert f"/channels/{world.guild.id}/{world.channel.id}/{cell.message_id}" in links
    assert [a.filename for a in details.attachments] == ["image_1.png"]  # a single upscaled image

    grid = (await world.mod.slash(world.channel, "mod job", id=root.id)).response
    assert sorted(a.filename for a in grid.attachments) == [
        "grid.png",
        "image_1.png",
        "image_2.png",
        "image_3.png",
        "image_4.png",
    ]
    assert grid.embeds[0].image.url == "attachment://grid.png"


async def test_unknown_job_id_is_named(world):
    result = await world.mod.slash(world.channel, "mod job", id="no-such-job")
    assert result.ephemeral and "There is no job `no-such-job`" in result.response.content
