"""The job history: every job, its images, moderation and settings (see `storage.store.Store`).

Imports neither `bot` nor `engine`, and never torch: the bot process stays light.
"""

from storage.db import Database, default_url, upgrade
from storage.errors import DatabaseBusyError, InvalidInputError, JobStateError, NotFoundError, StorageError
from storage.files import ImageFiles, StoredFile
from storage.queries import HistoryPage, HistoryQuery, Lineage
from storage.store import Store

__all__ = [
    "Database",
    "DatabaseBusyError",
    "HistoryPage",
    "HistoryQuery",
    "ImageFiles",
    "InvalidInputError",
    "JobStateError",
    "Lineage",
    "NotFoundError",
    "StorageError",
    "Store",
    "StoredFile",
    "default_url",
    "upgrade",
]
