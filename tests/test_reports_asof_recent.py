"""The reports as of an instant are true (engine/reports/asof.py: today's tables as the leads created by then,
with the rows then of the leads changed after it put in place of theirs) at instants on and right beside the
history's changes: a stay that ends exactly at the instant, a closing, a reopening, a rotation, a lead created
right after it; and in random histories. Each is compared with the reports of a database that ran only the
history up to the instant (``tests.test_reports_asof``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import clock
from engine.reports import asof
from tests.conftest import Team
from tests.test_reports_asof import (
    END,
    PV,
    STEPS,
    empty_floor,
    fresh_copy,
    history_up_to,
    instant,
    play,
    random_script,
    reports,
    run_script,
)

__all__ = ["empty_floor"]  # the module's fixture, used here too

TICK = dt.timedelta(microseconds=1)

#: Changes of the history (tests.test_reports_asof.SCRIPT): C closed (its stay ends), the rotation, C reopened,
#: F created, A won; each is taken at its instant and a microsecond before it.
CHANGES = ["03-06", "03-06T12:00", "03-10", "03-16", "03-18"]


def test_as_of_a_change_and_right_before_it_equals_the_history_up_to_then(team: Team, tmp_path: Path) -> None:
    play(team.admin)
    instants = [at.isoformat() for when in CHANGES for at in (instant(when) - TICK, instant(when))]
    with clock.frozen(instant(END)):
        past = {at: reports(team.admin, at) for at in instants}
    for k, at in enumerate(instants):
        expected = history_up_to(f"sqlite:///{tmp_path / f'upto{k}.db'}", at, reports)
        for name, report in expected.items():
            assert past[at][name] == report, f"{name} as of {at}"
    # a change at the instant counts, the state a microsecond before it does not hold it yet
    def funnel(when: str, key: str, tick: dt.timedelta) -> int:
        report = past[(instant(when) + tick).isoformat()]["funnel"]
        return next(int(f[key]) for f in report["funnels"] if f["process"] == PV)

    assert funnel("03-16", "leads", TICK * 0) == funnel("03-16", "leads", -TICK) + 1
    assert funnel("03-18", "won", TICK * 0) == funnel("03-18", "won", -TICK) + 1


@pytest.mark.slow  # eight random histories, each compared at two instants on or beside its events
@settings(max_examples=8, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(steps=STEPS,
       cuts=st.lists(st.tuples(st.integers(0, 23), st.sampled_from([-1, 0, 1])), min_size=2, max_size=2))
def test_a_random_history_as_of_its_events_is_its_prefix(
        empty_floor: Path, tmp_path: Path, steps: list[tuple[str, int, int, int]], cuts: list[tuple[int, int]]) -> None:
    script = random_script(instant("2026-02-02T09:00"), steps)
    last = script[-1][0]
    whole = run_script(script, fresh_copy(empty_floor, tmp_path, "whole"))
    with contextlib.ExitStack() as stack:
        stack.callback(whole.close)
        for step, offset in cuts:
            then = script[step % len(script)][0] + TICK * offset
            with clock.frozen(last + dt.timedelta(days=1)):
                past = reports(whole, then.isoformat())
            upto = run_script(script, fresh_copy(empty_floor, tmp_path, "upto"), then)
            stack.callback(upto.close)
            with clock.frozen(then):
                assert past == reports(upto), then


@settings(max_examples=400, deadline=None)
@given(table=st.lists(st.integers(0, 12), max_size=40), data=st.data())
def test_a_quantile_from_a_window_of_the_table_and_the_changed_rows_is_the_one_of_the_rows_then(
        table: list[int], data: st.DataObject) -> None:
    """``Sources.quantiles`` as of an instant: the values at a position of (table - gone) + added, read from a
    window of the sorted table around the position and the few rows gone and added (``asof.merged_window``), are
    those of the whole multiset sorted; and where the window does not reach them it says so (the caller then reads
    the union). Small values: many equal ones, the case where which copy is taken out must not matter."""
    table.sort()
    taken = data.draw(st.sets(st.integers(0, len(table) - 1))) if table else set()
    gone = [v for k, v in enumerate(table) if k in taken]
    rest = [v for k, v in enumerate(table) if k not in taken]
    added = sorted(data.draw(st.lists(st.integers(0, 12), max_size=8)))
    then = sorted(rest + added)
    if not then:
        return
    first = data.draw(st.integers(0, len(then) - 1))
    n = min(2, len(then) - first)
    if data.draw(st.booleans()):  # as Sources.quantiles reads them: less the values both share
        cut = asof.cancelled([float(v) for v in gone], [float(v) for v in added])
        assert sorted(cut[0] + added) == sorted(cut[1] + gone), "the same values cancelled on both sides"
        gone, added = [int(v) for v in cut[0]], [int(v) for v in cut[1]]
    # the window Sources.quantiles reads, and any other one: the answer is right or None
    offset = data.draw(st.sampled_from([max(first - len(added), 0), data.draw(st.integers(0, len(table)))]))
    size = data.draw(st.sampled_from([2 * len(gone) + len(added) + 3, data.draw(st.integers(1, 10))]))
    window = table[offset:offset + size]
    got = asof.merged_window([float(v) for v in window], offset, offset + size >= len(table),
                             [float(v) for v in gone], [float(v) for v in added], first, n)
    if offset == max(first - len(added), 0) and size == 2 * len(gone) + len(added) + 3:
        assert got is not None, "the window Sources.quantiles reads always reaches the position"
    if got is not None:
        assert got == [float(v) for v in then[first:first + n]]
