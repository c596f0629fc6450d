"""Runs whose process is gone: failed, and their warehouse pool slots freed, before the next run.

A run killed with SIGKILL (or out of memory, or a machine that stopped) stays STARTED in the
instance and keeps its slot in the `warehouse` pool; the next run's warehouse step then waits
for that slot for ever. In production the daemon's run monitoring ends such runs; runs started
by `lb-pipelines run` have no daemon watching them, so each `lb-pipelines run` first:

- fails every run started by this project's CLI whose process is gone (the run carries its host,
  pid and process start time as a tag, so a reused pid is not mistaken for the run);
- fails every run older than the instance's maximum run time (`run_monitoring.max_runtime_seconds`,
  or the run's own `dagster/max_runtime` tag): a hung run, as the daemon would;
- frees pool slots still held by runs that have ended.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES, RunsFilter

from lb_pipelines.temp_files import pid_alive

_UNFINISHED = [*IN_PROGRESS_RUN_STATUSES, dg.DagsterRunStatus.NOT_STARTED]
PROCESS_TAG = "lb/process"  # "<host>:<pid>:<process start, in clock ticks since boot>"
MAX_RUNTIME_TAG = "dagster/max_runtime"


def _process_start(pid: int) -> str:
    """When the process started (Linux: /proc/<pid>/stat field 22), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # fields after "(comm)" start at field 3


def process_tags() -> dict[str, str]:
    """Tags for a run executed in this process, so a later CLI can tell whether it still lives."""
    pid = os.getpid()
    return {PROCESS_TAG: f"{socket.gethostname()}:{pid}:{_process_start(pid)}"}


def process_gone(tag: str) -> bool:
    """Whether the process a `PROCESS_TAG` names is certainly gone (never for another host's)."""
    host, _, rest = tag.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if not pid_alive(pid):
        return True
    return bool(started) and _process_start(pid) not in ("", started)  # the pid was reused


@dataclass(frozen=True)
class Recovered:
    run_id: str
    job_name: str
    reason: str


def _max_runtime(instance: dg.DagsterInstance, run: dg.DagsterRun) -> float:
    own = run.tags.get(MAX_RUNTIME_TAG)
    try:
        return float(own) if own else float(instance.run_monitoring_max_runtime_seconds or 0)
    except ValueError:
        return float(instance.run_monitoring_max_runtime_seconds or 0)


def fail_dead_runs(instance: dg.DagsterInstance) -> list[Recovered]:
    """Fail runs whose process is gone or that ran past their maximum time, and free their slots."""
    recovered: list[Recovered] = []
    now = time.time()
    for record in instance.get_run_records(filters=RunsFilter(statuses=_UNFINISHED)):
        run = record.dagster_run
        tag = run.tags.get(PROCESS_TAG)
        if run.status == dg.DagsterRunStatus.NOT_STARTED and not tag:
            continue  # created elsewhere and about to be launched
        limit = _max_runtime(instance, run)
        began = record.start_time or record.create_timestamp.timestamp()
        if tag and process_gone(tag):
            pid = tag.split(":")[1]
            reason = f"its process (pid {pid}) is gone: it was killed or crashed"
        elif limit and now - began > limit:
            reason = f"it ran {now - began:.0f} s, longer than its maximum of {limit:.0f} s"
        else:
            continue
        recovered.append(_fail(instance, run, reason))
    recovered += free_slots_of_ended_runs(instance)
    return recovered


def fail_runs_of_this_process(instance: dg.DagsterInstance, reason: str) -> list[Recovered]:
    """On SIGTERM or Ctrl-C: this process's unfinished runs end as failed and let go of their slots."""
    own = process_tags()[PROCESS_TAG]
    runs = instance.get_runs(filters=RunsFilter(statuses=_UNFINISHED, tags={PROCESS_TAG: own}))
    return [_fail(instance, run, reason) for run in runs]


def _fail(instance: dg.DagsterInstance, run: dg.DagsterRun, reason: str) -> Recovered:
    instance.report_run_failed(run, f"lb-pipelines: marked failed because {reason}.")
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return Recovered(run.run_id, run.job_name, reason)


def free_slots_of_ended_runs(instance: dg.DagsterInstance) -> list[Recovered]:
    """Pool slots still claimed (or waited for) by a run that has ended, or that no longer exists."""
    freed: list[Recovered] = []
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return freed
    holders: set[str] = set()
    for pool in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(pool)
        holders |= info.active_run_ids | {step.run_id for step in info.pending_steps}
    for run_id in sorted(holders):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            freed.append(Recovered(run_id, run.job_name if run else "?", "it had ended but still held a pool slot"))
    return freed


def pool_holders(instance: dg.DagsterInstance) -> dict[str, set[str]]:
    """Pool → the runs holding a slot of it now (after recovery: live runs that we wait for)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    held = {pool: storage.get_concurrency_info(pool).active_run_ids for pool in storage.get_concurrency_keys()}
    return {pool: runs for pool, runs in held.items() if runs}
