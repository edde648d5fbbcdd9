"""Workers and threads: a worker killed mid-request (redelivered after its
lease), a worker stopped mid-request (answers, then exits), one object per
thread."""

import signal
import subprocess
import textwrap
import threading
import time

import pytest

import syrpc
from conftest import serving, stats, subprocess_env, wait_for, waiting_backend
from test_examples import PYTHON

HOLDER = textwrap.dedent("""
    import sys, syrpc
    server = syrpc.Server({'app_name': sys.argv[1], 'dsn': sys.argv[2], 'lease_time': 1})
    (type_, result_id, data) = server.get_request(timeout=30)
    print(result_id, flush=True)
    sys.stdin.read()        # hold the request until killed
""")

SLOW_WORKER = textwrap.dedent("""
    import sys, syrpc
    def slow(data):
        print('handling', flush=True)
        sys.stdin.readline()        # until the test says so
        return {'done': data}
    with syrpc.Server({'app_name': sys.argv[1], 'dsn': sys.argv[2]}) as server:
        served = server.serve({'slow': slow})
    print('served', served, flush=True)
""")


def test_worker_killed_mid_request_is_redelivered_after_its_lease(app, dsn, sql):
    settings = {"app_name": app, "dsn": dsn}
    with syrpc.Client(settings) as cli:
        rid = cli.put_request("echo", {"n": 1})
        holder = subprocess.Popen([PYTHON, "-c", HOLDER, app, dsn], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=subprocess_env())
        try:
            assert holder.stdout.readline().strip() == str(rid)
            assert stats(sql, app)[1] == 1          # in flight
            holder.kill()
            holder.wait(10)
        finally:
            if holder.poll() is None:
                holder.kill()
        t0 = time.monotonic()
        with serving(settings, {"echo": lambda d: dict(d, by="second worker")}):
            assert cli.get_result(rid, 30) == {"result_id": str(rid), "data": {"n": 1, "by": "second worker"}}
        assert time.monotonic() - t0 < 25
        assert stats(sql, app) == (0, 0, 0)


def test_worker_stopped_mid_request_answers_then_exits(app, dsn):
    worker = subprocess.Popen([PYTHON, "-c", SLOW_WORKER, app, dsn], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        with syrpc.Client({"app_name": app, "dsn": dsn}) as cli:
            rid = cli.put_request("slow", 7)
            assert worker.stdout.readline().strip() == "handling"
            worker.send_signal(signal.SIGTERM)
            worker.stdin.write("go\n")
            worker.stdin.flush()
            assert cli.get_result(rid, 20)["data"] == {"done": 7}
            out, err = worker.communicate(timeout=20)
            assert worker.returncode == 0, err
            assert "served 1" in out
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_threads_one_object_each(settings):
    errors = []
    results = {}

    def caller(i):
        try:
            with syrpc.Client(settings) as cli:
                for j in range(25):
                    if j % 2:
                        got = cli.call("echo", [i, j], timeout=20)
                    else:
                        got = cli.get_result(cli.put_request("echo", [i, j]), 20)["data"]
                    results[(i, j)] = got
        except Exception as exc:        # pragma: no cover
            errors.append(exc)

    with serving(settings, {"echo": lambda d: d}, workers=2):
        threads = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors
    assert results == {(i, j): [i, j] for i in range(4) for j in range(25)}


def test_one_object_in_two_threads_at_once_is_refused(settings, sql):
    with syrpc.Client(settings) as cli:
        rid = cli.put_request("nobody", 1)
        box = {}

        def wait():
            try:
                box["value"] = cli.get_result(rid, None)
            except Exception as exc:
                box["error"] = exc
        t = threading.Thread(target=wait)
        t.start()
        wait_for(lambda: waiting_backend(sql, "CALL %syrpc_wait_result%"), what="the other thread's wait")
        with pytest.raises(syrpc.UsageError, match="one object per thread"):
            cli.put_request("echo", 1)
        cli.cancel()
        t.join(15)
        assert isinstance(box.get("error"), syrpc.Cancelled)
        assert cli.put_request("echo", 1)
