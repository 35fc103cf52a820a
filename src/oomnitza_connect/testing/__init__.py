"""Test kit for oomnitza-connect plugins: emulator base, conformance suite, pytest plugin."""
