"""Optional per-language dependencies, imported only when a text in that language arrives."""

from __future__ import annotations

import importlib
from types import ModuleType

from xtts_server.errors import MissingExtra

#: Which pip extra of xtts-server brings which module in.
EXTRA_OF_MODULE: dict[str, str] = {
    "pypinyin": "zh",
    "cutlet": "ja",
    "fugashi": "ja",
    "unidic_lite": "ja",
}


def require(module: str, purpose: str) -> ModuleType:
    """Import `module`, or raise MissingExtra telling the user what to install for `purpose`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        extra = EXTRA_OF_MODULE.get(package)
        if extra is None:  # a core dependency that went missing
            hint = f"pip install --force-reinstall xtts-server (it depends on {package!r})"
        else:
            hint = f"pip install 'xtts-server[{extra}]' (or 'xtts-server[all-languages]')"
        raise MissingExtra(
            f"{purpose} needs the Python package {package!r}, which is not installed: {hint}"
        ) from exc
