"""The RPC semantics of extension 1.7: remote errors (SY006), cancel
(SY007), deadlines (SY002), leases extended and released, what a request
carries (attempts, deadline), the serve loop's answer to a handler that
raises, syrpc.aio's calls of them, and a clear error from every new call
on an extension 1.6."""

import asyncio
import datetime
import json
import logging
import threading
import time
import uuid

import pytest

import syrpc
import syrpc.aio
from conftest import create_database, one, serving, stats, wait_for, waiting_backend

UTC = datetime.timezone.utc


def echo(data):
    return data


def server_now(sql):
    """The server's clock (an aware datetime)."""
    return one(sql, "SELECT pg_catalog.clock_timestamp()")


def _in_thread(fn):
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


# ---- remote errors ----

def test_remote_error_round_trip(settings, sql, app):
    message = "it broke: \u00e9t\u00e9 \u2603"
    detail = {"code": 7, "where": ["a", "b"], "big": 12345678901234567890, "none": None}
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        rid = cli.put_request("job", {"n": 1})
        req = srv.get_request(5)
        assert req.result_id == str(rid)
        srv.put_error(req.result_id, message, detail)
        for _ in range(2):      # not taken: the same error every time
            with pytest.raises(syrpc.RemoteError) as exc:
                cli.get_result(rid, 5)
            err = exc.value
            assert err.sqlstate == "SY006"
            assert err.message == message           # verbatim
            assert err.detail == detail
            assert json.loads(err.detail_text) == detail
            assert "DETAIL:  " + err.detail_text in str(err)
            assert isinstance(err, syrpc.RequestFailed) and isinstance(err, syrpc.EmptyException)
        with pytest.raises(syrpc.NotInFlight):      # answered already
            srv.put_result(req.result_id, 1)

        # no detail; a message of exactly 1024 bytes comes back as it was
        rid = cli.put_request("job", 2)
        req = srv.get_request(5)
        srv.put_error(req.result_id, "\u00e9" * 512)
        with pytest.raises(syrpc.RemoteError) as exc:
            cli.wait_result(rid, 5)
        assert exc.value.message == "\u00e9" * 512
        assert exc.value.detail is None and exc.value.detail_text is None
        assert str(exc.value) == "\u00e9" * 512

        # bad input is refused here, and the request stays in flight
        rid = cli.put_request("job", 3)
        req = srv.get_request(5)
        before = stats(sql, app)
        for fn, words in [
            (lambda: srv.put_error(req.result_id, ""), "message"),
            (lambda: srv.put_error(req.result_id, "\u00e9" * 512 + "x"), "1024"),
            (lambda: srv.put_error(req.result_id, 42), "message"),
            (lambda: srv.put_error(req.result_id, "m", object()), "JSON"),
            (lambda: srv.put_error(req.result_id, "m", float("nan")), "JSON"),
            (lambda: srv.put_error("foo-bar-baz", "m"), "UUID"),
        ]:
            with pytest.raises(syrpc.BadInput, match=words):
                fn()
        assert stats(sql, app) == before
        srv.put_result(req.result_id, "fine")
        assert cli.get_result(rid, 5)["data"] == "fine"


def test_handler_that_raises_is_a_remote_error_at_the_caller(settings, sql, app):
    def boom(data):
        raise ValueError("bad value %s" % data)

    def custom(data):
        raise syrpc.RemoteError("not found", detail={"code": 404, "id": data})

    def bare(data):
        raise RuntimeError()

    handlers = {"boom": boom, "custom": custom, "bare": bare, "echo": echo}
    with serving(settings, handlers):
        with syrpc.Client(settings) as cli:
            with pytest.raises(syrpc.RemoteError) as exc:
                cli.call("boom", 42, timeout=10)
            assert exc.value.sqlstate == "SY006"
            assert exc.value.message == "bad value 42"
            assert exc.value.detail == {"exception": "ValueError"}
            with pytest.raises(syrpc.RemoteError) as exc:       # put + get: the same
                cli.get_result(cli.put_request("boom", 7), 10)
            assert (exc.value.message, exc.value.detail) == ("bad value 7", {"exception": "ValueError"})
            with pytest.raises(syrpc.RemoteError) as exc:       # a RemoteError goes on as it is
                cli.call("custom", "x1", timeout=10)
            assert (exc.value.message, exc.value.detail) == ("not found", {"code": 404, "id": "x1"})
            with pytest.raises(syrpc.RemoteError) as exc:       # no message: the class's name
                cli.call("bare", 1, timeout=10)
            assert (exc.value.message, exc.value.detail) == ("RuntimeError", {"exception": "RuntimeError"})
            assert cli.call("echo", 2, timeout=10) == 2         # the loop goes on


