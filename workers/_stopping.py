"""The exception that unwinds a trial (or a batch of them) when the worker is told to stop."""

from __future__ import annotations


class WorkerStopping(BaseException):
    """Raised inside training when the worker is told to stop (SIGTERM / SIGINT).

    A ``BaseException`` so that no ``except Exception`` in training code swallows it.
    """
