"""`defs.batch.each_date`: a run's dates worked on in date order, small ones on threads, and the
first failing date named."""

import threading
import time
from datetime import date, timedelta

import dagster as dg
import pytest

from eqs_pipeline.defs import batch

DAYS = [date(2026, 11, 2) + timedelta(days=i) for i in range(6)]


def _work(log: list):
    def work(day: date) -> str:
        log.append(threading.current_thread().name)
        time.sleep(0.01 * (len(DAYS) - DAYS.index(day)))  # the first dates finish last
        return day.isoformat()

    return work


def test_small_dates_run_on_threads_and_come_back_in_date_order(monkeypatch):
    monkeypatch.setattr(batch, "DATE_THREADS", 3)
    log: list[str] = []
    out = batch.each_date(DAYS, _work(log), dict.fromkeys(DAYS, 1000))
    assert out == [d.isoformat() for d in DAYS]
    assert len(set(log)) > 1 and all(name.startswith("eqs") for name in log)


@pytest.mark.parametrize(
    "sizes",
    [None, dict.fromkeys(DAYS, batch.PARALLEL_BYTES // 3)],  # unknown, or too large together
)
def test_large_or_unsized_dates_run_in_turn_on_this_thread(monkeypatch, sizes):
    monkeypatch.setattr(batch, "DATE_THREADS", 3)
    log: list[str] = []
    assert batch.each_date(DAYS, _work(log), sizes) == [d.isoformat() for d in DAYS]
    assert set(log) == {threading.current_thread().name}


def test_the_first_failing_date_fails_the_step_by_name(monkeypatch):
    monkeypatch.setattr(batch, "DATE_THREADS", 3)
    bad = {DAYS[2], DAYS[4]}

    def work(day: date) -> date:
        if day in bad:
            raise ValueError(f"no quotes {day.day}")
        return day

    with pytest.raises(dg.Failure, match=rf"trade date {DAYS[2]}: ValueError: no quotes 4"):
        batch.each_date(DAYS, work, dict.fromkeys(DAYS, 1))
    with pytest.raises(ValueError, match="no quotes 4"):  # a run of one date: the error itself
        batch.each_date([DAYS[2]], work, {DAYS[2]: 1})
