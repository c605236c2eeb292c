"""A TCP proxy on loopback that can delay, black-hole, reset and refuse connections.

It sits between penchant and the shared PostgreSQL server, so a test can take
"the database" away without touching the server that other tests use.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

__all__ = ["ChaosProxy", "chaos_proxy"]

_CHUNK = 65536


def _abort(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN: the peer sees a reset connection."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # Wakes a pump thread blocked in recv(), so the close below really happens now.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


class ChaosProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; the test switches its behaviour.

    Modes for live connections: ``pass`` (forward), ``delay`` (wait ``latency``
    seconds before forwarding each chunk), ``blackhole`` (read and discard: the
    peer waits for an answer that never comes). ``down()`` resets every live
    connection and stops listening, so new connections are refused; ``up()``
    listens again on the same port.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.latency = 0.0
        self.connections_accepted = 0
        self.connections_reset = 0
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._listener: socket.socket | None = None
        self._stopped = False
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port: int = probe.getsockname()[1]
        probe.close()
        self.up()

    # -------------------------------------------------------------- control
    def up(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self._listener = listener
        self.mode = "pass"
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and reset every open one."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self.reset_all()

    def reset_all(self) -> int:
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for client, server in pairs:
            _abort(client)
            _abort(server)
        self.connections_reset += len(pairs)
        return len(pairs)

    def set_mode(self, mode: str, *, latency: float = 0.0) -> None:
        if mode not in ("pass", "delay", "blackhole"):
            raise ValueError(mode)
        self.latency = latency
        self.mode = mode

    def close(self) -> None:
        self._stopped = True
        self.down()

    @property
    def live_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    # ------------------------------------------------------------ internals
    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: down() or close()
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _abort(client)
                continue
            pair = (client, server)
            with self._lock:
                self._pairs.add(pair)
                self.connections_accepted += 1
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink, pair), daemon=True).start()

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        pair: tuple[socket.socket, socket.socket],
    ) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                mode = self.mode
                if mode == "blackhole":
                    continue
                if mode == "delay" and self.latency > 0:
                    time.sleep(self.latency)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                known = pair in self._pairs
                self._pairs.discard(pair)
            if known:
                for sock in pair:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    with contextlib.suppress(OSError):
                        sock.close()


@contextlib.contextmanager
def chaos_proxy(upstream: tuple[str, int]) -> Iterator[ChaosProxy]:
    proxy = ChaosProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
