"""Imagine Web in headless Chromium against the real `imagine web` (tiny model): what a member and
a moderator see and do, from a sign-in link to a result that arrives without a reload.

Screenshots are written to IMAGINE_SCREENSHOTS_DIR when it is set (docs/web/ holds the README's).
"""

from __future__ import annotations

import asyncio
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from storage.store import Store
from tests.bot.web.conftest import WebProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]  # a real `imagine web` process

MEMBER, OTHER, MODERATOR, GUILD = 1001, 1002, 2001, 77
RESULT_S = 90_000  # ms: the tiny model on a busy CI CPU


def shoot(page, name: str) -> None:
    folder = os.environ.get("IMAGINE_SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def sign_in(
    browser, server: WebProcess, user: int, *, name: str, moderator: bool = False, to: str | None = None
):
    context = browser.new_context(viewport={"width": 1100, "height": 800}, color_scheme="dark")
    page = context.new_page()
    page.goto(server.link(user, GUILD, name=name, moderator=moderator, to=to))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()
    return context, page


@pytest.fixture(scope="module")
def member_page(browser, web_server: WebProcess):
    context, page = sign_in(browser, web_server, MEMBER, name="alice")
    yield page
    context.close()


@pytest.fixture(scope="module")
def grid_job(member_page) -> str:
    """The member's first image, made from the gallery's prompt box; returns its job id."""
    page = member_page
    page.goto(page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + "/")
    page.get_by_label("New image").fill("a red circle on a day sky --seed 7")
    page.get_by_role("button", name="Imagine").click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    page.locator("#images img").first.wait_for(timeout=RESULT_S)
    return page.url.rsplit("/", 1)[1]


def test_a_member_signs_in_sees_the_gallery_opens_a_job_and_watches_V2_arrive(
    member_page, grid_job: str, web_server: WebProcess
) -> None:
    page = member_page
    page.goto(web_server.url + "/")
    tile = page.get_by_role("img", name="a red circle on a day sky")
    tile.first.wait_for()
    assert page.get_by_text("alice").is_visible()
    tile.first.click()
    page.wait_for_url(f"**/jobs/{grid_job}")
    assert page.locator("#images img").count() == 4
    assert page.get_by_text("seed 7").first.is_visible()
    page.get_by_role("button", name="V2", exact=True).click()
    result = page.locator("#result-images img")
    result.first.wait_for(timeout=RESULT_S)
    assert result.count() == 4
    assert page.url.endswith(grid_job)  # no reload, no navigation: the result came to this page
    assert page.locator("#result-status").inner_text() == "Done"
    shoot(page, "job")
    # The new job is a child of this one: its page links back here.
    page.get_by_role("link", name="Open the new job").click()
    page.get_by_role("link", name=re.compile(grid_job[:8])).first.wait_for()
    # Remix: an edited prompt the action cannot take is refused in place, with the core's sentence.
    page.goto(f"{web_server.url}/jobs/{grid_job}")
    page.get_by_label("Remix: edit the prompt").fill("a red circle on a day sky --chaos 50")
    page.get_by_role("button", name="Remix V1").click()
    status = page.locator("#result-status")
    status.filter(has_text="does not apply to a variation").wait_for()


def test_a_member_draws_a_region_and_gets_an_inpainted_image_with_the_rest_unchanged(
    member_page, grid_job: str, web_server: WebProcess
) -> None:
    page = member_page
    page.goto(f"{web_server.url}/jobs/{grid_job}")
    page.get_by_role("button", name="U1", exact=True).click()
    page.locator("#result-images img").first.wait_for(timeout=RESULT_S)
    page.get_by_role("link", name="Open the new job").click()
    page.get_by_role("link", name="Vary (Region)").click()
    page.wait_for_url("**/region/*")
    upscale_id = page.url.rsplit("/", 1)[1]
    canvas = page.locator("#overlay")
    box = canvas.bounding_box()

    def drag(x0: float, y0: float, x1: float, y1: float) -> None:
        page.mouse.move(box["x"] + box["width"] * x0, box["y"] + box["height"] * y0)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * x1, box["y"] + box["height"] * y1, steps=5)
        page.mouse.up()

    drag(0.6, 0.6, 0.9, 0.9)
    page.get_by_role("button", name="Undo").click()
    assert page.get_by_role("button", name="Submit").is_disabled()
    # The keyboard's way: Tab to "Add rectangle" and press Enter; then undo that too.
    page.get_by_label("Left").fill("10")
    page.get_by_role("button", name="Add rectangle").focus()
    page.keyboard.press("Enter")
    assert page.get_by_role("button", name="Submit").is_enabled()
    page.get_by_role("button", name="Undo").click()
    assert page.get_by_role("button", name="Submit").is_disabled()
    drag(0.25, 0.25, 0.75, 0.75)  # the rectangle tool is the default
    page.get_by_label("Prompt").fill("a green circle on a day sky")
    shoot(page, "region")
    page.get_by_role("button", name="Submit").click()
    result = page.locator("#result-images img")
    result.first.wait_for(timeout=RESULT_S)
    assert result.count() == 4
    source = pixels(page.request.get(f"{web_server.url}/images/{upscale_id}/1.png").body())
    new_url = result.first.get_attribute("src")
    after = pixels(page.request.get(web_server.url + new_url).body())
    assert after.shape == source.shape
    h, w = source.shape[:2]
    outside = np.ones((h, w), dtype=bool)
    outside[int(h * 0.25) - 2 : int(h * 0.75) + 3, int(w * 0.25) - 2 : int(w * 0.75) + 3] = False
    assert np.array_equal(after[outside], source[outside])  # every unmasked pixel is the source's
    inside = (slice(int(h * 0.3), int(h * 0.7)), slice(int(w * 0.3), int(w * 0.7)))
    assert np.abs(after[inside] - source[inside]).mean() > 3  # and the region was redrawn


