"""Command-line entry points: one line per user error, a traceback only on request.

A wrong path, an unreadable or hostile file, a config with a typo: the user needs the file,
field or argument and what to do, not forty lines of stack. :func:`run_main` prints such errors
as ``PROG: error: MESSAGE`` and returns exit status 1; with ``DIT_DEBUG=1`` in the environment the
exception propagates with its traceback.
"""
import os
import pickle
import sys
from typing import Callable, Optional

from .checkpoint import CheckpointKeyMismatchError
from .safe_load import CheckpointReadError

#: Environment variable that turns one-line errors back into tracebacks.
DEBUG_ENV = 'DIT_DEBUG'


class CommandLineError(Exception):
    """A user error whose message names what is wrong and what to do."""


#: Exceptions that report a problem with the user's input, not a bug.
USER_ERRORS = (CommandLineError, OSError, ValueError, SyntaxError, pickle.UnpicklingError,
               CheckpointReadError, CheckpointKeyMismatchError)


def run_main(main: Callable[[], Optional[int]], prog: str) -> int:
    """Run a tool's ``main`` and turn user errors into one line on stderr and exit status 1.

    Args:
        main (Callable): The tool's main function; its return value is the exit status
            (None means 0).
        prog (str): The tool's name, printed in front of the message.

    Returns:
        int: The exit status.
    """
    try:
        return main() or 0
    except USER_ERRORS as err:
        if os.environ.get(DEBUG_ENV, '') not in ('', '0'):
            raise
        print(f'{prog}: error: {err}', file=sys.stderr)
        return 1
