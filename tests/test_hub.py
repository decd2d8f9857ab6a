"""Downloading the release: only after the license is accepted, and a clear, immediate failure offline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from xtts_server import DownloadError, LicenseNotAccepted
from xtts_server.hub import RELEASE_FILES, download_release


def test_license_must_be_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COQUI_TOS_AGREED", raising=False)
    with pytest.raises(LicenseNotAccepted, match="--accept-license") as info:
        download_release(cache_dir="/nonexistent")
    assert "COQUI_TOS_AGREED=1" in str(info.value) and "non-commercial" in str(info.value)


def test_offline_fails_at_once_saying_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COQUI_TOS_AGREED", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    started = time.monotonic()
    with pytest.raises(DownloadError, match="--model-dir") as info:
        download_release(cache_dir=tmp_path)
    assert time.monotonic() - started < 5
    assert "coqui/XTTS-v2" in str(info.value)


def test_cached_release_is_used_without_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[bool] = []

    def fake_snapshot_download(repo_id: str, **kwargs: object) -> str:
        calls.append(bool(kwargs["local_files_only"]))
        assert repo_id == "coqui/XTTS-v2"
        for name in RELEASE_FILES:
            (tmp_path / name).write_text("x")
        return str(tmp_path)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert download_release(accept_license=True) == tmp_path
    assert calls == [True]  # the local-only lookup succeeded: no download attempted
