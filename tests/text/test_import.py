"""The text front end loads without the model: no torch for `import xtts_server.text`."""

from __future__ import annotations

import subprocess
import sys

_CHECK = """
import sys
import xtts_server.text
import xtts_server
from xtts_server import InvalidText, UnsupportedLanguage, __version__
assert "torch" not in sys.modules, "importing the text front end loaded torch"

from xtts_server import XTTS, AudioChunk, GenerationOptions, SynthesisResult, Voice
assert "torch" in sys.modules
from xtts_server.tts import XTTS as TTSClass
assert XTTS is TTSClass
for name in xtts_server.__all__:
    getattr(xtts_server, name)
assert set(xtts_server.__all__) <= set(dir(xtts_server))
try:
    xtts_server.no_such_name
except AttributeError as exc:
    assert "no_such_name" in str(exc)
else:
    raise AssertionError("a missing attribute must raise AttributeError")
"""


def test_importing_the_text_front_end_does_not_load_torch_and_the_lazy_exports_resolve() -> None:
    # A fresh interpreter: this one has imported torch already through other tests.
    result = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
