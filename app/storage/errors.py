"""What can go wrong reading a stored object, as errors a client may see."""
from __future__ import annotations

from ..errors import AppError

STORE_RETRY_AFTER = 30  # seconds a client waits before trying a download again when the store is away


class StoreUnavailable(AppError):
    """The store did not answer (down, unreachable, timing out): try again later."""

    code = "unavailable"
    status = 503
    message = "The file store is unavailable; try again later."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, reason="storage", retry_after=STORE_RETRY_AFTER)


class ObjectChanged(AppError):
    """The object under a registered file is gone or is no longer the registered bytes."""

    code = "file_changed"
    status = 503
    message = "The stored file changed since it was registered; an operator must verify it."


class FileWithdrawn(AppError):
    """A verification found the file's bytes wrong; it is not served until verified again."""

    code = "file_withdrawn"
    status = 503
    message = "The file is withdrawn from serving until an operator verifies it."


class StoreError(AppError):
    """A request the operator made is not possible (bad location, refused credentials, ...)."""

    code = "storage_error"
    status = 400