# ---- cancel ----

def test_cancel_queued_request_is_never_served(settings, sql, app, dsn):
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        rid = cli.put_request("job", 1)
        assert srv.is_cancelled(rid) is False           # queued
        assert cli.cancel(rid) is True
        assert cli.cancel(rid) is False                 # cancelled before
        assert srv.is_cancelled(rid) is True
        for _ in range(2):
            with pytest.raises(syrpc.RequestCancelled) as exc:
                cli.get_result(rid, 5)
            assert exc.value.sqlstate == "SY007"
            assert isinstance(exc.value, syrpc.Cancelled) and isinstance(exc.value, syrpc.EmptyException)
        # a request put after it is served; the cancelled one never
        later = cli.put_request("job", 2)
        assert srv.get_request(5).result_id == str(later)
        with pytest.raises(syrpc.Timeout):
            srv.get_request(timeout=0.5)
        # an answered request cannot be cancelled
        srv.put_result(str(later), "done")
        assert cli.cancel(later) is False
        assert cli.get_result(later, 5)["data"] == "done"
        with pytest.raises(syrpc.UnknownResult):
            cli.cancel(uuid.uuid4())
        with pytest.raises(syrpc.InvalidResultId):
            cli.cancel("foo-bar-baz")
        with syrpc.Client({"app_name": app + "_other", "dsn": dsn}) as other:
            with pytest.raises(syrpc.WrongApp):
                other.cancel(cli.put_request("job", 3))


def test_cancel_ends_a_caller_that_waits_already(settings, sql):
    with syrpc.Client(settings) as cli, syrpc.Client(settings) as waiter:
        rid = cli.put_request("job", 1)
        t, box = _in_thread(lambda: waiter.get_result(rid, 60))
        wait_for(lambda: waiting_backend(sql, "CALL %syrpc_wait_result%"), what="the caller's wait")
        t0 = time.monotonic()
        assert cli.cancel(rid) is True
        t.join(15)
        assert isinstance(box.get("error"), syrpc.RequestCancelled), box
        assert time.monotonic() - t0 < 15


def test_cancel_in_flight(settings, sql):
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        rid = cli.put_request("job", 1)
        req = srv.get_request(5)
        assert req.is_cancelled() is False              # in flight
        assert cli.cancel(rid) is True
        assert req.is_cancelled() is True
        with pytest.raises(syrpc.RequestCancelled) as exc:
            req.extend_lease(30)
        assert exc.value.sqlstate == "SY007"
        # the worker's answers are taken and dropped; release does nothing
        srv.release(req.result_id)
        srv.put_error(req.result_id, "too late")
        srv.fail_request(req.result_id, "too late")
        srv.put_result(req.result_id, "too late")
        with pytest.raises(syrpc.RequestCancelled):
            cli.get_result(rid, 5)
        with pytest.raises(syrpc.Timeout):              # not handed out again
            srv.get_request(timeout=0.5)


def test_cancel_while_the_handler_runs(settings, caplog):
    """A handler sees its request cancelled (server.request); its answer is
    dropped; one whose extend_lease raises RequestCancelled leaves the loop
    nothing to send."""
    box = {}
    started = {"slow": threading.Event(), "extending": threading.Event()}

    def slow(data):
        started["slow"].set()
        wait_for(lambda: box["server"].request.is_cancelled(), what="the cancel")
        return "too late"

    def extending(data):
        started["extending"].set()
        # extend_lease raises RequestCancelled once cancelled: let it go
        wait_for(lambda: box["server"].request.extend_lease(30) is None, what="the cancel")

    with caplog.at_level(logging.INFO, logger="syrpc"):
        with serving(settings, {"slow": slow, "extending": extending, "echo": echo}) as servers:
            box["server"] = servers[0]
            with syrpc.Client(settings) as cli:
                for type_ in ("slow", "extending"):
                    rid = cli.put_request(type_, 1)
                    wait_for(started[type_].is_set, what="the handler")
                    assert cli.cancel(rid) is True
                    with pytest.raises(syrpc.RequestCancelled):
                        cli.get_result(rid, 10)
                    assert cli.call("echo", type_, timeout=10) == type_   # the handler has returned
                    with pytest.raises(syrpc.RequestCancelled):           # and its answer was dropped
                        cli.get_result(rid, 5)
    assert "was cancelled while its handler ran" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


