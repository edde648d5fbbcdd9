"""Through pgbouncer in transaction pooling mode (as test/pgbouncer_test.sh
sets it up: a Unix socket in a temporary directory, run as the postgres
user when we are root)."""

import os
import shutil
import subprocess
import tempfile
import threading

import psycopg
import pytest

import syrpc
from conftest import one, serving, wait_for

POOL_SIZE = 4


def _as_postgres(args):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + args
    return args


@pytest.fixture(scope="module")
def bouncer(database):
    """The dsn of a pgbouncer in front of the test database."""
    exe = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)
    if exe is None:
        pytest.fail("pgbouncer is not installed (apt-get install pgbouncer)")
    tmp = tempfile.mkdtemp(prefix="syrpc-py-pgb.")
    os.chmod(tmp, 0o755)
    ini = os.path.join(tmp, "pgbouncer.ini")
    with open(ini, "w") as f:
        f.write("[databases]\n%s = host=%s port=%s dbname=%s user=%s\n" % (
            database, os.environ.get("PGHOST", "/var/run/postgresql"), os.environ.get("PGPORT", "5432"),
            database, os.environ.get("PGUSER", "postgres")))
        f.write("[pgbouncer]\nlisten_addr =\nunix_socket_dir = %s\nlisten_port = 6432\nauth_type = trust\n"
                "auth_file = %s/users.txt\npool_mode = transaction\ndefault_pool_size = %d\n"
                "max_client_conn = 100\nlogfile = %s/pgbouncer.log\npidfile = %s/pgbouncer.pid\n"
                "admin_users = postgres\n" % (tmp, tmp, POOL_SIZE, tmp, tmp))
    with open(os.path.join(tmp, "users.txt"), "w") as f:
        f.write('"%s" ""\n' % os.environ.get("PGUSER", "postgres"))
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
        for name in os.listdir(tmp):
            shutil.chown(os.path.join(tmp, name), "postgres")
    subprocess.run(_as_postgres([exe, "-d", ini]), check=True)
    pidfile = os.path.join(tmp, "pgbouncer.pid")
    dsn = "host=%s port=6432 dbname=%s" % (tmp, database)

    def up():
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return True
        except psycopg.Error:
            return False
    try:
        wait_for(up, what="pgbouncer to accept connections")
        yield dsn
    finally:
        pid = None
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip())
            os.kill(pid, 15)
        except (OSError, ValueError):
            pass
        if pid is not None:
            def gone():
                try:
                    os.kill(pid, 0)
                    return False
                except OSError:
                    return True
            wait_for(gone, what="pgbouncer to exit")
        shutil.rmtree(tmp, ignore_errors=True)


def test_drop_in_api_through_pgbouncer(app, bouncer):
    settings = {"app_name": app, "dsn": bouncer}
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        for i in range(10):
            rid = cli.put_request("echo", {"i": i})
            (type_, got, data) = srv.get_request(10)
            srv.put_result(got, data)
            assert cli.get_result(rid, 10) == {"result_id": str(rid), "data": {"i": i}}
        with pytest.raises(syrpc.EmptyException):
            cli.get_result("foo-bar-baz", 1)
        with pytest.raises(syrpc.EmptyException):
            srv.get_request(0.2)


def test_callers_and_workers_through_pgbouncer(app, bouncer, sql):
    settings = {"app_name": app, "dsn": bouncer}
    errors, done = [], []

    def caller(i):
        try:
            with syrpc.Client(settings) as cli:
                for j in range(30):
                    assert cli.call("echo", [i, j], timeout=20) == [i, j]
            done.append(i)
        except Exception as exc:        # pragma: no cover
            errors.append(exc)

    with serving(settings, {"echo": lambda d: d}, workers=2):
        threads = [threading.Thread(target=caller, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    assert not errors and sorted(done) == [0, 1]
    # the pool's server connections are all the database has (other
    # tests' connections may take a moment to go)
    wait_for(lambda: one(sql, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                         " AND backend_type = 'client backend' AND pid <> pg_backend_pid()") <= POOL_SIZE,
             what="at most %d server connections" % POOL_SIZE)


def test_serve_stops_promptly_through_pgbouncer(app, bouncer):
    """stop() cancels the worker's wait through the pooler (cancel requests go through it)."""
    settings = {"app_name": app, "dsn": bouncer}
    with serving(settings, {"echo": lambda d: d}):
        with syrpc.Client(settings) as cli:
            assert cli.call("echo", 1, timeout=20) == 1
