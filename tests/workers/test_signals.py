"""A stop signal never interrupts an import (it would leave a half-initialised module behind)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from boundsweep.workers._worker import _importing


def test_a_frame_inside_an_import_is_recognised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not _importing(sys._getframe())
    (tmp_path / "bs_probe_module.py").write_text(
        "import sys\nfrom boundsweep.workers._worker import _importing\nSEEN = _importing(sys._getframe())\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = importlib.import_module("bs_probe_module")
        assert module.SEEN is True
    finally:
        sys.modules.pop("bs_probe_module", None)
