"""Sub-commands of the ``monai-bac`` command line (see :mod:`monai_bac.cli`)."""

from __future__ import annotations

import re
import sys

#: the library's argument names in messages -> the command line's flags
_FLAGS = ((re.compile(r"pass overwrite=True"), "pass --overwrite"),
          (re.compile(r"spacing_mm=\(row_mm, col_mm\)"), "--spacing ROW_MM COL_MM"),
          (re.compile(r"allow_processed / --allow-processed"), "--allow-processed"))


def cli_words(message: str) -> str:
    """``message`` with the library's argument names replaced by the command line's flags."""
    for pattern, flag in _FLAGS:
        message = pattern.sub(flag, message)
    return message


def fail(command: str, error: BaseException | str, code: int) -> int:
    """Print ``monai-bac COMMAND: message`` on stderr, in the command line's words, and return ``code``."""
    print(f"monai-bac {command}: {cli_words(str(error))}", file=sys.stderr)
    return code
