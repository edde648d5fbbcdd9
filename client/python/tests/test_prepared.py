"""The setting prepared: each statement prepared once per connection and
then run by name; prepared again after DEALLOCATE ALL or a reconnect; off
by default; the same for syrpc.aio."""

import asyncio
import threading

import pytest

import syrpc
import syrpc._proto as P
import syrpc.aio
from conftest import serving, wait_for, waiting_backend

# run unprepared (prepared=False) on the link's own session: prepared
# statements belong to it, and this one is not to count itself
COUNT = P.Stmt("SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE name LIKE 'syrpc\\_%'",
               (), 5.0)
# how often each prepared SELECT ran by name (a CALL has no plans to count)
RUNS = P.Stmt("SELECT statement, generic_plans + custom_plans FROM pg_catalog.pg_prepared_statements"
              " WHERE name LIKE 'syrpc\\_%' AND statement LIKE 'SELECT%'", (), 5.0)
DEALLOCATE = P.Stmt("DEALLOCATE ALL", (), 5.0)


def on_session(obj, stmt):
    """stmt's rows on the session of obj's connection (sync)."""
    return obj._link.execute(stmt, prepared=False)


def prepared_count(obj):
    return int(on_session(obj, COUNT)[0][0])


def round_trip(cli, srv, data):
    rid = cli.put_request("echo", data)
    (_, got, got_data) = srv.get_request(5)
    assert got == str(rid)
    srv.put_result(got, got_data)
    assert cli.get_result(rid, 5) == {"result_id": str(rid), "data": data}


@pytest.fixture
def prepared(settings):
    return dict(settings, prepared=True)


def test_prepared_once_per_connection(prepared):
    with syrpc.Client(prepared) as cli, syrpc.Server(prepared) as srv:
        round_trip(cli, srv, 0)
        # put_request and wait_result; wait_requests and put_result
        assert (prepared_count(cli), prepared_count(srv)) == (2, 2)
        for i in range(1, 5):
            round_trip(cli, srv, {"i": i})
        assert (prepared_count(cli), prepared_count(srv)) == (2, 2)
        # ... and run by name: the put prepared once ran all five times
        assert [int(n) for _, n in on_session(cli, RUNS)] == [5]
        assert [int(n) for _, n in on_session(srv, RUNS)] == [5]


def test_prepared_calls_with_serve(prepared):
    with serving(prepared, {"echo": lambda d: d}), syrpc.Client(prepared) as cli:
        assert cli.call("echo", 1, timeout=10) == 1
        first = prepared_count(cli)
        assert first >= 1
        for i in range(10):
            assert cli.call("echo", [i], timeout=10) == [i]
        assert prepared_count(cli) == first


@pytest.mark.parametrize("drop_all", ["DEALLOCATE ALL", "DISCARD ALL"])
def test_prepared_again_after_deallocate_all(prepared, drop_all):
    with syrpc.Client(prepared) as cli, syrpc.Server(prepared) as srv:
        round_trip(cli, srv, 1)
        for obj in (cli, srv):
            on_session(obj, P.Stmt(drop_all, (), 5.0))
            assert prepared_count(obj) == 0
        # each statement fails with 26000 once, is prepared again and runs
        round_trip(cli, srv, 2)
        assert (prepared_count(cli), prepared_count(srv)) == (2, 2)
        round_trip(cli, srv, 3)
        assert (prepared_count(cli), prepared_count(srv)) == (2, 2)


def test_reconnect_empties_the_cache(prepared):
    with syrpc.Client(prepared) as cli, syrpc.Server(prepared) as srv:
        round_trip(cli, srv, 1)
        cli._link.drop()
        assert cli._link.statements.names == {}
        round_trip(cli, srv, 2)       # connects again; the new session prepares its own
        assert prepared_count(cli) == 2
        assert sorted(cli._link.statements.names.values()) == [b"syrpc_0", b"syrpc_1"]


