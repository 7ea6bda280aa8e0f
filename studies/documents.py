"""The document limits and their checked readers, importing nothing heavy (no Optuna, no
pydantic, no torch): the command line refuses a hostile spec file with them before it loads
the rest. The limits are defined once, beside the campaign caps; ``boundsweep.studies.campaign``
exports them too.
"""

from __future__ import annotations

from boundsweep.studies._campaign._limits import (
    MAX_DOCUMENT_BYTES,
    DocumentError,
    check_document,
    check_size,
    parse_json,
    parse_yaml,
    read_document_file,
)

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "DocumentError",
    "check_document",
    "check_size",
    "parse_json",
    "parse_yaml",
    "read_document_file",
]
