"""Job rows: creating, updating, the status life cycle, messages, recovery order."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image as PILImage
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import InvalidInputError, JobStateError, NotFoundError
from storage.models import GRID_INDEX, JobMessage
from storage.store import Store
from tests.storage.conftest import raster

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


async def test_a_new_job_is_queued_with_an_id_and_comes_back_as_written(store: Store) -> None:
    job = await store.create_job(
        user_id=2**62 + 5,  # Discord snowflakes need 64 bits
        user_name="ada",
        kind="imagine",
        guild_id=10,
        channel_id=11,
        raw_prompt="a lighthouse  at dusk --ar 16:9",
        prompt="a lighthouse at dusk --ar 16:9",
        params={"aspect": [16, 9], "seed": None},
        model="tiny",
        width=1024,
        height=576,
        queue_position=3,
    )
    assert job.status == "queued" and len(job.id) == 36 and job.images == []
    again = await store.get_job(job.id)
    assert again is not None
    assert (again.user_id, again.user_name, again.guild_id, again.channel_id) == (2**62 + 5, "ada", 10, 11)
    assert again.params == {"aspect": [16, 9], "seed": None}
    assert (again.width, again.height, again.queue_position) == (1024, 576, 3)
    assert again.created_at.tzinfo is not None  # aware on every backend
    assert await store.get_job("no-such-job") is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "imagine"}, "user_id"),
        ({"user_id": 1}, "kind"),
        ({"user_id": 1, "kind": "paint"}, "unknown job kind 'paint'"),
        ({"user_id": 1, "kind": "imagine", "status": "sleeping"}, "unknown job status"),
        ({"user_id": 1, "kind": "imagine", "status": "done"}, "only through complete_job"),
        ({"user_id": 1, "kind": "imagine", "colour": "red"}, "unknown job field(s): colour"),
        ({"user_id": "1", "kind": "imagine"}, "user_id must be a whole number"),
        ({"user_id": 1, "kind": "imagine", "parent_index": 4}, "parent_index must be a grid cell 0-3"),
        ({"user_id": 1, "kind": "imagine", "id": "../../etc"}, "job id"),
        ({"user_id": 1, "kind": "imagine", "width": 0}, "width must be positive"),
    ],
)
async def test_bad_job_fields_are_refused_by_name_and_nothing_is_written(
    store: Store, fields: dict, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        await store.create_job(**fields)
    assert await store.pending_jobs() == []


async def test_a_missing_parent_is_refused(store: Store) -> None:
    with pytest.raises(NotFoundError, match="parent job 'nope' does not exist"):
        await store.create_job(user_id=1, kind="vary", parent_id="nope", parent_index=0)
    assert await store.pending_jobs() == []


async def test_update_job_changes_only_the_given_fields(store: Store) -> None:
    job = await store.create_job(user_id=1, kind="imagine", prompt="a cat")
    updated = await store.update_job(job.id, queue_position=2, params={"chaos": 10})
    assert (updated.queue_position, updated.params, updated.prompt) == (2, {"chaos": 10}, "a cat")
    with pytest.raises(InvalidInputError, match="unknown job field"):
        await store.update_job(job.id, id="other")
    with pytest.raises(InvalidInputError, match="only through complete_job"):
        await store.update_job(job.id, status="done")
    with pytest.raises(InvalidInputError, match="its own parent"):
        await store.update_job(job.id, parent_id=job.id)
    with pytest.raises(NotFoundError, match="no job with id 'missing'"):
        await store.update_job("missing", queue_position=1)
    after = await store.get_job(job.id)
    assert after is not None and after.status == "queued" and after.parent_id is None


async def test_life_cycle_running_then_done_with_files_seeds_and_timings(store: Store) -> None:
    job = await store.create_job(user_id=1, kind="imagine", seed=42, timings={"queued_s": 0.5})
    running = await store.mark_running(job.id)
    assert running.status == "running" and running.attempts == 1 and running.started_at is not None
    cells = [raster(16, 8, value) for value in range(4)]
    done = await store.complete_job(
        job.id, cells, seeds=[42, 43, 44, 45], grid=raster(32, 16, 9), timings={"denoise_s": 1.25}
    )
    assert done.status == "done" and done.finished_at is not None and done.error is None
    assert [(image.index, image.seed) for image in done.cells] == [(0, 42), (1, 43), (2, 44), (3, 45)]
    assert (
        done.grid is not None
        and done.grid.index == GRID_INDEX
        and (done.grid.width, done.grid.height) == (32, 16)
    )
    assert (done.width, done.height) == (16, 8)
    assert done.timings == {"queued_s": 0.5, "denoise_s": 1.25}
    for image, source in zip(done.cells, cells, strict=True):
        path = store.files.absolute(image.path)
        assert not image.path.startswith("/") and path.is_file() and path.stat().st_size == image.bytes
        with PILImage.open(path) as picture:
            assert picture.size == (16, 8) and picture.convert("RGB").tobytes() == source.rgb
    assert len({image.sha256 for image in done.images}) == 5
    reloaded = await store.get_job(job.id)
    assert reloaded is not None and [image.path for image in reloaded.images] == [
        image.path for image in done.images
    ]


async def test_a_pil_image_is_stored_too(store: Store) -> None:
    job = await store.create_job(user_id=1, kind="upscale")
    picture = PILImage.new("RGBA", (10, 6), (255, 0, 0, 128))
    done = await store.complete_job(job.id, [picture], seeds=[7], grid=None, timings={})
    assert done.grid is None and len(done.cells) == 1
    assert store.files.open_image(done.cells[0].path).size == (10, 6)


async def test_complete_job_refuses_bad_input_before_writing_anything(store: Store) -> None:
    job = await store.create_job(user_id=1, kind="imagine")
    with pytest.raises(InvalidInputError, match="2 image\\(s\\) but 1 seed"):
        await store.complete_job(job.id, [raster(), raster()], seeds=[1])
    with pytest.raises(InvalidInputError, match="needs 192 bytes, got 3"):
        await store.complete_job(job.id, [raster().__class__(8, 8, b"abc")], seeds=[1])
    with pytest.raises(InvalidInputError, match="cannot store a str"):
        await store.complete_job(job.id, ["not a picture"], seeds=[1])  # type: ignore[list-item]
    with pytest.raises(NotFoundError):
        await store.complete_job("missing", [raster()], seeds=[1])
    with pytest.raises(TypeError, match="unexpected keyword argument\\(s\\): grids"):
        await store.complete_job(job.id, [raster()], seeds=[1], grids=raster())  # type: ignore[call-arg]
    after = await store.get_job(job.id)
    assert after is not None and after.status == "queued" and after.images == []
    assert not (store.files.images_dir.exists() and any(store.files.images_dir.glob("*/*/*.png")))


async def test_finished_jobs_cannot_be_restarted_or_completed_again(store: Store) -> None:
    job = await store.create_job(user_id=1, kind="imagine")
    done = await store.complete_job(job.id, [raster()], seeds=[1], grid=raster(16, 16))
    files = {image.path: store.files.read_bytes(image.path) for image in done.images}
    with pytest.raises(JobStateError, match="is done"):
        await store.mark_running(job.id)
    with pytest.raises(JobStateError, match="is done"):
        await store.complete_job(job.id, [raster(value=3)], seeds=[2], grid=raster(16, 16, 4))
    # the refused results were encoded meanwhile, but not one of the job's files changed
    assert {path: store.files.read_bytes(path) for path in files} == files
    assert len(list(store.files.images_dir.glob("*/*/*.png"))) == 2
    with pytest.raises(JobStateError, match="already done"):
        await store.fail_job(job.id, "boom")
    after = await store.get_job(job.id)
    assert after is not None and after.status == "done" and after.cells[0].seed == 1


async def test_two_runs_racing_to_complete_one_job_leave_the_winners_files_intact(store: Store) -> None:
    """Two processes that both ran a job (a recovery beside a live run) race to complete it."""
    job = await store.create_job(user_id=1, kind="imagine")
    results = await asyncio.gather(
        store.complete_job(job.id, [raster(16, 8, 1)], seeds=[1], grid=raster(32, 16, 2)),
        store.complete_job(job.id, [raster(16, 8, 3)], seeds=[3], grid=raster(32, 16, 4)),
        return_exceptions=True,
    )
    assert sorted(type(result).__name__ for result in results) == ["Job", "JobStateError"]
    done = await store.get_job(job.id)
    assert done is not None and done.status == "done"
    for image in done.images:  # every row's file is there, with exactly the bytes its hash names
        data = store.files.read_bytes(image.path)
        assert hashlib.sha256(data).hexdigest() == image.sha256 and len(data) == image.bytes
    assert len(list(store.files.images_dir.glob("*/*/*.png"))) == 2  # the loser's files are gone


async def test_fail_and_cancel_keep_the_reason_and_a_repeated_cancel_is_harmless(store: Store) -> None:
    job = await store.create_job(user_id=1, kind="imagine")
    await store.mark_running(job.id)
    failed = await store.fail_job(job.id, "the engine ran out of memory")
    assert (failed.status, failed.error) == ("failed", "the engine ran out of memory")
    assert failed.finished_at is not None
    other = await store.create_job(user_id=1, kind="imagine")
    first = await store.fail_job(other.id, "cancelled by the user", status="cancelled")
    second = await store.fail_job(other.id, "cancelled again", status="cancelled")
    assert second.status == "cancelled" and second.error == "cancelled by the user" == first.error
    with pytest.raises(InvalidInputError, match="fail_job status"):
        await store.fail_job(other.id, "x", status="done")
    with pytest.raises(JobStateError, match="only a queued or running job can complete"):
        await store.complete_job(other.id, [raster()], seeds=[1])


async def test_a_job_cancelled_while_its_files_were_written_is_not_marked_done(
    store: Store, monkeypatch
) -> None:
    job = await store.create_job(user_id=1, kind="imagine")
    put_many = store.files.put_many

    def write_then_cancel(job_id, items, tag=""):
        stored = put_many(job_id, items, tag)

        asyncio.run(_cancel_elsewhere(store.db.url, store.files.data_dir, job_id))
        return stored

    monkeypatch.setattr(store.files, "put_many", write_then_cancel)
    with pytest.raises(JobStateError, match="is cancelled"):
        await store.complete_job(job.id, [raster()], seeds=[1])
    after = await store.get_job(job.id)
    assert after is not None and after.status == "cancelled" and after.images == []
    assert list(store.files.images_dir.glob("*/*/*.png")) == []  # the unreferenced files are gone


async def _cancel_elsewhere(url: str, data_dir, job_id: str) -> None:
    other = await Store.open(url, data_dir)
    try:
        await other.fail_job(job_id, "cancelled by the user", status="cancelled")
    finally:
        await other.close()


async def test_pending_jobs_are_queued_and_running_oldest_first(store: Store) -> None:
    ids = []
    for minute, status in enumerate(["queued", "running", "failed", "queued", "cancelled", "running"]):
        job = await store.create_job(
            user_id=minute, kind="imagine", status=status, created_at=T0 + timedelta(minutes=5 - minute)
        )
        ids.append(job.id)
    pending = await store.pending_jobs()
    # created_at runs backwards through the list, so oldest first is the reverse order
    assert [job.id for job in pending] == [ids[5], ids[3], ids[1], ids[0]]


async def test_user_jobs_newest_first_filtered_by_status_and_limited(store: Store) -> None:
    for minute in range(5):
        await store.create_job(
            user_id=7,
            kind="imagine",
            prompt=f"p{minute}",
            created_at=T0 + timedelta(minutes=minute),
            status="queued" if minute % 2 else "running",
        )
    await store.create_job(user_id=8, kind="imagine", prompt="someone else")
    jobs = await store.user_jobs(7)
    assert [job.prompt for job in jobs] == ["p4", "p3", "p2", "p1", "p0"]
    assert [job.prompt for job in await store.user_jobs(7, statuses=["queued"])] == ["p3", "p1"]
    assert [job.prompt for job in await store.user_jobs(7, limit=2)] == ["p4", "p3"]
    assert await store.count_user_jobs(7, ["queued", "running"]) == 5
    with pytest.raises(InvalidInputError, match="unknown job status 'asleep'"):
        await store.user_jobs(7, statuses=["asleep"])


async def test_messages_find_their_job(store: Store) -> None:
    job = await store.create_job(user_id=1, kind="imagine")
    other = await store.create_job(user_id=1, kind="imagine")
    await store.add_message(job.id, 1_200_000_000_000_000_001)
    updated = await store.add_message(job.id, 1_200_000_000_000_000_002)
    await store.add_message(job.id, 1_200_000_000_000_000_002)  # recording twice is harmless
    assert updated.message_id == 1_200_000_000_000_000_002
    messages = await store.job_messages(job.id)
    first, second = 1_200_000_000_000_000_001, 1_200_000_000_000_000_002
    assert [message_id for _, message_id in messages] == [first, second]
    for _, message_id in messages:
        found = await store.find_job_by_message(message_id)
        assert found is not None and found.id == job.id
    assert await store.find_job_by_message(5) is None
    with pytest.raises(NotFoundError):
        await store.add_message("missing", 5)
    with pytest.raises(InvalidInputError, match="message id must be a whole number"):
        await store.add_message(other.id, "5")  # type: ignore[arg-type]
    assert await store.job_messages(other.id) == []


async def test_a_message_id_written_straight_onto_the_job_is_found_too(store: Store) -> None:
    job = await store.create_job(user_id=1, kind="imagine")
    await store.update_job(job.id, message_id=777)  # e.g. set by hand or by an older version
    found = await store.find_job_by_message(777)
    assert found is not None and found.id == job.id


async def test_a_stored_cell_copied_to_a_new_job_keeps_its_exact_bytes(store: Store) -> None:
    """U1-U4: the cell's PNG is stored again as it is, not decoded and encoded anew."""
    grid_job = await store.create_job(user_id=1, kind="imagine")
    done = await store.complete_job(
        grid_job.id, [raster(12, 8, n) for n in range(4)], seeds=[1, 2, 3, 4], grid=raster(24, 16)
    )
    cell = done.cells[2]
    single = await store.create_job(user_id=1, kind="upscale", parent_id=grid_job.id, parent_index=2)
    copied = await store.complete_job(single.id, [store.files.load_encoded(cell.path)], seeds=[cell.seed])
    [image] = copied.images
    assert (image.width, image.height, image.sha256, image.bytes) == (12, 8, cell.sha256, cell.bytes)
    assert store.files.read_bytes(image.path) == store.files.read_bytes(cell.path)
    assert image.path != cell.path and (copied.width, copied.height) == (12, 8)
    (store.files.data_dir / "not-a-png.png").write_bytes(b"GIF89a....................")
    with pytest.raises(InvalidInputError, match="is not a PNG"):
        store.files.load_encoded("not-a-png.png")


