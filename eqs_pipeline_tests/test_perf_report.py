"""The benchmark's own arithmetic and reporting (perf/): ratios, the phases of the Dagster case,
the generated sections of docs/PERFORMANCE.md and of its JSON, without running a case.

Running the benchmark itself, and the figures that can only be measured (a case's own peak
memory, a run waiting for a pool using no CPU), are the pre-flight checks of `make bench`
(perf/checks.py), not tests."""

from __future__ import annotations


def test_the_cheap_memory_estimate_is_user_cpu_over_the_cores_kept_busy():
    from perf.run import cheap_memory_s, ratios

    # 30 s user + 6 s system over 20 s: 1.8 cores busy, 30 / 1.8 = 16.7 s without the system
    # time; a case that spent nothing in the system keeps its wall time.
    assert cheap_memory_s({"user_s": 30.0, "system_s": 6.0, "wall_s": 20.0}) == 30.0 * 20 / 36
    assert cheap_memory_s({"user_s": 9.0, "system_s": 0.0, "wall_s": 5.0}) == 5.0
    assert cheap_memory_s({"user_s": None, "system_s": 1.0, "wall_s": 5.0}) is None
    row = {
        "kernel-polars": {"wall_s": 12.0, "user_s": 15.7, "system_s": 7.3},
        "pipeline": {"wall_s": 21.5, "user_s": 29.5, "system_s": 6.9},
    }
    # The full run of 2026-11-25 00:24 UTC on `10m`: 8.2 s against 17.4 s.
    assert abs(ratios(row)["pipeline_over_polars_cheap_memory"] - 2.13) < 0.01


def test_phase_seconds_count_overlapping_calls_once():
    from perf.through_dagster import _covered

    assert _covered([]) == 0
    # Nested, overlapping, touching and disjoint calls (the tape prepared on a second thread).
    spans = [(0.0, 4.0), (1.0, 2.0), (3.0, 6.0), (6.0, 7.0), (9.0, 10.0)]
    assert _covered(spans) == 8.0
    assert _covered(list(reversed(spans))) == 8.0


def test_a_batch_only_run_keeps_the_other_sections_with_their_date():
    from perf.run import _carried

    old = (
        "Measured 2026-11-01 10:00 UTC with `python -m perf.run` (3 runs).\n\n"
        "Machine: old box.\n\n"
        "### Batch: full pipeline versus bare kernels\n\n| a |\n|---|\n| 1 |\n\n"
        "### Event path\n\n| p99 |\n|---|\n| 0.02 |\n\n"
        "### Backfill\n\n_This section measured 2026-10-30 08:00 UTC. Machine: older._\n\n"
        "| s |\n|---|\n| 34 |\n"
    )
    new = (
        "Measured 2026-11-02 with x.\n\nMachine: new box.\n\n"
        "### Batch: full pipeline versus bare kernels\n\n| a |\n|---|\n| 2 |\n"
    )
    out = _carried(old, new)
    assert out.startswith(new.rstrip("\n"))
    assert "| 1 |" not in out  # the batch section is this run's
    assert (
        "### Event path\n\n_This section measured 2026-11-01 10:00 UTC. Machine: old box._\n\n"
        "| p99 |\n|---|\n| 0.02 |" in out
    )
    assert "_This section measured 2026-10-30 08:00 UTC. Machine: older._\n\n| s |" in out
    assert out.count("### Backfill") == 1


def test_the_results_json_keeps_the_sections_a_run_did_not_measure():
    from perf.run import merged_json

    full = {
        "when": "2026-11-01 10:00 UTC",
        "machine": {"cores": 2},
        "runs": 3,
        "sizes": [{"size": "1m", "pipeline": {"wall_s": 2.0}}],
        "events": {"p99": 0.02},
        "dagster": {"dagster_s": 6.0},
    }
    first = merged_json({}, full)
    assert first["measured"]["events"]["when"] == "2026-11-01 10:00 UTC"

    batch = {
        "when": "2026-11-02 09:00 UTC",
        "machine": {"cores": 4},
        "runs": 3,
        "sizes": [{"size": "1m", "pipeline": {"wall_s": 1.5}}],
    }
    second = merged_json(first, batch)
    assert second["sizes"] == batch["sizes"]  # this run's batch figures
    assert second["events"] == {"p99": 0.02} and second["dagster"] == {"dagster_s": 6.0}
    assert second["measured"]["sizes"] == {"when": "2026-11-02 09:00 UTC", "machine": {"cores": 4}}
    assert second["measured"]["events"] == {"when": "2026-11-01 10:00 UTC", "machine": {"cores": 2}}

    dagster_only = {
        "when": "2026-11-03 08:00 UTC",
        "machine": {"cores": 4},
        "runs": 1,
        "sizes": [{"size": "1m", "fills": 10}],  # no batch case ran
        "dagster": {"dagster_s": 5.0},
    }
    third = merged_json(second, dagster_only)
    assert third["sizes"] == batch["sizes"] and third["dagster"] == {"dagster_s": 5.0}
    assert third["measured"]["sizes"]["when"] == "2026-11-02 09:00 UTC"
    assert third["measured"]["dagster"]["when"] == "2026-11-03 08:00 UTC"
    assert third["measured"]["events"]["when"] == "2026-11-01 10:00 UTC"
    assert "window" not in third and "window" not in third["measured"]


