"""The modern API: call(), serve(), context managers, the exceptions of
each SQLSTATE, bad input, timeouts, slices, cancel and statement_timeout."""

import os
import signal
import threading
import time
import uuid

import pytest

import syrpc
import syrpc._proto as P
from conftest import create_database, failures, one, serving, stats, wait_for, waiting_backend


def echo(data):
    return data


def test_call_round_trip(settings):
    with serving(settings, {"echo": echo, "upper": lambda d: d.upper()}):
        with syrpc.Client(settings) as cli:
            assert cli.call("echo", {"value": "hello"}, timeout=10) == {"value": "hello"}
            assert cli.call(" upper ", "abc", timeout=10) == "ABC"
            assert cli.call("echo", [1, 2.5, None], timeout=10) == [1, 2.5, None]


def test_serve_unknown_type_and_fallback(settings):
    with serving(settings, {"echo": echo}):
        with syrpc.Client(settings) as cli:
            assert cli.call("nope", 1, timeout=10) == {"error": "unknown type", "type": "nope"}
    with serving(settings, {"echo": echo, None: lambda type_, data: [type_, data]}):
        with syrpc.Client(settings) as cli:
            assert cli.call("other", 1, timeout=10) == ["other", 1]
            assert cli.call("echo", 1, timeout=10) == 1


def test_handler_that_raises_answers_with_a_remote_error(settings, sql, app):
    """From extension 1.7 (before it: test_semantics's 1.6 case): a remote
    error, which is a RequestFailed; a result that cannot be sent fails the
    request."""
    def boom(data):
        raise KeyError("no such thing")

    with serving(settings, {"boom": boom, "bad": lambda d: {1, 2}, "echo": echo}):
        with syrpc.Client(settings) as cli:
            with pytest.raises(syrpc.RequestFailed) as exc:
                cli.call("boom", 1, timeout=10)
            assert isinstance(exc.value, syrpc.RemoteError)
            assert exc.value.sqlstate == "SY006" and "KeyError" in str(exc.value)
            assert isinstance(exc.value, syrpc.EmptyException)
            with pytest.raises(syrpc.RequestFailed, match="cannot be sent as JSON") as exc:
                cli.call("bad", 1, timeout=10)
            assert exc.value.sqlstate == "SY001"
            assert cli.call("echo", 2, timeout=10) == 2     # the loop goes on
    assert failures(sql, app) == 1      # "bad" failed; a remote error is an answer


def test_server_refuses_a_result_then_the_request_fails(settings):
    big = "x" * (1024 * 1024 + 10)
    with serving(settings, {"big": lambda d: big}):
        with syrpc.Client(settings) as cli:
            with pytest.raises(syrpc.RequestFailed, match="refused"):
                cli.call("big", 1, timeout=10)


def test_call_timeout_keeps_the_result_id(settings):
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        t0 = time.monotonic()
        with pytest.raises(syrpc.Timeout) as exc:
            cli.call("echo", {"late": True}, timeout=0.3)
        assert time.monotonic() - t0 >= 0.3
        rid = exc.value.result_id
        assert str(uuid.UUID(rid)) == rid
        (_, got, data) = srv.get_request(timeout=5)
        assert got == rid
        srv.put_result(got, data)
        assert cli.wait_result(rid, timeout=5) == {"late": True}


def test_context_managers_close(settings):
    with syrpc.Client(settings) as cli:
        pass
    assert cli.closed
    with pytest.raises(syrpc.UsageError):
        cli.put_request("echo", 1)
    srv = syrpc.Server(settings)
    srv.close()
    srv.close()
    assert srv.closed


# ---- the exceptions of each SQLSTATE ----

