"""Where an export file goes. Every target publishes atomically and returns a receipt.

A target either delivers the whole file (and says where, how big, and its sha256) or raises
`DeliveryError`; it never leaves a partial file under the final name.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lb_pipelines.temp_files import remove_leftovers, temporary_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Receipt:
    target: str  # "outbox", "dry_run", "sftp://user@host:port/dir" (never a secret)
    location: str  # where the file now is
    bytes: int
    sha256: str
    delivered: bool = True  # False for a dry run: recorded, not sent


class DeliveryError(RuntimeError):
    """A delivery that failed for good; names the target, the file and why (never a secret)."""


class Target(Protocol):
    description: str

    def deliver(self, integration: str, file_name: str, content: bytes) -> Receipt: ...


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def write_atomically(path: Path, content: bytes) -> None:
    """Write under a hidden temporary name, flush to disk, then rename over the final name.

    First removes the temporary files that killed writers left in the folder: those whose pid is
    gone. One of a live process may be a write in progress and stays.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    removed = remove_leftovers(path.parent)
    if removed:
        log.info("%s: removed %d leftover temporary file(s) of killed writes", path.parent, len(removed))
    tmp = temporary_path(path)
    try:
        with tmp.open("wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class OutboxTarget:
    """`<outbox>/<integration>/<file>`: the embedded default, and what a downstream job can pick up."""

    def __init__(self, outbox_dir: Path):
        self.outbox_dir = Path(outbox_dir)
        self.description = "outbox"

    def deliver(self, integration: str, file_name: str, content: bytes) -> Receipt:
        path = self.outbox_dir / integration / file_name
        _write(self.description, path, content)
        return Receipt("outbox", str(path), len(content), sha256_hex(content))


class DryRunTarget:
    """Writes what would be sent to `<outbox>/<integration>/dry_run/`; nothing counts as delivered."""

    def __init__(self, outbox_dir: Path):
        self.outbox_dir = Path(outbox_dir)
        self.description = "dry_run"

    def deliver(self, integration: str, file_name: str, content: bytes) -> Receipt:
        path = self.outbox_dir / integration / "dry_run" / file_name
        _write(self.description, path, content)
        return Receipt("dry_run", str(path), len(content), sha256_hex(content), delivered=False)


def _write(target: str, path: Path, content: bytes) -> None:
    """`write_atomically`, its failure a DeliveryError the ledger records."""
    try:
        write_atomically(path, content)
    except OSError as exc:
        raise DeliveryError(f"{target}: could not write {path}: {exc.strerror or exc}") from exc
