"""Run the ``oomnitza-connect`` CLI in a child process with the acme test vendor registered.

``python tests/cli_child.py ARGS...``: the credential and the home directory come
from the environment, as for the real command (see ``acme_for_the_cli``).
"""

from __future__ import annotations

import sys

from sync_support import AcmePlugin

from oomnitza_connect.cli import main
from oomnitza_connect.plugins import register_plugin

if __name__ == "__main__":
    with register_plugin(AcmePlugin(per_page=20, with_logins=False), name="acme-test"):
        main.main(args=sys.argv[1:], prog_name="oomnitza-connect")