# ---- deadlines ----

def test_deadline_already_past_is_request_expired(settings):
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        past = datetime.datetime.now(UTC) - datetime.timedelta(seconds=5)
        rid = cli.put_request("job", 1, deadline=past)          # taken: it expires at once
        with pytest.raises(syrpc.Timeout):
            srv.get_request(timeout=0.5)
        with pytest.raises(syrpc.RequestExpired) as exc:
            cli.get_result(rid, 10)
        assert exc.value.sqlstate == "SY002"


def test_deadline_passed_is_request_expired(settings, sql, app):
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        rid = cli.put_request("job", 2, deadline=server_now(sql) + datetime.timedelta(seconds=0.5))
        with pytest.raises(syrpc.RequestExpired) as exc:        # no worker before it
            cli.get_result(rid, 30)
        assert exc.value.sqlstate == "SY002" and isinstance(exc.value, syrpc.RequestFailed)
        with pytest.raises(syrpc.Timeout):                      # and none after it
            srv.get_request(timeout=0.5)
        # naive datetimes and other types are refused, and nothing is queued
        before = stats(sql, app)
        with pytest.raises(syrpc.BadInput, match="timezone-aware"):
            cli.put_request("job", 3, deadline=datetime.datetime.now())
        with pytest.raises(syrpc.BadInput, match="datetime"):
            cli.put_request("job", 3, deadline="tomorrow")
        with pytest.raises(syrpc.BadInput, match="datetime"):
            cli.put_request("job", 3, deadline=time.time() + 5)
        assert stats(sql, app) == before


def test_request_carries_attempts_and_deadline(settings, sql):
    tz = datetime.timezone(datetime.timedelta(hours=-5, minutes=-30))
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        deadline = (server_now(sql) + datetime.timedelta(hours=1)).replace(microsecond=123456).astimezone(tz)
        rid = cli.put_request("job", {"n": 1}, deadline=deadline)
        req = srv.get_request(5)
        (type_, got, data) = req                        # the original's tuple
        assert (type_, got, data) == ("job", str(rid), {"n": 1}) == req
        assert (req.type_, req.result_id, req.data) == (type_, got, data)
        assert req.attempts == 1
        assert req.deadline == deadline and req.deadline.utcoffset() is not None
        srv.put_result(got, 1)
        # without one: request_ttl's (3 h by default), also when later than that
        for given in (None, server_now(sql) + datetime.timedelta(hours=10)):
            t0 = server_now(sql)
            cli.put_request("job", 2, deadline=given)
            req = srv.get_request(5)
            t1 = server_now(sql)
            hours3 = datetime.timedelta(hours=3)
            assert t0 + hours3 - datetime.timedelta(seconds=1) <= req.deadline <= t1 + hours3, \
                (given, req.deadline)
            srv.put_result(req.result_id, 2)


def test_serve_handler_sees_its_request(settings):
    seen = {}
    box = {}

    def look(data):
        req = box["server"].request
        seen[data] = (req.result_id, req.attempts, req.deadline is not None)
        return data
    with serving(settings, {"look": look}) as servers:
        box["server"] = servers[0]
        with syrpc.Client(settings) as cli:
            rid = cli.put_request("look", "a")
            assert cli.get_result(rid, 10)["data"] == "a"
            assert cli.call("look", "b", timeout=10) == "b"
        assert servers[0].request is None               # no handler runs now
    assert seen["a"] == (str(rid), 1, True)
    assert seen["b"][1:] == (1, True)


# ---- leases: extended, released ----

