"""``python tests/support/hub_cli.py ARGS``: the ``hub`` command with the test connector kind registered,
for the tests that start real hub processes."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hub.cli.main import main
from tests.support import test_connector

if __name__ == "__main__":
    test_connector.register()
    sys.exit(main(sys.argv[1:]))
