"""Command-line entry points: one line per user error, a traceback only on request.

A wrong path, an unreadable or hostile file, a config with a typo: the user needs the file,
field or argument and what to do, not forty lines of stack. :func:`run_main` prints such errors
as ``PROG: error: MESSAGE`` and returns exit status 1; with ``DIT_DEBUG=1`` in the environment the
exception propagates with its traceback.
"""
import os
import pickle
import sys
import tempfile
from typing import Callable, Optional

from ..checkpoint.content import CheckpointReadError
from ..checkpoint.loading import CheckpointMismatchError

#: Environment variable that turns one-line errors back into tracebacks.
DEBUG_ENV = 'DIT_DEBUG'


class CommandLineError(Exception):
    """A user error whose message names what is wrong and what to do."""


#: Exceptions that report a problem with the user's input, not a bug.
USER_ERRORS = (CommandLineError, OSError, ValueError, SyntaxError, pickle.UnpicklingError,
               CheckpointReadError, CheckpointMismatchError)


def ensure_writable_dir(path: str, option: str) -> None:
    """Create ``path`` if needed and check that files can be written there, before a long run.

    Raises:
        CommandLineError: Naming ``option`` and the folder, when it cannot be written.
    """
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise CommandLineError(f'{option} {path}: cannot write there ({err.strerror or err}); '
                               'choose a folder you can write to') from None


def _message(err: BaseException) -> str:
    """The error's own message; a data-loader worker's error carries the worker's traceback in
    its message, of which only the original message is kept."""
    message = str(err)
    if 'Original Traceback' in message:
        marker = f'{type(err).__name__}: '
        if marker in message:
            return message[message.rindex(marker) + len(marker):].strip()
    return message


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
        print(f'{prog}: error: {_message(err)}', file=sys.stderr)
        return 1
