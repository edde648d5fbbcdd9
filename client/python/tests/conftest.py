"""Fixtures: a database of its own with the extension (on the cluster that
PGHOST, PGPORT and PGUSER name: a superuser), an app name per test, a
worker serving in a thread, and waiting for a condition with a deadline."""

import contextlib
import itertools
import os
import re
import sys
import threading
import time

import psycopg
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_DIR = os.path.dirname(HERE)
sys.path.insert(0, PACKAGE_DIR)     # the package of this tree, whatever is installed

import syrpc  # noqa: E402

DB = os.environ.get("SYRPC_TEST_DB", "syrpc_python_test")
_created = []


def _admin_db():
    return os.environ.get("SYRPC_TEST_ADMIN_DB", "postgres")


def create_database(name, *sql):
    """A new database name (dropped first if there) with sql run in it."""
    with psycopg.connect(dbname=_admin_db(), autocommit=True) as c:
        c.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        c.execute('CREATE DATABASE "%s"' % name)
    _created.append(name)
    with psycopg.connect(dbname=name, autocommit=True) as c:
        for stmt in sql:
            c.execute(stmt)
    return name


def drop_databases():
    with psycopg.connect(dbname=_admin_db(), autocommit=True) as c:
        while _created:
            c.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % _created.pop())


@pytest.fixture(scope="session")
def database():
    name = create_database(DB, "CREATE EXTENSION syrpc")
    yield name
    drop_databases()


@pytest.fixture(scope="session")
def dsn(database):
    return "dbname=%s" % database


_counter = itertools.count()


@pytest.fixture
def app(request):
    """An app name of this test's own."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:48]
    return "t%d_%s" % (next(_counter), name)


@pytest.fixture
def settings(app, dsn):
    return {"app_name": app, "dsn": dsn}


@pytest.fixture
def sql(database):
    """A superuser connection to the test database (autocommit)."""
    with psycopg.connect(dbname=database, autocommit=True) as c:
        yield c


def one(conn, query, *params):
    row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def stats(conn, app):
    """The app's (queued, in_flight, failed) from syrpc_stats (zeros if none)."""
    row = conn.execute("SELECT queued, in_flight, failed FROM syrpc_stats WHERE app = %s", (app,)).fetchone()
    return tuple(row) if row else (0, 0, 0)


def failures(conn, app):
    """Failed requests of app, counted once whichever way they went: a failed
    row waits for cleanup on the table path (syrpc_stats.failed); a failed
    in-memory syrpc_call leaves no row, but the counter since start
    (syrpc_stats_latency.failed_total, when preloaded) has it."""
    row = conn.execute("SELECT greatest(s.failed, coalesce(l.failed_total, 0)) FROM syrpc_stats s"
                       " LEFT JOIN syrpc_stats_latency l USING (app) WHERE s.app = %s", (app,)).fetchone()
    return row[0] if row else 0


def wait_for(condition, timeout=15.0, what="the condition"):
    """Wait until condition() is true (returns its value), or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out after %g s waiting for %s" % (timeout, what))
        time.sleep(0.02)


def waiting_backend(conn, query_like, app=None):
    """The pid of a backend of this database running a statement like query_like (a syrpc wait)."""
    return one(conn, "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
               " AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE %s"
               " ORDER BY backend_start DESC LIMIT 1", query_like)


@contextlib.contextmanager
def serving(settings, handlers, workers=1):
    """Workers serving handlers in threads (one Server each) until the block ends."""
    servers = [syrpc.Server(settings) for _ in range(workers)]
    results = [None] * workers

    def run(i):
        results[i] = servers[i].serve(handlers)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()
        for t in threads:
            t.join(15)
        alive = [t for t in threads if t.is_alive()]
        for s in servers:
            if not alive:
                s.close()
        assert not alive, "serve() did not return after stop()"


def subprocess_env():
    """The environment for a Python subprocess that imports this tree's package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
