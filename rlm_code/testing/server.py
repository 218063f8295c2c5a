"""`LocalProtocolServer`: the local protocol server on a background thread with its own loop.

Tests and the ``serve-local`` command are synchronous code, while aiohttp needs an event loop;
running the loop in a daemon thread lets a plain ``with run_local_server() as server:`` block
drive the server with any client, sync or async, and get a clean, bounded shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import ParamSpec

from aiohttp import web

from rlm_code.testing.app import build_app
from rlm_code.testing.limits import install_limits
from rlm_code.testing.scripted import ScriptedReply
from rlm_code.testing.state import (
    DEFAULT_MAX_RECORDED_BODY,
    DEFAULT_MAX_RECORDED_REQUESTS,
    DEFAULT_MODELS,
    PROTOCOLS,
    RecordedRequest,
    ServerConfig,
    ServerState,
)

__all__ = ["LocalProtocolServer", "is_loopback", "run_local_server"]

_P = ParamSpec("_P")

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0
_SHUTDOWN_GRACE_S = 1.0


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class LocalProtocolServer:
    """A loopback server speaking the OpenAI, Anthropic, Gemini, Ollama, TGI and llama.cpp APIs.

    See the `rlm_code.testing` package docstring for the behaviour. ``start()`` returns once the
    server listens; ``stop()`` closes every connection (hanging ones included) and joins the
    thread. Usable as a context manager.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        protocols: Iterable[str] | None = None,
        require_key: str | bool | None = None,
        latency_ms: int = 0,
        models: Iterable[str] | None = None,
        strict_models: bool = False,
        strict: bool = False,
        allow_remote: bool = False,
        max_recorded_requests: int = DEFAULT_MAX_RECORDED_REQUESTS,
        max_recorded_body: int = DEFAULT_MAX_RECORDED_BODY,
        ratelimit: tuple[int, float] | None = None,
    ) -> None:
        if not is_loopback(host) and not allow_remote:
            raise ValueError(
                f"refusing to bind the local protocol server to non-loopback host {host!r}: "
                "it accepts fake keys and is meant for this machine only; "
                "pass allow_remote=True (--allow-remote) to expose it"
            )
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {port}")
        chosen = PROTOCOLS if protocols is None else tuple(p.strip().lower() for p in protocols)
        unknown = [name for name in chosen if name not in PROTOCOLS]
        if unknown:
            raise ValueError(
                f"unknown protocol(s) {', '.join(unknown)}; known: {', '.join(PROTOCOLS)}"
            )
        if not chosen:
            raise ValueError("at least one protocol must be enabled")
        if isinstance(require_key, str) and not require_key:
            raise ValueError("require_key must be a non-empty key, True (any key) or None")
        if latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        if ratelimit is not None and (int(ratelimit[0]) < 1 or not float(ratelimit[1]) > 0):
            raise ValueError("ratelimit is (requests >= 1, window seconds > 0)")
        if max_recorded_requests < 0 or max_recorded_body < 0:
            raise ValueError("max_recorded_requests and max_recorded_body must not be negative")
        extra = [name for name in (models or ()) if name not in DEFAULT_MODELS]
        self.host = host
        self._bind_host = "127.0.0.1" if host.strip().lower() == "localhost" else host
        self._requested_port = port
        self._state = ServerState(
            ServerConfig(
                protocols=frozenset(chosen),
                require_key=require_key,
                latency_ms=latency_ms,
                models=DEFAULT_MODELS + tuple(dict.fromkeys(extra)),
                strict_models=strict_models,
                strict=strict,
                max_recorded_requests=max_recorded_requests,
                max_recorded_body=max_recorded_body,
                ratelimit=(int(ratelimit[0]), float(ratelimit[1])) if ratelimit else None,
            )
        )
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # -- addresses ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not running; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` without a trailing slash; wildcard binds use loopback."""
        host = self._bind_host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def protocols(self) -> tuple[str, ...]:
        return tuple(name for name in PROTOCOLS if name in self._state.config.protocols)

    @property
    def models(self) -> tuple[str, ...]:
        return self._state.config.models

    @property
    def base_urls(self) -> dict[str, str]:
        """The base URL a client of each enabled protocol is configured with."""
        urls = {
            "openai": self.openai_base_url,
            "anthropic": self.base_url,
            "gemini": self.base_url,
            "ollama": self.base_url,
            "tgi": self.base_url,
            "llamacpp": self.base_url,
        }
        return {name: urls[name] for name in self.protocols}

    # -- scripting and inspection ---------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the recorded requests, oldest first: the newest ``max_recorded_requests``
        ones, bodies cut to ``max_recorded_body`` bytes (see `RecordedRequest`)."""
        return self._state.requests()

    @property
    def recorded_bytes(self) -> int:
        """Bytes of request bodies held for `requests` now; bounded by the two limits."""
        return self._state.recorded_bytes()

    def clear_requests(self) -> None:
        self._state.clear_requests()

    @property
    def in_flight(self) -> int:
        """Requests being answered now (see `rlm_code.testing.limits`)."""
        return self._state.counter("in_flight")

    @property
    def max_in_flight(self) -> int:
        """The most requests answered at once since the start or `reset_counters()`."""
        return self._state.counter("max_in_flight")

    @property
    def connections_opened(self) -> int:
        """TCP connections that sent a request since the start or `reset_counters()`."""
        return self._state.counter("connections_opened")

    def reset_counters(self) -> None:
        """Zero `max_in_flight` and `connections_opened` (`in_flight` too: call it idle)."""
        self._state.reset_counters()

    def script_faults(self, modes: Iterable[str]) -> None:
        """Queue faults (names from FAULT_MODES, or "ok"); each next request takes one."""
        self._state.script_faults(modes)

    def pending_faults(self) -> list[str]:
        """Scripted faults not yet consumed."""
        return self._state.pending_faults()

    def set_reply(self, model: str, text: str | None) -> None:
        """Answer requests for ``model`` with ``text`` instead of the echo (None: echo again)."""
        self._state.set_reply(model, text)

    def queue_replies(self, replies: Iterable[ScriptedReply]) -> None:
        """Answer the next chat requests, in order, with these replies (tool calls, reasoning;
        see `rlm_code.testing.scripted`); the conventions apply again once they are used."""
        self._state.queue_replies(replies)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> LocalProtocolServer:
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        self._state.stopping.clear()
        self._ready.clear()
        self._startup_error = None
        thread = threading.Thread(target=self._thread_main, name="rlm-local-server", daemon=True)
        self._thread = thread
        thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise RuntimeError("the local protocol server did not start in time")
        if self._startup_error is not None:
            thread.join(_STOP_TIMEOUT_S)
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Stop listening, end open requests (hang, drip) and join the thread. Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self._state.stopping.set()
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(loop.stop)
        thread.join(_STOP_TIMEOUT_S + _SHUTDOWN_GRACE_S)
        self._thread = None
        self._loop = None

    def __enter__(self) -> LocalProtocolServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not running"
        return f"<LocalProtocolServer {where} protocols={','.join(self.protocols)}>"

    # -- the server thread ----------------------------------------------------------------------

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(self._startup())
            except BaseException as exc:  # reported to start()'s caller
                self._startup_error = exc
                self._ready.set()
                return
            self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
        finally:
            _cancel_leftovers(loop)
            loop.close()

    async def _startup(self) -> None:
        app = build_app(self._state)
        install_limits(app, self._state)  # load counters, x-ratelimit headers
        # access_log=None: URLs can carry a Gemini ``?key=``, and keys never go to a log.
        runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=_SHUTDOWN_GRACE_S
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._bind_host, self._requested_port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def _shutdown(self) -> None:
        # Hanging and dripping handlers poll this flag and close within ~50 ms; the runner
        # waits for them (at most _SHUTDOWN_GRACE_S) before closing the remaining connections.
        self._state.stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


def _started(
    server: Callable[_P, LocalProtocolServer],
) -> Callable[_P, AbstractContextManager[LocalProtocolServer]]:
    """``server``'s constructor as a context manager that starts it and stops it on exit.

    The arguments are ``LocalProtocolServer``'s own (one signature, typed through the
    `ParamSpec`), so an option added to the server is accepted by `run_local_server` as well.
    """

    @contextmanager
    def run_local_server(*args: _P.args, **kwargs: _P.kwargs) -> Iterator[LocalProtocolServer]:
        """Run a `LocalProtocolServer` (same arguments) for the duration of a ``with`` block."""
        with server(*args, **kwargs) as running:  # start(); stop() on the way out
            yield running

    return run_local_server


run_local_server = _started(LocalProtocolServer)
