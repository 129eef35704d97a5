"""End to end: `eqs run` as the user runs it, against the bare Polars kernel on the same files.

Every figure is a process the user would start, timed from outside it:

- **one large date**: the first `days` trade dates of a data set folded into one landed date
  (`perf.one_date.fold`, in a child process), then, `runs` times and taking turns, the bare Polars
  kernel (`python -m perf.cases kernel-polars --folder ...`, a process of its own) and `eqs run
  --landing L --warehouse W` (the console script beside this interpreter, a fresh warehouse each
  time), whose wall time includes the interpreter's start and the imports;
- **its peak resident set**: the `eqs run` process's own high-water mark (`peak_of`);
- **a small history**: `eqs run` on every date of a data set of small dates (20 dates of about
  9k fills by default, `perf.datasets` "small20") into a fresh warehouse, then `eqs run` again on
  the same landing directory and warehouse (the re-run of unchanged dates);
- **an analyst query**: the share-weighted effective spread by venue and liquidity flag over
  `quality.fill_quality` of the large date's warehouse, each time on a fresh read-only DuckDB
  connection, in a process of its own;
- **the demo**: `eqs demo --home <a fresh folder>` (`make demo` once the environment is built).

The children run in the environment `make` gives them (`user_env`): no DAGSTER_HOME (`eqs run`
uses an ephemeral Dagster instance), no EQS_* overrides, bytecode written as the Makefile says.

    .venv/bin/python -m perf.cases e2e --dataset 10m --small small20 --dates 4 --runs 1

prints one JSON object (`run_e2e`); `rows` turns it into the table of docs/PERFORMANCE.md.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from perf.datasets import trade_dates
from perf.memory import status_bytes

ROOT = Path(__file__).parents[1]
GiB = 1024**3
TITLE = "End to end: `eqs run` against the bare kernel"
HEAD = ["figure", "measured", "target", "met"]
QUERY_REPEATS = 7
POLL_S = 0.1
# The analyst's query: share-weighted effective spread by venue and liquidity flag.
QUERY = """
select venue, liquidity_flag,
       sum(effective_spread_bps * qty) / sum(qty) as effective_spread_bps,
       sum(qty) as qty,
       count(*) as fills
