"""The blocking driver: one psycopg connection, and the statements of the
operations in _proto run on it.

psycopg connects (conninfo, PG* environment, connect_timeout); statements
then go through its libpq layer (psycopg.pq) as unnamed extended-protocol
statements, as libsyrpc sends them, so that every wait is bounded on the
client side too (the server's slice plus a grace), can be cancelled by
stop() or Ctrl-C, and works through pgbouncer in transaction pooling mode.
With the setting prepared, each is prepared once per connection and then
run by name (Statements), as with libsyrpc's syrpc_set_prepared.
"""

import os
import select
import threading
import time

import psycopg
from psycopg import pq

from . import _proto as P
from . import errors as E

_OK = pq.ExecStatus.COMMAND_OK
_TUPLES = pq.ExecStatus.TUPLES_OK
_FIELD = pq.DiagnosticField


def _text(value):
    return None if value is None else value.decode("utf-8", "replace")


def error_of_result(res):
    """The SyrpcError of an error result."""
    state = _text(res.error_field(_FIELD.SQLSTATE)) or ""
    msg = _text(res.error_field(_FIELD.MESSAGE_PRIMARY)) or _text(res.error_message).strip() or "unknown error"
    return E.error_of(state, msg, _text(res.error_field(_FIELD.MESSAGE_DETAIL)),
                      _text(res.error_field(_FIELD.MESSAGE_HINT))) if state else E.ServerError(msg)


def rows_of_results(pg, results):
    """The rows of a statement's results; raises its error.  The rows come
    before the commit: only a statement whose results are all good, on a
    connection still good, has committed."""
    rows, err = None, None
    for res in results:
        if res.status == _TUPLES:
            rows = [[_text(res.get_value(i, j)) for j in range(res.nfields)] for i in range(res.ntuples)]
        elif res.status == _OK:
            rows = rows if rows is not None else []
        elif err is None:
            err = res
    if pg.status != pq.ConnStatus.OK:
        exc = error_of_result(err) if err is not None else None
        raise E.ConnectionLost(exc.message if exc else
                               (_text(pg.error_message).strip() or "the connection was lost"),
                               sqlstate=exc.sqlstate if exc else None)
    if err is not None:
        raise error_of_result(err)
    if rows is None:
        raise E.ConnectionLost("the server sent no result")
    return rows


def _gone(results):
    """Did the statement fail because the server no longer has it prepared
    (DEALLOCATE ALL, DISCARD ALL)?"""
    return any(res.error_field(_FIELD.SQLSTATE) == b"26000" for res in results)


class Statements:
    """The statements prepared on one connection, by SQL text, and the
    round trips of a statement, shared by both flavours' links (which
    send, wait and read)."""

    def __init__(self):
        self.reset()

    def reset(self):
        """A new connection: it has none."""
        self.names = {}
        # names are never reused on one connection: a prepare cut short
        # (timeout, Ctrl-C) may have taken its name on the server all the same
        self.count = 0

    def steps(self, pg, stmt, prepared):
        """A generator of stmt's round trips: yields (send, how), where
        send() sends one and how is the Stmt to wait by; gets its results;
        returns the statement's rows (or raises its error).  prepared:
        by name, preparing it first if this connection has not."""
        sql = stmt.sql.encode("utf-8")
        params = [None if p is None else p.encode("utf-8") for p in stmt.params]
        if not prepared:
            results = yield (lambda: pg.send_query_params(sql, params)), stmt
            return rows_of_results(pg, results)
        # stop() refuses to start a wait, not one that carries an answer:
        # the prepare before either is the same
        prep = stmt._replace(waits=stmt.waits and not stmt.answers)
        for retry in (False, True):
            name = self.names.get(sql)
            if name is None:
                name = b"syrpc_%d" % self.count
                self.count += 1
                rows_of_results(pg, (yield (lambda: pg.send_prepare(name, sql)), prep))
                self.names[sql] = name
            results = yield (lambda: pg.send_query_prepared(name, params)), stmt
            if retry or not _gone(results):
                return rows_of_results(pg, results)
            # the server dropped our statements, so this one never ran:
            # prepare again, once
            self.names = {}


