"""Log scrubbing holds for a script that only builds an HTTP client."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(stream=sys.stdout, level=logging.DEBUG, format="%(message)s")
    from oomnitza_connect.transport.http import HttpClient
    from oomnitza_connect.redaction import Secret

    token = Secret("script-token-0123456789abcdef")
    HttpClient("acme", "https://api.acme.invalid/")
    logging.getLogger("oomnitza_connect.script").debug("sending %s", token.reveal())
    logging.getLogger("urllib3.connectionpool").debug("url ?token=%s", token.reveal())
    """
)


def test_building_a_client_installs_log_redaction_in_a_fresh_process():
    # A fresh interpreter: nothing has loaded the plugin manager or the CLI.
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    assert "script-token-0123456789abcdef" not in result.stdout
    assert result.stdout.count("**********") == 2
