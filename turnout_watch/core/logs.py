"""One logging setup for every process turnout-watch starts: the CLI's and each Faust worker's.

The root logger gets one handler on standard error. A command's level comes from its -v count; a worker
takes its level from the `worker_log_level` setting instead and tags each line with its pid, so the lines
of several workers (a replay's, or a scaled-out deployment's) stay attributable when read together.
"""

from __future__ import annotations

import logging

__all__ = ["FORMAT", "WORKER_FORMAT", "level_for", "setup_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
WORKER_FORMAT = "%(asctime)s %(levelname)s [worker %(process)d] %(name)s: %(message)s"


def level_for(verbosity: int) -> int:
    """WARNING by default, INFO with -v, DEBUG with -vv (or more)."""
    return logging.WARNING - 10 * min(max(verbosity, 0), 2)


def setup_logging(verbosity: int = 0, *, level: str | None = None, worker: bool = False) -> None:
    """Configure the root logger once per process.

    `level` (a name such as "info", any case) wins over `verbosity`. A worker (`worker=True`) replaces
    the handler the CLI installed on its way in (it runs as `turnout-watch worker`); a command leaves an
    already configured root logger alone (e.g. pytest's, when a test invokes the CLI in-process).
    """
    logging.basicConfig(
        level=level.upper() if level else level_for(verbosity),
        format=WORKER_FORMAT if worker else FORMAT,
        force=worker,
    )
