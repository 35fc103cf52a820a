"""Where the embedded store lives by default."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DB_ENV", "DB_FILE_NAME", "HOME_ENV", "default_db_path"]

DB_FILE_NAME = "oomnitza-connect.db"
HOME_ENV = "OOMNITZA_CONNECT_HOME"
DB_ENV = "OOMNITZA_CONNECT_DB"


def default_db_path() -> Path:
    """Return the store's default file.

    ``$OOMNITZA_CONNECT_DB`` when set (a file), else
    ``$OOMNITZA_CONNECT_HOME/oomnitza-connect.db``, else ``oomnitza-connect.db``
    in the platform's user data directory.
    """
    explicit = os.environ.get(DB_ENV)
    if explicit:
        return Path(explicit)
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home) / DB_FILE_NAME
    import platformdirs

    return platformdirs.user_data_path("oomnitza-connect") / DB_FILE_NAME
