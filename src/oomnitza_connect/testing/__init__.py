"""Test kit for oomnitza-connect plugins.

* :mod:`~oomnitza_connect.testing.emulator`: the base class of vendor emulators
  (real HTTP servers on 127.0.0.1) with fault injection and rate limits.
* :mod:`~oomnitza_connect.testing.conformance`: :class:`ConnectorConformance`,
  the test class every vendor plugin subclasses.
* :mod:`~oomnitza_connect.testing.generic`: a generic vendor plugin and its
  emulator (registered only explicitly).
* :mod:`~oomnitza_connect.testing.pytest_plugin`: fixtures (``emulator_factory``,
  ``register_plugins``, ``generic_vendor``, ``generic_emulator``), loaded by
  pytest through the ``pytest11`` entry point.

The conformance suite imports pytest, so it is not imported here; import it
from its module.
"""

from __future__ import annotations

from .emulator import Emulator, EmulatorRequest, EmulatorResponse, Fault, FaultPlan, route

__all__ = ["Emulator", "EmulatorRequest", "EmulatorResponse", "Fault", "FaultPlan", "route"]
