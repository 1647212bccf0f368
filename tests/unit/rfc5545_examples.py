"""Every example of RFC 5545 §3.8.5.3 ("Recurrence Rule"), transcribed as data.

Each example lists the occurrences the RFC prints, as wall-clock times in
America/New_York (every example's DTSTART zone). ``open_ended`` examples ("forever", or
lists elided with "...") are checked as prefixes; the others must stop exactly there.
Examples the RFC gives in two forms ("or") are two entries.

One declared patch: "Every 3 hours from 9:00 AM to 5:00 PM on a specific day" is printed
with ``UNTIL=19970902T170000Z`` but lists 15:00 EDT (19:00Z), which that UNTIL excludes.
RFC Errata ID 3883 (verified) corrects the UNTIL to ``19970902T210000Z``; the entry below
carries the correction, and ``test_rrule.py`` checks the literal text separately (it gives
09:00 and 12:00, as UNTIL is normative).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    title: str
    recurrence: str
    expected: tuple[str, ...]  # "YYYY-MM-DDTHH:MM" in America/New_York
    open_ended: bool = False


def at(month: str, days: str, clock: str = "09:00") -> list[str]:
    """``at("1997-09", "2-11,15,20-30/2")``: the RFC's day lists for one month."""
    found: list[str] = []
    for part in days.split(","):
        span, _, step = part.partition("/")
        first, _, last = span.partition("-")
        for day in range(int(first), int(last or first) + 1, int(step or 1)):
            found.append(f"{month}-{day:02d}T{clock}")
    return found


def times(day: str, clocks: str) -> list[str]:
    """``times("1997-09-02", "09:00,12:00")``: several times on one day."""
    return [f"{day}T{clock}" for clock in clocks.split(",")]


def every_20_minutes(day: str) -> list[str]:
    return [f"{day}T{h:02d}:{m:02d}" for h in range(9, 17) for m in (0, 20, 40)]


def ny(dtstart: str, *lines: str) -> str:
    return "\n".join([f"DTSTART;TZID=America/New_York:{dtstart}", *lines])


def _seq(*groups: list[str]) -> tuple[str, ...]:
    return tuple(item for group in groups for item in group)


