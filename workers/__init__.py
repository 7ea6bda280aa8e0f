"""Running trials: claim work from the storage, heartbeat, retry, graceful stop, progress.

```python
from boundsweep.workers import run_worker
run_worker("sqlite:///boundsweep.db", device="cpu", until_idle=True)
```
"""

from __future__ import annotations

from boundsweep.workers._cli import add_worker_arguments, main, worker_main
from boundsweep.workers._worker import (
    ARMS_REFRESH,
    RESULT_RETRY,
    Worker,
    WorkerConfig,
    WorkerStats,
    WorkerStopping,
    run_worker,
)

__all__ = [
    "ARMS_REFRESH",
    "RESULT_RETRY",
    "Worker",
    "WorkerConfig",
    "WorkerStats",
    "WorkerStopping",
    "add_worker_arguments",
    "main",
    "run_worker",
    "worker_main",
]
