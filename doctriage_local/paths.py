"""Where things are in this checkout: the project root, template.yaml, the samples, the events.

The one place local tools and tests take these paths from. The local tools run from the source
tree (an editable install), so the paths are relative to this file, not to the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# DOCTRIAGE_TEMPLATE runs the local stack from another copy (the IAM tests remove a statement
# from one); relative paths in it (CodeUri, DefinitionUri) still resolve against PROJECT_ROOT.
TEMPLATE_PATH = Path(os.environ.get("DOCTRIAGE_TEMPLATE") or PROJECT_ROOT / "template.yaml")
SAMPLES = PROJECT_ROOT / "samples"  # samples/<doc_type>/<file>, made by scripts/make_samples.py
SAMPLE_SCHEMAS = SAMPLES / "schemas"  # samples/schemas/<doc_type>.json
EVENTS = PROJECT_ROOT / "events"  # the sample events of `sam local invoke` / `doctriage invoke`
