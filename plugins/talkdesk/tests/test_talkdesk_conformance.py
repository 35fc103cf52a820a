"""The conformance suite every vendor plugin passes, against the Talkdesk emulator."""

from __future__ import annotations

import attrs
from oomnitza_connect_talkdesk import vendor as talkdesk_plugin
from oomnitza_connect_talkdesk.emulator import TalkdeskEmulator

from oomnitza_connect.models import Credential
from oomnitza_connect.testing.conformance import ConnectorConformance
from oomnitza_connect.testing.emulator import Emulator


class TestTalkdeskConformance(ConnectorConformance):
    plugin = talkdesk_plugin
    vendor = "talkdesk"
    settings = {"Talkdesk.Subdomain": "emulated0", "Talkdesk.Region": "US"}
    list_users_endpoint = "users.list"
    preset_variables = {"talkdesk_user_id": "u-1", "contact_id": "c-1", "app_id": "a-1"}

    def good_credential(self, emulator: Emulator) -> Credential:
        assert isinstance(emulator, TalkdeskEmulator)
        return emulator.test_credential("good")

    def bad_credential(self, emulator: Emulator) -> Credential:
        assert isinstance(emulator, TalkdeskEmulator)
        # Signed with a key Talkdesk never saw: the signature check must refuse it.
        stranger = TalkdeskEmulator(seed=99)
        return attrs.evolve(emulator.test_credential("bad"), private_key=stranger.private_key)