def test_cancel_while_prepared(prepared, sql):
    """A prepared wait is cancelled as an unnamed one is; the connection
    and its statements stay."""
    with syrpc.Client(prepared) as cli, syrpc.Server(prepared) as srv:
        round_trip(cli, srv, 1)
        rid = cli.put_request("echo", 2)
        box = {}

        def wait():
            try:
                box["value"] = cli.get_result(rid, None)
            except BaseException as exc:
                box["error"] = exc
        t = threading.Thread(target=wait, daemon=True)
        t.start()
        wait_for(lambda: waiting_backend(sql, "CALL %syrpc_wait_result%"), what="the wait")
        cli.cancel()
        t.join(15)
        assert isinstance(box.get("error"), syrpc.Cancelled), box
        (_, got, data) = srv.get_request(5)
        srv.put_result(got, data)
        assert cli.get_result(rid, 5)["data"] == 2
        assert prepared_count(cli) == 2


def test_not_prepared_by_default(settings):
    for given in (settings, dict(settings, prepared=False), dict(settings, prepared=None)):
        with syrpc.Client(given) as cli, syrpc.Server(given) as srv:
            round_trip(cli, srv, 1)
            assert (prepared_count(cli), prepared_count(srv)) == (0, 0)


def test_prepared_setting_checked(settings):
    with pytest.raises(syrpc.SettingsError, match="prepared"):
        syrpc.Client(dict(settings, prepared="yes"))
    with pytest.raises(syrpc.SettingsError, match="prepared"):
        syrpc.aio.Client(dict(settings, prepared=1))


# ---- syrpc.aio ----

def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def aio_count(obj):
    return int((await obj._link.execute(COUNT, prepared=False))[0][0])


async def aio_round_trip(cli, srv, data):
    rid = await cli.put_request("echo", data)
    (_, got, got_data) = await srv.get_request(5)
    await srv.put_result(got, got_data)
    assert await cli.get_result(rid, 5) == {"result_id": str(rid), "data": data}


def test_aio_prepared_once_and_after_deallocate_all(prepared):
    async def main():
        async with syrpc.aio.Client(prepared) as cli, syrpc.aio.Server(prepared) as srv:
            await aio_round_trip(cli, srv, 0)
            assert (await aio_count(cli), await aio_count(srv)) == (2, 2)
            for i in range(1, 5):
                await aio_round_trip(cli, srv, i)
            assert (await aio_count(cli), await aio_count(srv)) == (2, 2)
            rows = await cli._link.execute(RUNS, prepared=False)
            assert [int(n) for _, n in rows] == [5]
            for obj in (cli, srv):
                await obj._link.execute(DEALLOCATE, prepared=False)
                assert await aio_count(obj) == 0
            await aio_round_trip(cli, srv, 5)
            assert (await aio_count(cli), await aio_count(srv)) == (2, 2)
            cli._link.drop()
            assert cli._link.statements.names == {}
            await aio_round_trip(cli, srv, 6)
            assert await aio_count(cli) == 2
    run(main())


def test_aio_prepared_calls_with_serve(prepared):
    async def main():
        srv = await syrpc.aio.Server.connect(prepared)
        task = asyncio.create_task(srv.serve({"echo": lambda d: d}, handle_signals=False))
        try:
            async with syrpc.aio.Client(prepared) as cli:
                assert await cli.call("echo", 1, timeout=10) == 1
                first = await aio_count(cli)
                for i in range(10):
                    assert await cli.call("echo", i, timeout=10) == i
                assert await aio_count(cli) == first >= 1
        finally:
            srv.stop()
            await asyncio.wait_for(task, 15)
            await srv.close()
    run(main())


def test_aio_not_prepared_by_default(settings):
    async def main():
        async with syrpc.aio.Client(settings) as cli, syrpc.aio.Server(settings) as srv:
            await aio_round_trip(cli, srv, 1)
            assert (await aio_count(cli), await aio_count(srv)) == (0, 0)
    run(main())
