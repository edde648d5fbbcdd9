"""The asyncio flavour: syrpc.aio.Client and syrpc.aio.Server, the same
calls as coroutines, on psycopg's AsyncConnection.

    async with syrpc.aio.Client({'app_name': 'echo_app'}) as client:
        data = await client.call('echo', {'value': 'hello'}, timeout=5)

    server = await syrpc.aio.Server.connect({'app_name': 'echo_app'})
    await server.serve({'echo': echo})      # handlers may be coroutine functions

One object per task: a second task using it while a call runs gets
UsageError.  Cancelling the task cancels the statement in the server.
"""

import asyncio
import inspect
import signal
import threading
import time

import psycopg
from psycopg import pq

from . import _proto as P
from . import errors as E
from ._sync import Statements, _text

__all__ = ["Client", "Server"]


class _Link:
    """An async connection for one app (see _sync.Link)."""

    def __init__(self, config):
        self.config = config
        self.conn = None
        self.ctx = None
        self._cancel = None
        self.statements = Statements()
        self._busy = False
        self.stopping = False
        self.current = None     # as _sync.Link's
        self.settled = False
        self._stop_event = None
        self._loop = None
        self.closed = False

    async def connect(self):
        self.drop()
        dsn, kw = self.config.connect_args()
        try:
            conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, prepare_threshold=None, **kw)
        except psycopg.Error as exc:
            raise E.ConnectionLost("could not connect: %s" % str(exc).strip()) from None
        self.conn = conn
        self._cancel = conn.pgconn.get_cancel()
        rows = await self.execute(P.Stmt(P.PROBE_SQL, (), P.STATEMENT_LIMIT), prepared=False)
        self.ctx = P.ctx_of_probe(rows, self.config.app, _text(conn.pgconn.db))

    def drop(self):
        conn, self.conn, self.ctx, self._cancel = self.conn, None, None, None
        self.statements.reset()
        if conn is not None:
            try:
                conn.pgconn.finish()
            except Exception:
                pass

    def close(self):
        self.closed = True
        self.drop()

    def usable(self):
        pg = self.conn.pgconn if self.conn is not None else None
        return (pg is not None and self.ctx is not None and pg.status == pq.ConnStatus.OK
                and pg.transaction_status == pq.TransactionStatus.IDLE)

    def _event(self):
        if self._stop_event is None:
            self._stop_event = asyncio.Event()
            self._loop = asyncio.get_running_loop()
        return self._stop_event

    def stop(self):
        self.stopping = True
        if self._stop_event is not None:
            loop = self._loop
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                self._stop_event.set()
            else:
                loop.call_soon_threadsafe(self._stop_event.set)

    def clear_stop(self):
        self.stopping = False
        self._event().clear()

    def cancel(self):
        cancel = self._cancel
        if cancel is not None:
            try:
                cancel.cancel()
            except psycopg.Error:
                pass

    async def run(self, factory):
        if self.closed:
            raise E.UsageError("this syrpc object is closed")
        if self._busy:
            raise E.UsageError("this syrpc object is in use by another task: use one object per task")
        self._busy = True
        try:
            if not self.usable():
                await self.connect()
            gen = factory(self.ctx)
            try:
                stmt = next(gen)
                while True:
                    try:
                        rows = await self.execute(stmt)
                    except E.SyrpcError as exc:
                        stmt = gen.throw(exc)
                    else:
                        stmt = gen.send(rows)
            except StopIteration as stop:
                return stop.value
        finally:
            self._busy = False

    async def execute(self, stmt, prepared=True):
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
                step = steps.send(await self._round_trip(pg, *step, deadline))
        except StopIteration as stop:
            return stop.value
        except E.ConnectionLost:
            self.drop()
            raise

    async def _round_trip(self, pg, send, stmt, deadline):
        try:
            send()
            while pg.flush():
                await self._wait(pg, True, deadline, stmt)
            results = []
            while True:
                while pg.is_busy():
                    await self._wait(pg, False, deadline, stmt)
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
            # the task was cancelled: cancel the statement too
            await self._cancel_and_drain(pg)
            raise
        return results

    async def _wait(self, pg, write, deadline, stmt):
        loop = asyncio.get_running_loop()
        fd = pg.socket
        ready = loop.create_future()

        def wake():
            if not ready.done():
                ready.set_result(None)
        waiters = [ready]
        stopper = None
        if stmt.waits:
            stopper = loop.create_task(self._event().wait())
            waiters.append(stopper)
        (loop.add_writer if write else loop.add_reader)(fd, wake)
        try:
            left = deadline - time.monotonic()
            if left > 0 and not self.stopping:
                await asyncio.wait(waiters, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        finally:
            (loop.remove_writer if write else loop.remove_reader)(fd)
            if stopper is not None:
                stopper.cancel()
        if ready.done():
            return
        if stmt.waits and self.stopping:
            await self._cancel_and_drain(pg)
            self.clear_stop()
            raise E.Interrupted("stopped")
        self.drop()
        raise E.ConnectionLost("the server did not answer within %g s" % stmt.limit)

    async def _cancel_and_drain(self, pg):
        loop = asyncio.get_running_loop()
        cancel = self._cancel
        deadline = time.monotonic() + P.GRACE
        try:
            if cancel is not None:
                await asyncio.wait_for(loop.run_in_executor(None, cancel.cancel), P.GRACE)
            while True:
                while pg.is_busy():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError
                    ready = loop.create_future()
                    loop.add_reader(pg.socket, lambda: ready.done() or ready.set_result(None))
                    try:
                        await asyncio.wait_for(ready, left)
                    finally:
                        loop.remove_reader(pg.socket)
                    pg.consume_input()
                if pg.get_result() is None:
                    return
        except BaseException:
            self.drop()


class _Base:
    """See syrpc.Client for the settings.  Connect with ``await
    X.connect(settings)`` or ``async with X(settings)``."""

    def __init__(self, settings):
        self._config = P.Config(settings)
        self.app_name = self._config.app
        self.timeout = self._config.timeout
        self._link = _Link(self._config)

    @classmethod
    async def connect(cls, settings):
        self = cls(settings)
        await self.open()
        return self

    async def open(self):
        """Connect (and apply the app settings given)."""
        try:
            await self._link.connect()
            if self._config.app_settings:
                wanted = dict(self._config.app_settings)
                await self._link.run(lambda ctx: P.op_configure(ctx, wanted))
        except BaseException:
            self._link.close()
            raise

    def _timeout(self, timeout):
        return self.timeout if timeout is None else P.check_timeout(timeout)

    def cancel(self):
        self._link.cancel()

    async def close(self):
        self._link.close()

    @property
    def closed(self):
        return self._link.closed

    async def __aenter__(self):
        if not self._link.usable():
            await self.open()
        return self

    async def __aexit__(self, *exc):
        await self.close()


class Client(_Base):
    """syrpc.Client's calls as coroutines."""

    async def put_request(self, type_, data, deadline=None):
        type_ = P.check_type(type_)
        text = P.dumps(data)
        deadline = P.check_deadline(deadline)
        return await self._link.run(lambda ctx: P.op_put_request(ctx, type_, text, deadline))

    def cancel(self, result_id=None):
        """``await cancel(result_id)``: as syrpc.Client.cancel(result_id).
        cancel() without a result_id (not awaited) cancels the statement
        running now, as before."""
        if result_id is None:
            return super().cancel()
        result_id = P.check_id(result_id)
        return self._link.run(lambda ctx: P.op_cancel(ctx, result_id))

    async def get_result(self, result_id, timeout=None):
        result_id = P.check_id(result_id)
        return {"result_id": result_id, "data": await self.wait_result(result_id, timeout)}

    async def wait_result(self, result_id, timeout=None):
        result_id = P.check_id(result_id)
        timeout = self._timeout(timeout)
        return await self._link.run(lambda ctx: P.op_wait_result(ctx, result_id, timeout))

    async def call(self, type_, data, timeout=None):
        type_ = P.check_type(type_)
        text = P.dumps(data)
        timeout = self._timeout(timeout)
        return await self._link.run(lambda ctx: P.op_call(ctx, type_, text, timeout))


class Server(_Base):
    """syrpc.Server's calls as coroutines; handlers may be coroutine functions."""

    async def get_request(self, timeout=None):
        timeout = self._timeout(timeout)
        req = await self._link.run(lambda ctx: P.op_wait_request(ctx, timeout))
        req._worker = self
        return req

    @property
    def request(self):
        """As syrpc.Server.request (its methods are coroutines here)."""
        return self._link.current

    def _settle(self, result_id):
        link = self._link
        if link.current is not None and link.current.result_id == result_id:
            link.settled = True

    async def put_result(self, result_id, data):
        result_id = P.check_id(result_id)
        text = P.dumps(data)
        await self._link.run(lambda ctx: P.op_put_result(ctx, result_id, text))
        self._settle(result_id)

    async def fail_request(self, result_id, reason):
        result_id = P.check_id(result_id)
        reason = P.check_reason(reason)
        await self._link.run(lambda ctx: P.op_fail_request(ctx, result_id, reason))
        self._settle(result_id)

    async def put_error(self, result_id, message, detail=None):
        result_id = P.check_id(result_id)
        message = P.check_message(message)
        detail = None if detail is None else P.dumps(detail, "detail")
        await self._link.run(lambda ctx: P.op_put_error(ctx, result_id, message, detail))
        self._settle(result_id)

    async def is_cancelled(self, result_id):
        result_id = P.check_id(result_id)
        return await self._link.run(lambda ctx: P.op_is_cancelled(ctx, result_id))

    async def extend_lease(self, result_id, seconds, attempt=None):
        result_id = P.check_id(result_id)
        seconds = P.check_seconds(seconds, "seconds", False)
        try:
            return await self._link.run(lambda ctx: P.op_extend_lease(ctx, result_id, seconds, attempt))
        except E.RequestCancelled:
            self._settle(result_id)
            raise

    async def release(self, result_id, delay=0, attempt=None):
        result_id = P.check_id(result_id)
        delay = P.check_seconds(delay, "delay", True)
        await self._link.run(lambda ctx: P.op_release(ctx, result_id, delay, attempt))
        self._settle(result_id)

    def stop(self):
        """Make serve() return, cancelling its wait (any thread)."""
        self._link.stop()

    async def serve(self, handlers, max_requests=None, handle_signals=True):
        """As syrpc.Server.serve; SIGINT/SIGTERM stop it when it runs in the
        main thread's loop with handle_signals."""
        routes = P.check_routes(handlers)
        max_requests = P.check_max_requests(max_requests)
        link = self._link
        link.clear_stop()
        loop = asyncio.get_running_loop()
        signals = []
        if handle_signals and threading.current_thread() is threading.main_thread():
            for signo in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(signo, self.stop)
                    signals.append(signo)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
        try:
            gen = P.serve_loop(link, routes, max_requests, self)
            action = next(gen)
            while True:
                try:
                    if isinstance(action, P.Run):
                        value = await link.run(action.factory)
                    elif isinstance(action, P.Handle):
                        value = action.handler(*action.args)
                        if inspect.isawaitable(value):
                            value = await value
                    else:
                        value = await self._reconnect(action.why)
                except Exception as exc:
                    action = gen.throw(exc)
                else:
                    action = gen.send(value)
        except StopIteration as stop:
            return stop.value
        finally:
            link.clear_stop()
            for signo in signals:
                loop.remove_signal_handler(signo)

    async def _reconnect(self, why):
        link = self._link
        P.log.warning("syrpc: %s; reconnecting", why.message)
        backoff = P.BACKOFF_MIN
        while not link.stopping:
            try:
                await asyncio.wait_for(link._event().wait(), backoff)
            except asyncio.TimeoutError:
                pass
            if link.stopping:
                break
            try:
                await link.connect()
                return True
            except E.ConnectionLost as exc:
                P.log.debug("syrpc: %s", exc.message)
            backoff = min(backoff * 2, P.BACKOFF_MAX)
        return False
