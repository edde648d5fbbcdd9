"""syrpc.aio: the same calls as coroutines."""

import asyncio
import time
import uuid

import pytest

import syrpc
import syrpc.aio
from conftest import waiting_backend


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_aio_drop_in_round_trip(settings):
    async def main():
        async with syrpc.aio.Client(settings) as cli, syrpc.aio.Server(settings) as srv:
            rid = await cli.put_request(" ping ", [{"foo": "bar"}])
            (type_, got, data) = await srv.get_request(5)
            assert (type_, got) == ("ping", str(rid))
            await srv.put_result(got, data)
            assert await cli.get_result(rid, 5) == {"result_id": str(rid), "data": [{"foo": "bar"}]}
            with pytest.raises(syrpc.EmptyException):
                await cli.get_result("foo-bar-baz", 1)
            with pytest.raises(syrpc.Timeout):
                await srv.get_request(0.2)
    run(main())


def test_aio_call_and_serve_with_async_handlers(settings):
    async def main():
        srv = await syrpc.aio.Server.connect(settings)

        async def slow_echo(data):
            await asyncio.sleep(0)
            return data

        def boom(data):
            raise RuntimeError("nope")

        task = asyncio.create_task(srv.serve({"echo": slow_echo, "boom": boom, None: lambda t, d: t}))
        async with syrpc.aio.Client(settings) as cli:
            assert await cli.call("echo", {"a": 1}, timeout=10) == {"a": 1}
            assert await cli.call("other", 1, timeout=10) == "other"
            with pytest.raises(syrpc.RemoteError, match="nope") as exc:
                await cli.call("boom", 1, timeout=10)
            assert exc.value.detail == {"exception": "RuntimeError"}
            # several calls at once, one client each
            clients = [await syrpc.aio.Client.connect(settings) for _ in range(3)]
            got = await asyncio.gather(*(c.call("echo", i, timeout=10) for i, c in enumerate(clients)))
            assert got == [0, 1, 2]
            for c in clients:
                await c.close()
        t0 = time.monotonic()
        srv.stop()
        assert await asyncio.wait_for(task, 10) == 6
        assert time.monotonic() - t0 < 5
        await srv.close()
    run(main())


def test_aio_cancelled_task_cancels_the_statement(settings, sql):
    async def main():
        async with syrpc.aio.Client(settings) as cli:
            rid = await cli.put_request("nobody", 1)
            task = asyncio.create_task(cli.get_result(rid, None))
            deadline = time.monotonic() + 15
            while waiting_backend(sql, "CALL %syrpc_wait_result%") is None:
                assert time.monotonic() < deadline, "the wait did not start"
                await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert waiting_backend(sql, "CALL %syrpc_wait_result%") is None
            assert isinstance(await cli.put_request("echo", 1), uuid.UUID)   # still usable
    run(main())


def test_aio_one_task_at_a_time(settings):
    async def main():
        async with syrpc.aio.Client(settings) as cli:
            rid = await cli.put_request("nobody", 1)
            task = asyncio.create_task(cli.get_result(rid, 2))
            await asyncio.sleep(0)
            with pytest.raises(syrpc.UsageError):
                await cli.put_request("echo", 1)
            with pytest.raises(syrpc.Timeout):
                await task
    run(main())


def test_aio_exceptions(settings):
    async def main():
        async with syrpc.aio.Client(settings) as cli:
            with pytest.raises(syrpc.UnknownResult):
                await cli.wait_result(uuid.uuid4(), 5)
            with pytest.raises(syrpc.BadInput):
                await cli.put_request("bad type!", 1)
            with pytest.raises(syrpc.Timeout) as exc:
                await cli.call("echo", 1, timeout=0.2)
            assert exc.value.result_id
    run(main())
