"""Errors of the wiring (infra).

InfraError              anything refused by infra's own code
└── SweepRefusedError   a sweep asked for with a value it will not use (.field, .value)
"""

from __future__ import annotations


class InfraError(Exception):
    """Base of every infra error."""


class SweepRefusedError(InfraError):
    """A sweep's setting that would make it remove or mark what is still alive; the message
    names the field and the value."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field} {problem} (got {value!r})")
