"""The original syrpc-python's own test cases (syrpc/syrp_test.py), ported
to a real server, and the drop-in API's settings and return values."""

import logging
import os
import time
import uuid

import pytest

import syrpc
import syrpc.client as client
import syrpc.common as cmn
import syrpc.constants as const
import syrpc.server as server
from conftest import create_database, one, stats, wait_for

EXPECTED_DATA = [{'foo': 'bar'}, {'baz': 9001}]
TYPE = 'ping'


@pytest.fixture
def rpc(app, dsn):
    """The original's TestBase: a Server and a Client of one app (amq_msg_ttl 1)."""
    settings = {
        'app_name': app,
        'dsn': dsn,
        'amq_host': 'virtual',          # the original's settings: ignored with a dsn
        'amq_transport': 'memory',
        'amq_msg_ttl': 1,
    }
    srv = server.Server(settings)
    cli = client.Client(settings)
    yield srv, cli
    del cli
    del srv


def test_put_request(rpc):
    srv, cli = rpc
    result_id = cli.put_request(TYPE, EXPECTED_DATA)
    assert result_id is not None
    assert isinstance(result_id, uuid.UUID)
    srv.get_request()


def test_get_result(rpc):
    srv, cli = rpc
    result_id = cli.put_request(TYPE, EXPECTED_DATA)
    (type_, srv_result_id, data) = srv.get_request()
    assert type_ == TYPE
    assert srv_result_id == str(result_id)
    srv.put_result(srv_result_id, data)
    result = cli.get_result(result_id)
    assert result == {'result_id': str(result_id), 'data': EXPECTED_DATA}


def test_get_result_timeout(rpc):
    _, cli = rpc
    with pytest.raises(syrpc.EmptyException):
        cli.get_result('foo-bar-baz', 1)


def test_wrong_result_id(rpc):
    """The original: a result for another id is not taken by get_result."""
    srv, cli = rpc
    first = cli.put_request(TYPE, {'n': 1})
    second = cli.put_request(TYPE, {'n': 2})
    for _ in range(2):
        (_, rid, data) = srv.get_request(timeout=5)
        srv.put_result(rid, data)
    assert cli.get_result(second, 5) == {'result_id': str(second), 'data': {'n': 2}}
    assert cli.get_result(first, 5) == {'result_id': str(first), 'data': {'n': 1}}


def test_get_request_empty(rpc):
    srv, _ = rpc
    with pytest.raises(server.EmptyException):
        srv.get_request(timeout=0)


def test_get_request_not_found(app):
    """The original raised QueueNotFoundException for a missing queue: here, a missing extension."""
    db = create_database("syrpc_python_noext")
    with pytest.raises(server.QueueNotFoundException) as exc:
        server.Server({'app_name': app, 'dsn': 'dbname=' + db})
    assert 'CREATE EXTENSION syrpc' in str(exc.value)


def test_modules_of_the_original():
    assert cmn.EmptyException is syrpc.EmptyException is server.EmptyException is client.EmptyException
    assert cmn.QueueNotFoundException is syrpc.QueueNotFoundException is server.QueueNotFoundException
    assert isinstance(cmn.lg, logging.Logger)
    assert const.General.TIMEOUT is None and const.AMQ.MSG_TTL == 10
    assert isinstance(syrpc.__version__, str)


# ---- settings ----

def test_missing_app_name_is_a_clear_error(dsn):
    with pytest.raises(syrpc.SettingsError) as exc:
        syrpc.Client({'app_anme': 'syrpc', 'dsn': dsn})     # the docs' typo
    assert "'app_name'" in str(exc.value) and "app_anme" in str(exc.value)
    with pytest.raises(syrpc.SettingsError, match="app_name"):
        syrpc.Server({'dsn': dsn})
    with pytest.raises(syrpc.SettingsError):
        syrpc.Client({'app_name': 'bad name!', 'dsn': dsn})
    with pytest.raises(syrpc.SettingsError):
        syrpc.Client({'app_name': 'x' * 64, 'dsn': dsn})
    with pytest.raises(syrpc.SettingsError):
        syrpc.Client(None)
    with pytest.raises(syrpc.SettingsError, match="timeout"):
        syrpc.Client({'app_name': 'ok', 'dsn': dsn, 'timeout': -1})


def test_unknown_keys_are_ignored(app, dsn):
    settings = {'app_name': app, 'dsn': dsn, 'amq_virtualhost': '/', 'amq_num_queues': 64,
                'amq_transport': 'memory', 'something_else': object()}
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        rid = cli.put_request('echo', 1)
        assert srv.get_request(5)[1] == str(rid)


