"""The chaos proxy itself: it forwards, delays, resets and refuses as told."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL, require_postgres
from tests.reliability.chaos_proxy import ChaosProxy, chaos_proxy


@pytest.fixture
def proxy() -> Iterator[ChaosProxy]:
    require_postgres()
    url = sa.make_url(PG_ADMIN_URL)
    with chaos_proxy((url.host or "127.0.0.1", url.port or 5432)) as running:
        yield running


def _engine(proxy: ChaosProxy) -> sa.Engine:
    url = sa.make_url(PG_ADMIN_URL).set(
        drivername="postgresql+psycopg2", host="127.0.0.1", port=proxy.port
    )
    return sa.create_engine(url, connect_args={"connect_timeout": 2}, poolclass=sa.NullPool)


def test_forwards_and_delays(proxy: ChaosProxy) -> None:
    engine = _engine(proxy)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select 41 + 1")).scalar() == 42
        proxy.set_mode("delay", latency=0.01)
        assert conn.execute(sa.text("select 'slow but there'")).scalar() == "slow but there"
    assert proxy.connections_accepted == 1
    engine.dispose()


def test_down_resets_open_connections_and_refuses_new_ones(proxy: ChaosProxy) -> None:
    engine = _engine(proxy)
    conn = engine.connect()
    conn.execute(sa.text("select 1"))
    proxy.down()
    assert proxy.connections_reset == 1
    with pytest.raises(sa.exc.OperationalError):
        conn.execute(sa.text("select 1"))
    conn.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    with pytest.raises(sa.exc.OperationalError), engine.connect():
        pass
    proxy.up()
    with engine.connect() as again:
        assert again.execute(sa.text("select 1")).scalar() == 1
    engine.dispose()


def test_blackhole_swallows_until_reset(proxy: ChaosProxy) -> None:
    raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    proxy.set_mode("blackhole")
    # A PostgreSQL SSLRequest packet: the server would answer one byte; nothing comes.
    raw.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")
    raw.settimeout(0.3)
    with pytest.raises(TimeoutError):
        raw.recv(1)
    assert proxy.reset_all() == 1
    raw.settimeout(2)
    with pytest.raises(ConnectionResetError):
        raw.recv(1)
    raw.close()
