"""`python -m benchmarks.bench_gallery` runs end to end (on a small history) and prints its figures."""

from __future__ import annotations

import pytest

from benchmarks.bench_gallery import main


async def test_the_gallery_benchmark_prints_a_time_per_page(capsys: pytest.CaptureFixture[str]) -> None:
    await main(["--jobs", "2000", "--repeat", "1"])
    out = capsys.readouterr().out
    for row in ("page 200 (keyset cursor)", "GET / (page 1)", "GET /?q=lighthouse"):
        assert row in out and "median" in out.split(row, 1)[1].splitlines()[0]
