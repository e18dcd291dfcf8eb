"""A TCP proxy to Redis that breaks the connection carrying a chosen command after
Redis has received it and before its reply gets back: the lost-reply case."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class ReplyCut:
    """Forwards to `upstream`; cuts the first connection that sends `command` once."""

    def __init__(self, upstream: tuple[str, int], command: bytes) -> None:
        self.upstream = upstream
        self.command = command.upper()
        self.cuts = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._muted: set[socket.socket] = set()

    def serve(self) -> None:
        """Accept connections until the listener closes (run in a thread)."""
        with suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.upstream)
                threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
                threading.Thread(target=self._replies, args=(server, client), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket) -> None:
        with suppress(OSError):
            while data := client.recv(65536):
                cut = self._take_cut(data)
                if cut:
                    self._muted.add(server)  # its reply is never forwarded
                server.sendall(data)
                if cut:
                    threading.Event().wait(0.2)  # Redis runs it meanwhile
                    break
        for sock in (client, server):
            sock.close()

    def _replies(self, server: socket.socket, client: socket.socket) -> None:
        with suppress(OSError):
            while (data := server.recv(65536)) and server not in self._muted:
                client.sendall(data)

    def _take_cut(self, data: bytes) -> bool:
        with self._lock:
            if self.cuts == 0 and self.command in data.upper():
                self.cuts += 1
                return True
            return False

    def close(self) -> None:
        """Stop accepting connections."""
        self._listener.close()


@contextmanager
def reply_cut(host: str, port: int, command: bytes) -> Iterator[ReplyCut]:
    """A running `ReplyCut` in front of Redis at host:port."""
    proxy = ReplyCut((host, port), command)
    threading.Thread(target=proxy.serve, daemon=True).start()
    try:
        yield proxy
    finally:
        proxy.close()
