"""The benchmark harness runs from a fresh clone: simulate a tiny data set into a temporary
cache, run the pipeline, the bare Polars kernel and the event path each in its own process, and
summarize (without touching docs/PERFORMANCE.md)."""

from __future__ import annotations

from benchmarks.run import main, markdown, ratios


def test_bench_quick_smoke(tmp_path):
    summary = main(
        ["--sizes", "tiny", "--cases", "kernel-polars,pipeline,events", "--runs", "1",
         "--no-write", "--cache", str(tmp_path)]
    )  # fmt: skip
    row = summary["sizes"][0]
    assert row["pipeline"]["wall_s"] > 0 and row["pipeline"]["peak_rss_gib"] > 0
    assert row["kernel-polars"]["fills_per_s"] > 0
    assert ratios(row)["pipeline_over_polars"] > 0
    assert 0 < summary["events"]["event_ms"]["n"] <= row["fills"]
    assert "| tiny |" in markdown(summary)
