"""Pre-flight checks of `make bench`: what can only be seen by timing or measuring processes.

Speed, CPU time and memory are measured here, never asserted in the test suite (on a shared
machine such tests are flaky, and they cost the suite minutes). `python -m perf.run` runs these
first, prints each with its figures, records them in docs/PERFORMANCE.md ("Pre-flight checks")
and stops before the long benchmark if one fails; `python -m perf.checks` runs them alone.

- `harness`: the benchmark runs from a fresh clone: a tiny data set simulated into a temporary
  cache (and its time-ordered copy), the pipeline, the bare Polars kernel, the event path, the
  window assets (through a warehouse) and the two dates folded into one through `eqs run`'s
  path, each in its own process, and summarized (without touching docs/PERFORMANCE.md).
- `own peak`: a case reports its own peak resident set, not the launcher's (`perf.memory`):
  the launcher holds 1 GiB and the tiny kernel needs a fraction of it.
- `pool wait`: a run waiting for a pool slot sleeps instead of spinning (`perf.pool_wait`),
  with its steps in their own processes and in the run's.
- `simulator`: the simulator's speed on a medium desk; a figure, with no limit.
- `intraday alert latency`: `eqs monitor` as a process, from the landing of the batch file that
  closes an alarming minute to the alert at a local webhook: at most 60 s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

TITLE = "Pre-flight checks"


class CheckFailed(Exception):
    """A check's condition does not hold; the message says which and with what figures."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool | None  # None: a figure only
    figures: str
    seconds: float

    @property
    def result(self) -> str:
        return {True: "pass", False: "FAIL", None: "measured"}[self.passed]


def harness(cache: Path) -> str:
    """The former smoke test of the benchmark (`perf.run.main` on `tiny` and `tiny-time`)."""
    import polars as pl

    from perf.datasets import SPECS, TIME_ORDERED
    from perf.run import main, markdown, ratios

    summary = main(
        ["--sizes", "tiny,tiny-time", "--cases", "kernel-polars,pipeline,events,window,one-date",
         "--one-date-days", "2", "--runs", "1", "--no-write", "--no-checks", "--cache",
         str(cache), "--quiet"]
    )  # fmt: skip
    row, timed = summary["sizes"]
    require(
        timed["fills"] == row["fills"] and timed["quotes"] == row["quotes"],
        f"the time-ordered copy has other rows: {timed} against {row}",
    )
    blocks = cache / SPECS["tiny"].folder.name
    by_time = cache / SPECS["tiny-time"].folder.name
    for table, ts in TIME_ORDERED.items():
        for path in (blocks / table).rglob("*.parquet"):
            landed = pl.read_parquet(path)
            copy = pl.read_parquet(by_time / path.relative_to(blocks))
            require(copy[ts].is_sorted(), f"{path}: the time-ordered copy is not in time order")
            require(
                copy.equals(landed.sort(ts, maintain_order=True)),
                f"{path}: the time-ordered copy is not a stable sort of the landed file",
            )
    quotes = pl.read_parquet(next((blocks / "quotes").rglob("*.parquet")))
    require(not quotes["ts"].is_sorted(), "the simulated quotes are not in per-symbol blocks")
    pipeline = row["pipeline"]
    require(
        pipeline["wall_s"] > 0 and pipeline["peak_rss_gib"] > 0,
        f"the pipeline case has no figures: {pipeline}",
    )
    require(row["kernel-polars"]["fills_per_s"] > 0, "the Polars kernel has no figures")
    r = ratios(row)
    require(
        r["pipeline_over_polars"] > 0 and r["pipeline_over_polars_cheap_memory"] > 0,
        f"no ratios: {r}",
    )
    events = summary["events"]
    require(
        0 < events["event_ms"]["n"] <= row["fills"],
        f"the event path scored {events['event_ms']['n']} of {row['fills']} fills",
    )
    window = summary["window"]
    # Every fill of the data set read back from the warehouse, and each stage's own peak.
    require(
        window["fills"] == row["fills"] and window["trade_dates"] == 2,
        f"the window read {window['fills']} fills over {window['trade_dates']} dates, "
        f"not {row['fills']} over 2",
    )
    require(window["venues"] > 0 and window["routing_rows"] > 0, f"an empty window: {window}")
    peaks = {s: window[f"peak_rss_gib_{s}"] for s in ("inputs", "scorecard", "routing")}
    require(all(v > 0 for v in peaks.values()), f"a window stage without its peak: {peaks}")
    # The two dates folded into one, through every job of `eqs run`.
    one = summary["one-date"]
    require(
        one["fills"] == row["fills"] and one["days_folded"] == 2,
        f"one date: {one['fills']} fills from {one['days_folded']} dates, not {row['fills']}",
    )
    steps = one["step_peak_rss_gib"]
    require(
        len(steps) == 5 and all(0 < steps[s] <= one["peak_rss_gib"] for s in steps),
        f"one date: step peaks {steps} against the run's {one['peak_rss_gib']:.3f} GiB",
    )
    text = markdown(summary)
    require("| tiny |" in text and "One large trade date" in text, "the markdown lacks a table")
    return (
        f"tiny: {row['fills']:,} fills; pipeline {pipeline['wall_s']:.2f} s, Polars kernel "
        f"{row['kernel-polars']['wall_s']:.2f} s; window, events and one-date cases ran"
    )


