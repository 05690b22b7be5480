"""Log lines for people (default) or for machines (`RAG_LOG_FORMAT=json`: one JSON object
per line), both carrying the id of the request they are about.

`configure_logging` installs one stderr handler on the root logger and routes uvicorn's
own loggers through it, so every line of the process has the same format.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

from api.observability.context import request_id

LogFormat = Literal["text", "json"]

# Attributes every LogRecord has; anything else on a record came from `extra=` and is
# written as a field of its own.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    # color_message: uvicorn's copy of the message with terminal colour codes.
    | {"message", "asctime", "request_id", "taskName", "color_message"}
)


class RequestIdFilter(logging.Filter):
    """Stamp each record with the id of the request being handled ("-" outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get() or "-"
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """The fields a call passed with `extra=`, in the order given."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, the call's extra
    fields, and `exception` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", "-")
        if rid != "-":
            line["request_id"] = rid
        line.update(extra_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        # default=str: an extra field that is not JSON (a Path, an exception) is still
        # written, as text, rather than losing the line.
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2026-11-30T05:20:01.123Z INFO api.access [req 3f2a...] POST /ask 200 12.3 ms`,
    then the extra fields as key=value, then the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        text = (
            f"{_timestamp(record)} {record.levelname} {record.name} "
            f"[req {getattr(record, 'request_id', '-')}] {record.getMessage()}"
        )
        fields = extra_fields(record)
        if fields:
            text += " " + " ".join(f"{k}={_value(v)}" for k, v in fields.items())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + record.exc_text
        return text


def _value(value: object) -> str:
    # Strings with spaces or quotes are quoted so a line splits back into its fields.
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if isinstance(value, str) and (not value or any(c in value for c in ' "=\n')):
        return json.dumps(value, ensure_ascii=False)
    return text


def make_handler(fmt: LogFormat, stream: object = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging(fmt: LogFormat, level: str = "info") -> None:
    """Send every log line of the process to stderr in `fmt`. Uvicorn's loggers lose their
    own handlers and propagate here; its access log is off, since the request middleware
    writes one richer line per request (route, status, duration, error code)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(make_handler(fmt))
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(level.upper())
    logging.getLogger("uvicorn.access").disabled = True
    logging.captureWarnings(True)  # warnings.warn(...) as log lines, in the same format
    # transformers writes through a handler of its own and draws a progress bar while
    # the model loads: neither belongs in a server's log, and the bar is not a JSON line.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    hf_logging.disable_progress_bar()