def test_sqlstate_exceptions(settings, app, dsn):
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        rid = cli.put_request("echo", 1)
        with pytest.raises(syrpc.NotInFlight) as exc:          # not claimed yet
            srv.put_result(rid, 1)
        assert exc.value.sqlstate == "SY004"
        srv.put_result(srv.get_request(5)[1], 1)
        assert cli.wait_result(rid, 5) == 1
        with pytest.raises(syrpc.ResultTaken) as exc:
            cli.wait_result(rid, 5)
        assert exc.value.sqlstate == "SY003"
        with pytest.raises(syrpc.UnknownResult) as exc:
            t0 = time.monotonic()
            cli.wait_result(uuid.uuid4(), None)                 # at once, not forever
        assert exc.value.sqlstate == "SY008" and time.monotonic() - t0 < 10
        with syrpc.Client({"app_name": app + "_other", "dsn": dsn}) as other:
            with pytest.raises(syrpc.WrongApp) as exc:
                other.wait_result(cli.put_request("echo", 1), 1)
            assert exc.value.sqlstate == "SY005"
        rid = cli.put_request("echo", 1)
        for _ in range(2):      # the one of the WrongApp case, and rid
            srv.fail_request(srv.get_request(5)[1], "cannot do that")
        with pytest.raises(syrpc.RequestFailed, match="cannot do that") as exc:
            cli.wait_result(rid, 5)
        assert exc.value.sqlstate == "SY001"
        with pytest.raises(syrpc.InvalidResultId):
            cli.wait_result("foo-bar-baz", 1)
        with pytest.raises(syrpc.InvalidResultId):
            srv.put_result("foo-bar-baz", 1)


def test_request_expired(app, dsn):
    settings = {"app_name": app, "dsn": dsn, "amq_ttl": 0.3}
    with syrpc.Client(settings) as cli:
        rid = cli.put_request("echo", 1)
        with pytest.raises(syrpc.RequestExpired) as exc:
            cli.get_result(rid, 20)
        assert exc.value.sqlstate == "SY002"
        assert isinstance(exc.value, syrpc.RequestFailed) and isinstance(exc.value, syrpc.EmptyException)


def test_permission_denied(settings, sql, app, dsn, caplog):
    sql.execute("DROP ROLE IF EXISTS syrpc_py_nobody")
    sql.execute("CREATE ROLE syrpc_py_nobody LOGIN")
    try:
        with syrpc.Client({"app_name": app, "dsn": dsn + " user=syrpc_py_nobody"}) as cli:
            with pytest.raises(syrpc.PermissionDenied) as exc:
                cli.put_request("echo", 1)
            assert exc.value.sqlstate == "42501"
        # granted the app's caller side it may use the queue, but not change
        # the app's settings: a warning
        sql.execute("SELECT syrpc_grant(%s, 'syrpc_py_nobody', 'caller')", (app,))
        with caplog.at_level("WARNING", logger="syrpc"):
            with syrpc.Client({"app_name": app, "dsn": dsn + " user=syrpc_py_nobody", "amq_msg_ttl": 3}) as cli:
                assert cli.put_request("echo", 1)
        assert "syrpc_configure" in caplog.text
    finally:
        sql.execute("SELECT syrpc_revoke(%s, 'syrpc_py_nobody', 'caller')", (app,))
        sql.execute("DROP OWNED BY syrpc_py_nobody")
        sql.execute("DROP ROLE syrpc_py_nobody")


def test_read_only(app, dsn):
    settings = {"app_name": app, "dsn": dsn + " options='-c default_transaction_read_only=on'"}
    with syrpc.Client(settings) as cli:
        with pytest.raises(syrpc.ReadOnly) as exc:
            cli.put_request("echo", 1)
        assert exc.value.sqlstate == "25006"


def test_extension_in_another_schema(app):
    db = create_database("syrpc_python_schema", "CREATE SCHEMA rpc", "CREATE EXTENSION syrpc SCHEMA rpc")
    settings = {"app_name": app, "dsn": "dbname=" + db}
    with serving(settings, {"echo": echo}):
        with syrpc.Client(settings) as cli:
            assert cli.call("echo", "in rpc", timeout=10) == "in rpc"


def test_extension_1_2_answers_instead_of_failing(app):
    """Extension 1.2 has no syrpc_fail_request: a handler that raises is answered with an error object."""
    db = create_database("syrpc_python_v12", "CREATE EXTENSION syrpc VERSION '1.2'")
    settings = {"app_name": app, "dsn": "dbname=" + db}
    with serving(settings, {"boom": lambda d: 1 / 0}):
        with syrpc.Client(settings) as cli:
            got = cli.call("boom", 1, timeout=10)
    assert got["error"] == "request failed" and "ZeroDivisionError" in got["reason"]


def test_extension_too_old(app):
    db = create_database("syrpc_python_v11", "CREATE EXTENSION syrpc VERSION '1.1'")
    with pytest.raises(syrpc.ExtensionNotInstalled, match="1.2 or later"):
        syrpc.Client({"app_name": app, "dsn": "dbname=" + db})


# ---- bad input: a clear exception, and the queue as it was ----

