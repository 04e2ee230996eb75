"""How an ``hrnet`` command or pipeline stage process ends once its work is done.

A stage process imports torch, torchvision and Lightning: several hundred thousand objects. Letting the
interpreter tear them down at exit (clearing every module, collecting every cycle) cost about 1.2 CPU-s
per train, evaluate or package process, measured on the test suite's small runs: a fifth of each run,
spent after its outputs were written. :func:`run_program` ends the way Python's own ``multiprocessing``
children end: it waits for the program's threads, runs the ``atexit`` handlers (where logging, Lightning's
process-group teardown, dvclive, Ray and multiprocessing register theirs), flushes stdout and stderr, and
leaves with ``os._exit``. Only the teardown of objects nothing will read again is skipped.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn


def exit_process(code: int = 0) -> NoReturn:
    """Ends this process with ``code`` after what a normal exit does first: threads, ``atexit``, flush."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing left to tell it
            stream.flush()
    os._exit(code)


def run_program(main: Callable[[], int | None]) -> NoReturn:
    """Runs a process's ``main`` (after its imports) and ends the process with its exit code.

    ``sys.exit`` inside ``main`` ends it the same way, its code kept (a message printed as Python
    prints it); any other exception keeps Python's own handling: its traceback and a full teardown.
    """
    try:
        code = main()
    except SystemExit as stop:
        code = stop.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    exit_process(code)
