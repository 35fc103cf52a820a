"""``oomnitza-connect worker`` and ``oomnitza-connect beat``: integrations on Celery.

Both need the ``celery`` extra (``pip install 'oomnitza-connect[celery]'``);
without it they say so and nothing else changes. See docs/scaling.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

__all__ = ["register"]


class _MissingExtra(click.ClickException):
    exit_code = 2


def _load_app() -> object:
    try:
        from ..distributed.app import app
    except ImportError as exc:
        raise _MissingExtra(
            f"this command needs the celery extra ({exc.name or exc} is not installed); "
            "install it with: pip install 'oomnitza-connect[celery]'"
        ) from None
    return app


def _shared_options(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option(
        "--run-lease",
        type=click.FloatRange(min=5),
        default=None,
        help="Seconds a dead worker keeps an integration locked, at most "
        "[$OOMNITZA_CONNECT_RUN_LEASE, default 60].",
    )(func)
    func = click.option(
        "--ledger",
        default=None,
        metavar="URL_OR_PATH",
        help="Where sessions and integrations are kept: a postgresql://user@host/db URL "
        "(workers on several machines; the password from $PGPASSWORD or ~/.pgpass, never "
        "on the command line) or a SQLite file [$OOMNITZA_CONNECT_LEDGER, default: the "
        "file `sync` uses].",
    )(func)
    func = click.option(
        "--redis",
        "redis_url",
        default=None,
        metavar="URL",
        help="The Redis server (broker, run locks, rate budgets, tokens, beat's schedule) "
        "[$OOMNITZA_CONNECT_REDIS_URL, default redis://127.0.0.1:6379/0].",
    )(func)
    return func


def _export(redis_url: str | None, ledger: str | None, run_lease: float | None) -> None:
    from ..distributed.config import LEDGER_ENV, REDIS_URL_ENV, RUN_LEASE_ENV

    # The environment is what Celery's forked processes inherit.
    if redis_url:
        os.environ[REDIS_URL_ENV] = redis_url
    if ledger:
        if not ledger.startswith(("postgresql://", "postgres://")):
            ledger = str(Path(ledger).resolve())
        os.environ[LEDGER_ENV] = ledger
    if run_lease:
        os.environ[RUN_LEASE_ENV] = str(run_lease)


@click.command(
    "worker",
    short_help="Run queued integrations: one Celery worker.",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@_shared_options
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (Celery's default: one per CPU).",
)
@click.option(
    "--pool",
    type=click.Choice(["prefork", "solo", "threads"]),
    default="prefork",
    show_default=True,
    help="Celery's pool: prefork runs each sync in its own process.",
)
@click.option(
    "--rate-budget",
    "rate_budgets",
    multiple=True,
    metavar="VENDOR:ENDPOINT=PER_MINUTE[/BURST]",
    help="Replace a plugin's declared budget, for a plan with a higher limit; repeatable "
    "[$OOMNITZA_CONNECT_RATE_BUDGETS].",
)
@click.option("-n", "--hostname", default=None, help="The worker's node name (Celery's -n).")
@click.option(
    "-l",
    "--loglevel",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
    help="Log level of Celery and oomnitza-connect.",
)
@click.pass_context
def worker_command(
    ctx: click.Context,
    redis_url: str | None,
    ledger: str | None,
    run_lease: float | None,
    concurrency: int | None,
    pool: str,
    rate_budgets: tuple[str, ...],
    hostname: str | None,
    loglevel: str,
) -> None:
    """Run integrations from the queue: one Celery worker (run one per machine).

    Each sync runs the integration's launched file under its run lock; every
    process draws its requests from the vendor account's budget in Redis.
    Further arguments go to Celery's worker unchanged (`celery worker --help`).
    """
    from ..distributed.config import RATE_BUDGETS_ENV, parse_rate_budgets

    if rate_budgets:
        joined = ",".join(rate_budgets)
        parse_rate_budgets(joined, key_path="--rate-budget")  # refuse a bad one here
        os.environ[RATE_BUDGETS_ENV] = joined
    _export(redis_url, ledger, run_lease)
    app = _load_app()
    argv = ["worker", f"--pool={pool}", f"--loglevel={loglevel.upper()}"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if hostname:
        argv.append(f"--hostname={hostname}")
    argv.extend(ctx.args)
    app.worker_main(argv)  # type: ignore[attr-defined]


@click.command(
    "beat",
    short_help="Queue launched integrations on their schedules.",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@_shared_options
@click.option(
    "--missed-after",
    type=click.FloatRange(min=1),
    default=None,
    help="Minutes after which a due run that did not start is notified as missed "
    "[$OOMNITZA_CONNECT_MISSED_AFTER, default 30].",
)
@click.option(
    "-l",
    "--loglevel",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
    help="Log level of Celery and oomnitza-connect.",
)
@click.pass_context
def beat_command(
    ctx: click.Context,
    redis_url: str | None,
    ledger: str | None,
    run_lease: float | None,
    missed_after: float | None,
    loglevel: str,
) -> None:
    """Send every launched integration's runs on its schedule (run it once per fleet).

    The schedule lives in Redis (redbeat): a second beat waits for the first's
    lock, and a restarted one carries on. Further arguments go to Celery's beat.
    """
    from ..distributed.config import MISSED_AFTER_ENV

    if missed_after:
        os.environ[MISSED_AFTER_ENV] = str(missed_after)
    _export(redis_url, ledger, run_lease)
    app = _load_app()
    app.start(  # type: ignore[attr-defined]
        [
            "beat",
            "--scheduler=redbeat.RedBeatScheduler",
            f"--loglevel={loglevel.upper()}",
            *ctx.args,
        ]
    )


def register(main: click.Group) -> None:
    """Add ``worker`` and ``beat`` to *main*."""
    main.add_command(worker_command)
    main.add_command(beat_command)
