"""The worker's side: get requests, put results, serve (syrpc.Server)."""

import logging
import select
import signal
import threading

from . import _proto as P
from . import errors as E
from ._base import RPCBase
from .errors import EmptyException, QueueNotFoundException  # noqa: F401  (as the original's module)

__all__ = ["Server"]

log = logging.getLogger("syrpc")


class Server(RPCBase):
    """Gets requests and puts their results.  See RPCBase for the settings.

    The original SyRPC's calls: get_request() and put_result().  Beside
    them: serve() (a loop that dispatches on the type), fail_request(),
    stop(), and from extension 1.7 put_error(), is_cancelled(),
    extend_lease() and release().
    """

    def get_request(self, timeout=None):
        """Wait for a request and claim it: a Request, the tuple
        ``(type_, result_id, data)`` with attributes beside (from extension
        1.7 attempts and deadline).

        Blocks until a request arrives or timeout (seconds; None: the
        settings' timeout, by default without limit) has passed, then
        raises EmptyException (Timeout).  The claim is a lease (the app's
        lease_time): a request not answered within it is handed out again.
        """
        timeout = self._timeout(timeout)
        req = self._link.run(lambda ctx: P.op_wait_request(ctx, timeout))
        req._worker = self
        return req

    @property
    def request(self):
        """The Request whose handler serve() is running now (None when no
        handler runs): a handler can extend its own lease with
        ``server.request.extend_lease(seconds)``, see whether its caller
        cancelled it, or release it."""
        return self._link.current

    def _settle(self, result_id):
        """The handler running now answered, failed or released its own
        request: the serve loop leaves it alone."""
        link = self._link
        if link.current is not None and link.current.result_id == result_id:
            link.settled = True

    def put_result(self, result_id, data):
        """Answer a claimed request; its caller gets data."""
        result_id = P.check_id(result_id)
        text = P.dumps(data)
        self._link.run(lambda ctx: P.op_put_result(ctx, result_id, text))
        self._settle(result_id)

    def fail_request(self, result_id, reason):
        """Give up a claimed request: its caller gets RequestFailed with
        the reason, and no worker gets it again (extension 1.3)."""
        result_id = P.check_id(result_id)
        reason = P.check_reason(reason)
        self._link.run(lambda ctx: P.op_fail_request(ctx, result_id, reason))
        self._settle(result_id)

    def put_error(self, result_id, message, detail=None):
        """Answer a claimed request with an error (extension 1.7): its
        caller's get_result or call raises RemoteError with this message
        (1 to 1024 bytes) and detail (anything JSON can hold; None: none).
        For a cancelled request it is taken and dropped."""
        result_id = P.check_id(result_id)
        message = P.check_message(message)
        detail = None if detail is None else P.dumps(detail, "detail")
        self._link.run(lambda ctx: P.op_put_error(ctx, result_id, message, detail))
        self._settle(result_id)

    def is_cancelled(self, result_id):
        """Whether the request's caller cancelled it (extension 1.7): then
        its answer would be dropped, and its handler may stop early."""
        result_id = P.check_id(result_id)
        return self._link.run(lambda ctx: P.op_is_cancelled(ctx, result_id))

    def extend_lease(self, result_id, seconds, attempt=None):
        """The lease of a claimed request now ends seconds (a number or a
        datetime.timedelta, more than 0) from now; returns that time, an
        aware datetime of the server's clock (extension 1.7).  Raises
        NotInFlight if the lease was lost (it ran out, the request was
        answered, ...), RequestCancelled if the caller cancelled it.
        attempt: the attempts the request came with (Request.extend_lease
        passes it), so that a later claim's lease, after this one ran out,
        is refused rather than extended."""
        result_id = P.check_id(result_id)
        seconds = P.check_seconds(seconds, "seconds", False)
        try:
            return self._link.run(lambda ctx: P.op_extend_lease(ctx, result_id, seconds, attempt))
        except E.RequestCancelled:
            self._settle(result_id)
            raise

    def release(self, result_id, delay=0, attempt=None):
        """Hand a claimed request back, claimable again after delay (a
        number of seconds or a datetime.timedelta; 0: at once), its attempt
        not counted (extension 1.7).  A cancelled request: nothing done."""
        result_id = P.check_id(result_id)
        delay = P.check_seconds(delay, "delay", True)
        self._link.run(lambda ctx: P.op_release(ctx, result_id, delay, attempt))
        self._settle(result_id)

    def stop(self):
        """Make serve() return, cancelling its wait.  Safe to call from any
        thread or a signal handler."""
        self._link.stop()

    def serve(self, handlers, max_requests=None, handle_signals=True):
        """Serve requests: ``handlers`` maps a type to a function of the
        request's data that returns the result (key None: a function of
        (type_, data) for every other type).

        Unknown types are answered with {"error": "unknown type", "type": T}.
        A handler that raises answers with a remote error (put_error, from
        extension 1.7): its caller gets RemoteError with the message
        str(exc) and the detail {"exception": its class's name}; a handler
        that raises RemoteError(message, detail=...) sends those.  Before
        1.7 it gives the request up (fail_request): RequestFailed with the
        exception in the message.  A result that cannot be sent gives the
        request up too.  While a handler runs, self.request is its Request
        (extend_lease(seconds), is_cancelled(), release()); a handler that
        answers, fails or releases that request itself, or whose
        extend_lease raised RequestCancelled, leaves the loop nothing to
        send.  A lost connection is re-established with backoff (the
        request it held comes back by its lease).  Runs until stop(), or
        SIGINT/SIGTERM when called in the main thread with handle_signals,
        or max_requests have been answered; returns how many were.
        """
        routes = P.check_routes(handlers)
        max_requests = P.check_max_requests(max_requests)
        link = self._link
        link.clear_stop()
        old = self._install_signals() if handle_signals else None
        try:
            gen = P.serve_loop(link, routes, max_requests, self)
            action = next(gen)
            while True:
                try:
                    if isinstance(action, P.Run):
                        value = link.run(action.factory)
                    elif isinstance(action, P.Handle):
                        value = action.handler(*action.args)
                    else:
                        value = self._reconnect(action.why)
                except Exception as exc:
                    action = gen.throw(exc)
                else:
                    action = gen.send(value)
        except StopIteration as stop:
            return stop.value
        finally:
            link.clear_stop()
            if old is not None:
                for signo, handler in old.items():
                    signal.signal(signo, handler if handler is not None else signal.SIG_DFL)

    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return None
        old = {}
        for signo in (signal.SIGINT, signal.SIGTERM):
            old[signo] = signal.signal(signo, lambda s, f: self.stop())
        return old

    def _reconnect(self, why):
        """Reconnect with backoff until it works (True) or stop() (False)."""
        link = self._link
        log.warning("syrpc: %s; reconnecting", why.message)
        backoff = P.BACKOFF_MIN
        while not link.stopping:
            try:
                select.select([link._wake_r], [], [], backoff)
            except InterruptedError:
                pass
            if link.stopping:
                break
            try:
                link.connect()
                return True
            except E.ConnectionLost as exc:
                log.debug("syrpc: %s", exc.message)
            backoff = min(backoff * 2, P.BACKOFF_MAX)
        return False

