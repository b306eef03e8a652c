"""No API key reaches a log line.

Clients put keys where servers log them: Gemini's SDKs send `?key=`, and the ASGI servers' access
logs record the query string in full. Every log record of the process is redacted when it is
created (a log record factory: our loggers, Django's, Celery's, uvicorn's access and error logs
alike), and daphne's access log, which writes to its stream without `logging`, is redacted as it
writes. Redacted: the values of key-like query parameters (key, api_key, access_token, ...),
of credential headers (Authorization, x-api-key, x-goog-api-key, api-key, cookies), and anything
shaped like an API key (sk-..., AIza...). It costs one regex scan per record, only for records
a logger actually emits.
"""

from __future__ import annotations

import logging
import logging.config
import re
from typing import Any

REDACTED = "[redacted]"

_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:[\w.%-]*(?:key|token|secret|passw(?:or)?d|signature|credential|auth)[\w.%-]*|sig)=)[^&;#\s\"'<>]+"
)
_SECRET_HEADER = re.compile(
    r"(?i)(\b(?:proxy-authorization|authorization|x-api-key|x-goog-api-key|api-key|set-cookie|cookie)"
    r"['\"]?\s*[:=,]\s*(?:(?-i:b)?['\"])?)(?!\[redacted\])(?:(?:bearer|basic|token)\s+)?[^\s'\",;)}\]]+"
)
_KEY_SHAPED = re.compile(r"\b(sk-aip-|sk-ant-|sk-|AIza)[\w-]{8,}")


def secret_redact(text: str) -> str:
    if not ("=" in text or ":" in text or "sk-" in text or "AIza" in text or "," in text):
        return text
    text = _SECRET_PARAM.sub(r"\1" + REDACTED, text)
    text = _SECRET_HEADER.sub(r"\1" + REDACTED, text)
    return _KEY_SHAPED.sub(r"\1" + REDACTED, text)


def _redact_arg(value: Any) -> Any:
    if isinstance(value, str):
        return secret_redact(value)
    if value is None or isinstance(value, int | float):
        return value  # kept as they are, for %d and %f
    text = str(value)
    redacted = secret_redact(text)
    return value if redacted == text else redacted


_exception_formatter = logging.Formatter()


def _record_redact(record: logging.LogRecord) -> logging.LogRecord:
    if isinstance(record.msg, str):
        record.msg = secret_redact(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_redact_arg(arg) for arg in record.args)
    elif isinstance(record.args, dict):
        record.args = {name: _redact_arg(arg) for name, arg in record.args.items()}
    if record.exc_info and not record.exc_text:
        # formatters reuse exc_text: the traceback is formatted (and redacted) once, here
        record.exc_text = secret_redact(_exception_formatter.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = secret_redact(record.stack_info)
    return record


def log_redaction_install() -> None:
    """Redact every log record of this process, and daphne's access log (idempotent)."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacts_secrets", False):

        def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return _record_redact(factory(*args, **kwargs))

        redacting_factory.redacts_secrets = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(redacting_factory)
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:
        return
    write_entry = AccessLogGenerator.write_entry
    if getattr(write_entry, "redacts_secrets", False):
        return

    def redacting_write_entry(
        self: AccessLogGenerator, host: Any, date: Any, request: str, *args: Any, **kwargs: Any
    ) -> None:
        write_entry(self, host, date, secret_redact(request), *args, **kwargs)

    redacting_write_entry.redacts_secrets = True  # type: ignore[attr-defined]
    AccessLogGenerator.write_entry = redacting_write_entry  # type: ignore[method-assign]


def logging_configure(config: dict[str, Any]) -> None:
    """settings.LOGGING_CONFIG: Django's dictConfig, then the redaction (run by django.setup() in
    every process: web servers, Celery, management commands)."""
    logging.config.dictConfig(config)
    log_redaction_install()
