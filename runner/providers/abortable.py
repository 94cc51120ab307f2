"""Connections that a cancelled call can cut off.

A blocking ``requests`` call runs on a worker thread and cannot be interrupted there; when its
caller is cancelled, the socket of the connection it is using is shut down instead, so the
worker's read fails at once and the thread ends. Connections register with the call of the
thread using them, through urllib3 pool and connection subclasses that an ``HTTPAdapter``
installs, so a pooled connection reused by a later call belongs to that call.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from requests.adapters import DEFAULT_POOLBLOCK, HTTPAdapter
from urllib3 import ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


@contextlib.contextmanager
def running(call: Call) -> Iterator[None]:
    """Make ``call`` the current one of this thread while the block runs."""
    _running.call = call
    try:
        yield
    finally:
        _running.call = None


_running = threading.local()
_ownership = threading.Lock()


class Aborted(Exception):
    """Raised on the worker thread when an aborted call tries to connect or send."""


class Call:
    """A call made by :meth:`HttpClient.post_json_async`, which its caller can abort.

    The worker thread running the call holds it in ``_running.call``. A connection claims the
    thread's call whenever it connects or sends a request, so one taken from the pool is claimed
    too, and putting it back in the pool releases it. Aborting shuts down the socket of the
    connection the call holds. ``_ownership`` orders claims, releases and aborts: an abort either
    finds the connection claimed and cuts it off or, coming first, makes the claim fail.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        """Set once the call is aborted; :meth:`HttpClient.post_json` starts no new attempt."""
        self.connection: _Connection | None = None
        """The connection the call is using, while it uses one."""
        self.sock: socket.socket | None = None
        """That connection's socket, kept after ``http.client`` lets go of it mid-reply."""
        self.expired = False
        """Whether it was stopped because its deadline passed (:meth:`expire`), not cancelled."""

    @property
    def aborted(self) -> bool:
        """Whether :meth:`abort` was called."""
        return self.stop.is_set()

    def expire(self) -> None:
        """Stop the call because its time is up: :meth:`abort`, remembering why."""
        self.expired = True
        self.abort()

    def abort(self) -> None:
        """Stop the call: nothing new starts, and the connection in use is cut off."""
        self.stop.set()
        with _ownership:
            connection = self.connection
            if connection is None or connection.owner is not self:
                return
            connection.severed = True
            for sock in (connection.sock, self.sock):
                if sock is not None:
                    _shut_down(sock)


def current_call() -> Call | None:
    call: Call | None = getattr(_running, "call", None)
    return call


def aborted() -> bool:
    call = current_call()
    return call is not None and call.aborted


def _shut_down(sock: object) -> None:
    # A TLS-in-TLS transport wraps the socket it reads from.
    raw = sock if isinstance(sock, socket.socket) else getattr(sock, "socket", None)
    if isinstance(raw, socket.socket):
        # The plain socket method: ssl.SSLSocket.shutdown would also drop the TLS state that the
        # worker thread is reading with.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(raw, socket.SHUT_RDWR)


def _claim(connection: _Connection) -> None:
    call = current_call()
    with _ownership:
        if call is not None and call.aborted:
            raise Aborted
        connection.owner = call
        if call is not None:
            call.connection = connection
            call.sock = connection.sock


def _release(connection: object) -> None:
    if not isinstance(connection, _Connection):
        return
    with _ownership:
        owner, connection.owner = connection.owner, None
        if owner is not None and owner.connection is connection:
            owner.connection = None
            owner.sock = None
        severed, connection.severed = connection.severed, False
    if severed:
        # Its socket was shut down: the pool gets it closed, to reconnect when next used.
        connection.close()


class _Connection(HTTPConnection):
    """An HTTP connection that the call using it can have cut off from another thread."""

    owner: Call | None = None
    """The call using the connection, if it is in use for one."""
    severed = False
    """Whether an abort shut its socket down."""

    def connect(self) -> None:
        """Connect, unless the current call was aborted before or while connecting."""
        _claim(self)
        super().connect()
        _claim(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        """Send a request for the current call, unless that call was aborted."""
        _claim(self)
        super().request(*args, **kwargs)


class _TLSConnection(_Connection, HTTPSConnection):
    """The HTTPS form of :class:`_Connection`."""


class _Pool(HTTPConnectionPool):
    """A pool of :class:`_Connection`; a connection put back belongs to no call."""

    ConnectionCls = _Connection

    def _put_conn(self, conn: Any) -> None:
        _release(conn)
        super()._put_conn(conn)


class _TLSPool(_Pool, HTTPSConnectionPool):
    """The HTTPS form of :class:`_Pool`."""

    ConnectionCls = _TLSConnection


class AbortableAdapter(HTTPAdapter):
    """An adapter whose connections, direct or through an HTTP proxy, can be aborted."""

    def init_poolmanager(
        self,
        connections: int,
        maxsize: int,
        block: bool = DEFAULT_POOLBLOCK,
        **pool_kwargs: Any,
    ) -> None:
        """The usual pool manager, making abortable connection pools."""
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """The usual proxy manager; an HTTP(S) proxy's pools are abortable too."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # SOCKS proxies keep their own connection classes.
        if isinstance(manager, ProxyManager):
            manager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}
        return manager
