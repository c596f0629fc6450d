"""The directory source: one JSON Lines file per entity, each line a record as the API returns it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import orjson

from lb_pipelines.lightning_bolt.source.contract import ENTITIES, Window
from lb_pipelines.lightning_bolt.source.records import SourceRecordError, check_record


class DirectorySource:
    """Reads `<entity>.jsonl` files lazily, line by line, so any size streams in bounded memory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.description = f"directory {self.path}"

    def read(
        self,
        entity: str,
        window: Window | None = None,
        since_id: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        spec = ENTITIES[entity]
        file = self.path / spec.file_name
        if not file.is_file():
            raise FileNotFoundError(
                f"{file}: not found; a directory source holds one {spec.file_name}-style file per entity"
            )
        use_window = window is not None and spec.read in ("date", "range")
        use_since = since_id is not None and spec.read == "since_id"
        with file.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue  # a trailing blank line is not a record
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise SourceRecordError(f"{file} line {number}", f"malformed JSON ({exc})") from None
                check_record(spec, record, f"{file} line {number}")
                if use_window and not spec.in_window(record, window):
                    continue
                if use_since and record["id"] <= since_id:
                    continue
                yield record
