"""The bulk upload's size limit, enforced while the body streams in.

Django's own handlers write a whole file to a temporary file before any form sees its size.
This handler goes first and stops the upload as soon as it passes the limit, so at most the
limit (plus one read chunk) is ever read or written. It is installed for the upload view
only (``catalog_bulk.views.bulk_upload``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

# Room in a multipart body for the form's other fields and the part headers: a body longer
# than the limit plus this cannot hold a file within the limit.
FORM_OVERHEAD_BYTES = 64 * 1024


def too_large_message(limit: int | None = None) -> str:
    limit = settings.BULK_MAX_UPLOAD_BYTES if limit is None else limit
    return f"The file is larger than {limit // (1024 * 1024)} MB; split it and upload the parts."


class UploadLimitHandler(FileUploadHandler):
    """Refuses the upload once its files pass ``limit`` bytes; ``refused`` tells the view."""

    def __init__(self, request: HttpRequest | None = None, *, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.body_length = 0
        self.refused = False

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None
    ) -> None:
        self.body_length = content_length
        return None  # the parsing itself is left to Django

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        if self.body_length > self.limit + FORM_OVERHEAD_BYTES:
            self._refuse()  # announced too large: not one byte of the file is stored

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)  # over all the files of the request
        if self.received > self.limit:
            self._refuse()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) makes the file

    def _refuse(self) -> None:
        self.refused = True
        # connection_reset: Django stops reading the body here instead of draining the rest.
        raise StopUpload(connection_reset=True)