def test_amq_host_user_password_without_dsn(app, database, monkeypatch):
    """Without a dsn: amq_host, amq_user and amq_password are host, user and
    password; the rest comes from the PG* environment."""
    monkeypatch.setenv('PGDATABASE', database)
    host = os.environ['PGHOST']
    settings = {'app_name': app, 'amq_host': host, 'amq_user': os.environ.get('PGUSER', 'postgres'),
                'amq_password': 'unused-with-trust'}
    with syrpc.Client(settings) as cli:
        assert one_value(cli, "SELECT current_database()") == database
    monkeypatch.setenv('PGHOST', '/nonexistent')     # amq_host wins over PGHOST
    with syrpc.Client(settings) as cli:
        assert cli.put_request('echo', 1)
    dsn, kw = syrpc._proto.Config(settings).connect_args()
    assert (dsn, kw['host'], kw['user'], kw['password']) == ('', host, settings['amq_user'], 'unused-with-trust')
    dsn, kw = syrpc._proto.Config(dict(settings, dsn='dbname=x')).connect_args()
    assert dsn == 'dbname=x' and 'host' not in kw       # a dsn: amq_* are not used


def one_value(rpc, query):
    pg = rpc._link.conn
    return pg.execute(query).fetchone()[0]


def test_amq_msg_ttl_and_amq_ttl_configure_the_app(app, dsn, sql):
    with syrpc.Client({'app_name': app, 'dsn': dsn, 'amq_msg_ttl': 2, 'amq_ttl': 60, 'lease_time': 7,
                       'max_attempts': 5}):
        pass
    row = sql.execute("SELECT extract(epoch FROM result_ttl), extract(epoch FROM request_ttl),"
                      " extract(epoch FROM lease_time), max_attempts FROM syrpc_apps WHERE app = %s",
                      (app,)).fetchone()
    assert tuple(float(v) for v in row) == (2.0, 60.0, 7.0, 5.0)
    # the defaults are the original's: a settings dict without them changes nothing
    with syrpc.Client({'app_name': app, 'dsn': dsn}):
        pass
    assert float(one(sql, "SELECT extract(epoch FROM result_ttl) FROM syrpc_apps WHERE app = %s", app)) == 2.0


def test_amq_msg_ttl_expires_results(app, dsn, sql):
    """A result not taken within amq_msg_ttl is gone (UnknownResult, an EmptyException)."""
    settings = {'app_name': app, 'dsn': dsn, 'amq_msg_ttl': 0.5}
    with syrpc.Client(settings) as cli, syrpc.Server(settings) as srv:
        rid = cli.put_request('echo', 1)
        srv.put_result(srv.get_request(5)[1], 1)
        wait_for(lambda: one(sql, "SELECT results_waiting FROM syrpc_stats WHERE app = %s", app) == 0,
                 what="the result's amq_msg_ttl to pass")
        with pytest.raises(syrpc.EmptyException):
            cli.get_result(rid, 1)


def test_type_is_stripped(rpc):
    srv, cli = rpc
    cli.put_request('  ping \t', 1)
    assert srv.get_request(5)[0] == 'ping'


def test_settings_timeout_is_the_default(app, dsn):
    settings = {'app_name': app, 'dsn': dsn, 'timeout': 0.3}
    with syrpc.Server(settings) as srv, syrpc.Client(settings) as cli:
        t0 = time.monotonic()
        with pytest.raises(syrpc.EmptyException):
            srv.get_request()
        with pytest.raises(syrpc.EmptyException):
            cli.get_result(cli.put_request('x', 1))
        assert time.monotonic() - t0 < 10
        assert srv.get_request(timeout=5)[0] == 'x'     # an explicit timeout wins


def test_put_result_returns_none(rpc):
    srv, cli = rpc
    cli.put_request(TYPE, 1)
    assert srv.put_result(srv.get_request(5)[1], 2) is None


def test_results_with_any_json(rpc, sql, app):
    srv, cli = rpc
    values = [None, 0, -1.5, 2 ** 70, "päivää \u2603", [], {}, {"a": [1, {"b": None}]}, True]
    ids = [cli.put_request(TYPE, v) for v in values]
    for v in values:
        (_, rid, data) = srv.get_request(5)
        srv.put_result(rid, data)
    assert [cli.get_result(i, 5)['data'] for i in ids] == values
    assert stats(sql, app) == (0, 0, 0)
