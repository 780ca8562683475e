"""The data lake: Rucio's REST API and grid storage, for the gateway and the results service.

:class:`RucioClient` speaks the REST API of a Rucio server with httpx (resolving DIDs,
registering replicas, datasets, metadata and rules). :class:`StorageClient` writes, streams
and deletes files at ``https://`` (WebDAV) and ``file://`` URLs with gridgate's own
credentials. :class:`Did` parses ``scope:name``.
"""

from gridgate.datalake.dids import Did, InvalidDidError
from gridgate.datalake.rucio import (
    DidNotFoundError,
    RucioClient,
    RucioError,
    RucioUnavailableError,
)
from gridgate.datalake.storage import (
    StorageClient,
    StorageError,
    StorageUnavailableError,
    StoredFileMissingError,
    copy_file_atomic,
    local_path,
)

__all__ = [
    "Did",
    "DidNotFoundError",
    "InvalidDidError",
    "RucioClient",
    "RucioError",
    "RucioUnavailableError",
    "StorageClient",
    "StorageError",
    "StorageUnavailableError",
    "StoredFileMissingError",
    "copy_file_atomic",
    "local_path",
]
