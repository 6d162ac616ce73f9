"""A TCP proxy in front of Redis that can make the push server's tail deaf.

:meth:`RedisProxy.deafen` stops passing Redis's replies to the connections that
have sent ``XREAD`` (the tail's): their read never returns, while the connection
stays open and everything else, and every new connection, works. That is the
listener that is "healthy but silently not delivering".
"""
from __future__ import annotations

import socket
import threading

from tests.ports import free_port


class RedisProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.tails: set[socket.socket] = set()  # client sockets that sent XREAD
        self.deaf: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def deafen(self) -> int:
        """Stop replies to every connection that reads the stream now; returns how many."""
        with self.lock:
            self.deaf |= self.tails
            return len(self.deaf)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, client, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, client: socket.socket, from_client: bool) -> None:
        try:
            while data := source.recv(65536):
                if from_client and b"XREAD" in data.upper():
                    with self.lock:
                        self.tails.add(client)
                if not from_client and client in self.deaf:
                    continue  # swallowed: the tail waits for a reply that never comes
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self.listener.close()
