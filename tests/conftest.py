"""Shared test setup: test helper modules (``oracles``) import as top-level modules."""

import sys
from pathlib import Path

# pytest's default import mode already puts this directory first on sys.path; other modes
# (importlib) do not, and `from oracles import ...` must work in all of them.
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
