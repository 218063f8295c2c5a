"""`LoopLocal`: one loop-bound resource (an aiohttp session, an async SDK client) per event
loop, closed when that loop shuts down."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger("rlm_code.http")

R = TypeVar("R")


class LoopLocal(Generic[R]):
    """One resource per event loop (aiohttp sessions, async SDK clients), closed when its loop
    shuts down.

    Such resources are tied to the loop they were created in. To close one while its loop is
    still alive we park an async generator at a `yield`: `asyncio.run` (and any loop that calls
    `shutdown_asyncgens`) closes every such generator before closing the loop, and the
    generator's `finally` closes the resource there. Without this, each `asyncio.run` would
    leave a pool of open sockets behind for the garbage collector.
    """

    def __init__(
        self,
        make: Callable[[], R],
        aclose: Callable[[R], Awaitable[Any]],
        is_closed: Callable[[R], bool] | None = None,
    ) -> None:
        self._make = make
        self._aclose = aclose
        self._is_closed = is_closed
        self._lock = threading.Lock()
        self._by_loop: dict[asyncio.AbstractEventLoop, tuple[R, AsyncGenerator[None, None]]] = {}

    def current(self) -> R | None:
        """The running loop's resource if it exists and is open, without awaiting (the
        common case of every call after the first; `get` creates it)."""
        found = self._by_loop.get(asyncio.get_running_loop())
        if found is not None and (self._is_closed is None or not self._is_closed(found[0])):
            return found[0]
        return None

    async def get(self) -> R:
        """The running loop's resource, created on first use in that loop."""
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is not None and (self._is_closed is None or not self._is_closed(found[0])):
            return found[0]
        resource = self._make()
        guard = self._guard(loop, resource)
        with self._lock:
            for old in [lp for lp in self._by_loop if lp.is_closed()]:
                del self._by_loop[old]
            self._by_loop[loop] = (resource, guard)
        await guard.__anext__()
        return resource

    async def _guard(
        self, loop: asyncio.AbstractEventLoop, resource: R
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                found = self._by_loop.get(loop)
                if found is not None and found[0] is resource:
                    del self._by_loop[loop]
            await self._aclose(resource)

    async def aclose(self) -> None:
        """Close the resource of the running loop."""
        found = self._by_loop.get(asyncio.get_running_loop())
        if found is not None:
            await found[1].aclose()

    def close(self) -> None:
        """Close every loop's resource from synchronous code, whichever loop owns it."""
        with self._lock:
            items = list(self._by_loop.items())
            self._by_loop.clear()
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, (_resource, guard) in items:
            if loop.is_closed():
                continue
            if loop is current:
                loop.create_task(guard.aclose())
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(guard.aclose(), loop)
                try:
                    future.result(timeout=2)
                except Exception:  # the other thread's loop is busy or stopping
                    log.debug("could not close a resource of another event loop in time")
            else:
                loop.run_until_complete(guard.aclose())
