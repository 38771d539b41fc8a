"""`python -m benchmarks.bench_engine --through local`: the process boundary's cost beside diffusers'."""

from __future__ import annotations

import re

import pytest

from benchmarks.bench_batching import main as batching_main
from benchmarks.bench_engine import main


def test_bench_through_the_worker_prints_overhead_and_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--through", "local", "--ops", "imagine", "--repeats", "1", "--steps", "1", "--size", "32x32"])
    out = capsys.readouterr().out
    assert "engine_overhead_s" in out
    row = re.search(
        r"^imagine\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)%\s+([\d.]+)\s+([\d.]+)$", out, re.M
    )
    assert row, out
    e2e, run, overhead, _, plain, ratio = (float(v) for v in row.groups())
    assert 0 <= overhead < e2e and run <= e2e  # the overhead is part of the end-to-end time
    assert ratio == pytest.approx(e2e / plain, rel=0.1)  # printed figures are rounded
    assert re.search(r"LocalEngine.close\(\) with an idle worker: [\d.]+s", out)


@pytest.mark.parametrize("through", ["core", "local"])
def test_the_batching_bench_prints_one_row_per_depth(
    capsys: pytest.CaptureFixture[str], through: str
) -> None:

    batching_main(
        ["--through", through, "--depths", "1,3", "--repeats", "1", "--steps", "1", "--size", "32x32"]
    )
    out = capsys.readouterr().out
    rows = re.findall(r"^\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
    assert [int(depth) for depth, *_ in rows] == [1, 3], out
    for _depth, serial, batched, ratio in rows:
        assert float(ratio) == pytest.approx(float(batched) / float(serial), rel=0.1, abs=0.01)