class Link:
    """A connection for one app; used by one thread at a time."""

    def __init__(self, config):
        self.config = config
        self.conn = None
        self.ctx = None
        self._cancel = None
        self.statements = Statements()
        self._busy = threading.Lock()
        self.stopping = False
        self.current = None     # the Request whose handler serve() runs now
        self.settled = False    # ... which the handler answered, failed or released itself
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.closed = False

    # ---- connection ----

    def connect(self):
        """(Re)connect and look up the extension; raises ConnectionLost,
        ExtensionNotInstalled."""
        self.drop()
        dsn, kw = self.config.connect_args()
        try:
            conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None, **kw)
        except psycopg.Error as exc:
            raise E.ConnectionLost("could not connect: %s" % str(exc).strip()) from None
        self.conn = conn
        self._cancel = conn.pgconn.get_cancel()
        # once per connection: not worth a name
        rows = self.execute(P.Stmt(P.PROBE_SQL, (), P.STATEMENT_LIMIT), prepared=False)
        self.ctx = P.ctx_of_probe(rows, self.config.app, _text(conn.pgconn.db))

    def drop(self):
        """Close the connection (the next call connects again)."""
        conn, self.conn, self.ctx, self._cancel = self.conn, None, None, None
        self.statements.reset()
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.drop()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def usable(self):
        pg = self.conn.pgconn if self.conn is not None else None
        return (pg is not None and self.ctx is not None and pg.status == pq.ConnStatus.OK
                and pg.transaction_status == pq.TransactionStatus.IDLE)

    # ---- stop and cancel (any thread, or a signal handler) ----

    def stop(self):
        self.stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def clear_stop(self):
        self.stopping = False
        try:
            while os.read(self._wake_r, 4096):
                pass
        except OSError:
            pass

    def cancel(self):
        """Ask the server to cancel the statement running now, if any."""
        cancel = self._cancel
        if cancel is not None:
            try:
                cancel.cancel()
            except psycopg.Error:
                pass

    # ---- running operations ----

    def run(self, factory):
        """Run the operation factory(ctx) and return its value."""
        if self.closed:
            raise E.UsageError("this syrpc object is closed")
        if not self._busy.acquire(blocking=False):
            raise E.UsageError("this syrpc object is in use by another thread: use one object per thread")
        try:
            if not self.usable():
                self.connect()
            gen = factory(self.ctx)
            try:
                stmt = next(gen)
                while True:
                    try:
                        rows = self.execute(stmt)
                    except E.SyrpcError as exc:
                        stmt = gen.throw(exc)
                    else:
                        stmt = gen.send(rows)
            except StopIteration as stop:
                return stop.value
        finally:
            self._busy.release()

    def execute(self, stmt, prepared=True):
        """Run one statement: its rows, or its SyrpcError.  prepared=False:
        unnamed even with the setting prepared."""
        if stmt.waits and not stmt.answers and self.stopping:
            self.clear_stop()
            raise E.Interrupted("stopped")
        if self.conn is None:
            raise E.ConnectionLost("not connected")
        pg = self.conn.pgconn
        deadline = time.monotonic() + stmt.limit     # for its prepare too
        steps = self.statements.steps(pg, stmt, prepared and self.config.prepared)
        try:
            step = next(steps)
            while True:
                step = steps.send(self._round_trip(pg, *step, deadline))
        except StopIteration as stop:
            return stop.value
        except E.ConnectionLost:
            self.drop()
            raise

    def _round_trip(self, pg, send, stmt, deadline):
        """send() one statement (or prepare) and wait for its results."""
        try:
            send()
            while pg.flush():
                self._wait(pg, select.POLLOUT, deadline, stmt)
            results = []
            while True:
                while pg.is_busy():
                    self._wait(pg, select.POLLIN, deadline, stmt)
                    pg.consume_input()
                res = pg.get_result()
                if res is None:
                    break
                results.append(res)
        except E.SyrpcError:
            raise
        except psycopg.Error as exc:
            self.drop()
            raise E.ConnectionLost("the connection was lost: %s" % str(exc).strip()) from None
        except BaseException:
            # KeyboardInterrupt and the like: leave the connection idle
            self._cancel_and_drain(pg)
            raise
        return results

    def _wait(self, pg, events, deadline, stmt):
        poller = select.poll()
        poller.register(pg.socket, events | select.POLLERR | select.POLLHUP)
        if stmt.waits:
            poller.register(self._wake_r, select.POLLIN)
        while True:
            if stmt.waits and self.stopping:
                self._cancel_and_drain(pg)
                self.clear_stop()
                raise E.Interrupted("stopped")
            left = deadline - time.monotonic()
            if left <= 0:
                self.drop()
                raise E.ConnectionLost("the server did not answer within %g s" % stmt.limit)
            ready = poller.poll(left * 1000)
            if any(fd == pg.socket for fd, _ in ready):
                return
            if ready:       # the wake-up pipe
                try:
                    os.read(self._wake_r, 4096)
                except OSError:
                    pass

    def _cancel_and_drain(self, pg):
        """Cancel the running statement and read its results (for up to a
        grace); drop the connection if it does not come back."""
        self.cancel()
        deadline = time.monotonic() + P.GRACE
        try:
            while True:
                while pg.is_busy():
                    left = deadline - time.monotonic()
                    if left <= 0 or not select.select([pg.socket], [], [], left)[0]:
                        raise TimeoutError
                    pg.consume_input()
                if pg.get_result() is None:
                    return
        except BaseException:
            self.drop()
