"""Deltas against what was last delivered: a pure rule, tested with small hand-made cases.

The change log only says *that* something changed; the delta compares the full set that is
true now with the set last delivered successfully for the same scope (integrations.md).
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Optional, Sequence

import orjson

from lb_pipelines.delivery.ledger import StateRow

ADD, UPDATE, DELETE = "ADD", "UPDATE", "DELETE"
# Deletes first: a shift moved from one person to another leaves the first timecard before it
# reaches the second, so the receiving system never sees both at once.
_ORDER = {DELETE: 0, UPDATE: 1, ADD: 2}


def row_hash(values: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(dict(values), option=orjson.OPT_SORT_KEYS)).hexdigest()


def state_rows(keyed_rows: Sequence[tuple[str, Mapping[str, Any]]]) -> list[StateRow]:
    return [StateRow(key, row_hash(values), dict(values)) for key, values in keyed_rows]


def compute_delta(
    previous: Optional[Mapping[str, StateRow]], current: Sequence[StateRow]
) -> list[tuple[str, StateRow]]:
    """(action, row) pairs: everything as ADD when nothing was delivered before (a full file),
    else ADD for new keys, UPDATE for changed values, DELETE (with the old values) for keys gone."""
    if previous is None:
        changes = [(ADD, row) for row in current]
    else:
        now = {row.key: row for row in current}
        changes = [(ADD, r) for r in current if r.key not in previous]
        changes += [(UPDATE, r) for r in current if r.key in previous and previous[r.key].hash != r.hash]
        changes += [(DELETE, old) for key, old in previous.items() if key not in now]
    return sorted(changes, key=lambda change: (_ORDER[change[0]], change[1].key))