def test_a_run_of_some_sections_replaces_them_and_keeps_a_blank_line_before_the_next(monkeypatch):
    import perf.run as run

    block = (
        "\nMeasured x.\n\n### Event path\n\n| a |\n|---|\n| 1 |\n\n"
        "### Backfill\n\n| b |\n|---|\n| 2 |\n"
    )
    monkeypatch.setattr(run, "_machine_line", lambda machine: "Machine: box.")
    monkeypatch.setattr(run, "tables", lambda summary: [("Event path", ["a"], [["9"]])])
    out = run._merge(block, {"when": "2026-11-24 14:11 UTC", "machine": {}})
    assert out == (
        "\nMeasured x.\n\n### Event path\n\n"
        "_This section measured 2026-11-24 14:11 UTC. Machine: box._\n\n| a |\n|---|\n| 9 |\n\n"
        "### Backfill\n\n| b |\n|---|\n| 2 |\n"
    )
    monkeypatch.setattr(run, "tables", lambda summary: [("Backfill", ["b"], [["3"]])])
    last = run._merge(out, {"when": "2026-11-24 14:12 UTC", "machine": {}})
    assert last.startswith(out[: out.index("### Backfill")])
    assert last.endswith(
        "_This section measured 2026-11-24 14:12 UTC. Machine: box._\n\n| b |\n|---|\n| 3 |\n"
    )
    # The block as the full run writes it ends with a blank line before the end marker; a
    # replaced last section keeps it.
    again = run._merge(out + "\n", {"when": "2026-11-24 14:13 UTC", "machine": {}})
    assert again.endswith("| 3 |\n\n")


def test_the_dagster_and_backfill_tables_split_start_up_and_compare_with_serial():
    """The Dagster section splits a launched run's start-up into the process's own and the
    multiprocess executor's; every backfill mode's speedup is against one multiprocess run at a
    time."""
    from perf.cases import BACKFILL_CASES
    from perf.run import tables

    def mode(seconds: float, width: int) -> dict:
        return {"partitions": 4, "runs_at_once": width, "backfill_s": seconds, "failed": 0,
                "lock_errors": 0, "max_concurrent_steps": width, "max_concurrent_pool_steps": 1,
                "pool_step_s": 8.0, "partitions_loaded_once": True}  # fmt: skip

    dagster = {"dagster_s": 5.0, "phases": {"ingest": 0.5}, "bookkeeping_s": 0.5,
               "fresh_inprocess_s": 11.0, "multiprocess_s": 18.5, "compute_s": 0.4,
               "read_s": 0.1}  # fmt: skip
    modes = [mode(48.0, 1), mode(72.0, 1), mode(48.0, 2), mode(60.0, 4), mode(36.0, 2)]
    summary = {"sizes": [], "dagster": dagster, **dict(zip(BACKFILL_CASES, modes, strict=True))}
    found = {title: rows for title, _, rows in tables(summary)}
    split = dict(found["One daily partition through Dagster"])
    assert split["  the process's start: interpreter, imports, definitions"] == "6.00"
    assert split["  the executor's start-up: fork server, step processes"] == "7.50"
    speedups = {row[0]: row[3] for row in found["Backfill"]}
    assert speedups == {
        "one run at a time, multiprocess executor": "1.00",
        "2 runs at a time (one per core), multiprocess executor": "1.50",
        "every run at once, multiprocess executor": "1.20",
        "one run at a time, in-process executor": "1.50",
        "2 runs at a time (one per core), in-process executor": "2.00",
    }


def test_every_phase_of_the_dagster_case_names_what_the_steps_call():
    """The Dagster case times the steps by wrapping the functions they call (PHASES); a name
    that moved would fail that case only in `make bench`, so each must resolve, and the
    quality step's scoring must still call the wrapped names."""
    import importlib

    from eqs_pipeline.quality import day
    from perf.through_dagster import PHASES

    for targets in PHASES.values():
        for owner_name, name, _ in targets:
            module_name, _, class_name = owner_name.partition(":")
            owner = importlib.import_module(module_name)
            owner = getattr(owner, class_name) if class_name else owner
            assert callable(getattr(owner, name)), (owner_name, name)
    wrapped = {name for targets in PHASES.values() for m, name, _ in targets if m == day.__name__}
    called = set(day._score.__code__.co_names)
    assert wrapped and wrapped <= called


def test_the_pre_flight_checks_are_a_section_of_their_own(monkeypatch):
    """A run of the checks alone replaces only their section; they are listed with their result
    and figures, a figure-only check as measured."""
    import perf.run as run
    from perf.checks import TITLE, Check, as_json

    ran = as_json(
        [
            Check("pool wait, multiprocess", True, "0.02 CPU s | blocked 3 s", 9.5),
            Check("own peak", False, "the launcher's memory counted", 2.0),
            Check("simulator", None, "151,060 fills", 1.3),
        ]
    )
    summary = {"sizes": [], "runs": 0, "checks": ran, "when": "2026-11-26 10:00 UTC", "machine": {}}
    found = {title: (head, rows) for title, head, rows in run.tables(summary)}
    head, rows = found[TITLE]
    assert head == ["check", "result", "seconds", "figures"]
    assert rows == [
        ["pool wait, multiprocess", "pass", "9.5", "0.02 CPU s / blocked 3 s"],  # no table break
        ["own peak", "FAIL", "2.0", "the launcher's memory counted"],
        ["simulator", "measured", "1.3", "151,060 fills"],
    ]
    block = "\nMeasured x.\n\n### Event path\n\n| a |\n|---|\n| 1 |\n"
    monkeypatch.setattr(run, "_machine_line", lambda machine: "Machine: box.")
    out = run._merge(block, summary)
    assert out.startswith(block.rstrip("\n") + "\n\n### Pre-flight checks\n")
    assert "| own peak | FAIL | 2.0 | the launcher's memory counted |" in out
    merged = run.merged_json({"events": {"p99": 1}, "when": "old", "machine": {}}, summary)
    assert merged["checks"] == ran and merged["events"] == {"p99": 1}
    assert merged["measured"]["checks"]["when"] == "2026-11-26 10:00 UTC"
