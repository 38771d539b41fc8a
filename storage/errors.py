"""What the store raises, so callers can tell a user exactly what went wrong.

Every error is raised before anything is written: a refused call changes nothing.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of everything the store raises on purpose."""


class NotFoundError(StorageError, LookupError):
    """The job, report or other row named by the caller does not exist."""


class InvalidInputError(StorageError, ValueError):
    """A field name or value the store will not accept; the message names it."""


class JobStateError(StorageError, ValueError):
    """The job's status does not allow the change (completing a failed job, for example)."""


class DatabaseBusyError(StorageError):
    """The database stayed locked by other writers for longer than the store will wait."""


class CorruptDatabaseError(StorageError):
    """The database file is not a readable SQLite database; it is left exactly as it is."""


__all__ = [
    "CorruptDatabaseError",
    "DatabaseBusyError",
    "InvalidInputError",
    "JobStateError",
    "NotFoundError",
    "StorageError",
]
