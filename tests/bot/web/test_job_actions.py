"""The job page's actions over HTTP, in process (the stand-in engine): the buttons' JSON answers,
Custom Zoom's form, and refusals that name the problem and make no job."""

from __future__ import annotations

import asyncio
import json

from storage.queries import HistoryQuery
from tests.bot.web.test_desk import GUILD, MEMBER, Desk, desk  # noqa: F401  (desk is the fixture)


async def finished(desk: Desk, job_id: str) -> dict:  # noqa: F811
    for _ in range(200):
        async with desk.http.get(f"{desk.server.url}/jobs/{job_id}/progress") as response:
            summary = json.loads(await response.text())
        if summary["status"] == "done":
            return summary
        await asyncio.sleep(0.05)
    raise TimeoutError(job_id)


async def count(desk: Desk) -> int:  # noqa: F811
    return len((await desk.services.store.history(HistoryQuery(limit=100))).jobs)


async def act(desk: Desk, job_id: str, **fields: str) -> tuple[int, dict]:  # noqa: F811
    async with desk.http.post(
        f"{desk.server.url}/jobs/{job_id}/action",
        data={"csrf": desk.csrf, **fields},
        headers={"Accept": "application/json"},
    ) as response:
        return response.status, json.loads(await response.text())


async def test_buttons_answer_the_new_job_and_custom_zoom_takes_a_factor_and_prompt(desk: Desk) -> None:  # noqa: F811
    await desk.sign_in(MEMBER, moderator=False)
    async with desk.http.post(
        f"{desk.server.url}/imagine", data={"csrf": desk.csrf, "prompt": "a fox"}
    ) as response:
        grid_id = str(response.url).rsplit("/", 1)[1]
    grid = await finished(desk, grid_id)
    assert len(grid["images"]) == 4 and grid["grid"]
    status, single = await act(desk, grid_id, do="U3")
    assert status == 200 and single["kind"] == "upscale" and single["url"] == f"/jobs/{single['job_id']}"
    await finished(desk, single["job_id"])
    status, zoom = await act(desk, single["job_id"], do="zoom_custom", zoom="1.3", prompt="a fox --ar 16:9")
    assert status == 200 and zoom["kind"] == "zoom" and zoom["prompt"] == "a fox --ar 16:9"
    row = await desk.services.store.get_job(zoom["job_id"])
    assert (row.parent_id, row.params["zoom"], row.params["aspect"], row.guild_id) == (
        single["job_id"],
        1.3,
        [16, 9],
        GUILD,
    )
    jobs_before = await count(desk)
    for fields, message in [
        ({"do": "zoom_custom", "zoom": "3"}, "zoom must be a number from 1.0 to 2.0"),
        ({"do": "zoom_custom", "zoom": "wide"}, "The zoom must be a number from 1.0 to 2.0."),
        ({"do": "zoom_custom", "zoom": "1.5", "prompt": "a fox --chaos 500"}, "--chaos"),
        ({"do": "V1"}, "That action is not available on this job."),  # a single image has no V1
    ]:
        status, answer = await act(desk, single["job_id"], **fields)
        assert status in (400, 409) and message in answer["error"], (fields, answer)
    status, answer = await act(desk, grid_id, do="zoom_custom", zoom="1.5")
    assert status == 400 and "not available" in answer["error"]
    assert await count(desk) == jobs_before


async def test_the_remix_form_drives_the_action_with_the_edited_prompt_and_shows_the_cores_refusal(
    desk: Desk,  # noqa: F811
) -> None:
    await desk.sign_in(MEMBER, moderator=False)
    async with desk.http.post(
        f"{desk.server.url}/imagine", data={"csrf": desk.csrf, "prompt": "a fox"}
    ) as response:
        grid_id = str(response.url).rsplit("/", 1)[1]
    await finished(desk, grid_id)
    async with desk.http.get(f"{desk.server.url}/jobs/{grid_id}") as response:
        html = await response.text()
    assert 'name="remix"' in html and ">a fox</textarea>" in html
    status, remixed = await act(desk, grid_id, do="V2", remix="a red fox in snow")
    assert status == 200 and remixed["kind"] == "vary" and remixed["prompt"] == "a red fox in snow"
    row = await desk.services.store.get_job(remixed["job_id"])
    assert (row.parent_id, row.params["remix_of"]) == (grid_id, "a fox")
    status, same = await act(desk, grid_id, do="reroll", remix="a fox")  # unchanged: a plain re-roll
    assert status == 200 and "remix_of" not in (await desk.services.store.get_job(same["job_id"])).params
    jobs_before = await count(desk)
    status, answer = await act(desk, grid_id, do="V1", remix="a fox --chaos 50")
    assert status == 409 and answer["error"].startswith("`--chaos` does not apply to a variation")
    status, answer = await act(desk, grid_id, do="U1", remix="a wolf")
    assert status == 409 and "take an edited prompt (Remix)" in answer["error"]
    assert await count(desk) == jobs_before
    async with desk.http.post(  # without the form's CSRF token nothing is made
        f"{desk.server.url}/jobs/{grid_id}/action", data={"do": "V1", "remix": "a wolf"}
    ) as response:
        assert response.status == 403
    assert await count(desk) == jobs_before