def test_the_gallery_filters_by_kind_words_and_date(member_page, web_server: WebProcess) -> None:
    page = member_page
    page.goto(web_server.url + "/")
    tiles = page.locator("li.tile")
    everything = tiles.count()
    assert everything == 4  # the grid, V2's variations, U1's image and the region job
    shoot(page, "gallery")
    page.get_by_label("Kind").select_option("vary")
    page.get_by_role("button", name="Filter").click()
    assert tiles.count() == 1 and "kind=vary" in page.url
    page.get_by_label("Kind").select_option("")
    page.get_by_label("Prompt words").fill("GREEN circle")
    page.get_by_role("button", name="Filter").click()
    assert tiles.count() == 1 and "green circle" in tiles.first.inner_text()
    page.get_by_label("Prompt words").fill("")
    page.get_by_label("From").fill("2099-01-01")
    page.get_by_role("button", name="Filter").click()
    assert tiles.count() == 0 and page.get_by_text("No images here yet for these filters").is_visible()


def test_older_pages_follow_the_cursor_without_repeats(browser, web_server: WebProcess) -> None:
    async def make_history() -> list[str]:
        store = await Store.open(None, web_server.data_dir)
        try:
            start = datetime(2026, 1, 1, tzinfo=UTC)
            jobs = [
                await store.create_job(
                    user_id=OTHER,
                    kind="imagine",
                    status="failed",
                    prompt=f"job {n}",
                    created_at=start + timedelta(minutes=n),
                )
                for n in range(30)
            ]
            return [job.id for job in reversed(jobs)]
        finally:
            await store.close()

    # Playwright's sync API keeps an event loop on this thread: the store's runs on another.
    with ThreadPoolExecutor(1) as pool:
        expected = pool.submit(asyncio.run, make_history()).result()
    context, page = sign_in(browser, web_server, OTHER, name="bob")
    try:
        seen: list[str] = []
        while True:
            seen += [
                href.rsplit("/", 1)[1]
                for href in page.locator("li.tile a").evaluate_all("a => a.map(x => x.getAttribute('href'))")
            ]
            older = page.get_by_role("link", name="Older images →")
            if older.count() == 0:
                break
            older.click()
            page.wait_for_load_state()
        assert seen == expected  # newest first, 24 then 6, nothing repeated or lost
    finally:
        context.close()


def test_light_and_dark_follow_the_browser_and_the_buttons_are_reachable_by_tab(
    browser, member_page, grid_job: str, web_server: WebProcess
) -> None:
    backgrounds = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme)
        page = context.new_page()
        page.goto(web_server.url + "/signin")
        backgrounds[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
        context.close()
    assert backgrounds["light"] != backgrounds["dark"]
    page = member_page
    page.goto(f"{web_server.url}/jobs/{grid_job}")
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.textContent.trim()"))
        if reached[-1] == "V2":
            break
    assert reached[-1] == "V2", reached
    assert "Skip to content" in reached[0]


def test_a_member_is_refused_the_moderators_desk(member_page, web_server: WebProcess) -> None:
    response = member_page.goto(web_server.url + "/mod")
    assert response.status == 403
    assert "moderators" in member_page.content()


def test_a_moderator_reviews_and_hides_a_job(
    browser, web_server: WebProcess, grid_job: str, member_page
) -> None:
    context, page = sign_in(browser, web_server, MODERATOR, name="mod", moderator=True)
    try:
        page.get_by_role("link", name="Moderator's desk").click()
        page.get_by_label("User id").first.fill(str(MEMBER))
        page.get_by_role("button", name="Filter").click()
        page.get_by_label(f"Pick job {grid_job}").check()
        page.get_by_label("Reason").first.fill("off topic")
        shoot(page, "desk")
        page.get_by_role("button", name="Hide picked", exact=True).click()
        assert page.get_by_role("status").inner_text() == "Hid 1 job(s)."
        audit = page.locator("section[aria-labelledby=h-audit] tbody tr").first
        assert "hide" in audit.inner_text() and "off topic" in audit.inner_text()
    finally:
        context.close()
    # The member no longer sees it, in the gallery or by its address.
    member_page.goto(web_server.url + "/")
    assert member_page.locator(f"a[href='/jobs/{grid_job}']").count() == 0
    assert member_page.goto(f"{web_server.url}/jobs/{grid_job}").status == 404


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)
