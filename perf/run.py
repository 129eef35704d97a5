"""`make bench`: generate the data sets, run every case in its own process, print and record.

    python -m perf.run                 # 1M, 10M and 10M in time order, 3 runs each
    python -m perf.run --quick         # 100k and 1M fills, 1 run (a couple of minutes)
    python -m perf.run --sizes tiny --cases pipeline,kernel-polars --no-write --no-checks
    python -m perf.run --checks-only   # the pre-flight checks alone (a couple of minutes)
    python -m perf.run --cases e2e --runs 1   # `eqs run` end to end on a 2M-fill date (perf.e2e)

The pre-flight checks (`perf.checks`: the harness on a tiny data set, a case's own peak, a run
waiting for a pool sleeps) run first; the benchmark stops there if one fails.

Every case runs in a fresh subprocess (`perf.cases`); its peak RSS is the child's own
`VmHWM`, which it reports (`ru_maxrss` from `os.wait4` where /proc is missing: it can include
this process's peak, see `perf.memory`); its CPU time comes from `os.wait4`. Figures are
medians over the runs. The results, with the machine they were measured on, are written to
docs/PERFORMANCE.md (between the generated markers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eqs_pipeline import POLARS_ALLOCATOR_ENV
from perf import checks, e2e, model
from perf.cases import BACKFILL_CASES
from perf.datasets import CACHE, SPECS, ensure

ROOT = Path(__file__).parents[1]
DOC = ROOT / "docs" / "PERFORMANCE.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SIZE_CASES = ["kernel-polars", "kernel-pandas", "kernel-duckdb", "pipeline"]
WINDOW_TITLE = "Window assets: venue scorecard and routing over the whole data set"
ALGO_TITLE = "Algo step (`algo_window`) beside the venue window, same data set"
ONE_DATE_TITLE = "One large trade date through `eqs run` (every step in one process)"
GiB = 1024**3


def _spawn(case: str, dataset: str, cache: Path, extra: list[str] | None = None) -> dict:
    """Run a case and measure the child's own peak RSS and CPU time (wait4 on its pid)."""
    cmd = [sys.executable, "-m", "perf.cases", case, "--dataset", dataset]
    cmd += ["--cache", str(cache), *(extra or [])]
    with _tmpfile() as out, _tmpfile() as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
        err.seek(0)
        errors = err.read().decode(errors="replace")
    if proc.returncode:
        raise RuntimeError(
            f"case {case} on {dataset} failed (exit {proc.returncode}):\n{text[-3000:]}\n"
            f"{errors[-3000:]}"
        )
    result = json.loads(text.strip().splitlines()[-1])
    # The case's own high-water mark; wait4's ru_maxrss includes this process's (the data sets
    # are generated here), so it is only the fallback where /proc is missing.
    own_peak = result.pop("own_peak_rss_bytes", None)
    result["peak_rss_bytes"] = own_peak or usage.ru_maxrss * 1024
    result["user_s"], result["system_s"] = usage.ru_utime, usage.ru_stime
    return result


def _tmpfile():
    import tempfile

    return tempfile.TemporaryFile()


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB
    import duckdb
    import pandas
    import polars

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "polars": polars.__version__,
        "duckdb": duckdb.__version__,
        "pandas": pandas.__version__,
        "allocator": allocator_setting(),
        "load_average": os.getloadavg(),
        "fresh_memory_s_per_gib": fresh_memory_s_per_gib(),
    }


def allocator_setting() -> str:
    """Polars' jemalloc setting in effect: Polars puts its defaults first and the caller's
    `_RJEM_MALLOC_CONF` after them, and the last value of an option wins."""
    conf = os.environ.get(POLARS_ALLOCATOR_ENV, "")
    options = dict(pair.split(":", 1) for pair in conf.split(",") if ":" in pair)
    return ",".join(f"{k}:{v}" for k, v in options.items()) or "Polars' default"


