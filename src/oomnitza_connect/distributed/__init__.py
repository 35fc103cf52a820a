"""Integrations on a fleet of Celery workers (the ``celery`` extra; see docs/scaling.md).

:mod:`.app` is the Celery app, :mod:`.tasks` its tasks, :mod:`.locking` the
per-integration run lock, :mod:`.pacing` the rate budgets shared in Redis,
:mod:`.credentials` the tokens shared in Redis, :mod:`.schedule` beat's entries
and the missed-run and over-24-hours notices.

Nothing here is imported by the rest of the package: without the extra,
oomnitza-connect works as before.
"""
