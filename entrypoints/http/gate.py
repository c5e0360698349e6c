"""The entrance gate: what every request passes before its route does any work (入口闸).

A pure ASGI middleware (not ``BaseHTTPMiddleware``: that one only sees a request once the
route is about to run), so it can refuse before the body is received:

1. **Token first.** A route whose dependencies include :func:`entrypoints.http.deps.principal`
   needs a token; the gate checks it with :meth:`entrypoints.http.auth.TokenStore.authenticate`
   (the same check, not a copy) and answers 401 (or whatever that check raises) without
   reading one byte of the body. The principal is kept for the route, which then does not
   check the token a second time. Routes without that dependency (``/health``, the web
   page, the API documentation) and unknown paths pass as before.
2. **Body size.** Each route has a body limit (:mod:`infra.limits`). A declared
   ``Content-Length`` over it is refused at once; a body without one (chunked) is counted
   as it arrives and reading stops at the limit. Either way: 413 ``BODY_TOO_LARGE``.
3. **JSON shape.** A JSON body (at most 64 KiB by then) with too many keys or nested too
   deep is refused with 422 ``BODY_TOO_COMPLEX`` before the framework validates it (that
   validation runs on the event loop, whatever kind of function the route is).
4. **Heavy work.** Imports and exports hold one of a few slots per kind while they run; when
   every slot is taken the request is refused at once with 503 ``SERVER_BUSY`` and
   ``Retry-After``. That 503 is deliberate: the work was not started, nothing was written,
   and the caller should send the same request again later.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any, Awaitable, Callable, Iterable, Iterator

import anyio
from fastapi.routing import APIRoute
from starlette.routing import compile_path

from ledger.domain.errors import DomainError
from entrypoints.http import deps
from entrypoints.http.api_messages import DEFAULT_LANG, lang_of_header, localized
from infra import limits
from ledger.log import get_logger

log = get_logger("entrypoints.http.gate")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class BodyRefused(Exception):
    """Raised into the route when its body passes the limit or arrives too slowly (the gate answers)."""


class _Rule:
    """What the gate knows about one route."""

    __slots__ = ("path", "methods", "pattern", "needs_token", "body_limit", "json_body", "heavy")

    def __init__(self, route: APIRoute | None, path: str | None = None) -> None:
        self.path = path
        self.methods: set[str] = set(route.methods or ()) if route is not None else set()
        self.pattern = compile_path(path)[0] if path else None
        self.needs_token = route is not None and _depends_on(route.dependant, deps.principal)
        self.body_limit = limits.body_limit(path)
        self.json_body = route is not None and route.body_field is not None
        self.heavy = limits.HEAVY_ROUTES.get(path or "")


_PUBLIC = _Rule(None)


def _depends_on(dependant: Any, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def api_routes(routes: Iterable[Any], prefix: Callable[[Any], str] = lambda r: r.path) -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) of every FastAPI route, also those of included routers.

    Older FastAPI copies an included router's routes into the app's list; newer versions keep
    the router as one entry (with the include's prefix in ``include_context``). The gate reads
    both, and matches paths itself, so it does not depend on how the framework routes.
    """
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix(route), route
        elif hasattr(route, "original_router"):
            context = getattr(route, "include_context", None)
            path_for = context.path_for if context is not None and hasattr(context, "path_for") else prefix
            yield from api_routes(route.original_router.routes, path_for)


def refusal(status: int, code: str, message: str, **details: Any) -> DomainError:
    error = DomainError(code, message, **details)
    error.http_status = status
    return error


def too_large(limit: int) -> DomainError:
    return refusal(413, "BODY_TOO_LARGE",
                   f"请求体超过上限 {limit:,} 字节，未处理；请缩小或拆分后重发 "
                   f"(the body is larger than this route takes, {limit:,} bytes; nothing was done)",
                   limit_bytes=limit)