from quality.fill_quality
where effective_spread_bps is not null
group by venue, liquidity_flag
order by venue, liquidity_flag
"""


@dataclass(frozen=True)
class Target:
    key: str  # the figure in run_e2e's result
    bound: float  # met when the figure is at most this
    unit: str


TARGETS = (
    Target("run_over_kernel", 10, "x"),
    Target("run_peak_rss_gib", 3.5, "GiB"),
    Target("rerun_s_per_date", 2, "s"),
    Target("small_run_s", 20, "s"),
    Target("query_s", 0.2, "s"),
    Target("demo_s", 12, "s"),
)


def user_env() -> dict[str, str]:
    """This environment as `make` hands it to `eqs`: no Dagster home (an ephemeral instance), no
    EQS_* paths, bytecode written (the Makefile exports PYTHONDONTWRITEBYTECODE empty)."""
    drop = {"DAGSTER_HOME", "EQS_HOME", "EQS_LANDING", "EQS_LAKE"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONDONTWRITEBYTECODE"] = ""
    return env


def eqs_command() -> list[str]:
    """The `eqs` console script beside this interpreter (as `make demo` calls it)."""
    script = Path(sys.executable).parent / "eqs"
    return [str(script)] if script.exists() else [sys.executable, "-m", "eqs_pipeline.cli.main"]


class _HighWater(threading.Thread):
    """A child's VmHWM, read from /proc every POLL_S seconds until it exits (the last reading
    misses at most the final POLL_S seconds of growth)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.status = Path(f"/proc/{pid}/status")
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                for line in self.status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak = max(self.peak, int(line.split()[1]) * 1024)
            except (OSError, ValueError, IndexError):
                pass
            self.stop.wait(POLL_S)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run `cmd` to the end: its wall seconds, CPU seconds and own peak resident set."""
    launcher = status_bytes("VmHWM") or 0
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        watch = _HighWater(proc.pid)
        watch.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        watch.stop.set()
        watch.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{text[-3000:]}")
    return {
        "seconds": seconds,
        "peak_rss_bytes": peak_of(usage.ru_maxrss * 1024, launcher, watch.peak),
        "ru_maxrss_bytes": usage.ru_maxrss * 1024,
        "polled_hwm_bytes": watch.peak,
        "launcher_hwm_bytes": launcher,
        "user_s": usage.ru_utime,
        "system_s": usage.ru_stime,
        "output": text,
    }


def peak_of(ru_maxrss: int, launcher: int, polled: int) -> int:
    """A child's own peak: wait4's ru_maxrss where it exceeds the launcher's peak (Linux carries
    the launcher's high-water mark into the child at exec, `perf.memory`), else the child's
    VmHWM as last read from /proc."""
    return ru_maxrss if ru_maxrss > launcher else polled


def eqs_run(landing: Path, warehouse: Path) -> dict:
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    cmd = [*eqs_command(), "run", "--landing", str(landing), "--warehouse", str(warehouse)]
    result = timed(cmd, user_env())
    result.pop("output")
    return result


def kernel(landing: Path) -> dict:
    """The bare Polars kernel in a process of its own: its seconds as the Batch table counts them
    (after the interpreter's start and imports, reads included) and the process's wall."""
    cmd = [sys.executable, "-m", "perf.cases", "kernel-polars", "--folder", str(landing)]
    result = timed(cmd)
    case = json.loads(result.pop("output").strip().splitlines()[-1])
    result["process_s"] = result.pop("seconds")
    result["seconds"] = case["wall_s"]
    result["peak_rss_bytes"] = case.get("own_peak_rss_bytes") or result["peak_rss_bytes"]
    return result


def query(warehouse: Path, repeats: int = QUERY_REPEATS) -> dict:
    """The analyst query `repeats` times, each on a fresh read-only connection (connect, execute,
    fetch, close), in this process."""
    import duckdb

    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        con = duckdb.connect(str(warehouse), read_only=True)
        rows = con.execute(QUERY).fetchall()
        con.close()
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds, "rows": len(rows), "fills": sum(r[-1] for r in rows)}


def landing_copy(folder: Path, out: Path) -> Path:
    """A data set's landing directory without the cache's marker file, which `eqs run` refuses
    as an unexpected entry: its table folders with hard links to the files (copies where a link
    cannot be made)."""

    def link(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    for table in folder.iterdir():
        if table.is_dir():
            shutil.copytree(table, out / table.name, copy_function=link)
    return out


def _count(landing: Path, table: str) -> int:
    import polars as pl

    return pl.scan_parquet(landing / table / "*" / "*.parquet").select(pl.len()).collect().item()


def _dates(landing: Path) -> int:
    return sum(1 for p in (landing / "executions").iterdir() if p.name.startswith("date="))


def run_e2e(folder: Path, small: Path, days: int, runs: int, workdir: Path | None = None) -> dict:
    """Every figure of the table, measured in this order: the fold, then `runs` times the kernel
    and `eqs run` on the folded date, the query on the last run's warehouse, `runs` times the
    small dates run and re-run, and `runs` demos."""
    with tempfile.TemporaryDirectory(prefix="eqs-bench-e2e-", dir=workdir) as tmp:
        root = Path(tmp)
        landing = root / "landing"
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "perf.one_date", "--fold", str(folder), str(landing),
             str(days)],
            check=True, cwd=ROOT,
        )  # fmt: skip
        fold_s = time.perf_counter() - start
        fills, quotes = _count(landing, "executions"), _count(landing, "quotes")
        kernels, big = [], []
        for i in range(runs):
            kernels.append(kernel(landing))
            if i:  # keep only the warehouse the query reads
                shutil.rmtree(root / f"run-{i - 1}")
            big.append(eqs_run(landing, root / f"run-{i}" / "warehouse.duckdb"))
        warehouse = root / f"run-{runs - 1}" / "warehouse.duckdb"
        q = timed([sys.executable, "-m", "perf.e2e", "query", str(warehouse)])
        asked = json.loads(q["output"].strip().splitlines()[-1])
        shutil.rmtree(root / f"run-{runs - 1}")
        first, again = [], []
        small = landing_copy(small, root / "small-landing")
        small_dates, small_fills = _dates(small), _count(small, "executions")
        for i in range(runs):
            warehouse = root / f"small-{i}" / "warehouse.duckdb"
            first.append(eqs_run(small, warehouse))
            again.append(eqs_run(small, warehouse))
            shutil.rmtree(warehouse.parent)
        demos = []
        for i in range(runs):
            home = root / f"demo-{i}" / "home"
            home.parent.mkdir()
            demos.append(timed([*eqs_command(), "demo", "--home", str(home)], user_env()))
            demos[-1].pop("output")
            shutil.rmtree(home.parent)
    run_s = _median(big, "seconds")
    kernel_s = _median(kernels, "seconds")
    rerun_s = _median(again, "seconds")
    return {
        "days_folded": len(trade_dates(folder)[:days]),
        "fills": fills,
        "quotes": quotes,
        "fold_s": fold_s,
        "runs": runs,
        "command": " ".join(Path(c).name for c in eqs_command()),
        "run_s": run_s,
        "kernel_s": kernel_s,
        "kernel_process_s": _median(kernels, "process_s"),
        "run_over_kernel": run_s / kernel_s,
        "run_peak_rss_gib": _median(big, "peak_rss_bytes") / GiB,
        "kernel_peak_rss_gib": _median(kernels, "peak_rss_bytes") / GiB,
        "small_dates": small_dates,
        "small_fills": small_fills,
        "small_run_s": _median(first, "seconds"),
        "rerun_s": rerun_s,
        "rerun_s_per_date": rerun_s / small_dates,
        "query_s": statistics.median(asked["seconds"]),
        "query_first_s": asked["seconds"][0],
        "query_repeats": len(asked["seconds"]),
        "query_groups": asked["rows"],
        "query_fills": asked["fills"],
        "demo_s": _median(demos, "seconds"),
        "each_run": {
            "kernel": kernels,
            "eqs_run": big,
            "query_s": asked["seconds"],
            "small_run": first,
            "small_rerun": again,
            "demo": demos,
        },
    }


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def met(result: dict, target: Target) -> bool | None:
    value = result.get(target.key)
    return None if value is None else value <= target.bound


def rows(r: dict) -> list[list[str]]:
    """The table: one row per target, its figure, bound and whether it is met."""
    per_date = r["small_fills"] / r["small_dates"]
    figures = {
        "run_over_kernel": (
            f"`{r['command']} run` on one date of {r['fills']:,} fills and {r['quotes']:,} "
            f"quotes ({r['days_folded']} dates folded), over the bare Polars kernel on the same "
            f"files: {r['run_s']:.1f} s (the process, interpreter start and imports included) / "
            f"{r['kernel_s']:.2f} s (the kernel in its process, reads included)",
            f"{r['run_over_kernel']:.1f}x",
        ),
        "run_peak_rss_gib": (
            "peak RSS of that `eqs run` process, GiB",
            f"{r['run_peak_rss_gib']:.2f}",
        ),
        "rerun_s_per_date": (
            f"re-run of unchanged dates: `eqs run` again on the same landing directory and "
            f"warehouse, {r['small_dates']} dates of about {per_date:,.0f} fills "
            f"({r['rerun_s']:.1f} s), seconds per date",
            f"{r['rerun_s_per_date']:.2f}",
        ),
        "small_run_s": (
            f"`eqs run`, {r['small_dates']} trade dates of about {per_date:,.0f} fills "
            f"({r['small_fills']:,} fills) into a fresh warehouse, seconds",
            f"{r['small_run_s']:.1f}",
        ),
        "query_s": (
            "analyst query on that date's warehouse (share-weighted effective spread by venue and "
            f"liquidity flag over `quality.fill_quality`), seconds: median of "
            f"{r['query_repeats']} fresh read-only connections, the first included (the first "
            f"alone {r['query_first_s']:.3f} s)",
            f"{r['query_s']:.3f}",
        ),
        "demo_s": (
            "`make demo` with the environment built: `eqs demo --home <fresh folder>`, seconds",
            f"{r['demo_s']:.1f}",
        ),
    }
    out = []
    for target in TARGETS:
        text, value = figures[target.key]
        ok = met(r, target)
        bound = f"<= {target.bound:g}{'x' if target.unit == 'x' else ''}"
        out.append([text, value, bound, {True: "yes", False: "no", None: "n/a"}[ok]])
    return out


if __name__ == "__main__":
    if sys.argv[1] == "query":
        sys.stdout.write("\n" + json.dumps(query(Path(sys.argv[2]))) + "\n")
    else:
        raise SystemExit(f"usage: python -m {__spec__.name} query WAREHOUSE")
