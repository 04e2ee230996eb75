"""Errors a user can fix, told apart from bugs.

Every error caused by what a user gave (params, data, a checkpoint, a package, an input file) derives from
:class:`UserError`: the stages and the ``hrnet`` command print its message as one line and exit with code 2.
Anything else (a bug here, in numpy or torch) keeps its traceback, so that it can be reported and fixed.
Each subclass also derives from the built-in exception it refines, so ``except ValueError`` still catches it.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem in the user's input; the message is one line naming the file, field or value."""


class InputError(UserError, ValueError):
    """A bad value or file given by the user that no more specific error describes."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named, or the data should hold, does not exist."""


class DataError(UserError, ValueError):
    """Bad input data; the message is one line naming the file (and the record)."""


class PackageError(UserError, RuntimeError):
    """A package that is incomplete, tampered with or of an unknown format."""