def test_bad_input_leaves_the_queue_unchanged(settings, sql, app):
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        cli.put_request("echo", 1)
        before = stats(sql, app)
        cases = [
            (lambda: cli.put_request("x" * 64, 1), "too long"),
            (lambda: cli.put_request("   ", 1), "empty"),
            (lambda: cli.put_request(42, 1), "string"),
            (lambda: cli.put_request("bad type!", 1), "invalid"),          # refused by the server
            (lambda: cli.put_request("echo", float("nan")), "JSON"),
            (lambda: cli.put_request("echo", object()), "JSON"),
            (lambda: cli.put_request("echo", "x" * (1024 * 1024 + 1)), "payload"),   # 54000
            (lambda: cli.put_request("echo", "nul \u0000"), ""),            # jsonb refuses \u0000
            (lambda: cli.get_result(uuid.uuid4(), -1), "timeout"),
            (lambda: cli.get_result(uuid.uuid4(), float("nan")), "timeout"),
            (lambda: cli.call("echo", 1, timeout="5"), "timeout"),
            (lambda: srv.get_request(timeout=-0.5), "timeout"),
            (lambda: srv.fail_request(uuid.uuid4(), ""), "reason"),
            (lambda: srv.serve({"echo": "not callable"}), "callable"),
            (lambda: srv.serve({"echo": echo}, max_requests=0), "max_requests"),
        ]
        for fn, words in cases:
            with pytest.raises(syrpc.BadInput) as exc:
                fn()
            assert words.lower() in str(exc.value).lower(), str(exc.value)
            assert isinstance(exc.value, ValueError)
        assert stats(sql, app) == before
        (_, rid, data) = srv.get_request(5)     # still usable, the one request still there
        assert data == 1


# ---- timeouts, slices, statement_timeout ----

def test_timeouts_are_honoured(settings):
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        for timeout in (0, 0.2, 1.0):
            t0 = time.monotonic()
            with pytest.raises(syrpc.Timeout):
                srv.get_request(timeout=timeout)
            assert timeout <= time.monotonic() - t0 < timeout + 5
        rid = cli.put_request("echo", 1)
        t0 = time.monotonic()
        with pytest.raises(syrpc.Timeout):
            cli.get_result(rid, 0.5)
        assert 0.5 <= time.monotonic() - t0 < 5.5


def test_waits_in_slices(settings, sql, monkeypatch):
    """A wait longer than a slice is several statements, and gets a result put in a later one."""
    monkeypatch.setattr(P, "WAIT_SLICE", 0.3)
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        rid = cli.put_request("echo", 1)
        (_, got, _) = srv.get_request(5)
        box = {}

        def wait():
            try:
                box["result"] = cli.get_result(rid, 30)
            except Exception as exc:
                box["error"] = exc
        t = threading.Thread(target=wait)
        t.start()
        pid = wait_for(lambda: waiting_backend(sql, "CALL %syrpc_wait_result%"), what="the caller's wait")
        first = one(sql, "SELECT query_start FROM pg_stat_activity WHERE pid = %s", pid)
        wait_for(lambda: one(sql, "SELECT query_start FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
                             pid) not in (None, first), what="a second slice")
        srv.put_result(got, "late")
        t.join(15)
        assert box == {"result": {"result_id": rid if isinstance(rid, str) else str(rid), "data": "late"}}


def test_statement_timeout_shorter_than_a_slice(app, dsn):
    settings = {"app_name": app, "dsn": dsn + " options='-c statement_timeout=200'"}
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        t0 = time.monotonic()
        with pytest.raises(syrpc.Timeout):
            srv.get_request(timeout=1.0)
        assert 1.0 <= time.monotonic() - t0 < 6
        rid = cli.put_request("echo", 1)
        (_, got, _) = srv.get_request(timeout=5)
        srv.put_result(got, 2)
        assert cli.get_result(rid, 5)["data"] == 2
        with pytest.raises(syrpc.Timeout):
            cli.call("echo", 1, timeout=1.0)


# ---- cancel ----

def _in_thread(fn):
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc
    t = threading.Thread(target=run)
    t.start()
    return t, box


def test_pg_cancel_backend_raises_cancelled(settings, sql):
    with syrpc.Client(settings) as cli:
        rid = cli.put_request("echo", 1)
        t, box = _in_thread(lambda: cli.get_result(rid, None))
        pid = wait_for(lambda: waiting_backend(sql, "CALL %syrpc_wait_result%"), what="the wait")
        sql.execute("SELECT pg_cancel_backend(%s)", (pid,))
        t.join(15)
        assert isinstance(box.get("error"), syrpc.Cancelled), box
        assert box["error"].sqlstate == "57014"
        assert cli.put_request("echo", 2)          # the connection is still good


