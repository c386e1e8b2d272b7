"""Sockets inside another network namespace (setns on a short-lived thread), and a TCP forwarder built on them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import threading
from collections.abc import Callable

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(netns: str | None, make: Callable[[], socket.socket]) -> socket.socket:
    """Run `make` on a thread that has entered /run/netns/<netns> (None: this namespace); the socket it returns
    stays in that namespace. The thread ends right after, so no other code runs in the namespace."""
    if netns is None:
        return make()
    box: dict = {}

    def work() -> None:
        fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {netns} failed")
            box["socket"] = make()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc
        finally:
            os.close(fd)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["socket"]


def listen(netns: str | None, address: str, port: int) -> socket.socket:
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(64)
        return sock

    return in_netns(netns, make)


def connect(netns: str | None, address: str, port: int, timeout: float = 5) -> socket.socket:
    return in_netns(netns, lambda: socket.create_connection((address, port), timeout=timeout))


class Forwarder:
    """Accept in one namespace, connect in another, pump bytes both ways. close() stops accepting."""

    def __init__(self, listener: socket.socket, target_netns: str, target: tuple[str, int]) -> None:
        self.listener = listener
        self.target_netns, self.target = target_netns, target
        self.port = listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = connect(self.target_netns, *self.target)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(timeout=5)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
