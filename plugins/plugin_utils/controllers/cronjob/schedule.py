# Copyright: hostfleet.workloads contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CronJob ``spec.schedule`` / ``spec.timeZone``: parsing and next-fire-time semantics (pure, stdlib only).

Grammar: the Kubernetes one (robfig/cron v3 ``ParseStandard``), i.e. Vixie cron's
five fields ``minute hour day-of-month month day-of-week``:

* each field is a comma list of items; an item is ``*`` (``?`` too, in the two
  day fields only), ``N``, ``N-M`` or any of these followed by ``/STEP``;
  ``N/STEP`` means ``N-max/STEP`` (robfig, croniter); ``STEP`` >= 1, any size;
* month names ``JAN``..``DEC`` and weekday names ``SUN``..``SAT``,
  case-insensitive, anywhere a number is allowed (not as a step);
* day-of-week ``0``-``7``, both ``0`` and ``7`` are Sunday. ``N/STEP`` and ``*``
  run to 6 (Saturday), as croniter and robfig do;
* macros ``@yearly @annually @monthly @weekly @daily @midnight @hourly``
  (lowercase, as robfig).

Refused (with :class:`SpecError` naming the field and the bad part):
``TZ=``/``CRON_TZ=`` prefixes (Kubernetes refuses them: use ``spec.timeZone``),
``@reboot`` and ``@every`` (no calendar meaning for a Job schedule), reversed
ranges ``5-2`` (robfig refuses them; croniter would wrap around), croniter/Quartz
extensions (``L``, ``W``, ``#``, 6 fields with seconds), and schedules that can
never fire (``0 0 30 2 *``: Kubernetes accepts them and silently never runs).

Divergences from Kubernetes (robfig v3), deliberate:
* robfig's day-of-week maximum is 6, so ``7`` is refused there; we accept it
  as Sunday (Vixie cron, croniter, and the brief of this collection);
* robfig accepts ``?`` in every field and ``@every <duration>``; we accept
  ``?`` only in the day fields (as croniter) and refuse ``@every``;
* robfig (Go ``Atoi``) accepts ``+5``; we accept digits only.
* robfig (``strings.Fields``) also separates fields with tabs, newlines and
  Unicode spaces; we accept printable ASCII only, fields separated by spaces
  (the schedule is shown on a unit file line, which a newline would end).

Day rule: when BOTH day fields are restricted, a day matches if EITHER
matches; when one is unrestricted, both must match (i.e. only the other
counts). A field is unrestricted when one of its items is ``*`` or ``?``
without a step or with step 1 (robfig's ``starBit``): ``*/2`` is restricted,
``*`` and ``*,5`` are not. croniter differs for ``*/1`` only (it treats it as
restricted); we follow Kubernetes.

Time zones and DST (matches croniter 7): the schedule is evaluated in the wall
time of the zone. A wall time repeated by a fall-back transition fires at both
instants (its first and second occurrence). Wall times skipped by a
spring-forward transition fire once, at the transition instant (e.g. Berlin
``30 2 * * *`` on the last Sunday of March fires at 03:00 CEST); several
skipped times collapse into that one run. A schedule of every hour (its hour
field matches all 24) does not fire for the skipped times: it simply goes on
at the next hour (``1 * * * *`` fires at 01:01 CET, then 03:01 CEST), as
croniter and Vixie cron treat such wildcard jobs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ansible_collections.hostfleet.workloads.plugins.module_utils.job.cron_inputs import TIME_ZONE_NAME
from ansible_collections.hostfleet.workloads.plugins.module_utils.node.podspec import SpecError

DEFAULT_TIME_ZONE = "UTC"

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

MONTH_NAMES = {name: i + 1 for i, name in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
DOW_NAMES = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}

# name, minimum, maximum accepted, maximum reached by "*" and "N/STEP", names
_FIELDS = (
    ("minute", 0, 59, 59, None),
    ("hour", 0, 23, 23, None),
    ("day-of-month", 1, 31, 31, None),
    ("month", 1, 12, 12, MONTH_NAMES),
    ("day-of-week", 0, 7, 6, DOW_NAMES),
)
_DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
_NUMBER = re.compile(r"[0-9]+")
# The schedule is shown on the timer's Description= line: a newline would end it, and str.split() would take tabs,
# newlines and Unicode spaces for field separators ("0\n*\n*\n*\n*"). Printable ASCII only.
_PRINTABLE_ASCII = re.compile(r"[ -~]*")
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule: the expanded sets, in cron numbering (day-of-week 0 = Sunday .. 6)."""

    text: str
    minutes: frozenset
    hours: frozenset
    days_of_month: frozenset
    months: frozenset
    days_of_week: frozenset
    dom_star: bool
    dow_star: bool

    @property
    def day_or(self):
        """True when both day fields are restricted: a day matches when EITHER matches."""
        return not self.dom_star and not self.dow_star

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days_of_month
        dow = (day.weekday() + 1) % 7 in self.days_of_week
        if self.day_or:
            return dom or dow
        return dom and dow

    def next_after(self, instant: datetime, tz: ZoneInfo | None = None) -> datetime:
        """The first fire time strictly after ``instant`` (aware), as an aware datetime in ``tz`` (default UTC).

        Walks the local calendar days from the day of ``instant``; for each
        matching day, maps every matching wall time to its instant(s) (see the
        module docstring for DST) and keeps the earliest one after ``instant``.
        """
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError("next_after needs an aware datetime")
        tz = tz or ZoneInfo(DEFAULT_TIME_ZONE)
        after = instant.astimezone(UTC)
        # wall times more than 3 h before the local wall time of `after` cannot be after it (DST shifts are < 3 h)
        floor = after.astimezone(tz).replace(tzinfo=None) - timedelta(hours=3)
        day = floor.date()
        found = None
        # 9 years covers "29 February" across a non-leap century year; parse_schedule refuses impossible schedules.
        for _unused in range(366 * 9):
            if day.month not in self.months:
                day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
                continue
            if self.day_matches(day):
                candidates = self._day_instants(day, tz, floor, after)
                if candidates:
                    best = min(candidates)
                    # a fall-back at midnight could put part of the next wall day before this one: look one day more
                    if found is not None:
                        return min(found, best).astimezone(tz)
                    found = best
            if found is not None and day > found.astimezone(tz).date():
                return found.astimezone(tz)
            day += _ONE_DAY
        if found is not None:
            return found.astimezone(tz)
        raise ValueError(f"schedule {self.text!r} does not fire after {instant.isoformat()}")

    def _day_instants(self, day: date, tz: ZoneInfo, floor: datetime, after: datetime) -> list:
        """Instants after ``after`` of the matching wall times of ``day`` (stops 3 h of wall time past the first)."""
        found, stop = [], None
        for hour in sorted(self.hours):
            for minute in sorted(self.minutes):
                wall = datetime(day.year, day.month, day.day, hour, minute)
                if wall < floor:
                    continue
                if stop is not None and wall > stop:
                    return found
                instants = [t for t in wall_to_instants(wall, tz, collapse_skipped=len(self.hours) < 24) if t > after]
                if instants and stop is None:
                    stop = wall + timedelta(hours=3)
                found.extend(instants)
        return found


def wall_to_instants(wall: datetime, tz: ZoneInfo, collapse_skipped: bool = True) -> list:
    """The UTC instants at which the naive local ``wall`` time fires in ``tz``.

    One instant normally; two for a wall time repeated by a fall-back; for a
    wall time skipped by a spring-forward, the transition instant (none
    without ``collapse_skipped``).
    """
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return sorted({first, second})  # repeated wall time: fires at both
    if not collapse_skipped:
        return []
    # Skipped: fold=1 applies the offset after the transition, fold=0 the one before; the transition lies between.
    low, high = min(first, second), max(first, second)
    offset_after = wall.replace(tzinfo=tz, fold=1).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == offset_after:
            high = middle
        else:
            low = middle
    return [high.replace(microsecond=0)]


def parse_schedule(text, path="spec.schedule") -> CronSchedule:
    """Parse a Kubernetes CronJob schedule; raises :class:`SpecError` (naming ``path`` and the bad part)."""
    if not isinstance(text, str):
        raise SpecError(path, f"must be a string, got {type(text).__name__}")
    if not _PRINTABLE_ASCII.fullmatch(text):
        raise SpecError(path, f"{text!r} must contain only printable ASCII characters and spaces (no tab, newline or other control character)")
    stripped = text.strip()
    if not stripped:
        raise SpecError(path, "must not be empty")
    if re.match(r"(CRON_)?TZ=", stripped, re.IGNORECASE) or "TZ=" in stripped.upper():
        raise SpecError(path, f"cannot use TZ or CRON_TZ in schedule {text!r}, use the timeZone field instead")
    if stripped.startswith("@"):
        if stripped not in MACROS:
            word = stripped.split()[0]
            if word in ("@reboot", "@every"):
                raise SpecError(path, f"{word} is not supported: a Job schedule needs calendar times (use a 5-field expression or @hourly/@daily/...)")
            raise SpecError(path, f"unknown macro {word!r}; expected one of {', '.join(MACROS)}")
        fields = MACROS[stripped].split()
    else:
        fields = stripped.split()
    if len(fields) != 5:
        raise SpecError(path, f"expected exactly 5 fields (minute hour day-of-month month day-of-week), found {len(fields)} in {text!r}")
    sets, stars = [], []
    for raw, (name, low, high, star_high, names) in zip(fields, _FIELDS, strict=True):
        values, star = _parse_field(raw, name, low, high, star_high, names, path)
        sets.append(values)
        stars.append(star)
    minutes, hours, doms, months, dows = sets
    dows = frozenset(v % 7 for v in dows)
    schedule = CronSchedule(text, minutes, hours, doms, months, dows, stars[2], stars[4])
    if not schedule.day_or and not any(d <= _DAYS_IN_MONTH[m] for m in months for d in doms):
        raise SpecError(path, f"schedule {text!r} never fires: day-of-month {_show(doms)} does not occur in month {_show(months)}")
    return schedule


def _show(values):
    return ",".join(str(v) for v in sorted(values))


def _parse_field(raw, name, low, high, star_high, names, path):
    values, star = set(), False
    for item in raw.split(","):
        where = f"{name} field {raw!r}" + (f", item {item!r}" if item != raw else "")
        range_part, slash, step_text = item.partition("/")
        if slash:
            if "/" in step_text:
                raise SpecError(path, f"{where}: too many slashes")
            if not _NUMBER.fullmatch(step_text):
                raise SpecError(path, f"{where}: step {step_text!r} is not a number")
            step = int(step_text)
            if step == 0:
                raise SpecError(path, f"{where}: step must be at least 1")
        else:
            step = 1
        if range_part == "*" or (range_part == "?" and name in ("day-of-month", "day-of-week")):
            start, end = low, star_high
            star = star or step == 1
        else:
            bounds = range_part.split("-")
            if len(bounds) > 2:
                raise SpecError(path, f"{where}: too many hyphens")
            start = _number(bounds[0], names, where, path)
            end = _number(bounds[1], names, where, path) if len(bounds) == 2 else (star_high if slash else start)
            if start < low:
                raise SpecError(path, f"{where}: {start} is below the minimum {low}")
            if end > high or start > high:
                raise SpecError(path, f"{where}: {max(start, end)} is above the maximum {high}")
            if start > end:
                raise SpecError(path, f"{where}: range start {start} is after its end {end}")
        values.update(range(start, end + 1, step))
    return frozenset(values), star


def _number(text, names, where, path):
    if names and text.lower() in names:
        return names[text.lower()]
    if not _NUMBER.fullmatch(text):
        if text == "?":
            raise SpecError(path, f"{where}: '?' is only allowed in the day-of-month and day-of-week fields")
        kind = "a number or name" if names else "a number"
        raise SpecError(path, f"{where}: {text!r} is not {kind}")
    return int(text)


def parse_time_zone(name, path="spec.timeZone") -> ZoneInfo:
    """Validate an IANA zone name (``spec.timeZone``) and return its :class:`ZoneInfo`.

    ``None`` (field unset): Kubernetes then uses the controller's local zone.
    A pure function cannot know the zone of the host the timer will run on, and
    depending on the Ansible controller's zone would make the rendered units
    differ between operators, so the default here is ``UTC`` (explicit, stable).
    ``Local``/``localtime`` are refused as Kubernetes refuses ``Local``.
    """
    if name is None:
        return ZoneInfo(DEFAULT_TIME_ZONE)
    if not isinstance(name, str):
        raise SpecError(path, f"must be a string (an IANA time zone name such as Europe/Berlin), got {type(name).__name__}")
    # The zone ends OnCalendar= lines: only the characters of IANA names (no control character, space or '..').
    if not name or name != name.strip() or any(ch.isspace() for ch in name) or not TIME_ZONE_NAME.fullmatch(name):
        raise SpecError(path, f"invalid time zone {name!r}: expected an IANA name such as Europe/Berlin")
    if name.lower() in ("local", "localtime"):
        raise SpecError(path, f"{name!r} is not allowed: name the IANA zone explicitly (e.g. Europe/Berlin)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise SpecError(path, f"unknown time zone {name!r}: expected an IANA name such as Europe/Berlin") from None
