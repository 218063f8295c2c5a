"""Metering: every call checked against the budgets in effect before it starts, and counted
once when it ends — in the connector's tracker, in each usage scope in effect, in each budget
and in the persistent ledger — from one `CallRecord`.

`admit` runs before any I/O: the budgets may refuse the request (`BudgetExceededError`) or cap
its `max_tokens` and timeout to what is left. The scopes in effect are taken at that moment,
so a stream read later, elsewhere, still counts where it was started. With no budget and no
scope in effect, admitting a call costs one `ContextVar` read.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from rlm_code.core.exceptions import ModelError, ModelTimeoutError
from rlm_code.models.budget import BudgetGuard, StreamWatch, deadline_error
from rlm_code.models.call_record import CallRecord
from rlm_code.models.connection import Connection
from rlm_code.models.scopes import ACTIVE, Scope
from rlm_code.models.types import ChatRequest, Response, Usage
from rlm_code.models.usage import UsageTracker, monotonic_ms


class Ledger(Protocol):
    """What metering needs of the persistent ledger (`rlm_code.models.ledger.Ledger`)."""

    log_content: bool

    def write(self, record: CallRecord) -> None: ...

    def close(self) -> None: ...


log = logging.getLogger("rlm_code.metering")
_NOT_OPENED: Any = object()


class Metering:
    """The counters and checks of one connector (see the module docstring)."""

    def __init__(
        self, tracker: UsageTracker, open_ledger: Callable[[], Ledger | None] | None = None
    ) -> None:
        self.tracker = tracker
        self.guard: BudgetGuard | None = None  # the connector's own budget
        self._open_ledger = open_ledger
        self._ledger: Ledger | None = _NOT_OPENED if open_ledger else None

    @property
    def ledger(self) -> Ledger | None:
        """The ledger, opened on the first call that needs it (None when it is off)."""
        if self._ledger is _NOT_OPENED:
            assert self._open_ledger is not None
            try:
                self._ledger = self._open_ledger()
            except Exception as exc:  # a ledger that cannot open never breaks a call
                log.warning("usage ledger unavailable: %s", exc)
                self._ledger = None
        return self._ledger

    def close(self) -> None:
        """Release the ledger's database connection (a later call opens it again)."""
        ledger = self._ledger
        if ledger is not None and ledger is not _NOT_OPENED:
            ledger.close()

    def admit(self, conn: Connection, request: ChatRequest) -> tuple[ChatRequest, MeteredCall]:
        """Check the budgets in effect (raising before any I/O) and start counting the call."""
        scopes = ACTIVE.get()
        own = self.guard
        if own is None and not scopes:
            return request, MeteredCall(self, conn, scopes, None, False, request)
        guards = [own] if own is not None else []
        guards += [scope.guard for scope in scopes if scope.guard is not None]
        if not guards:
            return request, MeteredCall(self, conn, scopes, None, False, request)
        limits = [(guard, *guard.admit()) for guard in guards]
        lefts = [left for _, left, _ in limits if left is not None]
        times = [s for _, _, s in limits if s is not None]
        params = request.params
        capped_time = False
        if lefts and conn.adapter.route != "cli":  # the CLI route takes no max_tokens
            cap = min(lefts)
            if params.max_tokens is None or params.max_tokens > cap:
                params = replace(params, max_tokens=cap)
        if times:
            cap_s = max(0.001, min(times))
            if params.timeout is None or params.timeout > cap_s:
                params = replace(params, timeout=cap_s)
                capped_time = True
        if params is not request.params:
            request = replace(request, params=params)
        watch = StreamWatch(limits) if lefts or times else None
        return request, MeteredCall(self, conn, scopes, watch, capped_time, request, guards)


class MeteredCall:
    """One admitted call: counts it once when it ends."""

    __slots__ = (
        "_capped_time",
        "_guards",
        "conn",
        "metering",
        "request",
        "scopes",
        "started",
        "watch",
    )

    def __init__(
        self,
        metering: Metering,
        conn: Connection,
        scopes: tuple[Scope, ...],
        watch: StreamWatch | None,
        capped_time: bool,
        request: ChatRequest,
        guards: list[BudgetGuard] | None = None,
    ) -> None:
        self.metering = metering
        self.conn = conn
        self.scopes = scopes
        self.watch = watch
        self.request = request
        self._capped_time = capped_time
        self._guards = guards or []
        self.started = monotonic_ms()

    def finished(self, response: Response, streamed: bool) -> None:
        """Count a call that produced (part of) a reply."""
        self._count(response.usage, response, streamed, None)

    def failed(self, error: ModelError) -> ModelError:
        """Count a call that failed before any reply; returns the error to raise (a timeout
        caused by the budget's deadline becomes `BudgetExceededError`)."""
        self._count(None, None, False, type(error).__name__)
        if self._capped_time and isinstance(error, ModelTimeoutError):
            return deadline_error(self._guards)
        return error

    def _count(
        self, usage: Usage | None, response: Response | None, streamed: bool, error: str | None
    ) -> None:
        conn, m = self.conn, self.metering
        ledger = m.ledger
        prompt = reply = None
        if ledger is not None and ledger.log_content:
            prompt = _content(self.request)
            reply = response.text if response is not None else None
        record = CallRecord(
            time.time(),
            conn.spec.provider_id,
            conn.model,
            usage if usage is not None else Usage(),
            monotonic_ms() - self.started,
            response.finish_reason if response is not None else None,
            streamed,
            response is not None and not response.complete,
            error,
            tuple(scope.name for scope in self.scopes),
            _tags(self.scopes),
            prompt,
            reply,
        )
        m.tracker.record_call(record)
        for scope in self.scopes:
            scope.add(usage)
        for guard in self._guards:  # the budgets this call was admitted by
            guard.add(usage)
        if ledger is not None:
            ledger.write(record)


def _tags(scopes: tuple[Scope, ...]) -> dict[str, str]:
    if not scopes:
        return {}
    tags: dict[str, str] = {}
    for scope in scopes:
        tags.update(scope.tags)
    return tags


def _content(request: ChatRequest) -> str:
    """The prompt as the ledger keeps it (only with `log_content`): system and turns."""
    turns = [{"role": "system", "content": request.system}] if request.system else []
    turns += [{"role": m.role, "content": m.content} for m in request.messages]
    return json.dumps(turns, ensure_ascii=False)