async def test_each_message_keeps_its_own_channel(store: Store) -> None:
    job = await store.create_job(user_id=1, kind="imagine", guild_id=10, channel_id=100)
    await store.add_message(job.id, 501)  # the old call: the job's channel
    await store.add_message(job.id, 502, channel_id=200)  # a /show copy elsewhere
    await store.add_message(job.id, 502, channel_id=200)  # recording twice is harmless
    assert await store.job_messages(job.id) == [(100, 501), (200, 502)]
    with pytest.raises(InvalidInputError, match="channel id must be a whole number"):
        await store.add_message(job.id, 503, channel_id="200")  # type: ignore[arg-type]
    assert await store.job_messages(job.id) == [(100, 501), (200, 502)]
    assert await store.job_messages("missing") == []


async def test_old_message_rows_without_a_channel_are_in_the_jobs_channel(store: Store) -> None:
    job = await store.create_job(user_id=1, kind="imagine", guild_id=10, channel_id=100)
    await store.add_message(job.id, 601, channel_id=300)

    async def old_row(session: AsyncSession) -> None:  # as revision 0001 wrote them: no channel
        session.add(JobMessage(message_id=602, job_id=job.id, channel_id=None))

    await store.db.transaction(old_row, write=True)
    await store.update_job(job.id, message_id=603)  # only on the job row, as written by hand
    # Oldest first: the job row's own message dates from the job's creation.
    assert await store.job_messages(job.id) == [(100, 603), (300, 601), (100, 602)]
