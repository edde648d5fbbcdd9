"""The caller's side: put requests, get results (syrpc.Client)."""

from . import _proto as P
from ._base import RPCBase
from .errors import EmptyException  # noqa: F401  (the original's module has it)

__all__ = ["Client"]


class Client(RPCBase):
    """Puts requests and gets their results.  See RPCBase for the settings.

    The original SyRPC's calls: put_request() and get_result().  Beside
    them: call() (both in one round trip), wait_result() (the result's
    data alone) and cancel(result_id) (extension 1.7).
    """

    def put_request(self, type_, data, deadline=None):
        """Queue a request; returns its result_id (a uuid.UUID).

        :type  type_: str
        :param type_: Type of the request (the service, method or function
                      that should be called); surrounding blanks are stripped.
        :param  data: Data to send to the server (anything JSON can hold).
        :type  deadline: datetime.datetime (timezone-aware) or None
        :param deadline: No worker gets the request at or after it, and its
                      caller then gets RequestExpired (as when the app's
                      request_ttl passes, whichever is earlier); one already
                      past is taken (the request expires at once).  The
                      server's clock decides.  Extension 1.7; None: none.
        """
        type_ = P.check_type(type_)
        text = P.dumps(data)
        deadline = P.check_deadline(deadline)
        return self._link.run(lambda ctx: P.op_put_request(ctx, type_, text, deadline))

    def cancel(self, result_id=None):
        """cancel(result_id): cancel the request (extension 1.7).  True if
        this call cancelled it: a queued request is withdrawn, never handed
        to a worker; one in flight is marked cancelled (its worker's answer
        is dropped; is_cancelled() tells it).  False if it had ended already
        (answered, failed, expired, or cancelled before).  Its get_result
        then raises RequestCancelled (a Cancelled and an EmptyException),
        also one that is waiting already.

        cancel() without a result_id cancels the call running now on this
        object, as before: from another thread or a signal handler; that
        call raises Cancelled.
        """
        if result_id is None:
            return super().cancel()
        result_id = P.check_id(result_id)
        return self._link.run(lambda ctx: P.op_cancel(ctx, result_id))

    def get_result(self, result_id, timeout=None):
        """Wait for a result and take it: ``{'result_id': str, 'data': data}``.

        Blocks until the result arrives or timeout (seconds; None: the
        settings' timeout, by default without limit) has passed, then
        raises EmptyException (Timeout).  A result_id that cannot get a
        result raises a subclass of EmptyException at once: InvalidResultId
        (not a UUID), UnknownResult, ResultTaken, WrongApp; a request that
        failed or expired raises RequestFailed or RequestExpired; one that
        a worker answered with an error, RemoteError (every time); one that
        was cancelled, RequestCancelled.
        """
        result_id = P.check_id(result_id)
        data = self.wait_result(result_id, timeout)
        return {"result_id": result_id, "data": data}

    def wait_result(self, result_id, timeout=None):
        """get_result(), returning the result's data alone."""
        result_id = P.check_id(result_id)
        timeout = self._timeout(timeout)
        return self._link.run(lambda ctx: P.op_wait_result(ctx, result_id, timeout))

    def call(self, type_, data, timeout=None):
        """Put a request and wait for its result, in one statement
        (CALL syrpc_call); returns the result's data.

        On timeout it raises Timeout, whose result_id lets you wait on with
        wait_result().  If it raises ConnectionLost or Cancelled, whether
        the request was queued is unknown.
        """
        type_ = P.check_type(type_)
        text = P.dumps(data)
        timeout = self._timeout(timeout)
        return self._link.run(lambda ctx: P.op_call(ctx, type_, text, timeout))