def too_slow(seconds: float) -> DomainError:
    return refusal(408, "BODY_TOO_SLOW",
                   f"请求体 {seconds:g} 秒内未传完，未处理；请检查网络后重发 "
                   f"(the body did not arrive within {seconds:g} s; nothing was done)", limit_seconds=seconds)


def json_shape_problem(body: bytes) -> DomainError | None:
    """BODY_TOO_COMPLEX when the JSON has too many keys or is nested too deep; None otherwise
    (also for a body that is not JSON: the framework answers that one with its usual 422)."""
    # Upper bounds from the bytes: every key is followed by a colon, every level opens with { or [.
    if body.count(b":") <= limits.JSON_MAX_KEYS and body.count(b"{") + body.count(b"[") <= limits.JSON_MAX_DEPTH:
        return None
    try:
        value = json.loads(body)
    except RecursionError:
        keys, depth = None, None
    except ValueError:
        return None
    else:
        keys, depth = _measure(value)
        if keys <= limits.JSON_MAX_KEYS and depth <= limits.JSON_MAX_DEPTH:
            return None
    found = "nested too deep to parse" if depth is None else f"{keys:,}+ keys, depth {depth}+"
    return refusal(422, "BODY_TOO_COMPLEX",
                   f"请求体的字段过多或嵌套过深，未处理 (the JSON body has {found}; at most "
                   f"{limits.JSON_MAX_KEYS} keys and depth {limits.JSON_MAX_DEPTH} are read)",
                   max_keys=limits.JSON_MAX_KEYS, max_depth=limits.JSON_MAX_DEPTH)


def _measure(value: Any) -> tuple[int, int]:
    """(keys, depth) of a parsed JSON value, stopping as soon as either passes its limit."""
    keys, deepest, stack = 0, 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            keys += len(item)
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if keys > limits.JSON_MAX_KEYS or deepest > limits.JSON_MAX_DEPTH:
            break
        stack.extend((c, level + 1) for c in children)
    return keys, deepest