EXAMPLES: tuple[Example, ...] = (
    Example(
        "Daily for 10 occurrences",
        ny("19970902T090000", "RRULE:FREQ=DAILY;COUNT=10"),
        _seq(at("1997-09", "2-11")),
    ),
    Example(
        "Daily until December 24, 1997",
        ny("19970902T090000", "RRULE:FREQ=DAILY;UNTIL=19971224T000000Z"),
        _seq(
            at("1997-09", "2-30"),
            at("1997-10", "1-25"),
            at("1997-10", "26-31"),
            at("1997-11", "1-30"),
            at("1997-12", "1-23"),
        ),
    ),
    Example(
        "Every other day - forever",
        ny("19970902T090000", "RRULE:FREQ=DAILY;INTERVAL=2"),
        _seq(
            at("1997-09", "2-30/2"),
            at("1997-10", "2-24/2"),
            at("1997-10", "26,28,30"),
            at("1997-11", "1-29/2"),
            at("1997-12", "1,3"),
        ),
        open_ended=True,
    ),
    Example(
        "Every 10 days, 5 occurrences",
        ny("19970902T090000", "RRULE:FREQ=DAILY;INTERVAL=10;COUNT=5"),
        _seq(at("1997-09", "2,12,22"), at("1997-10", "2,12")),
    ),
    Example(
        "Every day in January, for 3 years (YEARLY form)",
        ny(
            "19980101T090000",
            "RRULE:FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA",
        ),
        _seq(at("1998-01", "1-31"), at("1999-01", "1-31"), at("2000-01", "1-31")),
    ),
    Example(
        "Every day in January, for 3 years (DAILY form)",
        ny("19980101T090000", "RRULE:FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1"),
        _seq(at("1998-01", "1-31"), at("1999-01", "1-31"), at("2000-01", "1-31")),
    ),
    Example(
        "Weekly for 10 occurrences",
        ny("19970902T090000", "RRULE:FREQ=WEEKLY;COUNT=10"),
        _seq(at("1997-09", "2,9,16,23,30"), at("1997-10", "7,14,21,28"), at("1997-11", "4")),
    ),
    Example(
        "Weekly until December 24, 1997",
        ny("19970902T090000", "RRULE:FREQ=WEEKLY;UNTIL=19971224T000000Z"),
        _seq(
            at("1997-09", "2,9,16,23,30"),
            at("1997-10", "7,14,21,28"),
            at("1997-11", "4,11,18,25"),
            at("1997-12", "2,9,16,23"),
        ),
    ),
    Example(
        "Every other week - forever",
        ny("19970902T090000", "RRULE:FREQ=WEEKLY;INTERVAL=2;WKST=SU"),
        _seq(
            at("1997-09", "2,16,30"),
            at("1997-10", "14,28"),
            at("1997-11", "11,25"),
            at("1997-12", "9,23"),
            at("1998-01", "6,20"),
            at("1998-02", "3,17"),
        ),
        open_ended=True,
    ),
    Example(
        "Weekly on Tuesday and Thursday for five weeks (UNTIL form)",
        ny("19970902T090000", "RRULE:FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH"),
        _seq(at("1997-09", "2,4,9,11,16,18,23,25,30"), at("1997-10", "2")),
    ),
    Example(
        "Weekly on Tuesday and Thursday for five weeks (COUNT form)",
        ny("19970902T090000", "RRULE:FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH"),
        _seq(at("1997-09", "2,4,9,11,16,18,23,25,30"), at("1997-10", "2")),
    ),
    Example(
        "Every other week on Monday, Wednesday, and Friday until December 24, 1997",
        ny(
            "19970901T090000",
            "RRULE:FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR",
        ),
        _seq(
            at("1997-09", "1,3,5,15,17,19,29"),
            at("1997-10", "1,3,13,15,17"),
            at("1997-10", "27,29,31"),
            at("1997-11", "10,12,14,24,26,28"),
            at("1997-12", "8,10,12,22"),
        ),
    ),
    Example(
        "Every other week on Tuesday and Thursday, for 8 occurrences",
        ny("19970902T090000", "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH"),
        _seq(at("1997-09", "2,4,16,18,30"), at("1997-10", "2,14,16")),
    ),
    Example(
        "Monthly on the first Friday for 10 occurrences",
        ny("19970905T090000", "RRULE:FREQ=MONTHLY;COUNT=10;BYDAY=1FR"),
        _seq(
            at("1997-09", "5"),
            at("1997-10", "3"),
            at("1997-11", "7"),
            at("1997-12", "5"),
            at("1998-01", "2"),
            at("1998-02", "6"),
            at("1998-03", "6"),
            at("1998-04", "3"),
            at("1998-05", "1"),
            at("1998-06", "5"),
        ),
    ),
    Example(
        "Monthly on the first Friday until December 24, 1997",
        ny("19970905T090000", "RRULE:FREQ=MONTHLY;UNTIL=19971224T000000Z;BYDAY=1FR"),
        _seq(at("1997-09", "5"), at("1997-10", "3"), at("1997-11", "7"), at("1997-12", "5")),
    ),
    Example(
        "Every other month on the first and last Sunday of the month for 10 occurrences",
        ny("19970907T090000", "RRULE:FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU"),
        _seq(
            at("1997-09", "7,28"),
            at("1997-11", "2,30"),
            at("1998-01", "4,25"),
            at("1998-03", "1,29"),
            at("1998-05", "3,31"),
        ),
    ),
    Example(
        "Monthly on the second-to-last Monday of the month for 6 months",
        ny("19970922T090000", "RRULE:FREQ=MONTHLY;COUNT=6;BYDAY=-2MO"),
        _seq(
            at("1997-09", "22"),
            at("1997-10", "20"),
            at("1997-11", "17"),
            at("1997-12", "22"),
            at("1998-01", "19"),
            at("1998-02", "16"),
        ),
    ),
    Example(
        "Monthly on the third-to-the-last day of the month, forever",
        ny("19970928T090000", "RRULE:FREQ=MONTHLY;BYMONTHDAY=-3"),
        _seq(
            at("1997-09", "28"),
            at("1997-10", "29"),
            at("1997-11", "28"),
            at("1997-12", "29"),
            at("1998-01", "29"),
            at("1998-02", "26"),
        ),
        open_ended=True,
    ),
    Example(
        "Monthly on the 2nd and 15th of the month for 10 occurrences",
        ny("19970902T090000", "RRULE:FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15"),
        _seq(
            at("1997-09", "2,15"),
            at("1997-10", "2,15"),
            at("1997-11", "2,15"),
            at("1997-12", "2,15"),
            at("1998-01", "2,15"),
        ),
    ),
    Example(
        "Monthly on the first and last day of the month for 10 occurrences",
        ny("19970930T090000", "RRULE:FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1"),
        _seq(
            at("1997-09", "30"),
            at("1997-10", "1,31"),
            at("1997-11", "1,30"),
            at("1997-12", "1,31"),
            at("1998-01", "1,31"),
            at("1998-02", "1"),
        ),
    ),
    Example(
        "Every 18 months on the 10th thru 15th of the month for 10 occurrences",
        ny(
            "19970910T090000",
            "RRULE:FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,13,14,15",
        ),
        _seq(at("1997-09", "10-15"), at("1999-03", "10-13")),
    ),
    Example(
        "Every Tuesday, every other month",
        ny("19970902T090000", "RRULE:FREQ=MONTHLY;INTERVAL=2;BYDAY=TU"),
        _seq(
            at("1997-09", "2,9,16,23,30"),
            at("1997-11", "4,11,18,25"),
            at("1998-01", "6,13,20,27"),
            at("1998-03", "3,10,17,24,31"),
        ),
        open_ended=True,
    ),
    Example(
        "Yearly in June and July for 10 occurrences",
        ny("19970610T090000", "RRULE:FREQ=YEARLY;COUNT=10;BYMONTH=6,7"),
        _seq(
            *[at(f"{year}-{month}", "10") for year in range(1997, 2002) for month in ("06", "07")]
        ),
    ),
    Example(
        "Every other year on January, February, and March for 10 occurrences",
        ny("19970310T090000", "RRULE:FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3"),
        _seq(
            at("1997-03", "10"),
            *[
                at(f"{year}-{month}", "10")
                for year in (1999, 2001, 2003)
                for month in ("01", "02", "03")
            ],
        ),
    ),
    Example(
        "Every third year on the 1st, 100th, and 200th day for 10 occurrences",
        ny("19970101T090000", "RRULE:FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200"),
        _seq(
            at("1997-01", "1"),
            at("1997-04", "10"),
            at("1997-07", "19"),
            at("2000-01", "1"),
            at("2000-04", "9"),
            at("2000-07", "18"),
            at("2003-01", "1"),
            at("2003-04", "10"),
            at("2003-07", "19"),
            at("2006-01", "1"),
        ),
    ),
    Example(
        "Every 20th Monday of the year, forever",
        ny("19970519T090000", "RRULE:FREQ=YEARLY;BYDAY=20MO"),
        _seq(at("1997-05", "19"), at("1998-05", "18"), at("1999-05", "17")),
        open_ended=True,
    ),
    Example(
        "Monday of week number 20 (where the default start of the week is Monday), forever",
        ny("19970512T090000", "RRULE:FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO"),
        _seq(at("1997-05", "12"), at("1998-05", "11"), at("1999-05", "17")),
        open_ended=True,
    ),
    Example(
        "Every Thursday in March, forever",
        ny("19970313T090000", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=TH"),
        _seq(at("1997-03", "13,20,27"), at("1998-03", "5,12,19,26"), at("1999-03", "4,11,18,25")),
        open_ended=True,
    ),
    Example(
        "Every Thursday, but only during June, July, and August, forever",
        ny("19970605T090000", "RRULE:FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8"),
        _seq(
            at("1997-06", "5,12,19,26"),
            at("1997-07", "3,10,17,24,31"),
            at("1997-08", "7,14,21,28"),
            at("1998-06", "4,11,18,25"),
            at("1998-07", "2,9,16,23,30"),
            at("1998-08", "6,13,20,27"),
            at("1999-06", "3,10,17,24"),
            at("1999-07", "1,8,15,22,29"),
            at("1999-08", "5,12,19,26"),
        ),
        open_ended=True,
    ),
    Example(
        "Every Friday the 13th, forever",
        ny(
            "19970902T090000",
            "EXDATE;TZID=America/New_York:19970902T090000",
            "RRULE:FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
        ),
        _seq(
            at("1998-02", "13"),
            at("1998-03", "13"),
            at("1998-11", "13"),
            at("1999-08", "13"),
            at("2000-10", "13"),
        ),
        open_ended=True,
    ),
    Example(
        "The first Saturday that follows the first Sunday of the month, forever",
        ny("19970913T090000", "RRULE:FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13"),
        _seq(
            at("1997-09", "13"),
            at("1997-10", "11"),
            at("1997-11", "8"),
            at("1997-12", "13"),
            at("1998-01", "10"),
            at("1998-02", "7"),
            at("1998-03", "7"),
            at("1998-04", "11"),
            at("1998-05", "9"),
            at("1998-06", "13"),
        ),
        open_ended=True,
    ),
    Example(
        "Every 4 years, the first Tuesday after a Monday in November, forever",
        ny(
            "19961105T090000",
            "RRULE:FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8",
        ),
        _seq(at("1996-11", "5"), at("2000-11", "7"), at("2004-11", "2")),
        open_ended=True,
    ),
    Example(
        "The third instance into the month of one of Tuesday, Wednesday, or Thursday, "
        "for the next 3 months",
        ny("19970904T090000", "RRULE:FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3"),
        _seq(at("1997-09", "4"), at("1997-10", "7"), at("1997-11", "6")),
    ),
    Example(
        "The second-to-last weekday of the month",
        ny("19970929T090000", "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2"),
        _seq(
            at("1997-09", "29"),
            at("1997-10", "30"),
            at("1997-11", "27"),
            at("1997-12", "30"),
            at("1998-01", "29"),
            at("1998-02", "26"),
            at("1998-03", "30"),
        ),
        open_ended=True,
    ),
    Example(
        "Every 3 hours from 9:00 AM to 5:00 PM on a specific day (UNTIL per Errata ID 3883)",
        ny("19970902T090000", "RRULE:FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T210000Z"),
        tuple(times("1997-09-02", "09:00,12:00,15:00")),
    ),
    Example(
        "Every 15 minutes for 6 occurrences",
        ny("19970902T090000", "RRULE:FREQ=MINUTELY;INTERVAL=15;COUNT=6"),
        tuple(times("1997-09-02", "09:00,09:15,09:30,09:45,10:00,10:15")),
    ),
    Example(
        "Every hour and a half for 4 occurrences",
        ny("19970902T090000", "RRULE:FREQ=MINUTELY;INTERVAL=90;COUNT=4"),
        tuple(times("1997-09-02", "09:00,10:30,12:00,13:30")),
    ),
    Example(
        "Every 20 minutes from 9:00 AM to 4:40 PM every day (DAILY form)",
        ny("19970902T090000", "RRULE:FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40"),
        _seq(every_20_minutes("1997-09-02"), every_20_minutes("1997-09-03")),
        open_ended=True,
    ),
    Example(
        "Every 20 minutes from 9:00 AM to 4:40 PM every day (MINUTELY form)",
        ny("19970902T090000", "RRULE:FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16"),
        _seq(every_20_minutes("1997-09-02"), every_20_minutes("1997-09-03")),
        open_ended=True,
    ),
    Example(
        "An example where the days generated makes a difference because of WKST (MO)",
        ny("19970805T090000", "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO"),
        _seq(at("1997-08", "5,10,19,24")),
    ),
    Example(
        "Changing only WKST from MO to SU yields different results",
        ny("19970805T090000", "RRULE:FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU"),
        _seq(at("1997-08", "5,17,19,31")),
    ),
    Example(
        "An example where an invalid date (i.e., February 30) is ignored",
        ny("20070115T090000", "RRULE:FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5"),
        _seq(at("2007-01", "15,30"), at("2007-02", "15"), at("2007-03", "15,30")),
    ),
)