def fresh_memory_s_per_gib() -> float:
    """Seconds to allocate and write 1 GiB of fresh memory. Every case pays this for memory it
    touches for the first time; on a virtual machine whose host takes back free guest memory
    (free page reporting) it can be ten times a bare machine's 0.1-0.2 s, which weighs most on
    cases that hold a whole data set at once (the bare kernels)."""
    import numpy as np

    start = time.perf_counter()
    block = np.ones(GiB // 8)
    seconds = time.perf_counter() - start
    del block
    return seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m perf.run")
    parser.add_argument("--quick", action="store_true", help="100k and 1M fills, one run")
    parser.add_argument(
        "--sizes", default=None, help="comma-separated data sets (tiny,100k,1m,10m,10m-time)"
    )
    parser.add_argument("--cases", default=None, help="comma-separated cases (default: all)")
    parser.add_argument("--runs", type=int, default=None, help="runs per case (median reported)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--backfill-dates", type=int, default=4, help="partitions backfilled")
    parser.add_argument(
        "--backfill-size", default="1m", help="data set of the backfill case (tiny,100k,1m,10m)"
    )
    parser.add_argument(
        "--one-date-days", type=int, default=10, help="trade dates folded into one (one-date)"
    )
    parser.add_argument("--e2e-days", type=int, default=4, help="trade dates folded into one (e2e)")
    parser.add_argument(
        "--e2e-small",
        default=None,
        help="data set of small dates run end to end (e2e; default small20, or the largest "
        "data set when that is a tiny one)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not update PERFORMANCE.md")
    parser.add_argument("--no-checks", action="store_true", help="skip the pre-flight checks")
    parser.add_argument(
        "--checks-only", action="store_true", help="only the pre-flight checks (perf.checks)"
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing (a summary only)")
    args = parser.parse_args(argv)
    sizes = (args.sizes or ("100k,1m" if args.quick else "1m,10m,10m-time")).split(",")
    runs = args.runs or (1 if args.quick else 3)
    wanted = set(
        (
            args.cases
            or ",".join(
                [*SIZE_CASES, "window", "one-date", "events", "model", "dagster", "backfill", "e2e"]
            )
        ).split(",")
    )
    # Wide enough for the tables when the output is a file or a CI log (rich assumes 80).
    console = (
        Console(quiet=args.quiet) if sys.stdout.isatty() else Console(width=180, quiet=args.quiet)
    )
    ran_checks = None if args.no_checks else preflight(console)
    if args.checks_only:
        summary = {"sizes": [], "runs": 0, "checks": ran_checks or []}
        summary["machine"] = machine()
        summary["when"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        if not args.no_write:
            write_doc(summary)
            console.print(f"written to {DOC.relative_to(ROOT)}")
        return summary
    args.cache.mkdir(parents=True, exist_ok=True)
    plan: list[tuple[str, str, list[str]]] = []
    # Runs of the cases of a data set take turns (kernels, pipeline, kernels, pipeline, ...), so
    # that a slow spell of a shared machine falls on every case alike rather than on one case's
    # runs.
    for size in sizes:
        plan += [(c, size, []) for _ in range(runs) for c in SIZE_CASES if c in wanted]
    small = sizes[0]
    # The window and event cases run on the largest data set as simulated.
    large = [s for s in sizes if SPECS[s].layout == "blocks"][-1]
    if "window" in wanted:
        plan += [("window", large, [])]
    if "one-date" in wanted:
        plan += [("one-date", large, ["--dates", str(args.one_date_days)])]
    if "events" in wanted:
        plan += [("events", large, [])]
    if "model" in wanted:
        plan += [("model", small, [])]
    if "dagster" in wanted:
        plan += [("dagster", small, [])] * runs
    if "backfill" in wanted:
        extra = ["--dates", str(args.backfill_dates)]
        plan += [(case, args.backfill_size, extra) for case in BACKFILL_CASES]
    needed = {p[1] for p in plan}
    if "e2e" in wanted:
        # The small dates are simulated here with the others; a smoke run on tiny uses tiny.
        e2e_small = args.e2e_small or (large if large.startswith("tiny") else "small20")
        extra = ["--dates", str(args.e2e_days), "--small", e2e_small, "--runs", str(runs)]
        plan += [("e2e", large, extra)]
        needed |= {large, e2e_small}
    results: dict[tuple[str, str], list[dict]] = {}
    info = {}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console,
    ) as progress:  # fmt: skip
        for name in sorted(needed, key=list(SPECS).index):
            task = progress.add_task(f"data set {name} (simulated once, cached)", total=1)
            info[name] = ensure(SPECS[name], args.cache)[1]
            progress.advance(task)
        task = progress.add_task("cases", total=len(plan))
        for case, size, extra in plan:
            progress.update(task, description=f"{case} on {size}")
            results.setdefault((case, size), []).append(_spawn(case, size, args.cache, extra))
            progress.advance(task)
    summary = summarize(results, info, sizes, runs)
    if ran_checks is not None:
        summary["checks"] = ran_checks
    summary["machine"] = machine()
    summary["when"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print_summary(console, summary)
    if not args.no_write:
        write_doc(summary)
        console.print(f"written to {DOC.relative_to(ROOT)}")
    return summary


def preflight(console: Console) -> list[dict]:
    """Run the pre-flight checks, print them; stop (exit 1) if one failed."""
    with console.status("pre-flight checks") as status:
        ran = checks.run_checks(on_start=lambda name: status.update(f"pre-flight check: {name}"))
    found = checks.as_json(ran)
    table = Table(title=checks.TITLE)
    for h in CHECKS_HEAD:
        table.add_column(h)
    for row in checks.rows(found):
        table.add_row(*row)
    console.print(table)
    failed = [c.name for c in ran if c.passed is False]
    if failed:
        console.print(f"pre-flight checks failed: {', '.join(failed)}; nothing measured or written")
        raise SystemExit(1)
    return found


CHECKS_HEAD = ["check", "result", "seconds", "figures"]


def summarize(results, info, sizes, runs) -> dict:
    rows = []
    for size in sizes:
        if size not in info:  # no case ran on it (`--cases e2e` with the default sizes)
            continue
        fills = info[size]["counts"]["executions"]
        row = {"size": size, "fills": fills, "quotes": info[size]["counts"]["quotes"]}
        for case in SIZE_CASES:
            if (case, size) in results:
                rs = results[(case, size)]
                row[case] = {
                    "wall_s": _median(rs, "wall_s"),
                    "peak_rss_gib": _median(rs, "peak_rss_bytes") / GiB,
                    "fills_per_s": fills / _median(rs, "wall_s"),
                    "user_s": _median(rs, "user_s"),
                    "system_s": _median(rs, "system_s"),
                    "runs": len(rs),
                }
                if case == "pipeline":
                    row[case]["stages"] = {
                        k: statistics.median(r["stages"][k] for r in rs) for k in rs[0]["stages"]
                    }
        rows.append(row)
    out: dict = {"sizes": rows, "runs": runs}
    for key in ("window", "one-date", "events", "model", "dagster", *BACKFILL_CASES, "e2e"):
        hits = [v for (c, _), v in results.items() if c == key]
        if hits:
            out[key] = hits[0][len(hits[0]) // 2] if key != "dagster" else _dagster(hits[0])
    return out


def _dagster(rs: list[dict]) -> dict:
    rs = sorted(rs, key=lambda r: r["dagster_s"])
    return rs[len(rs) // 2]


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def cheap_memory_s(case: dict) -> float | None:
    """A case's wall time on a machine whose fresh memory is cheap, estimated: its user CPU
    seconds over the cores it kept busy ((user + system) / wall). On this machine memory a
    process touches for the first time is supplied by the host, in system time, and the cases
    holding the most (the kernels) pay the most (docs/PERFORMANCE.md, "This machine's
    memory"); the estimate drops that cost. Rough: some system time is not memory."""
    user, system, wall = case.get("user_s"), case.get("system_s"), case.get("wall_s")
    if not user or system is None or not wall:
        return None
    return user * wall / (user + system)


def ratios(row: dict) -> dict:
    wall = {c: row[c]["wall_s"] for c in SIZE_CASES if c in row}
    cheap = {c: cheap_memory_s(row[c]) for c in SIZE_CASES if c in row}
    return {
        "pipeline_over_polars": _ratio(wall.get("pipeline"), wall.get("kernel-polars")),
        "pandas_over_pipeline": _ratio(wall.get("kernel-pandas"), wall.get("pipeline")),
        "duckdb_over_pipeline": _ratio(wall.get("kernel-duckdb"), wall.get("pipeline")),
        "pipeline_over_polars_cheap_memory": _ratio(
            cheap.get("pipeline"), cheap.get("kernel-polars")
        ),
    }


def _f(x, fmt="{:.2f}") -> str:
    return "n/a" if x is None else fmt.format(x)


def tables(summary: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    out = []
    head = ["data set", "case", "wall s (median)", "peak RSS GiB", "fills/s", "CPU s user",
            "CPU s system", "runs"]  # fmt: skip
    body = []
    for row in summary["sizes"]:
        label = f"{row['size']} ({row['fills']:,} fills, {row['quotes']:,} quotes)"
        for case in SIZE_CASES:
            if case in row:
                r = row[case]
                body.append([label, case, _f(r["wall_s"]), _f(r["peak_rss_gib"]),
                             f"{r['fills_per_s']:,.0f}", _f(r.get("user_s"), "{:.1f}"),
                             _f(r.get("system_s"), "{:.1f}"), str(r["runs"])])  # fmt: skip
    out.append(("Batch: full pipeline versus bare kernels", head, body))
    body = []
    for row in summary["sizes"]:
        r = ratios(row)
        body.append([row["size"], _f(r["pipeline_over_polars"]), _f(r["pandas_over_pipeline"]),
                     _f(r["duckdb_over_pipeline"]),
                     _f(r["pipeline_over_polars_cheap_memory"])])  # fmt: skip
    out.append(("Ratios (target: pipeline / Polars kernel <= 3)", ["data set",
                "pipeline / Polars kernel", "pandas kernel / pipeline",
                "DuckDB kernel / pipeline",
                "pipeline / Polars kernel, estimated for cheap memory (user CPU / cores busy)"],
                body))  # fmt: skip
    rows = [r for r in summary["sizes"] if "pipeline" in r]
    same = [r for r in rows if rows and SPECS[r["size"]].layout == SPECS[rows[0]["size"]].layout]
    if len(same) >= 2:
        a, b = same[0], same[-1]
        per_fill = (b["pipeline"]["wall_s"] / b["fills"]) / (a["pipeline"]["wall_s"] / a["fills"])
        out.append(("Scaling (target <= 1.2)", ["from", "to", "time per fill, ratio"],
                    [[a["size"], b["size"], _f(per_fill)]]))  # fmt: skip
    stage_rows = [
        [r["size"], *[_f(r["pipeline"]["stages"][k]) for k in ("read", "fill", "order", "venue")]]
        for r in rows
    ]
    out.append(("Pipeline stages, seconds", ["data set", "read", "fill", "order", "venue"],
                stage_rows))  # fmt: skip
    if "window" in summary:
        w = summary["window"]
        out.append((WINDOW_TITLE,
                    ["trade dates", "fills", "children", "clusters", "read s", "scorecard s",
                     "routing s", "peak RSS GiB: read / scorecard / routing"],
                    [[str(w["trade_dates"]), f"{w['fills']:,}", f"{w['children']:,}",
                      f"{w['clusters']:,}", _f(w["inputs_s"]), _f(w["scorecard_s"]),
                      _f(w["routing_s"]),
                      " / ".join(_f(w[f"peak_rss_gib_{s}"])
                                 for s in ("inputs", "scorecard", "routing"))]]))  # fmt: skip
        if "algos_s" in w:
            out.append((ALGO_TITLE,
                        ["orders", "cost model", "algo step s", "peak RSS GiB",
                         "added RSS GiB", "time / venue window", "added RSS / venue window peak"],
                        [[f"{w['orders']:,}", "trained, in service" if w["model"] else "none",
                          _f(w["algos_s"]), _f(w["peak_rss_gib_algos"]),
                          _f(w["added_rss_gib_algos"]),
                          f"{w['algos_time_share']:.0%}",
                          f"{w['algos_peak_share']:.0%}"]]))  # fmt: skip
    if "one-date" in summary:
        o = summary["one-date"]
        steps = o["step_peak_rss_gib"]
        out.append((ONE_DATE_TITLE,
                    ["trade dates folded", "fills", "quotes", "seconds", "peak RSS GiB",
                     *[f"{step} GiB" for step in steps]],
                    [[str(o["days_folded"]), f"{o['fills']:,}", f"{o['quotes']:,}",
                      _f(o["seconds"], "{:.1f}"), _f(o["peak_rss_gib"]),
                      *[_f(v) for v in steps.values()]]]))  # fmt: skip
    if "events" in summary:
        e = summary["events"]
        out.append(("Event path", ["measure", "p50", "p99", "max", "n"], [
            ["score_fill, ms per event", _f(e["event_ms"]["p50"], "{:.3f}"),
             _f(e["event_ms"]["p99"], "{:.3f}"), _f(e["event_ms"]["max"], "{:.3f}"),
             str(e["event_ms"]["n"])],
            [f"micro-batch of {e['batch_size']:,} fills (fill + order quality), s",
             _f(e["batch_s"]["p50"], "{:.3f}"), _f(e["batch_s"]["p99"], "{:.3f}"),
             _f(e["batch_s"]["max"], "{:.3f}"), str(e["batch_s"]["n"])],
        ]))  # fmt: skip
    if "model" in summary:
        m = summary["model"]
        out.append((model.TITLE, ["measure", "value", "target"], [
            [f"training on {m['window_orders']:,} orders ({m['train_orders']:,} learned), s",
             _f(m["train_s"], "{:.1f}"), "<= 60"],
            ["  of which importing JAX, Flax and optax, s", _f(m["jax_import_s"], "{:.1f}"), ""],
            [f"inference on {m['predict_orders']:,} encoded orders (the network, numpy), orders/s",
             f"{m['forward_orders_per_s']:,.0f}", ">= 1,000,000"],
            ["  with the features encoded and the three baselines priced, orders/s",
             f"{m['orders_per_s']:,.0f}", ""],
            ["pricing in the quality step, s per 100k orders", _f(m["score_s_per_100k"], "{:.2f}"),
             "<= 1"],
            ["peak RSS, GiB", _f(m["peak_rss_bytes"] / GiB), ""],
        ]))  # fmt: skip
    if "dagster" in summary:
        d = summary["dagster"]
        rows = [["whole daily job, in-process executor", _f(d["dagster_s"])]]
        rows += [[f"  {phase}", _f(sec)] for phase, sec in d["phases"].items()]
        rows += [
            ["  the rest: Dagster's step set-up, outputs, run start and end",
             _f(d["bookkeeping_s"])],
        ]  # fmt: skip
        rows += [
            ["the same partition as a launched run (a fresh process), in-process executor",
             _f(d["fresh_inprocess_s"])],
            ["  the process's start: interpreter, imports, definitions",
             _f(d["fresh_inprocess_s"] - d["dagster_s"])],
            ["the same, on the project's multiprocess executor", _f(d["multiprocess_s"])],
            ["  the executor's start-up: fork server, step processes",
             _f(d["multiprocess_s"] - d["fresh_inprocess_s"])],
        ]  # fmt: skip
        rows += [
            ["pure computation outside Dagster (fill + order + venue-daily)", _f(d["compute_s"])],
            ["  reading its staged rows from the Parquet lake", _f(d["read_s"])],
        ]  # fmt: skip
        out.append(("One daily partition through Dagster", ["measure", "seconds"], rows))
    if all(case in summary for case in BACKFILL_CASES):
        i, s, p, a, pi = (summary[case] for case in BACKFILL_CASES)
        out.append(
            (
                "Backfill",
                ["mode", "partitions", "seconds", "speedup", "failed", "lock errors",
                 "max steps at once", "max pool steps at once", "seconds in pool steps",
                 "each date loaded once"],
                [_backfill_row("one run at a time, multiprocess executor", s, s),
                 _backfill_row(f"{p['runs_at_once']} runs at a time (one per core), multiprocess "
                               "executor", p, s),
                 _backfill_row("every run at once, multiprocess executor", a, s),
                 _backfill_row("one run at a time, in-process executor", i, s),
                 _backfill_row(f"{pi['runs_at_once']} runs at a time (one per core), in-process "
                               "executor", pi, s)],
            )
        )  # fmt: skip
    if "e2e" in summary:
        out.append((e2e.TITLE, e2e.HEAD, e2e.rows(summary["e2e"])))
    if summary.get("checks"):
        out.append((checks.TITLE, CHECKS_HEAD, checks.rows(summary["checks"])))
    return out


def _backfill_row(mode: str, r: dict, serial: dict) -> list[str]:
    return [
        mode,
        str(r["partitions"]),
        _f(r["backfill_s"]),
        _f(_ratio(serial["backfill_s"], r["backfill_s"])),
        str(r["failed"]),
        str(r["lock_errors"]),
        str(r.get("max_concurrent_steps", "n/a")),
        str(r.get("max_concurrent_pool_steps", "n/a")),
        _f(r.get("pool_step_s")),
        "yes" if r.get("partitions_loaded_once") else "no",
    ]


def print_summary(console: Console, summary: dict) -> None:
    for title, head, body in tables(summary):
        if _partial(summary) and title not in ALONE:
            continue
        table = Table(title=title)
        for h in head:
            table.add_column(h)
        for row in body:
            table.add_row(*row)
        console.print(table)


def _machine_line(m: dict) -> str:
    load = ", ".join(f"{x:.1f}" for x in m["load_average"])
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}; Python "
        f"{m['python']}, Polars {m['polars']}, DuckDB {m['duckdb']}, pandas {m['pandas']}; "
        f"Polars allocator `{m.get('allocator', 'not recorded')}`; 1 GiB of fresh memory "
        f"written in {m.get('fresh_memory_s_per_gib', float('nan')):.2f} s; "
        f"load average at the end {load}."
    )


def _section(title: str, head: list[str], body: list[list[str]], note: str = "") -> list[str]:
    lines = [f"### {title}", ""]
    if note:
        lines += [note, ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    lines.append("")
    return lines


def markdown(summary: dict) -> str:
    lines = [
        f"Measured {summary['when']} with `python -m perf.run` ({summary['runs']} runs per "
        "case, medians; each case in its own process).",
        "",
        _machine_line(summary["machine"]),
        "",
    ]
    for title, head, body in tables(summary):
        lines += _section(title, head, body)
    return "\n".join(lines)


# Sections a run without the batch cases measures on their own (merged into the doc).
ALONE = (
    WINDOW_TITLE,
    ALGO_TITLE,
    ONE_DATE_TITLE,
    "Event path",
    model.TITLE,
    "One daily partition through Dagster",
    "Backfill",
    e2e.TITLE,
    checks.TITLE,
)


def _partial(summary: dict) -> bool:
    """Only some sections were measured (no batch case ran): keep the others in the doc."""
    return not any(case in row for row in summary["sizes"] for case in SIZE_CASES)


def _merge(block: str, summary: dict) -> str:
    """The generated block with only the sections this run measured replaced (or appended)."""
    note = f"_This section measured {summary['when']}. {_machine_line(summary['machine'])}_"
    for title, head, body in tables(summary):
        if title not in ALONE:
            continue
        new = "\n".join(_section(title, head, body, note))
        marker = f"### {title}\n"
        if marker in block:
            start = block.index(marker)
            nxt = block.find("\n### ", start + len(marker))
            if nxt == -1:  # the last section: keep the block's own ending (its blank line)
                ending = block[len(block.rstrip("\n")) :] or "\n"
                block = block[:start] + new.rstrip("\n") + ending
            else:
                block = block[:start] + new + "\n" + block[nxt + 1 :]
        else:
            block = block.rstrip("\n") + "\n\n" + new
    return block


def _section_text(block: str, title: str) -> str | None:
    marker = f"### {title}\n"
    if marker not in block:
        return None
    start = block.index(marker)
    end = block.find("\n### ", start + len(marker))
    return block[start : end + 1 if end != -1 else len(block)].rstrip("\n")


def _carried(old: str, new: str) -> str:
    """`new` plus the sections a run that measured the batch cases but not the others finds in
    the previous block, each marked with when and where it was measured."""
    when = re.search(r"Measured (.+?) with", old)
    machine_line = next((ln for ln in old.splitlines() if ln.startswith("Machine:")), "")
    for title in ALONE:
        section = _section_text(old, title)
        if section is None or f"### {title}\n" in new:
            continue
        if "_This section measured" not in section and when:
            note = f"_This section measured {when.group(1)}. {machine_line}_"
            head, _, table = section.partition("\n\n")
            section = f"{head}\n\n{note}\n\n{table}"
        new = new.rstrip("\n") + "\n\n" + section + "\n"
    return new


# The summary's sections, as `summarize` names them; "sizes" holds the batch cases.
SECTIONS = (
    "sizes", "window", "one-date", "events", "model", "dagster", *BACKFILL_CASES, "e2e", "checks"
)  # fmt: skip


def merged_json(old: dict, summary: dict) -> dict:
    """`summary` plus the sections of the previous results (`old`) that this run did not
    measure, as the markdown keeps them; `measured` says when and on what machine each section
    was measured."""
    out = dict(summary)
    measured = {}
    previous = old.get("measured", {})
    for key in SECTIONS:
        ran = not _partial(summary) if key == "sizes" else key in summary
        if ran:
            measured[key] = {"when": summary["when"], "machine": summary["machine"]}
        elif key in old:
            out[key] = old[key]
            measured[key] = previous.get(
                key, {"when": old.get("when"), "machine": old.get("machine")}
            )
    out["measured"] = measured
    return out


def write_doc(summary: dict) -> None:
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    before, rest = text.split(BEGIN, 1)
    old, after = rest.split(END, 1)
    if _partial(summary):
        DOC.write_text(f"{before}{BEGIN}{_merge(old, summary)}{END}{after}")
    else:
        block = _carried(old, markdown(summary))
        DOC.write_text(f"{before}{BEGIN}\n{block}\n{END}{after}")
    results = DOC.parent / "performance.json"
    previous = json.loads(results.read_text()) if results.exists() else {}
    merged = merged_json(previous, json.loads(json.dumps(summary, default=str)))
    results.write_text(json.dumps(merged, indent=1))


if __name__ == "__main__":
    main()
