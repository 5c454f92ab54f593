"""Files uploaded to be checked before they are used: the import's dry run keeps its CSV here, and the confirm
form names it (``upload``) instead of sending it again. Each file is its uploader's alone (a confirm by someone
else finds nothing), is dropped once imported, and every file older than ``KEEP`` is dropped at the next upload.
The folder is the machine's temporary one, so every process of one server finds a file another staged."""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path

FOLDER = Path(tempfile.gettempdir()) / "leadflow-web-uploads"
#: How long a checked file waits for its confirm, in seconds.
KEEP = 3600
_ID = re.compile(r"[A-Za-z0-9_-]{32}")


def stage(source: Path, owner: str) -> tuple[str, Path]:
    """Keep ``source`` (moved) for ``owner``'s confirm: its id, and where it is kept."""
    FOLDER.mkdir(mode=0o700, exist_ok=True)
    _drop_old()
    ident = secrets.token_urlsafe(24)
    kept = FOLDER / f"{ident}.csv"
    shutil.move(source, kept)
    (FOLDER / f"{ident}.owner").write_text(owner, encoding="utf-8")
    return ident, kept


def staged(ident: str | None, owner: str) -> Path | None:
    """The file ``owner`` staged as ``ident``, or None (another's, dropped, or never staged)."""
    if not ident or not _ID.fullmatch(ident):
        return None
    try:
        if (FOLDER / f"{ident}.owner").read_text(encoding="utf-8") != owner:
            return None
    except OSError:
        return None
    path = FOLDER / f"{ident}.csv"
    return path if path.exists() else None


def drop(ident: str) -> None:
    if _ID.fullmatch(ident):
        for suffix in (".csv", ".owner"):
            (FOLDER / f"{ident}{suffix}").unlink(missing_ok=True)


def _drop_old() -> None:
    oldest = time.time() - KEEP
    for path in FOLDER.iterdir():
        try:
            if path.stat().st_mtime < oldest:
                path.unlink(missing_ok=True)
        except OSError:
            continue
