"""What every settings model shares: strict models, errors in our own words, cron expressions.

Used by the integrations' settings and mapping rows and by the `delivery:` block alike.
"""

from __future__ import annotations

from typing import Annotated, Any

from croniter import croniter
from pydantic import BaseModel, ConfigDict, StringConstraints
from pydantic_core import PydanticCustomError

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Strict(BaseModel):
    """A settings block: unknown keys are mistakes (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def invalid(kind: str, template: str, **values: Any) -> PydanticCustomError:
    """A validation error in our own words; `{name}` in `template` shows `repr(values[name])`."""
    return PydanticCustomError(f"lb_{kind}", template, {name: repr(value) for name, value in values.items()})


def is_valid_cron(expression: str) -> bool:
    """Five fields, as a Dagster schedule takes them (no seconds), and a day that exists."""
    if not isinstance(expression, str) or not croniter.is_valid(expression):
        return False
    fields = croniter.expand(expression)[0]
    if len(fields) != 5:
        return False
    days, months = fields[2], fields[3]
    return not (months == [2] and len(days) == 1 and days[0] in (30, 31))  # 30 or 31 February never comes
