"""Cron expressions: validation, ticks in a timezone, and KFP's six-field form.

Locally a schedule is a standard five-field expression (``minute hour day-of-month
month day-of-week``, or ``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly``),
evaluated by ``croniter`` in the schedule's IANA timezone, so ``0 3 * * *`` in
``Europe/Berlin`` is 03:00 Berlin time across DST changes. KFP's ScheduledWorkflow
controller uses robfig/cron with a *seconds* field first (``0 0 3 * * *``) and evaluates
in UTC: :func:`to_kfp` converts and checks.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workbench_dsl.errors import UsageError

_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_FIELDS = ("minute", "hour", "day of month", "month", "day of week")


def timezone(name: str | None) -> ZoneInfo:
    """The IANA timezone ``name`` (default UTC); a clear error for an unknown one."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown timezone {name!r}: use an IANA name such as UTC, Europe/Berlin or "
            f"America/New_York"
        ) from None


def validate(expr: str) -> str:
    """A five-field cron expression or macro, normalised; one-line errors otherwise."""
    from croniter import croniter

    e = " ".join(expr.split())
    if e.lower() in _MACROS:
        return e.lower()
    if e.startswith("@"):
        raise UsageError(f"cron {expr!r}: unknown macro (known: {', '.join(sorted(_MACROS))})")
    parts = e.split(" ")
    if len(parts) != 5:
        hint = (
            " (six fields look like KFP's seconds-first form: drop the seconds; it is added "
            "for --target kfp)"
            if len(parts) == 6
            else ""
        )
        raise UsageError(
            f"cron {expr!r} has {len(parts)} field(s); write 5: minute hour day-of-month "
            f"month day-of-week, e.g. '0 3 * * 0'{hint}"
        )
    if not croniter.is_valid(e):
        for i, part in enumerate(parts):
            probe = ["*"] * 5
            probe[i] = part
            if not croniter.is_valid(" ".join(probe)):
                raise UsageError(f"cron {expr!r}: invalid {_FIELDS[i]} field {part!r}")
        raise UsageError(f"cron {expr!r} is not a valid cron expression")
    return e


def ticks_between(
    expr: str, tz: str | None, after: datetime, until: datetime, limit: int = 1000
) -> list[datetime]:
    """The schedule's ticks in ``(after, until]``, oldest first, as UTC datetimes."""
    from croniter import croniter

    zone = timezone(tz)
    it = croniter(validate(expr), after.astimezone(zone))
    out: list[datetime] = []
    while len(out) < limit:
        nxt: datetime = it.get_next(datetime)
        if nxt > until:
            break
        out.append(nxt.astimezone(UTC))
    return out


def next_tick(expr: str, tz: str | None, after: datetime) -> datetime:
    """The first tick strictly after ``after`` (UTC)."""
    from croniter import croniter

    zone = timezone(tz)
    nxt: datetime = croniter(validate(expr), after.astimezone(zone)).get_next(datetime)
    return nxt.astimezone(UTC)


_SECONDS = re.compile(r"^(\*|\d{1,2})(/\d{1,2})?$|^\d{1,2}(-\d{1,2})?(,\d{1,2}(-\d{1,2})?)*$")


def to_kfp(expr: str) -> str:
    """KFP's six-field cron (seconds first) from a five-field expression or macro.

    A six-field expression is taken as KFP's own form and checked. Day of week 7
    (Sunday, which standard cron allows) becomes 0, which robfig/cron requires.
    """
    e = " ".join(expr.split())
    if e.lower() in _MACROS:
        return e.lower()
    parts = e.split(" ")
    if len(parts) == 6:
        seconds, rest = parts[0], parts[1:]
        if not _SECONDS.match(seconds) or any(
            int(n) > 59 for n in re.findall(r"\d+", seconds.split("/")[0])
        ):
            raise UsageError(f"cron {expr!r}: invalid seconds field {seconds!r} (0-59)")
        validate(" ".join(p.replace("?", "*") for p in rest))
        rest[4] = _dow_for_robfig(rest[4])
        return " ".join([seconds, *rest])
    five = validate(e)
    fields = five.split(" ")
    fields[4] = _dow_for_robfig(fields[4])
    return " ".join(["0", *fields])


def _dow_for_robfig(field: str) -> str:
    out = []
    for item in field.split(","):
        step = ""
        if "/" in item:
            item, step = item.split("/", 1)
            step = "/" + step
        if item == "7":
            item = "0"
        elif re.fullmatch(r"\d-7", item):
            start = int(item[0])
            item = f"{start}-6" if start < 6 else "6"
            if not step:
                out.append(item)
                item = "0"
        out.append(item + step)
    return ",".join(dict.fromkeys(out))


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    """A tick as stored and shown: ISO 8601 in UTC, seconds precision."""
    return t.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_iso(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)
