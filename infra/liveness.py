"""Which process runs a flow run, so that a run whose process died can be told from a live one.

A flow run killed with its process (SIGKILL, the machine lost) stays Running in Prefect forever:
nothing is left to report its end. Each of this project's flows therefore labels its own run, as
it starts, with the host name, the PID and the process's identity (the kernel's boot id and the
process's start time, so that a PID the kernel has since given to another process is not taken
for it). `infra.sweep` reads the labels back: on the same host, a dead process is certain. A run
on another host is judged by Prefect's own heartbeat events instead (every flow run sends one
every `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` seconds, 180 by default, from a thread of its process).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path

logger = logging.getLogger("greenlight.liveness")

# The flows whose runs the sweep looks after (infra.flows names its flows with these).
CAMPAIGN_FLOW = "campaign-run"
ASSETS_FLOW = "assets-generate"
SWEPT_FLOWS = (CAMPAIGN_FLOW, ASSETS_FLOW)

LABEL_HOST = "greenlight.host"
LABEL_PID = "greenlight.pid"
LABEL_PROCESS = "greenlight.process"

_PROC = Path("/proc")


def process_identity(pid: int) -> str:
    """``<boot id>:<start time in clock ticks>`` of a running process, from /proc; "" when the
    process does not exist, has exited (a zombie not yet reaped), or the system has no /proc."""
    try:
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return ""
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses; field 22 is the start time.
    fields = stat[stat.rindex(")") + 2 :].split()
    return "" if fields[0] in ("Z", "X") else f"{boot}:{fields[19]}"


def process_labels() -> dict[str, str]:
    """The labels naming this process: host, PID and identity."""
    pid = os.getpid()
    return {LABEL_HOST: socket.gethostname(), LABEL_PID: str(pid), LABEL_PROCESS: process_identity(pid)}


def flow_run_label() -> None:
    """Label the current flow run with this process (one API call as the run starts). A refusal
    is logged, not raised: the run then goes unlabelled and is judged by its heartbeats alone."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    try:
        with get_client(sync_client=True) as client:
            labels: dict[str, str | int | float | bool] = dict(process_labels())
            client.update_flow_run_labels(context.flow_run.id, labels)
    except Exception:  # the run matters more than its label
        logger.warning("could not label flow run %s with its process", context.flow_run.id, exc_info=True)


def process_alive(labels: Mapping[str, object]) -> bool | None:
    """Whether the process a flow run's labels name is alive: True or False when it ran on this
    host, None when it ran on another host or was never labelled (nothing to tell from here)."""
    if labels.get(LABEL_HOST) != socket.gethostname():
        return None
    try:
        pid = int(str(labels.get(LABEL_PID, "")))
    except ValueError:
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    recorded = str(labels.get(LABEL_PROCESS, ""))
    if not recorded:
        return True
    # The same PID with another start time (or after a reboot) is another process.
    return process_identity(pid) == recorded
