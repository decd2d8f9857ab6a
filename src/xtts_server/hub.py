"""Fetching the released model (coqui/XTTS-v2) from the Hugging Face hub, after the license is accepted."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from xtts_server.errors import DownloadError, LicenseNotAccepted

logger = logging.getLogger(__name__)

REPO_ID = "coqui/XTTS-v2"
RELEASE_FILES = ("config.json", "model.pth", "vocab.json", "speakers_xtts.pth", "hash.md5")
LICENSE_URL = "https://coqui.ai/cpml"
LICENSE_ENV = "COQUI_TOS_AGREED"

LICENSE_TEXT = (
    "The XTTS v2 weights are released under the Coqui Public Model License (CPML), which allows "
    f"non-commercial use only: {LICENSE_URL}. To download them you must accept it: pass "
    f"--accept-license (or accept_license=True), or set {LICENSE_ENV}=1."
)


def license_accepted(flag: bool = False) -> bool:
    return flag or os.environ.get(LICENSE_ENV, "").strip() == "1"


def download_release(
    *, accept_license: bool = False, cache_dir: str | Path | None = None, revision: str | None = None
) -> Path:
    """The local directory of the release's files, downloaded into the hub cache if needed (with a
    progress bar). A complete cached copy is used without touching the network."""
    if not license_accepted(accept_license):
        raise LicenseNotAccepted(LICENSE_TEXT)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    def fetch(local_only: bool) -> Path:
        return Path(
            snapshot_download(
                REPO_ID,
                allow_patterns=list(RELEASE_FILES),
                cache_dir=cache_dir,
                revision=revision,
                local_files_only=local_only,
                etag_timeout=10,
            )
        )

    try:
        path = fetch(local_only=True)
        if all((path / f).is_file() for f in RELEASE_FILES[:4]):
            return path
    except LocalEntryNotFoundError:
        pass
    logger.info("downloading %s (about 1.9 GB) into the Hugging Face cache", REPO_ID)
    try:
        path = fetch(local_only=False)
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        raise DownloadError(
            f"could not download {REPO_ID} from the Hugging Face hub ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). If this machine is offline, download the "
            f"files elsewhere (`huggingface-cli download {REPO_ID}`), copy the folder here and pass "
            f"--model-dir DIR; or fill the hub cache and set HF_HUB_OFFLINE=1."
        ) from e
    missing = [f for f in RELEASE_FILES[:4] if not (path / f).is_file()]
    if missing:
        raise DownloadError(
            f"the download of {REPO_ID} is incomplete: {', '.join(missing)} missing in {path}"
        )
    return path