def own_peak(cache: Path) -> str:
    """A case's peak RSS is its own VmHWM, not wait4's ru_maxrss, which includes the launching
    process's peak (Linux carries it across exec)."""
    import numpy as np

    from perf.datasets import SPECS, ensure
    from perf.memory import status_bytes
    from perf.run import GiB, _spawn

    ensure(SPECS["tiny"], cache)
    held = np.ones(GiB // 8)  # written, so resident
    launcher = status_bytes("VmHWM")
    require(launcher is not None, "no /proc/self/status: the check needs Linux")
    require(launcher >= GiB, f"the launcher's peak is {launcher / GiB:.2f} GiB, not 1 GiB")
    result = _spawn("kernel-polars", "tiny", cache)
    del held
    peak = result["peak_rss_bytes"] / GiB
    figures = f"launcher {launcher / GiB:.2f} GiB, the tiny kernel's own peak {peak:.2f} GiB"
    require("own_peak_rss_bytes" not in result, f"the case's own peak was not taken: {figures}")
    require(0 < peak < 0.8, f"the launcher's memory counted as the case's: {figures}")
    return figures


def pool_wait(steps: str) -> Callable[[Path], str]:
    def check(_: Path) -> str:
        from perf.pool_wait import measure

        r = measure(steps)
        figures = (
            f"{r.cpu_s:.2f} CPU s while blocked {r.window_s:.0f} s (limit {r.limit_s:.2f}); "
            f"the run {'went on' if r.run_ok else 'FAILED'} once the slot was freed"
        )
        require(r.run_ok, f"the pooled run failed, or not on {steps}: {figures}\n{r.output}")
        require(r.passed, f"the waiting run spins: {figures}")
        return figures

    return check


def simulator(_: Path) -> str:
    from eqs_pipeline.simulate import SimulationConfig, simulate

    cfg = SimulationConfig(days=2, symbols=40, orders_per_day=1500, seed=5)
    start = time.perf_counter()
    data = simulate(cfg)
    seconds = time.perf_counter() - start
    n = data.tables["executions"].height
    require(n > 0, "the simulator made no fills")
    quotes = data.tables["quotes"].height
    return f"{n:,} fills, {quotes:,} quotes in {seconds:.2f} s ({n / seconds:,.0f} fills/s)"


def intraday_alert(tmp: Path) -> str:
    """`eqs monitor` as a process: from the batch file whose landing closes the minute that
    alarms to the alert at a webhook, at most 60 s of wall time. The simulator's intraday test
    bed (about 100 fills a minute; LTB a tick worse and toxic from minute 120): the morning's
    batches land at once and the monitor catches up, then one batch every 2 s."""
    import json
    import os
    import subprocess
    import threading
    from datetime import datetime
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from eqs_pipeline.monitor.intraday import IntradaySettings, daily_series
    from eqs_pipeline.simulate import iter_days
    from eqs_pipeline.simulate.intraday import batches, intraday_test_bed, write_batch
    from eqs_pipeline.storage import lake

    onset, limit_s = 120, 60.0
    root = tmp / "intraday"
    _, days = iter_days(intraday_test_bed(5, "LTB", onset, seed=3))
    days = list(days)
    for d in days[:-1]:
        lake.write(
            root / "lake",
            "monitor.metric_series",
            daily_series(d.tables, d.trade_date),
            d.trade_date,
        )
    day = days[-1]
    received: dict[str, float] = {}

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.setdefault(body["alert"]["alert_id"], time.time())
            alerts.append(body["alert"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    alerts: list[dict] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "EQS_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{server.server_port}/hook",
           "EQS_ALERT_ROUTING": "info=webhook;warning=webhook;critical=webhook"}  # fmt: skip
    drop = root / "drop"
    cut = list(batches(day, 60))
    for batch in cut[:onset]:
        write_batch(drop, day.trade_date, batch)
    command = [sys.executable, "-m", "eqs_pipeline.cli.main", "monitor", "--drop", str(drop),
               "--warehouse", str(root / "eqs.duckdb"), "--poll-seconds", "0.5"]  # fmt: skip
    log = (root / "monitor.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    checkpoint = root / "monitor" / "intraday" / day.trade_date.isoformat() / "checkpoint.json"
    landed: dict[int, float] = {}
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # the monitor catches up with the morning
            done = json.loads(checkpoint.read_text())["files"] if checkpoint.is_file() else []
            if len(done) == 4 * onset:
                break
            require(
                process.poll() is None, f"eqs monitor exited: {(root / 'monitor.log').read_text()}"
            )
            time.sleep(0.2)
        require(len(done) == 4 * onset, f"the monitor processed {len(done)} of {4 * onset} files")
        for batch in cut[onset : onset + 20]:
            write_batch(drop, day.trade_date, batch)
            landed[batch.index] = time.time()
            time.sleep(2.0)
            if any(a["subject"] == "LTB" for a in alerts):
                break
        time.sleep(limit_s if not any(a["subject"] == "LTB" for a in alerts) else 0.0)
    finally:
        process.terminate()
        process.wait(timeout=30)
        server.shutdown()
    first = [a for a in alerts if a["subject"] == "LTB"]
    require(
        bool(first),
        f"no alert about LTB; the monitor's log: {(root / 'monitor.log').read_text()[-2000:]}",
    )
    alert = first[0]
    start = datetime.fromisoformat(alert["evidence"]["bucket_start"])
    bucket = int((start - IntradaySettings().open_at(day.trade_date)).total_seconds() // 60)
    trigger = bucket + 1  # the batch whose data time closes the bucket (its end + settle_s)
    require(trigger in landed, f"the alarming minute {bucket} was closed by the morning's batches")
    latency = received[alert["alert_id"]] - landed[trigger]
    figures = (
        f"alert on LTB {alert['metric']} for minute {bucket} (onset {onset}): {latency:.2f} s "
        f"from its closing batch landing to the webhook (limit {limit_s:.0f} s)"
    )
    require(latency <= limit_s, figures)
    return figures


# name -> (the check, whether it gives a verdict or a figure only)
CHECKS: dict[str, tuple[Callable[[Path], str], bool]] = {
    "harness": (harness, True),
    "own peak": (own_peak, True),
    "pool wait, multiprocess": (pool_wait("multiprocess"), True),
    "pool wait, in_process": (pool_wait("in_process"), True),
    "simulator": (simulator, False),
    "intraday alert latency": (intraday_alert, True),
}


def run_checks(names: list[str] | None = None, on_start: Callable[[str], None] | None = None):
    """Every check (or those named), each in turn; a failure is recorded, not raised."""
    out = []
    with tempfile.TemporaryDirectory(prefix="eqs-bench-checks-") as tmp:
        for name in names or list(CHECKS):
            check, verdict = CHECKS[name]
            if on_start:
                on_start(name)
            start = time.perf_counter()
            try:
                figures, passed = check(Path(tmp)), True if verdict else None
            except CheckFailed as failed:
                figures, passed = str(failed), False
            except Exception as error:  # a check that cannot run fails, saying why
                figures, passed = f"{type(error).__name__}: {error}", False
            out.append(Check(name, passed, figures, time.perf_counter() - start))
    return out


def rows(checks: list[dict]) -> list[list[str]]:
    """The checks as table rows (from their JSON form, as the summary holds them)."""
    return [
        [c["name"], Check(**c).result, f"{c['seconds']:.1f}",
         c["figures"].replace("|", "/").replace("\n", " ")]
        for c in checks
    ]  # fmt: skip


def as_json(checks: list[Check]) -> list[dict]:
    return [asdict(c) for c in checks]


def main(argv: list[str] | None = None) -> None:
    from perf.run import main as run_main

    run_main(["--checks-only", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    main()
