"""Telling a flow run's process alive or dead from the labels it gave its run: real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from infra.liveness import LABEL_HOST, LABEL_PID, LABEL_PROCESS, process_alive, process_identity, process_labels


def child_labels(child: subprocess.Popen[bytes]) -> dict[str, str]:
    return {**process_labels(), LABEL_PID: str(child.pid), LABEL_PROCESS: process_identity(child.pid)}


def test_this_process_is_alive_and_one_on_another_host_cannot_be_told() -> None:
    assert process_alive(process_labels()) is True
    assert process_alive({**process_labels(), LABEL_HOST: "gpu-7.elsewhere"}) is None
    assert process_alive({}) is None


def test_a_process_that_exited_is_dead_reaped_or_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    labels = child_labels(child)
    assert labels[LABEL_PROCESS] and process_alive(labels) is True
    child.kill()
    deadline = time.monotonic() + 10
    while process_identity(child.pid) and time.monotonic() < deadline:  # until the kernel has it a zombie
        time.sleep(0.05)
    assert process_alive(labels) is False  # a zombie its parent has not reaped yet
    child.wait(10)
    assert process_alive(labels) is False


def test_a_pid_now_held_by_another_process_is_not_taken_for_the_run_s() -> None:
    """The PID is this (live) process's, but the identity recorded is another start's."""
    labels = {**process_labels(), LABEL_PROCESS: process_identity(os.getpid()).rsplit(":", 1)[0] + ":1"}
    assert process_alive(labels) is False
