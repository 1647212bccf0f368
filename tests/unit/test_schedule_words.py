"""Schedules in words (engine/schedules/describe.py): table-driven, and ``None`` wherever a
sentence could only approximate the expression."""

from __future__ import annotations

from datetime import datetime

import pytest

from engine.schedules.describe import describe_schedule

WEDNESDAY_1405 = datetime(2026, 3, 4, 14, 5)

CASES = [
    ("cron", "30 8 * * 1-5", "at 08:30 on Monday to Friday"),
    ("cron", "0 9 * * mon-fri", "at 09:00 on Monday to Friday"),
    ("cron", "* * * * *", "every minute"),
    ("cron", "*/5 * * * *", "every 5 minutes"),
    ("cron", "0 * * * *", "every hour at :00"),
    ("cron", "0,30 * * * *", "every hour at :00 and :30"),
    ("cron", "*/15 9-17 * * 1-5", "every 15 minutes from 09:00 to 17:59 on Monday to Friday"),
    ("cron", "0 9,17 * * *", "at 09:00 and 17:00 every day"),
    ("cron", "0 */2 * * *", "every 2 hours at :00"),
    ("cron", "0 9 1,15 * *", "at 09:00 on days 1 and 15 of the month"),
    ("cron", "0 9 * 1-3 *", "at 09:00 every day in January to March"),
    ("cron", "0 9 * * 0,6", "at 09:00 on Saturday and Sunday"),
    ("cron", "0 9 * * 7", "at 09:00 on Sunday"),
    (
        "cron",
        "7 */5 * * */2",
        "at 00:07, 05:07, 10:07, 15:07 and 20:07 on Tuesday, Thursday, Saturday and Sunday",
    ),
    ("cron", "0 0 1 1 *", "at 00:00 on 1 January"),
    ("cron", "0 0 13 * 5", "at 00:00 on day 13 of the month or on Friday"),
    ("cron", "@daily", "at 00:00 every day"),
    ("cron", "@weekly", "at 00:00 on Sunday"),
    ("cron", "@monthly", "at 00:00 on day 1 of the month"),
    ("cron", "@yearly", "at 00:00 on 1 January"),
    ("cron", "@hourly", "every hour at :00"),
    ("rrule", "FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "at 09:00 every day"),
    (
        "rrule",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30",
        "at 08:30 on Monday to Friday",
    ),
    (
        "rrule",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYHOUR=9;BYMINUTE=0",
        "every 2 weeks on Monday at 09:00",
    ),
    ("rrule", "FREQ=DAILY;INTERVAL=3;BYHOUR=6;BYMINUTE=15", "every 3 days at 06:15"),
    ("rrule", "FREQ=HOURLY;INTERVAL=6", "every 6 hours"),
    ("rrule", "FREQ=MINUTELY;INTERVAL=15", "every 15 minutes"),
    ("rrule", "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=9;BYMINUTE=0", "at 09:00 on day 1 of the month"),
    (
        "rrule",
        "FREQ=MONTHLY;BYDAY=1MO;BYHOUR=9;BYMINUTE=0",
        "at 09:00 on the first Monday of the month",
    ),
    (
        "rrule",
        "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=17;BYMINUTE=0",
        "at 17:00 on the last Friday of the month",
    ),
    ("rrule", "FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1;BYHOUR=0;BYMINUTE=0", "at 00:00 on 1 January"),
    ("rrule", "FREQ=DAILY;COUNT=10;BYHOUR=9;BYMINUTE=0", "at 09:00 every day, 10 times"),
    (
        "rrule",
        "FREQ=DAILY;UNTIL=20261231T000000Z;BYHOUR=9;BYMINUTE=0",
        "at 09:00 every day, until 2026-12-31 00:00 UTC",
    ),
    ("once", "2026-12-01T09:00:00", "once, at 2026-12-01 09:00"),
    ("once", "2026-12-01T09:00:00+02:00", "once, at 2026-12-01 09:00 (+0200)"),
    ("event", "orders.*.created", "when an event matching orders.*.created is published"),
]

# Said exactly only with the rule's start (the time, weekday or day it leaves to DTSTART).
FROM_DTSTART = [
    ("FREQ=DAILY", "at 14:05 every day"),
    ("FREQ=WEEKLY", "at 14:05 on Wednesday"),
    ("FREQ=MONTHLY", "at 14:05 on day 4 of the month"),
    ("FREQ=YEARLY", "at 14:05 on 4 March"),
    ("FREQ=WEEKLY;BYDAY=TU,TH", "at 14:05 on Tuesday and Thursday"),
    ("FREQ=DAILY;BYHOUR=7", "at 07:05 every day"),
]

UNSAID = [
    ("cron", "0 0 */2 * 1"),  # odd days that are Mondays: both fields must match
    ("cron", "1,2,3,4,5,6,7 * * * *"),
    ("rrule", "FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO,TU,WE,TH,FR"),
    ("rrule", "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO"),
    ("rrule", "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13"),
    ("rrule", "DTSTART:19970902T090000Z\nRRULE:FREQ=DAILY\nEXDATE:19970903T090000Z"),
    ("rrule", "FREQ=DAILY"),  # no start given: the time of day is unknown
    ("cron", "not a cron"),
]


@pytest.mark.parametrize(("kind", "expr", "words"), CASES)
def test_common_schedules_in_words(kind: str, expr: str, words: str) -> None:
    assert describe_schedule(kind, expr) == words


@pytest.mark.parametrize(("expr", "words"), FROM_DTSTART)
def test_what_a_rule_leaves_to_its_start_comes_from_dtstart(expr: str, words: str) -> None:
    assert describe_schedule("rrule", expr, WEDNESDAY_1405) == words


@pytest.mark.parametrize(("kind", "expr"), UNSAID)
def test_what_cannot_be_said_exactly_is_left_to_the_expression(kind: str, expr: str) -> None:
    assert describe_schedule(kind, expr) is None
