"""Five-field cron expressions checked field by field, so a problem names the field that is wrong
(``'0 25 * * *'``: the hour ``25`` is out of range 0-23) instead of only "not a cron".

croniter (Dagster's own dependency) stays the final judge of a well-formed expression; this
module only words what it would refuse.
"""

from __future__ import annotations

import re

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: (name, lowest, highest, names allowed in place of numbers)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_ITEM = re.compile(r"^(?:(\*)|([0-9a-z]+)(?:-([0-9a-z]+))?)(?:/(\d+))?$", re.IGNORECASE)


def cron_problem(expression: str) -> str | None:
    """What is wrong with a five-field cron expression, worded for people; None when nothing."""
    fields = expression.split()
    if len(fields) != 5:
        return (
            f"{expression!r} is not a 5-field cron expression (minute hour day-of-month month "
            f"day-of-week, such as '0 * * * *'): it has {len(fields)}"
        )
    for text, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for item in text.split(","):
            problem = _item_problem(item, name, low, high, names)
            if problem is not None:
                return f"{expression!r}: {problem}"
    return None


def _item_problem(item: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    match = _ITEM.match(item)
    if match is None:
        return f"the {name} field {item!r} is not a number, a range, a list or '*'"
    _star, first, last, step = match.groups()
    if step is not None and int(step) == 0:
        return f"the {name} field {item!r} has a step of 0"
    values = [v for v in (first, last) if v is not None]
    numbers = []
    for value in values:
        if value.isdigit():
            number = int(value)
        elif value.lower() in names:
            number = names.index(value.lower()) + (1 if name == "month" else 0)
        else:
            return f"the {name} {value!r} is not a number in {low}-{high}"
        if not low <= number <= high:
            return f"the {name} {number} is out of range {low}-{high}"
        numbers.append(number)
    if len(numbers) == 2 and numbers[0] > numbers[1]:
        return f"the {name} range {item!r} runs backwards"
    return None
