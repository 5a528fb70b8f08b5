"""The files app's error tree. Each error knows the HTTP status a thin interface should answer."""


class FilesError(Exception):
    status: int = 500

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)


class NodeNotFound(FilesError):
    """No such file or folder (also the answer for one that belongs to someone else)."""

    status = 404


class ParentMissing(FilesError):
    """The parent folder does not exist or is not a folder."""

    status = 409


class NameInvalid(FilesError):
    """The name is empty, reserved, too long or contains a forbidden character."""

    status = 400


class NodeExists(FilesError):
    """Something already exists under that name."""

    status = 412


class KindMismatch(FilesError):
    """The operation does not apply to this kind of node (a folder where a file is needed)."""

    status = 405


class OperationForbidden(FilesError):
    """The operation is not allowed on this node (e.g. deleting or moving the root)."""

    status = 403


class UploadIncomplete(FilesError):
    """The body ended before the announced Content-Length."""

    status = 400


class ChecksumMismatch(FilesError):
    """The content does not match the checksum the client sent."""

    status = 400


class ChecksumUnsupported(FilesError):
    """The checksum is malformed or of a type this server cannot verify."""

    status = 400
