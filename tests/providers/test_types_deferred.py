"""Issue 14 item 6: the provider types build their pydantic validators on first use, not at
import (built at import they held ~6 MB of an idle window's memory, for models only a request
uses). Checked in a fresh interpreter: in this one other tests have used the models already."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json
from victor_gui.providers import types
names = ["StreamChunk", "CompletionResponse", "ToolCall", "Message", "ModelInfo"]
before = {n: getattr(types, n).__pydantic_complete__ for n in names}
chunk = types.StreamChunk.model_validate({"content": "hi"})
after = types.StreamChunk.__pydantic_complete__
print(json.dumps({"before": before, "after": after, "content": chunk.content}))
"""


def test_provider_types_are_built_on_first_use_and_then_validate() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert not any(seen["before"].values()), seen["before"]  # nothing built by the import
    assert seen["after"] is True and seen["content"] == "hi"  # the first use builds and validates
