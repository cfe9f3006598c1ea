"""Records that nest, as most real APIs' do: the demo API's ``generic.tickets``.

Each ticket has a nested object two levels deep (``meta.source``), a list of scalars inside it
(``meta.flags``, sometimes empty), a list of objects (``comments``, sometimes empty) whose items
hold a list of their own (``tags``), nulls at every level, and values whose type changes from
record to record (``sla_hours``: a whole number or ``"none"``; a comment's ``score``: a whole
number or a fraction), which dlt puts in variant columns. dlt lands it as the table ``tickets``
with ``meta__*`` columns and the child tables ``tickets__meta__flags``, ``tickets__comments`` and
``tickets__comments__tags``.
"""

from __future__ import annotations

from restsync_dagster.demo_api.data import Record, _mix, _pick, _ts

_CHANNELS = ("web", "email", "phone", "chat")
_FLAGS = ("vip", "urgent", "spam", "escalated", "reopened")


def generic_tickets(seed: int, i: int) -> Record:
    h = _mix(seed, 105, i)
    comments = []
    for n in range(h % 3):  # 0, 1 or 2 comments
        ch = _mix(seed, 106, i * 4 + n)
        comments.append(
            {
                "author": f"agent{ch % 40}",
                "body": f"comment {ch % 9973}",
                "tags": [_pick(_FLAGS, ch >> k) for k in range(ch % 3)],
                "edited_at": None if ch % 5 else _ts(i * 300 + 60 * (n + 1)),
                "score": ch % 5 + (0.5 if ch % 7 == 0 else 0),
            }
        )
    return {
        "id": i + 1,
        "subject": f"Ticket {i + 1}",
        "priority": 1 + (h >> 3) % 4,
        "sla_hours": "none" if h % 7 == 0 else 4 * (1 + h % 6),
        "meta": {
            "channel": _pick(_CHANNELS, h >> 5),
            "flags": [_pick(_FLAGS, h >> (7 + k)) for k in range((h >> 11) % 3)],
            "source": {
                "ip": f"10.0.{(h >> 13) % 256}.{h % 256}",
                "agent": None if h % 6 else "app",
            },
        },
        "comments": comments,
        "created_at": _ts(i * 300),
        "updated_at": _ts(i * 300 + h % 3600),
    }
