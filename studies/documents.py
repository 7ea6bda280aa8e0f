"""A spec file read within the document limits, importing nothing heavy (no Optuna, no
pydantic, no torch): the command line refuses a hostile spec file with it before it loads the
rest. The limits are defined once, beside the campaign caps (``boundsweep.studies.campaign``
exports them).
"""

from __future__ import annotations

from boundsweep.studies._campaign._limits import DocumentError, read_document_file

__all__ = ["DocumentError", "read_document_file"]