def test_extend_lease_keeps_a_second_worker_off(app, dsn, sql):
    settings = {"app_name": app, "dsn": dsn, "lease_time": 1, "max_attempts": 5}
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as a, syrpc.Server(settings) as b:
        r1 = cli.put_request("job", 1)
        req1 = a.get_request(5)
        assert req1.result_id == str(r1) and req1.attempts == 1
        before = server_now(sql)
        until = req1.extend_lease(30)
        after = server_now(sql)
        assert before + datetime.timedelta(seconds=30) <= until <= after + datetime.timedelta(seconds=30)
        # a second request, claimed by a and not extended: its lease runs out
        r2 = cli.put_request("job", 2)
        req2 = a.get_request(5)
        assert req2.result_id == str(r2)
        got = b.get_request(15)
        assert got.result_id == str(r2) and got.attempts == 2, (got, got.attempts)
        b.put_result(got.result_id, "by b")
        # r1's first lease ran out before r2's: still a's
        with pytest.raises(syrpc.Timeout):
            b.get_request(timeout=1.5)
        a.put_result(req1.result_id, "by a")
        assert cli.get_result(r1, 5)["data"] == "by a"
        assert cli.get_result(r2, 5)["data"] == "by b"
        with pytest.raises(syrpc.NotInFlight):          # answered
            a.extend_lease(req1.result_id, 30)
        # a timedelta; bad input here and in the server
        cli.put_request("job", 3)
        req3 = a.get_request(5)
        assert a.extend_lease(req3.result_id, datetime.timedelta(minutes=2)) > server_now(sql)
        for bad in (0, -1, float("nan"), float("inf"), "5", None, True, datetime.timedelta(0)):
            with pytest.raises(syrpc.BadInput, match="seconds"):
                a.extend_lease(req3.result_id, bad)
        with pytest.raises(syrpc.BadInput) as exc:      # more than 100 years
            a.extend_lease(req3.result_id, 200 * 366 * 86400.0)
        assert exc.value.sqlstate and exc.value.sqlstate.startswith("22")
        a.put_result(req3.result_id, 3)


def test_extend_lease_refused_once_the_lease_is_lost(app, dsn, sql):
    """SY004 once the lease ran out: with nobody holding the request, and
    with another worker holding it now."""
    settings = {"app_name": app, "dsn": dsn, "lease_time": 1, "max_attempts": 5}
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as a, syrpc.Server(settings) as b:
        rid = cli.put_request("job", 1)
        req = a.get_request(5)
        # b waits for it: it gets it once a's lease runs out
        got = b.get_request(15)
        assert got.result_id == str(rid) and got.attempts == 2
        with pytest.raises(syrpc.NotInFlight) as exc:
            req.extend_lease(30)
        assert exc.value.sqlstate == "SY004"
        b.put_result(got.result_id, "by b")
        assert cli.get_result(rid, 5)["data"] == "by b"
        # nobody holds it: a's lease (extended to a short one) has run out
        rid = cli.put_request("job", 2)
        req = a.get_request(5)
        until = req.extend_lease(0.2)
        wait_for(lambda: server_now(sql) > until, what="a's lease to run out")
        with pytest.raises(syrpc.NotInFlight):
            req.extend_lease(30)


def test_release_does_not_count_an_attempt(app, dsn, sql):
    settings = {"app_name": app, "dsn": dsn, "lease_time": 60, "max_attempts": 1}
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        rid = cli.put_request("job", 1)
        for _ in range(3):
            req = srv.get_request(5)
            assert req.result_id == str(rid) and req.attempts == 1
            srv.release(req.result_id)                  # claimable again at once
        with pytest.raises(syrpc.NotInFlight):          # released: queued, no longer ours...
            srv.release(rid)
        req = srv.get_request(5)                        # ...until claimed again
        assert req.attempts == 1
        srv.release(req.result_id, datetime.timedelta(0))
        req = srv.get_request(5)
        assert req.attempts == 1
        srv.put_result(req.result_id, "done")
        assert cli.get_result(rid, 5)["data"] == "done"

        # after a delay, not before
        rid = cli.put_request("job", 2)
        req = srv.get_request(5)
        srv.release(req.result_id, 60)
        with pytest.raises(syrpc.Timeout):
            srv.get_request(timeout=1)
        with pytest.raises(syrpc.NotInFlight):
            srv.release(req.result_id)
        rid = cli.put_request("job", 3)
        req = srv.get_request(5)
        t0 = time.monotonic()
        srv.release(req.result_id, datetime.timedelta(seconds=0.5))
        again = srv.get_request(15)
        assert time.monotonic() - t0 >= 0.45
        assert again.result_id == str(rid) and again.attempts == 1
        for bad in (-1, float("nan"), "0", None):
            with pytest.raises(syrpc.BadInput, match="delay"):
                srv.release(again.result_id, bad)
        with pytest.raises(syrpc.BadInput):             # more than 100 years: the server's
            srv.release(again.result_id, 200 * 366 * 86400.0)
        srv.put_result(again.result_id, 3)
        assert cli.get_result(rid, 5)["data"] == 3


