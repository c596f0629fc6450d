"""What every way into Lightning Bolt offers: records of one entity, optionally in a window.

The directory source and the API client both implement `LightningBoltSource`; the raw loader
only ever talks to this protocol, so switching between them is configuration.
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol

from lb_pipelines.lightning_bolt.source.contract import Window


class LightningBoltSource(Protocol):
    #: Human-readable origin for metadata and errors, e.g. "directory data/sample" or
    #: "api https://lb.example.org". Never contains a secret.
    description: str

    def read(
        self,
        entity: str,
        window: Window | None = None,
        since_id: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield checked records of `entity` (see `contract.ENTITIES`).

        - `window` filters "date" and "range" entities exactly as `Entity.in_window` says;
          it is ignored for "full" entities.
        - `since_id` applies to the change log: only ids greater than it.
        Every record has passed `records.check_record`; a malformed record raises
        `records.SourceRecordError` naming where it is (file and line, or endpoint and page).
        """
        ...
