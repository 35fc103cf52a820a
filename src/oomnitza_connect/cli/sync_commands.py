"""Commands of this area are added by its owner."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add this module's commands to *main*."""
