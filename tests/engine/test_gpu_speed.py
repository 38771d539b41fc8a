"""The GPU benchmark's CPU rehearsal (`python -m benchmarks.gpu_speed --rehearse`) runs end to end."""

from __future__ import annotations

import json

import pytest

from benchmarks.gpu_speed import main


def test_the_rehearsal_times_stock_and_each_stage_and_writes_the_json(tmp_path, capsys):
    out = tmp_path / "gpu_speed.json"
    # The eager backend traces with dynamo as inductor would, without minutes of C++ compilation.
    args = ["--rehearse", "--archs", "tiny", "--stages", "plain,compile,restart", "--json", str(out)]
    report = main([*args, "--compile-backend", "eager"])
    printed = capsys.readouterr().out
    assert "grid s" in printed and "x stock" in printed
    assert json.loads(out.read_text()) == report
    plain, compiled, restart = report["results"]
    assert [r["stage"] for r in report["results"]] == ["plain", "compile", "restart"]
    assert plain["stock_grid_s"] > 0 and plain["grid_s"] > 0 and plain["depth4_jobs_s"] > 0
    assert plain["mean_px_diff"] == 0 and plain["ssim"] == pytest.approx(1.0)
    assert "compile:regional" in compiled["speed"] and compiled["warmup_s"] > 0
    assert compiled["mean_px_diff"] <= 1.0 and compiled["ssim"] > 0.99  # same pictures, compiled
    assert compiled["speedup_vs_stock"] == pytest.approx(plain["stock_grid_s"] / compiled["grid_s"])
    assert restart["cold_start_s"] > 0 and restart["grid_s"] is None  # a restart is timed, not run
    assert report["skipped"] == []


def test_stages_past_the_time_budget_are_skipped_and_listed(capsys):
    report = main(["--rehearse", "--archs", "tiny", "--stages", "plain,fp8", "--budget-s", "0"])
    assert report["results"] == [] and report["skipped"] == ["tiny/plain", "tiny/fp8"]
    assert "skipped: past the 0s budget" in capsys.readouterr().out
