# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd side of a CronJob schedule: ``OnCalendar=`` expressions and timer settings (systemd 252).

(Named ``oncalendar`` rather than ``calendar`` so it can never shadow the standard library module.)

One ``OnCalendar=`` expression ANDs all its components, while cron ORs the day
of month and the day of week when both are restricted. So such a schedule gives
TWO expressions, one with the day-of-month set (any weekday) and one with the
weekday set (any day of month); a timer with several ``OnCalendar=`` lines
fires on their union. Emitted form (a subset of systemd.time(7))::

    [Mon,Tue..Fri ]*-MM-DD HH:MM:00 Zone/Name

each of MM, DD, HH, MM being ``*``, ``a/step`` (a, a+step, ... up to the
field maximum), or a comma list of ``a`` / ``a..b``; weekdays as a comma list
of names and ``Mon..Fri`` ranges (Monday first, as systemd orders them).

DST: :func:`on_calendar_next` applies the same rule as ``next_after`` (repeated
wall times fire twice, skipped ones once at the transition), so the unit tests
compare the translation of the sets, not DST policy. Real systemd 252 (checked
on the test hosts, tests/integration/test_cronjob.py) agrees everywhere except
within the hours of a transition: a wall time skipped by spring-forward does not
fire that day (as Kubernetes' robfig/cron), and one repeated by fall-back fires
once (Kubernetes fires twice). With ``timeZone: UTC`` (the default) there is no
DST at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# The [Timer] options live with the host's check of them (cron_inputs.py), so the two cannot disagree.
from ansible_collections.hostfleet.workloads.plugins.module_utils.job.cron_inputs import timer_settings
from ansible_collections.hostfleet.workloads.plugins.plugin_utils.controllers.cronjob.schedule import CronSchedule

__all__ = ["on_calendar_next", "timer_settings", "to_on_calendar"]

SYSTEMD_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # systemd order; cron numbers Sunday 0


def _component(values, low, high):
    values = sorted(values)
    if values == list(range(low, high + 1)):
        return "*"
    if len(values) > 2:
        step = values[1] - values[0]
        if values == list(range(values[0], high + 1, step)):
            return f"{values[0]:02d}/{step}"
    return ",".join(f"{a:02d}" if a == b else f"{a:02d}..{b:02d}" for a, b in _runs(values))


def _runs(values):
    runs = []
    for value in values:
        if runs and runs[-1][1] == value - 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return [tuple(run) for run in runs]


def _weekdays(cron_days):
    indexes = sorted((d - 1) % 7 for d in cron_days)  # cron 0=Sun..6=Sat -> systemd 0=Mon..6=Sun
    return ",".join(SYSTEMD_WEEKDAYS[a] if a == b else f"{SYSTEMD_WEEKDAYS[a]}..{SYSTEMD_WEEKDAYS[b]}" for a, b in _runs(indexes))


def to_on_calendar(schedule: CronSchedule, tz_name: str) -> list:
    """``OnCalendar=`` values whose union fires exactly at the schedule's times in zone ``tz_name``."""
    time_part = f"{_component(schedule.hours, 0, 23)}:{_component(schedule.minutes, 0, 59)}:00"
    months = _component(schedule.months, 1, 12)
    doms = _component(schedule.days_of_month, 1, 31)
    all_weekdays = len(schedule.days_of_week) == 7
    if schedule.day_or:
        by_dom = f"*-{months}-{doms} {time_part} {tz_name}"
        if all_weekdays:  # "1 * * * 0-6": every day
            return [f"*-{months}-* {time_part} {tz_name}"]
        return [by_dom, f"{_weekdays(schedule.days_of_week)} *-{months}-* {time_part} {tz_name}"]
    prefix = "" if all_weekdays else _weekdays(schedule.days_of_week) + " "
    return [f"{prefix}*-{months}-{doms} {time_part} {tz_name}"]


# ---- a small independent evaluator of the emitted subset, for tests ----------------------------------------


def _parse_values(text, low, high):
    if text == "*":
        return set(range(low, high + 1))
    if "/" in text:
        start, step = text.split("/")
        return set(range(int(start), high + 1, int(step)))
    values = set()
    for part in text.split(","):
        first, _sep, last = part.partition("..")
        values.update(range(int(first), int(last or first) + 1))
    return values


def _parse_expression(expression):
    words = expression.split(" ")
    weekdays = set(range(7))
    if len(words) == 4:
        weekdays = set()
        for part in words.pop(0).split(","):
            first, _sep, last = part.partition("..")
            weekdays.update(range(SYSTEMD_WEEKDAYS.index(first), SYSTEMD_WEEKDAYS.index(last or first) + 1))
    day_part, time_part, _zone = words
    year, month, day = day_part.split("-")
    hour, minute, second = time_part.split(":")
    if year != "*" or second != "00":
        raise ValueError(f"not an expression of the emitted subset: {expression!r}")
    return weekdays, _parse_values(month, 1, 12), _parse_values(day, 1, 31), _parse_values(hour, 0, 23), _parse_values(minute, 0, 59)


def on_calendar_next(expressions, after: datetime, tz) -> datetime:
    """The first instant strictly after ``after`` at which any of ``expressions`` elapses, in zone ``tz``.

    Brute force over UTC minutes (skipping ahead over non-matching local days
    and hours), matching each instant's local wall time against the expanded
    sets; when the minute before jumped forward (a DST gap), the skipped wall
    minutes count as matching at that instant. Limited to ~10 years.
    """
    specs = [_parse_expression(e) for e in expressions]

    def day_ok(wall):
        return any(wall.isoweekday() - 1 in s[0] and wall.month in s[1] and wall.day in s[2] for s in specs)

    def hour_ok(wall):
        return any(wall.hour in s[3] and wall.isoweekday() - 1 in s[0] and wall.month in s[1] and wall.day in s[2] for s in specs)

    def matches(wall):
        return any(wall.minute in s[4] and wall.hour in s[3] and wall.isoweekday() - 1 in s[0] and wall.month in s[1] and wall.day in s[2] for s in specs)

    minute = timedelta(minutes=1)
    t = after.astimezone(UTC).replace(second=0, microsecond=0) + minute
    limit = t + timedelta(days=3700)
    while t < limit:
        wall = t.astimezone(tz).replace(tzinfo=None)
        before = (t - minute).astimezone(tz).replace(tzinfo=None)
        if wall - before > minute:  # skipped wall minutes (before, wall) plus wall itself
            skipped = before + minute
            while skipped <= wall:
                if matches(skipped):
                    return t.astimezone(tz)
                skipped += minute
        elif matches(wall):
            return t.astimezone(tz)
        if not day_ok(wall):
            to_midnight = (24 * 60 - wall.hour * 60 - wall.minute) - 120  # margin for a DST jump on the way
            t += minute * max(1, to_midnight)
        elif not hour_ok(wall):
            t += minute * max(1, 60 - wall.minute - 0)
        else:
            t += minute
    raise ValueError("no elapse within 10 years")
