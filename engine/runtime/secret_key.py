"""The key that signs the dashboard's session cookies and CSRF tokens.

Every process that serves the app must sign with the same key: with a key per process, a
sign-in made by one gunicorn worker is refused by the next ("form rejected", back to the
login page). The key comes, in this order, from ``SVCFLOW_SECRET_KEY``, from the file named by
``SVCFLOW_SECRET_KEY_FILE``, or from ``secret_key`` under the var directory, made there the
first time it is needed.

Making that file is safe when several processes start at once (gunicorn forks its workers
together): each writes a fresh key to a temporary file of its own (mode 0600 from
``mkstemp``) and hard-links it to the final name; ``link`` fails if the name exists, so
exactly one key wins, it is complete before anyone can open it, and every process reads that
one.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from pathlib import Path

from engine.errors import SecretKeyInvalid

FILE_NAME = "secret_key"
MIN_LENGTH = 32  # characters; what is generated is 64 hex digits (256 bits)


def read(path: Path) -> str:
    """The key stored in ``path`` (surrounding whitespace removed)."""
    try:
        text = path.read_text("utf-8").strip()
    except FileNotFoundError:
        raise SecretKeyInvalid(
            f"The session secret file {path} does not exist.",
            hint="Point SVCFLOW_SECRET_KEY_FILE at an existing file holding a long random "
            "value (e.g. from `python -c 'import secrets; print(secrets.token_hex(32))'`), "
            "or unset it to have one made under the var directory.",
            path=str(path),
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretKeyInvalid(
            f"The session secret file {path} cannot be read: {exc}.",
            hint="Make it readable by the user svcflow runs as, and keep it text.",
            path=str(path),
        ) from exc
    if len(text) < MIN_LENGTH:
        raise SecretKeyInvalid(
            f"The session secret in {path} has {len(text)} characters; at least {MIN_LENGTH} "
            "are needed to sign sessions safely.",
            hint="Write a long random value to it (e.g. secrets.token_hex(32)), or delete the "
            "file to have a new one made (everyone then signs in again).",
            path=str(path),
        )
    return text


def load_or_create(path: Path) -> tuple[str, bool]:
    """The key in ``path``, made first if the file does not exist; also whether this call
    made it. Safe to call from many processes at once (see the module docstring)."""
    if path.exists():
        return read(path), False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{FILE_NAME}.")
    created = False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(scratch, path)
            created = True
        except FileExistsError:
            pass  # another process made it first: everyone uses that one
    finally:
        os.unlink(scratch)
    return read(path), created


def is_private(path: Path) -> bool:
    """Whether only the owner may read the file (no group or other permission bits)."""
    return not path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)
