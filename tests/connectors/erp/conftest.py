"""ERP connector tests: make `connectors` the repository's package, not tests/connectors/.

The root conftest puts tests/ on sys.path, where tests/connectors/ passes for the `connectors`
package (a namespace package) before the editable install's finder is asked. A regular package
anywhere on sys.path wins over namespace portions, so the repository root goes at the end and a
namespace `connectors` imported earlier is forgotten.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
for _name in [m for m in sys.modules if m == "connectors" or m.startswith("connectors.")]:
    if getattr(sys.modules[_name], "__file__", None) is None:
        del sys.modules[_name]
