"""Inbound events from other teams (contracts §2 and §4).

- `contracts`: the JSON schemas of every event type and the exchange it arrives on.
- `registry`: `@event_handler("app.activated")` registers the one handler of a type.
- `consumer`: the Celery consumer bootstep that receives, validates, dispatches,
  de-duplicates by event_id, acks after commit and dead-letters what it cannot apply.
- `publish`: publishing events (sandbox payment service, tests, `manage.py publish_event`).
"""
