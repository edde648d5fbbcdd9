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
    them: serve() (a loop that dispatches on the type), fail_request() and
    stop().
    """

    def get_request(self, timeout=None):
        """Wait for a request and claim it: ``(type_, result_id, data)``.

        Blocks until a request arrives or timeout (seconds; None: the
        settings' timeout, by default without limit) has passed, then
        raises EmptyException (Timeout).  The claim is a lease (the app's
        lease_time): a request not answered within it is handed out again.
        """
        timeout = self._timeout(timeout)
        return self._link.run(lambda ctx: P.op_wait_request(ctx, timeout))

    def put_result(self, result_id, data):
        """Answer a claimed request; its caller gets data."""
        result_id = P.check_id(result_id)
        text = P.dumps(data)
        self._link.run(lambda ctx: P.op_put_result(ctx, result_id, text))

    def fail_request(self, result_id, reason):
        """Give up a claimed request: its caller gets RequestFailed with
        the reason, and no worker gets it again (extension 1.3)."""
        result_id = P.check_id(result_id)
        reason = P.check_reason(reason)
        self._link.run(lambda ctx: P.op_fail_request(ctx, result_id, reason))

    def stop(self):
        """Make serve() return, cancelling its wait.  Safe to call from any
        thread or a signal handler."""
        self._link.stop()

    def serve(self, handlers, max_requests=None, handle_signals=True):
        """Serve requests: ``handlers`` maps a type to a function of the
        request's data that returns the result (key None: a function of
        (type_, data) for every other type).

        Unknown types are answered with {"error": "unknown type", "type": T}.
        A handler that raises, or whose result cannot be sent, gives the
        request up (fail_request): its caller gets RequestFailed with the
        exception.  A lost connection is re-established with backoff (the
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
            gen = P.serve_loop(link, routes, max_requests)
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

