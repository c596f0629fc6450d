"""Files another system drops for us (the demographic import): where they wait, when one is
whole, and where it goes afterwards.

A drop is a local folder (the embedded default, `$LB_INBOUND_DIR/<slug>/`) or a folder on an
SFTP server (host key verified, as for deliveries). A file is taken only when it is whole: its
done marker (`<name>.done`) is there, or its size and modification time did not change between
two looks. Afterwards it moves to `processed/` (or `failed/` when it could not be read or was a
duplicate) with its report beside it, so no file is applied twice and none is lost. Hidden
files (`.name`), markers and folders are never taken.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Iterator, Literal, Optional, Protocol, Union

import paramiko
from pydantic import Field

from lb_pipelines import clock
from lb_pipelines import settings as paths
from lb_pipelines.delivery.settings import SftpDelivery
from lb_pipelines.delivery.sftp import connected_sftp
from lb_pipelines.delivery.targets import DeliveryError, write_atomically
from lb_pipelines.validation import Strict

DONE_SUFFIX = ".done"
PROCESSED, FAILED = "processed", "failed"


class FolderInbound(Strict):
    """A local folder: `path` (absolute, or relative to $LB_INBOUND_DIR); default $LB_INBOUND_DIR/<slug>."""

    type: Literal["folder"] = "folder"
    path: Optional[str] = None
    done_marker: bool = False  # take a file only once `<name>.done` is beside it
    stable_seconds: float = Field(2.0, ge=0, le=600)  # between the two looks of a run not started by the sensor


class SftpInbound(SftpDelivery):
    """A folder on an SFTP server (the vendor's usual drop); the host key must be in known_hosts."""

    type: Literal["sftp"]  # type: ignore[assignment]
    done_marker: bool = False
    stable_seconds: float = Field(2.0, ge=0, le=600)


Inbound = Annotated[Union[FolderInbound, SftpInbound], Field(discriminator="type")]


@dataclass(frozen=True)
class Waiting:
    """A file in the drop as one look saw it."""

    name: str
    size: int
    mtime: float
    marked: bool  # its done marker is there

    @property
    def look(self) -> tuple[int, float]:
        return (self.size, self.mtime)


def ready(now: list[Waiting], before: dict[str, tuple[int, float]] | None, done_marker: bool) -> list[Waiting]:
    """The files that are whole: marked (when markers are used), else unchanged since the look
    before (`before`: name → (size, mtime); None when there was no look before). A file still
    empty at the second look is taken too: it goes to failed/ as empty, so nobody waits for it."""
    if done_marker:
        return [w for w in now if w.marked]
    return [w for w in now if before is not None and before.get(w.name) == w.look]


def _ordinary(name: str) -> bool:
    return not name.startswith(".") and not name.endswith(DONE_SUFFIX)


def _with_markers(entries: list[tuple[str, int, float]]) -> list[Waiting]:
    names = {n for n, _, _ in entries}
    return sorted(
        (Waiting(n, size, mtime, n + DONE_SUFFIX in names) for n, size, mtime in entries if _ordinary(n)),
        key=lambda w: (w.mtime, w.name),  # oldest first: a day's file before the next day's
    )


def _free_name(name: str, taken) -> str:
    """`name`, or `name` with a time stamp (and a counter) before its suffix when that is taken:
    a file dropped again under the same name never replaces the earlier one's copy."""
    if not taken(name):
        return name
    stem, dot, suffix = name.rpartition(".")
    stamp = clock.now().strftime("%Y%m%d%H%M%S")
    n = 1
    while True:
        tag = stamp if n == 1 else f"{stamp}-{n}"
        candidate = f"{stem}-{tag}{dot}{suffix}" if dot and stem else f"{name}-{tag}"
        if not taken(candidate):
            return candidate
        n += 1


def report_name(name: str) -> str:
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return f"{stem}.report.csv"


class Drop(Protocol):
    description: str

    def listing(self) -> list[Waiting]: ...

    def fetch(self, name: str) -> bytes: ...

    def finish(self, name: str, folder: str, report: bytes) -> str:
        """Put the report in `folder` (processed/ or failed/), then move the file beside it; the
        file's new location. The report first: a file in processed/ always has its report."""
        ...


class FolderDrop:
    def __init__(self, settings: FolderInbound, slug: str):
        base = paths.inbound_dir()
        path = Path(settings.path).expanduser() if settings.path else base / slug
        self.folder = path if path.is_absolute() else base / path
        self.description = f"folder {self.folder}"

    def listing(self) -> list[Waiting]:
        if not self.folder.is_dir():
            return []
        entries = []
        with os.scandir(self.folder) as it:
            for entry in it:
                if entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    entries.append((entry.name, info.st_size, info.st_mtime))
        return _with_markers(entries)

    def fetch(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    def finish(self, name: str, folder: str, report: bytes) -> str:
        into = self.folder / folder
        into.mkdir(exist_ok=True)
        final = _free_name(name, lambda n: (into / n).exists())
        write_atomically(into / report_name(final), report)
        os.replace(self.folder / name, into / final)
        (self.folder / (name + DONE_SUFFIX)).unlink(missing_ok=True)
        return str(into / final)


class SftpDrop:
    """The same on an SFTP server: one connection per look or per file handled."""

    def __init__(self, settings: SftpInbound):
        self.settings = settings
        self.folder = settings.remote_dir
        self.description = f"sftp://{settings.username}@{settings.host}:{settings.port}/{settings.remote_dir}"

    @contextlib.contextmanager
    def _sftp(self) -> Iterator[paramiko.SFTPClient]:
        with connected_sftp(self.settings, self.description) as sftp:
            yield sftp

    def listing(self) -> list[Waiting]:
        with self._sftp() as sftp:
            entries = [
                (e.filename, e.st_size or 0, float(e.st_mtime or 0))
                for e in sftp.listdir_attr(self.folder)
                if stat.S_ISREG(e.st_mode or 0)
            ]
        return _with_markers(entries)

    def fetch(self, name: str) -> bytes:
        with self._sftp() as sftp, sftp.open(posixpath.join(self.folder, name), "rb") as remote:
            remote.prefetch()
            return remote.read()

    def finish(self, name: str, folder: str, report: bytes) -> str:
        with self._sftp() as sftp:
            into = posixpath.join(self.folder, folder)
            try:
                sftp.stat(into)
            except FileNotFoundError:
                sftp.mkdir(into)
            existing = set(sftp.listdir(into))
            final = _free_name(name, lambda n: n in existing)
            tmp = posixpath.join(into, f".{report_name(final)}.tmp")
            with sftp.open(tmp, "wb") as out:
                out.write(report)
            sftp.posix_rename(tmp, posixpath.join(into, report_name(final)))
            sftp.posix_rename(posixpath.join(self.folder, name), posixpath.join(into, final))
            with contextlib.suppress(FileNotFoundError):
                sftp.remove(posixpath.join(self.folder, name + DONE_SUFFIX))
            return posixpath.join(into, final)


def open_drop(settings: FolderInbound | SftpInbound, slug: str) -> Drop:
    return SftpDrop(settings) if isinstance(settings, SftpInbound) else FolderDrop(settings, slug)


def files_ready_now(drop: Drop, settings: FolderInbound | SftpInbound) -> list[Waiting]:
    """For a run not started by the sensor: two looks `stable_seconds` apart (one with markers)."""
    first = drop.listing()
    if settings.done_marker or not first:
        return ready(first, None, settings.done_marker)
    time.sleep(settings.stable_seconds)
    return ready(drop.listing(), {w.name: w.look for w in first}, False)


__all__ = [
    "DeliveryError", "Drop", "FAILED", "FolderDrop", "FolderInbound", "Inbound", "PROCESSED", "SftpDrop",
    "SftpInbound", "Waiting", "files_ready_now", "open_drop", "ready", "report_name",
]
