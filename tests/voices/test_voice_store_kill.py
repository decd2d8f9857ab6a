"""kill -9 at every step of a voice write: afterwards the store holds the old voice or the new one,
whole, and no temp file survives the next start."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from voice_helpers import SIGNATURE, WIDTH, make_voice, same_voice

import xtts_server
from xtts_server.voices import VoiceStore
from xtts_server.voices.store import TEMP_PREFIX

# The child dies by SIGKILL (no cleanup, no finally) at the n-th call of one of these functions.
STEPS = [
    ("write", 1),  # the temp file half written
    ("fsync", 1),  # written, not yet on disk
    ("replace", 1),  # on disk, not yet renamed
    ("fsync", 2),  # renamed, the directory not yet synced
]

CHILD = textwrap.dedent(
    """
    import os, signal, sys, torch
    from xtts_server.inference.voice import Voice
    from xtts_server.voices import ModelSignature, VoiceStore
    directory, step, nth, width = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = VoiceStore(directory, signature=ModelSignature(sys.argv[5], (1, 32, width), (1, 512, 1)))
    calls = 0
    def die_at_nth(real):
        def wrapped(*args, **kwargs):
            global calls
            calls += 1
            if calls == nth:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return wrapped
    if step == "write":  # half of the bytes reach the temp file, then death
        real_fdopen = os.fdopen
        class HalfWriter:
            def __init__(self, file): self.file = file
            def __enter__(self): return self
            def __exit__(self, *exc): self.file.close()
            def write(self, data):
                self.file.write(data[: len(data) // 2]); self.file.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        os.fdopen = lambda *args, **kwargs: HalfWriter(real_fdopen(*args, **kwargs))
    else:
        setattr(os, step, die_at_nth(getattr(os, step)))
    gen = torch.Generator().manual_seed(2)
    voice = Voice(torch.randn(1, 32, width, generator=gen), torch.randn(1, 512, 1, generator=gen))
    store.add("alice", voice, overwrite=True)
    store.add("bob", voice)
    print("survived", flush=True)
    """
)


@pytest.mark.parametrize(("step", "nth"), STEPS)
def test_kill_9_at_each_step_of_a_write(tmp_path: Path, step: str, nth: int) -> None:
    VoiceStore(tmp_path, signature=SIGNATURE).add("alice", make_voice(1))
    src = str(Path(xtts_server.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), step, str(nth), str(WIDTH), SIGNATURE.fingerprint],
        capture_output=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == -9, (result.returncode, result.stderr.decode()[-2000:])
    assert b"survived" not in result.stdout

    store = VoiceStore(tmp_path, signature=SIGNATURE)
    assert store.skipped == {}, store.skipped  # nothing half-written is visible
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert [i.name for i in store.list()] == ["alice"]  # bob's write never began
    got = store.get("alice")
    assert same_voice(got, make_voice(1)) or same_voice(got, make_voice(2))
    if step in ("write", "fsync") and nth == 1:
        assert same_voice(got, make_voice(1))  # not renamed yet: the old voice
    if (step, nth) == ("fsync", 2):
        assert same_voice(got, make_voice(2))  # renamed: the new one