# ---- syrpc.aio ----

def test_aio_semantics(settings):
    async def main():
        srv = await syrpc.aio.Server.connect(settings)

        async def lease(data):
            until = await srv.request.extend_lease(30)
            return {"attempts": srv.request.attempts, "aware": until.utcoffset() is not None}

        async def boom(data):
            raise KeyError("k")

        task = asyncio.create_task(srv.serve({"lease": lease, "boom": boom}))
        async with syrpc.aio.Client(settings) as cli:
            assert await cli.call("lease", 1, timeout=10) == {"attempts": 1, "aware": True}
            with pytest.raises(syrpc.RemoteError) as exc:
                await cli.call("boom", 1, timeout=10)
            assert (exc.value.message, exc.value.detail) == ("'k'", {"exception": "KeyError"})
            srv.stop()
            assert await asyncio.wait_for(task, 10) == 2
            soon = datetime.datetime.now(UTC) + datetime.timedelta(hours=1)
            rid = await cli.put_request("job", 1, deadline=soon)
            assert await cli.cancel(rid) is True
            with pytest.raises(syrpc.RequestCancelled):
                await cli.get_result(rid, 5)
            rid = await cli.put_request("job", 2)
            req = await srv.get_request(5)
            assert await req.is_cancelled() is False
            await req.release()
            req = await srv.get_request(5)
            assert req.attempts == 1 and req.deadline is not None
            await srv.put_error(req.result_id, "m", [1])
            with pytest.raises(syrpc.RemoteError) as exc:
                await cli.wait_result(rid, 5)
            assert exc.value.detail == [1]
        await srv.close()
    asyncio.run(asyncio.wait_for(main(), 60))


# ---- an extension older than 1.7 ----

def test_extension_1_6_refuses_the_new_calls_clearly(app):
    db = create_database("syrpc_python_v16", "CREATE EXTENSION syrpc VERSION '1.6'")
    settings = {"app_name": app, "dsn": "dbname=" + db}
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        rid = cli.put_request("job", 1)
        req = srv.get_request(5)
        (type_, got, data) = req
        assert (type_, got, data) == ("job", str(rid), 1)
        assert req.attempts is None and req.deadline is None
        soon = datetime.datetime.now(UTC) + datetime.timedelta(hours=1)
        cases = [
            ("put_request(..., deadline=...)", lambda: cli.put_request("job", 2, deadline=soon)),
            ("cancel(result_id)", lambda: cli.cancel(rid)),
            ("put_error", lambda: srv.put_error(got, "m")),
            ("is_cancelled", lambda: srv.is_cancelled(got)),
            ("extend_lease", lambda: srv.extend_lease(got, 5)),
            ("extend_lease", lambda: req.extend_lease(5)),
            ("release", lambda: srv.release(got)),
        ]
        for what, fn in cases:
            with pytest.raises(syrpc.ExtensionNotInstalled) as exc:
                fn()
            assert str(exc.value).startswith("%s needs extension 1.7 or later (the database has 1.6)" % what)
        with pytest.raises(syrpc.Timeout):              # no deadline put was queued
            srv.get_request(0)
        srv.put_result(got, "still in flight")          # nothing else was done to it
        assert cli.get_result(rid, 5)["data"] == "still in flight"

    # the serve loop as before 1.7: a handler that raises fails the request
    def boom(data):
        raise KeyError("no such thing")
    with serving(settings, {"boom": boom}):
        with syrpc.Client(settings) as cli:
            with pytest.raises(syrpc.RequestFailed) as exc:
                cli.call("boom", 1, timeout=10)
    assert exc.value.sqlstate == "SY001" and not isinstance(exc.value, syrpc.RemoteError)
    assert "KeyError" in exc.value.message
