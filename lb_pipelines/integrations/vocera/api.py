"""Vocera: its adapters poll their sources, so instead of pushing, this integration publishes each
mapped team's on-call list as a document the feed service serves (`make serve`):
`GET /vocera/teams/<team_id>.json`, with the feed's API key.

Publishing is a delivery like any other: a team's document is written (atomically) only when its
list changed, with the pushed state and the request ledger; a reconcile reads the documents back
(one edited or removed by hand is drift, restored); a dry run writes the documents it would
publish to `requests-<stamp>.jsonl`. The document is the replace-per-team list the other vendors
get: `{"team_id", "oncall": [entries: now first, by call order, then next]}`, each entry with UTC
start and end so Vocera's poller decides who is on call at any moment between two polls.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import orjson
from pydantic import Field

from lb_pipelines.delivery.http import Answer
from lb_pipelines.delivery.settings import PushDelivery
from lb_pipelines.delivery.targets import write_atomically
from lb_pipelines.integrations.on_call import SAFE_TEAM, OnCallSettings, published_teams_dir, team_label, team_lists
from lb_pipelines.integrations.on_call_api import TeamListShape, preview_lists
from lb_pipelines.integrations.pushing import Change, DesiredState, Observed, TargetUnreadable, content_hash

SLUG = "vocera"
SHAPE = TeamListShape(vendor="Vocera", sign_in_path="", team_path="/vocera/teams/{team_id}.json")
class VoceraDelivery(PushDelivery):
    """`http` publishes the documents for the feed to serve; `dry_run` (the default) writes what it
    would publish; `shadow` compares with what is published now. No connection keys: the feed is ours."""

    max_in_flight: int = Field(1, ge=1, le=16)


class VoceraSettings(OnCallSettings):
    delivery: VoceraDelivery = VoceraDelivery()


def desired(conn, settings: VoceraSettings, now: dt.datetime) -> DesiredState:
    return team_lists(conn, SLUG, settings, now, SHAPE.body)


class FeedPublisher:
    """Writes each changed team's document into the feed's folder; reads them back."""

    chunk_size = 1
    readable = True
    max_in_flight = 1

    def __init__(self, folder: Optional[Path] = None):
        self.folder = folder or published_teams_dir(SLUG)
        self.description = f"the on-call feed ({self.folder})"

    def path_of(self, team_id: str) -> Path:
        return self.folder / f"{team_id}.json"

    def request_of(self, change: Change) -> dict[str, Any]:
        path = SHAPE.path(change.target)
        return {"method": "PUT", "path": path, "file": str(self.path_of(change.target)),
                "body": change.desired.payload if change.desired is not None else None}

    def vendor_id_of(self, change: Change, answer: Answer) -> Optional[str]:
        return None

    def send(self, target: str, changes: Sequence[Change]) -> list[tuple[Change, Answer, int]]:
        answered = []
        for change in changes:
            if not SAFE_TEAM.match(change.target):  # the mapping's team id becomes a file name
                answer = Answer(400, error="a Vocera team id may hold only letters, digits, '.', '_' and '-'")
            else:
                try:
                    write_atomically(self.path_of(change.target), orjson.dumps(change.desired.payload))
                    answer = Answer(200)
                except OSError as exc:
                    answer = Answer(None, error=f"the document could not be written: {exc.strerror}")
            answered.append((change, answer, 1))
        return answered

    def read(self, target: str, read_range: Optional[tuple[dt.datetime, dt.datetime]]) -> list[Observed]:
        path = self.path_of(target)
        if not SAFE_TEAM.match(target) or not path.exists():
            return []
        try:
            body = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise TargetUnreadable(f"the published document is not readable JSON ({type(exc).__name__})") from None
        return [Observed(target, target, None, content_hash(body), None, team_label(target))]

    def preview(self, changes: Sequence[Change], observed: Mapping[str, list[Observed]]) -> tuple[list[str], list[tuple]]:
        return preview_lists(SHAPE, changes)


def adapter(settings: VoceraSettings, state: DesiredState) -> FeedPublisher:
    return FeedPublisher()
