"""JSON log lines with Elastic Common Schema (ECS) field names, so Filebeat or
Vector ship them to Elasticsearch/OpenSearch unchanged (docs/observability.md).

Each line: `@timestamp` (UTC, ms), `log.level`, `log.logger`, `message`,
`ecs.version`, `process.pid`, `trace.id` / `span.id` when the line is written
inside a sampled trace (core.telemetry), `error.type` / `error.message` /
`error.stack_trace` for exceptions, then the call's own facts (`extra=`). An
extra whose name is an ECS object (`error`, `user`, `event`, ...) is moved to the
ECS leaf that means the same (`error.message`, `user.id`, ...) so the index
mapping never meets a string where it expects an object.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter

from core import telemetry

ECS_VERSION = "8.11.0"

# Extra names that are ECS objects -> the ECS leaf for a plain value.
_ECS_OBJECTS = {
    "error": "error.message",
    "user": "user.id",
    "event": "event.action",
    "url": "url.full",
    "host": "host.name",
    "service": "service.name",
    "source": "source.address",
    "client": "client.address",
    "process": "process.name",
    "http": "http.request.method",
    "file": "file.path",
    "trace": "labels.trace",
    "log": "labels.log",
    "ecs": "labels.ecs",
}


class EcsJsonFormatter(JsonFormatter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(message)s")
        kwargs.setdefault("rename_fields", {"levelname": "log.level", "name": "log.logger"})
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__(*args, **kwargs)

    def add_fields(self, log_data, record, message_dict) -> None:
        log_data["@timestamp"] = (
            datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
        super().add_fields(log_data, record, message_dict)
        for name, leaf in _ECS_OBJECTS.items():
            if name in log_data and not isinstance(log_data[name], dict):
                log_data[leaf] = log_data.pop(name)
        log_data["log.level"] = record.levelname.lower()
        log_data["ecs.version"] = ECS_VERSION
        log_data["process.pid"] = os.getpid()
        ids = telemetry.current_ids()
        if ids:
            log_data["trace.id"], log_data["span.id"] = ids
        if record.exc_info and record.exc_info[0] is not None:
            log_data["error.type"] = record.exc_info[0].__name__
            log_data.setdefault("error.message", str(record.exc_info[1]))
            log_data["error.stack_trace"] = log_data.pop("exc_info", None) or self.formatException(record.exc_info)
