"""Temporary files of atomic writes, named so that a later run can tell a leftover from a write
in progress.

Every atomic write on this machine goes to `.<final name>.<pid>.tmp` beside the final name and
is renamed over it. A writer killed in between (SIGKILL, OOM killer, power loss) leaves that
file; the pid in its name says whose it was, so the next writer of the folder can remove it
once that process is gone.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

_TEMPORARY = re.compile(r"^\.(?P<final>.+)\.(?P<pid>\d{1,10})\.tmp$")


def temporary_path(final: Path) -> Path:
    """Where this process writes `final` before renaming it: hidden, and marked with our pid."""
    return final.with_name(f".{final.name}.{os.getpid()}.tmp")


def pid_alive(pid: int) -> bool:
    """Whether a process of that id runs on this machine (a reused pid counts as alive: we keep
    its file until that process too is gone, which errs on the safe side)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: no signal sent, only the existence check
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OverflowError:  # not a pid this kernel can have
        return False
    return True


def remove_leftovers(
    folder: Path, *, ours: Callable[[str], bool] = lambda final: True, own_pid_too: bool = False
) -> list[Path]:
    """Remove the temporary files in `folder` (not below it) whose writer is no longer alive.

    `ours(final)` narrows which final names count; `own_pid_too` also removes this process's
    own, for a caller that knows no other write of this process is under way in the folder.
    Best effort: a file that cannot be removed is logged and left for the next run.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if not match or not ours(match["final"]) or not entry.is_file(follow_symlinks=False):
            continue
        pid = int(match["pid"])
        if not ((own_pid_too and pid == os.getpid()) or not pid_alive(pid)):
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not remove leftover temporary file %s: %s", entry.path, exc.strerror or exc)
            continue
        removed.append(Path(entry.path))
    return removed
