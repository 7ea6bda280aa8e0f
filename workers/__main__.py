"""``python -m workers``: the same worker as ``boundsweep worker``."""

from __future__ import annotations

import sys

from boundsweep.workers._cli import main

sys.exit(main())
