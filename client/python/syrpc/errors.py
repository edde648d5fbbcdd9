"""The exceptions of syrpc, and how server errors (SQLSTATEs) map to them.

Every exception is a SyrpcError.  EmptyException is the original SyRPC's
"nothing to be had" exception: code written for the original catches it
around get_result() and get_request() and keeps working, because every
outcome that left the original's caller without a result (a timeout, an
id that is not a UUID, an unknown, expired, taken or failed request) is a
subclass of it here.  Modern code catches the subclasses by name.
"""

import json

__all__ = [
    "SyrpcError", "EmptyException", "QueueNotFoundException", "Timeout",
    "RequestFailed", "RequestExpired", "RemoteError", "RequestCancelled",
    "BadInput", "SettingsError", "InvalidResultId", "ResultTaken", "NotInFlight", "WrongApp",
    "UnknownResult", "ExtensionNotInstalled", "PermissionDenied", "ReadOnly",
    "Cancelled", "Interrupted", "ConnectionLost", "ServerError", "UsageError",
]


class SyrpcError(Exception):
    """Base class of every syrpc exception.

    sqlstate, detail and hint are the server's, when the server raised it
    (None otherwise).
    """

    def __init__(self, message, sqlstate=None, detail=None, hint=None):
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint

    def __str__(self):
        text = self.message
        if self.detail:
            text += "\nDETAIL:  " + self.detail
        if self.hint:
            text += "\nHINT:  " + self.hint
        return text


class EmptyException(SyrpcError):
    """No result or request was to be had (the original SyRPC's exception)."""


class QueueNotFoundException(SyrpcError):
    """The queue is not there (the original SyRPC's exception)."""


class Timeout(EmptyException):
    """Nothing arrived within the timeout.

    For call(), result_id is the request's id: wait on with wait_result().
    """

    def __init__(self, message, result_id=None, **kw):
        super().__init__(message, **kw)
        self.result_id = result_id


class RequestFailed(EmptyException):
    """SY001: no worker answered the request within its attempts, or a
    worker gave it up (fail_request; the message has the reason)."""


class RequestExpired(RequestFailed):
    """SY002: the request was not answered within the app's request_ttl,
    or before its deadline (put_request(..., deadline=...), extension 1.7)."""


class RemoteError(RequestFailed):
    """SY006: the worker answered with an error (put_error, extension 1.7;
    the serve loop's answer to a handler that raised).

    message is the worker's message, verbatim; detail the detail it gave,
    parsed from JSON (None when it gave none); detail_text the same as the
    server's DETAIL text.  The error is not taken: every get_result of the
    request raises it again until the app's result_ttl passes.

    A handler run by serve() may raise RemoteError(message, detail=obj)
    itself: its caller then gets exactly that message and detail.
    """

    def __init__(self, message, sqlstate=None, detail=None, hint=None, detail_text=None):
        super().__init__(message, sqlstate=sqlstate, hint=hint)
        self.detail = detail
        if detail_text is None and detail is not None:
            try:
                detail_text = json.dumps(detail, ensure_ascii=False, allow_nan=False,
                                         separators=(", ", ": "))
            except (TypeError, ValueError, RecursionError):
                detail_text = None
        self.detail_text = detail_text

    @classmethod
    def from_server(cls, message, sqlstate, detail_text, hint):
        """The server's SY006: detail_text is its DETAIL (JSON), or None."""
        detail = None
        if detail_text is not None:
            try:
                detail = json.loads(detail_text)
            except ValueError:      # not JSON: the text alone is there
                pass
        return cls(message, sqlstate=sqlstate, detail=detail, hint=hint, detail_text=detail_text)

    def __str__(self):
        text = self.message
        if self.detail_text:
            text += "\nDETAIL:  " + self.detail_text
        if self.hint:
            text += "\nHINT:  " + self.hint
        return text


class BadInput(SyrpcError, ValueError):
    """Arguments refused, here or by the server (SQLSTATE class 22, 42622,
    54000, SY003-SY005, SY008)."""


class SettingsError(BadInput):
    """The settings dict is not usable (no app_name, a bad value)."""


class InvalidResultId(BadInput, EmptyException):
    """The result_id is not a UUID (so no result can ever come for it)."""


class ResultTaken(BadInput, EmptyException):
    """SY003: the result has already been taken."""


class NotInFlight(BadInput):
    """SY004: put_result, put_error, fail_request, extend_lease or release
    of a request that is not leased (unknown, never claimed, its lease ran
    out, expired, or already answered)."""


class WrongApp(BadInput, EmptyException):
    """SY005: the result_id belongs to another app."""


class UnknownResult(BadInput, EmptyException):
    """SY008: no request or result has this result_id (never put, or
    expired and deleted)."""


class ServerError(SyrpcError):
    """Any other error from the server."""


class ExtensionNotInstalled(QueueNotFoundException, ServerError):
    """The database has no syrpc extension (or one too old for this client)."""


class PermissionDenied(ServerError):
    """42501: the role may not do this (see syrpc_grant, and GRANT syrpc_caller or syrpc_worker)."""


class ReadOnly(ServerError):
    """25006: the server is read-only (a hot standby)."""


class Cancelled(SyrpcError):
    """57014: the statement was cancelled (pg_cancel_backend, cancel());
    its subclass RequestCancelled: the request was (SY007)."""


class RequestCancelled(Cancelled, EmptyException):
    """SY007: the request was cancelled (Client.cancel(result_id),
    syrpc_cancel; extension 1.7): its get_result raises this every time
    until the app's result_ttl passes, and a worker's extend_lease of it
    raises it too."""


class Interrupted(SyrpcError):
    """stop() was called (or SIGINT/SIGTERM came) while waiting."""


class ConnectionLost(SyrpcError, ConnectionError):
    """Could not connect, or the connection was lost (SQLSTATE class 08,
    57P01, or the server did not answer in time).  The next call connects
    again.  If it ended a put or a call, whether the request was queued is
    unknown."""


class UsageError(SyrpcError, RuntimeError):
    """The object was used wrongly: closed, or by two threads at once."""


_BY_SQLSTATE = {
    "SY001": RequestFailed,
    "SY002": RequestExpired,
    "SY003": ResultTaken,
    "SY004": NotInFlight,
    "SY005": WrongApp,
    "SY006": RemoteError,
    "SY007": RequestCancelled,
    "SY008": UnknownResult,
    "42622": BadInput,
    "54000": BadInput,
    "42501": PermissionDenied,
    "25006": ReadOnly,
    "57014": Cancelled,
}


def class_of_sqlstate(sqlstate):
    """The exception class for a server error's SQLSTATE."""
    cls = _BY_SQLSTATE.get(sqlstate)
    if cls is not None:
        return cls
    if sqlstate.startswith("SY") or sqlstate.startswith("22"):
        return BadInput
    if sqlstate.startswith("08") or sqlstate.startswith("57P"):
        return ConnectionLost
    return ServerError


def error_of(sqlstate, message, detail=None, hint=None):
    """The exception for a server error."""
    cls = class_of_sqlstate(sqlstate)
    if cls is RemoteError:
        return RemoteError.from_server(message, sqlstate, detail, hint)
    return cls(message, sqlstate=sqlstate, detail=detail, hint=hint)
