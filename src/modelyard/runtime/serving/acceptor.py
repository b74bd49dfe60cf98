"""Taking connections from the listening socket that an instance's workers share.

Every worker waits on the same socket, and a new connection wakes all of them. asyncio's own
server then takes every pending connection in one go, so a worker that happened to be awake
receiving a request would also take the connection an idle sibling was about to take, and
that request would wait behind its own. In the transform benchmark one of two workers sat
idle for about a third of the run that way, while the other had a request queued.

So an *exclusive* worker takes at most one connection per wake-up. Once it has taken one, or
a request has started arriving, it takes no more (its siblings take them) until it has no
request in hand. This is how pre-forking servers' synchronous workers balance load. A slow
client must not keep the worker from the rest: after ``HOLD_SECONDS`` it takes connections
again whatever is pending. A worker with no sibling, or one that batches concurrent requests,
is not exclusive: it takes every pending connection at each wake-up, as asyncio does (one a
wake-up left a router's burst of 64 new connections waiting up to 2 s in the backlog).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable

#: the longest a fresh connection or a request still arriving stops the worker taking more
HOLD_SECONDS = 0.05
#: how long to stop accepting after the process ran out of descriptors or memory
_RETRY_SECONDS = 1.0
#: the most connections a non-exclusive worker takes at one wake-up (asyncio's default)
_BURST = 100


class Acceptor:
    """Accepts on ``sock`` for one worker's event loop and builds each connection's protocol."""

    def __init__(self, sock: socket.socket, protocol: Callable[[], asyncio.Protocol],
                 exclusive: bool) -> None:
        self.sock = sock
        self.protocol = protocol
        self.exclusive = exclusive
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._accepting = False
        self._holders: set[object] = set()
        self._hold_timer: asyncio.TimerHandle | None = None
        sock.setblocking(False)
        self._resume()

    def hold(self, holder: object) -> None:
        """``holder`` (a connection) has a request coming or arriving: take no more for now."""
        if not self.exclusive or self.closed:
            return
        self._holders.add(holder)
        if self._accepting and self._hold_timer is None:
            self._pause()
            self._hold_timer = self._loop.call_later(HOLD_SECONDS, self._resume)

    def release(self, holder: object) -> None:
        """``holder`` has nothing in hand any more (answered, refused or closed)."""
        if holder in self._holders:
            self._holders.discard(holder)
            if not self._holders:
                self._resume()

    def close(self) -> None:
        """Take no more connections (the socket stays open for the other workers)."""
        self.closed = True
        self._pause()

    def _resume(self) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        if not self._accepting and not self.closed:
            self._loop.add_reader(self.sock.fileno(), self._accept)
            self._accepting = True

    def _pause(self) -> None:
        if self._accepting:
            self._loop.remove_reader(self.sock.fileno())
            self._accepting = False

    def _accept(self) -> None:
        for _ in range(1 if self.exclusive else _BURST):
            try:
                client, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # none left: a sibling took it, or the client gave up
            except OSError as e:  # out of descriptors or memory: wait, as asyncio's server does
                print(f"Not accepting connections for {_RETRY_SECONDS:g} s: {e}", file=sys.stderr)
                self._pause()
                self._loop.call_later(_RETRY_SECONDS, self._resume)
                return
            self._loop.create_task(self._connect(client))

    async def _connect(self, client: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self.protocol, client)
        except OSError:  # the client left before its transport was made
            client.close()
