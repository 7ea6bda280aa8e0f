"""Keep secrets a client puts in a URL out of the server's logs.

The API and the dashboard take tokens only in headers (``Authorization``), which no log
writes. But a client may still send one in the query string (``?token=...``, as some tools
do), and uvicorn's access log writes every request line whole: the secret then sits in the
log, readable by whoever reads logs (issue 19). Here the value of every query parameter whose
name says it is a secret is replaced by ``***`` in the records of the loggers that write
request lines, before any handler formats them. The rest of the line stays, so the log still
says who asked for what.
"""

from __future__ import annotations

import logging
import re

__all__ = ["REQUEST_LOGGERS", "install_redaction", "redact"]

REQUEST_LOGGERS = ("uvicorn.access", "uvicorn.error")
"""The loggers whose records may carry a request's URL."""

_SECRET_NAMES = r"token|key|secret|passw(?:or)?d|pwd|auth|credential|signature|session"
_QUERY_SECRET = re.compile(
    rf"([?&;](?:[^=&;#\s\"']*(?:{_SECRET_NAMES})[^=&;#\s\"']*)=)[^&;#\s\"']*", re.IGNORECASE
)


def redact(text: str) -> str:
    """``text`` with the value of each secret-named query parameter replaced by ``***``."""
    return _QUERY_SECRET.sub(r"\1***", text)


class _RedactQuerySecrets(logging.Filter):
    # The arguments are redacted one by one, not the formatted message: uvicorn's access
    # formatter unpacks ``record.args`` (client, method, path, version, status) itself.
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


_FILTER = _RedactQuerySecrets()


def install_redaction() -> None:
    """Redact the request loggers' records from now on (once per process, however called).

    A logger's filters survive uvicorn's logging set-up (``dictConfig`` replaces handlers,
    not filters), so installing before ``uvicorn.run`` is enough.
    """
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
