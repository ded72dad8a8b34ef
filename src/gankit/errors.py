"""Errors a user can fix. The CLI prints their message and exits with status 2, no traceback."""

from __future__ import annotations


class GankitError(Exception):
    """A user-fixable problem: bad flag, bad config key, missing data, unwritable folder.

    The message must say what is wrong (naming the file or key) and what to do about it.
    """