def test_cancel_from_another_thread(settings, sql):
    with syrpc.Server(settings) as srv:
        t, box = _in_thread(lambda: srv.get_request(None))
        wait_for(lambda: waiting_backend(sql, "CALL %syrpc_wait_request%"), what="the wait")
        srv.cancel()
        t.join(15)
        assert isinstance(box.get("error"), syrpc.Cancelled), box
        with pytest.raises(syrpc.Timeout):
            srv.get_request(0)


def test_keyboard_interrupt_cancels_the_wait(settings, sql):
    """Ctrl-C during a wait: KeyboardInterrupt, and the statement is cancelled in the server."""
    with syrpc.Server(settings) as srv:
        def interrupt():
            wait_for(lambda: waiting_backend(sql, "CALL %syrpc_wait_request%"), what="the wait")
            os.kill(os.getpid(), signal.SIGINT)
        t = threading.Thread(target=interrupt)
        t.start()
        old = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with pytest.raises(KeyboardInterrupt):
                srv.get_request(None)
        finally:
            signal.signal(signal.SIGINT, old)
            t.join(15)
        assert waiting_backend(sql, "CALL %syrpc_wait_request%") is None
        with pytest.raises(syrpc.Timeout):
            srv.get_request(0)


def test_stop_ends_serve_promptly(settings):
    srv = syrpc.Server(settings)
    t, box = _in_thread(lambda: srv.serve({"echo": echo}))
    with syrpc.Client(settings) as cli:
        assert cli.call("echo", 1, timeout=10) == 1
    t0 = time.monotonic()
    srv.stop()
    t.join(15)
    assert box == {"value": 1} and time.monotonic() - t0 < 5
    srv.close()


def test_serve_max_requests(settings):
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        ids = [cli.put_request("echo", i) for i in range(3)]
        assert srv.serve({"echo": echo}, max_requests=3) == 3
        assert [cli.get_result(i, 5)["data"] for i in ids] == [0, 1, 2]


# ---- lost connections ----

def test_serve_reconnects_after_its_backend_is_terminated(app, dsn, sql):
    settings = {"app_name": app, "dsn": dsn + " application_name=py_reconnect_worker"}
    with serving(settings, {"echo": echo}):
        with syrpc.Client({"app_name": app, "dsn": dsn}) as cli:
            assert cli.call("echo", 1, timeout=10) == 1
            pid = wait_for(lambda: one(sql, "SELECT pid FROM pg_stat_activity"
                                       " WHERE application_name = 'py_reconnect_worker'"), what="the worker")
            sql.execute("SELECT pg_terminate_backend(%s)", (pid,))
            wait_for(lambda: one(sql, "SELECT pid FROM pg_stat_activity WHERE application_name"
                                 " = 'py_reconnect_worker' AND pid <> %s", pid), what="the worker's new backend")
            assert cli.call("echo", 2, timeout=20) == 2


def test_client_reconnects_on_the_next_call(app, dsn, sql):
    settings = {"app_name": app, "dsn": dsn + " application_name=py_reconnect_client"}
    with syrpc.Client(settings) as cli:
        assert cli.put_request("echo", 1)
        pid = one(sql, "SELECT pid FROM pg_stat_activity WHERE application_name = 'py_reconnect_client'")
        sql.execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_for(lambda: one(sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", pid) == 0,
                 what="the backend to exit")
        with pytest.raises(syrpc.ConnectionLost) as exc:
            cli.put_request("echo", 2)
        assert isinstance(exc.value, ConnectionError)
        assert cli.put_request("echo", 3)


def test_cannot_connect_is_connection_lost(app):
    with pytest.raises(syrpc.ConnectionLost, match="could not connect"):
        syrpc.Client({"app_name": app, "dsn": "host=/nonexistent-dir port=1"})


def test_server_that_does_not_answer_is_bounded(settings):
    """The client-side wait is bounded: a statement that the server does not
    answer within its limit ends with ConnectionLost, and the next call connects again."""
    with syrpc.Client(settings) as cli:
        t0 = time.monotonic()
        with pytest.raises(syrpc.ConnectionLost, match="did not answer"):
            cli._link.run(lambda ctx: _slow())
        assert time.monotonic() - t0 < 10
        assert cli.put_request("echo", 1)


def _slow():
    yield P.Stmt("SELECT pg_sleep(5)", (), 0.5)
