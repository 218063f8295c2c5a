"""The exit codes of `rlm-code`, in one place.

- 0 (`EXIT_OK`): done.
- 1 (`EXIT_ERROR`): a provider or network error, a closed standard output, or a reader that
  went away before the output was all written (`rlm-code ask ... | head`): the command could
  not deliver what was asked, so it does not report success. This follows the Python
  documentation's recipe for `BrokenPipeError` (point stdout at devnull, exit 1) and is what
  `set -o pipefail` scripts expect from a writer whose reader stopped early.
- 2 (`EXIT_USAGE`): a usage error: bad arguments, an unknown provider or model name, a
  malformed or invalid config file or setting. Fix the command line or the file.
- 130 (`EXIT_INTERRUPTED`): stopped with Ctrl-C (128 + SIGINT, as shells report it).

Only this module's constants are imported at start-up; `exit_code_for` loads the exception
tree when it is called (always after an error, never on the `--help` path).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `from typing import ...`: this module is on the start-up path
if TYPE_CHECKING:
    from rlm_code.core.exceptions import RLMCodeError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def exit_code_for(error: RLMCodeError) -> int:
    """Usage errors (a malformed or invalid config, bad names, bad arguments, a malformed key)
    exit 2; provider and network errors exit 1."""
    from rlm_code.core.exceptions import (
        ConfigError,
        InvalidAPIKeyFormatError,
        InvalidInputError,
        ProviderNotFoundError,
    )

    usage = (ConfigError, InvalidInputError, ProviderNotFoundError, InvalidAPIKeyFormatError)
    return EXIT_USAGE if isinstance(error, usage) else EXIT_ERROR


__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "exit_code_for"]