async def _answer(send: Send, error: DomainError, headers: dict[str, str] | None = None,
                  lang: str = DEFAULT_LANG) -> None:
    """The refusal as JSON, its message in the language the request asked for (Accept-Language)."""
    body = json.dumps(localized(error, lang), ensure_ascii=False).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           (b"connection", b"close")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": error.http_status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class EntranceGate:
    """ASGI middleware: token, body size, JSON shape and heavy-work slots, before the route runs."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.busy: Counter[str] = Counter()
        self._rules: list[_Rule] | None = None

    def _rule(self, scope: Scope) -> _Rule:
        if self._rules is None:  # the routes are all there by the first request
            self._rules = [_Rule(route, path) for path, route in api_routes(scope["app"].router.routes)]
        path, method = scope.get("path", ""), scope.get("method", "")
        for rule in self._rules:
            if method in rule.methods and rule.pattern is not None and rule.pattern.match(path):
                return rule
        return _PUBLIC  # the documentation, unknown paths and methods: the router answers those

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self._rule(scope)
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", []):  # the first of a repeated header, as Starlette reads it
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        lang = lang_of_header(headers.get("accept-language"))
        if rule.needs_token:
            try:
                who = scope["app"].state.tokens.authenticate(headers.get("authorization"))
            except DomainError as e:
                log.info("request_refused_at_gate", code=e.code, status=e.http_status, path=scope.get("path"))
                await _answer(send, e, {"WWW-Authenticate": "Bearer"} if e.http_status == 401 else None, lang)
                return
            state = scope.setdefault("state", {})
            state.update(principal=who, user=who.user, role=who.role.value)

        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > rule.body_limit:
            await self._refuse(send, too_large(rule.body_limit), lang=lang)
            return

        counted = _CountedBody(receive, rule.body_limit)
        if rule.json_body and scope.get("method") in _BODY_METHODS:
            try:
                body = await counted.read_all()
            except BodyRefused:
                await self._refuse(send, counted.error or too_large(rule.body_limit), lang=lang)
                return
            problem = json_shape_problem(body)
            if problem is not None:
                await self._refuse(send, problem, lang=lang)
                return
            counted.replay(body)

        if rule.heavy is None:
            await self._run(scope, counted, send, lang)
            return
        if not await self._take_slot(rule.heavy):
            slots = limits.HEAVY_SLOTS[rule.heavy]
            await self._refuse(send, refusal(
                503, "SERVER_BUSY",
                f"服务器正忙（{slots} 个{rule.heavy}任务正在处理），请 {limits.BUSY_RETRY_AFTER_SECONDS} 秒后重发同一请求 "
                f"(every {rule.heavy} slot stayed taken for {limits.BUSY_WAIT_SECONDS:g} s; nothing was started; "
                f"send the same request again later)",
                kind=rule.heavy, slots=slots, retry_after_seconds=limits.BUSY_RETRY_AFTER_SECONDS),
                {"Retry-After": str(limits.BUSY_RETRY_AFTER_SECONDS)}, lang=lang)
            return
        try:
            await self._run(scope, counted, send, lang)
        finally:
            self.busy[rule.heavy] -= 1

    async def _take_slot(self, kind: str) -> bool:
        """A slot of ``kind`` (True), waiting for one at most BUSY_WAIT_SECONDS (False then).

        The body has not been read yet: a waiting request holds a connection, not memory.
        One event loop runs the gate, so checking and taking need no lock.
        """
        deadline = time.monotonic() + limits.BUSY_WAIT_SECONDS
        while self.busy[kind] >= limits.HEAVY_SLOTS[kind]:
            if time.monotonic() >= deadline:
                return False
            await anyio.sleep(0.02)
        self.busy[kind] += 1
        return True

    async def _refuse(self, send: Send, error: DomainError, headers: dict[str, str] | None = None, *,
                      lang: str = DEFAULT_LANG) -> None:
        log.info("request_refused_at_gate", code=error.code, status=error.http_status)
        await _answer(send, error, headers, lang)

    async def _run(self, scope: Scope, counted: _CountedBody, send: Send, lang: str = DEFAULT_LANG) -> None:
        """Run the route; if its body passed the limit meanwhile, drop whatever it answered and send 413.

        (The framework turns an error raised while reading the body into its own 400, so the
        gate keeps the answer in its own hands rather than rely on the exception arriving.)
        """
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if counted.error is not None:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted.receive, guarded_send)
        except BodyRefused:
            pass
        except Exception:
            if counted.error is None:
                raise
        if counted.error is not None and not started:
            await self._refuse(send, counted.error, lang=lang)


class _CountedBody:
    """The request's ``receive``, counting body bytes, stopping at the limit and at the deadline."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self.limit = limit
        self.seen = 0
        self.error: DomainError | None = None
        self._deadline = time.monotonic() + limits.BODY_READ_SECONDS
        self._done = False
        self._replay: list[Message] = []

    async def receive(self) -> Message:
        if self._replay:
            return self._replay.pop(0)
        if self.error is not None:
            raise BodyRefused()
        if self._done:  # after the body only a disconnect comes, whenever it comes
            return await self._receive()
        with anyio.move_on_after(max(self._deadline - time.monotonic(), 0)) as waited:
            message = await self._receive()
        if waited.cancelled_caught:
            self.error = too_slow(limits.BODY_READ_SECONDS)
            raise BodyRefused()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                self.error = too_large(self.limit)
                raise BodyRefused()
            self._done = not message.get("more_body", False)
        return message

    async def read_all(self) -> bytes:
        chunks = []
        while True:
            message = await self.receive()
            if message["type"] != "http.request":
                self._replay.append(message)  # a disconnect: the route will see it
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def replay(self, body: bytes) -> None:
        """Hand the body read by :meth:`read_all` to the route as one message."""
        self._replay.insert(0, {"type": "http.request", "body": body, "more_body": False})
