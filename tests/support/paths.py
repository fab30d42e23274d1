"""Where the repository's files are, for the tests that read them: a test's own place in tests/ does not
matter."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "flows"
DOCS = ROOT / "docs"
DIALPLAN = ROOT / "dialplan"
ROUTING_EXAMPLE = ROOT / "routing.example.yaml"
#: tests/support: its scripts run as processes of their own (writer_process.py, callback_crash.py)
SUPPORT = Path(__file__).resolve().parent
#: SIPp scenarios of the test callers and agents' phones
SIPP_SCENARIOS = SUPPORT / "sipp_scenarios"
