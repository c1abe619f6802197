"""HTTP routing, Express/Verb style: route patterns, middleware chains, dispatch.

Sans-I/O: `Router.dispatch(req, res)` runs the middleware and the route handler that apply to a
`verb.server.http.Request` and leaves the answer in a `verb.server.http.Response`. It returns None when
everything ran synchronously, or an awaitable when some handler or middleware was async; the
connection layer awaits it only then, so an all-sync chain creates no coroutine.

The contract with the connection layer:

- After `dispatch` (and after awaiting what it returned), `res` has been sent: by a handler, by
  the router (404, 405, OPTIONS, an `HTTPError`), or as an empty response when nobody sent
  anything (status 204 unless a handler set one with `res.status()`).
  The caller writes `res.to_bytes(head_request=req.method == "HEAD", keep_alive=...)`: HEAD
  requests run the GET route, and `to_bytes` drops the body.
- An exception from a handler travels back up the chain like any Python exception (an async
  middleware may catch it around `await next()`). If it leaves the chain and is an `HTTPError`
  (raised, or passed to `next(exc)`), `dispatch` answers it with its status, message and
  headers. Any other exception propagates out of `dispatch` or out of the awaitable; the caller
  passes it to `Router.handle_error(exc, res)`, which turns `res` into a generic 500, and logs
  it.
- The router's own answers (404, 405 with `Allow`, 204 to an unrouted OPTIONS with `Allow`) are
  filled in as the last step of the chain, not raised, so middleware sees them after `next()`.
- A sync middleware cannot wait for an async rest of the chain: its `next()` returns at once and
  the rest runs when the caller awaits what `dispatch` returned.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from verb.core.errors import HTTPError
from verb.server.http import Request, Response, decode_path_segment
from verb.server.options import Handler

__all__ = ["METHODS", "Router"]

# The methods routes are registered for; "ALL" matches every method.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ALL")

_SENDABLE = (str, bytes, bytearray, memoryview, dict, list)


def _split_path(path: str) -> list[str]:
    """Split a path into its segments, still encoded; a trailing slash is ignored ("/a/" = "/a")."""
    segments = path.split("/")[1:]
    if segments and not segments[-1]:
        segments.pop()
    return segments


def _decode_segments(path: str) -> list[str] | None:
    """The decoded segments of a request path, or None when it is not an origin-form path.

    Splitting comes before decoding, so "%2F" stays inside its segment (RFC 3986 §2.2).

    Raises:
        HTTPError: 400 for a percent-encoded sequence that is not UTF-8.
    """
    if not path.startswith("/"):
        return None
    return [decode_path_segment(segment) for segment in _split_path(path)]


def _decode_pattern_segment(path: str, segment: str) -> str:
    try:
        return decode_path_segment(segment)
    except HTTPError:
        raise ValueError(
            f"route {path!r}: {segment!r} is not valid percent-encoded UTF-8"
        ) from None


class _Node:
    """A position in the route tree: children by literal segment, one parameter child, one
    wildcard child, and the routes ending here (method -> (handler, parameter names))."""

    __slots__ = ("literals", "param", "routes", "wildcard")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.wildcard: _Node | None = None
        self.routes: dict[str, tuple[Handler, tuple[str, ...]]] = {}


def _pick(routes: dict[str, tuple[Handler, tuple[str, ...]]], method: str) -> Any:
    """The route for `method` at one node: its own, else GET's for HEAD, else ALL's."""
    route = routes.get(method)
    if route is None and method == "HEAD":
        route = routes.get("GET")
    if route is None:
        route = routes.get("ALL")
    return route


class _Deferred:
    """An awaitable that runs `step(awaitable, *rest)` when awaited.

    The router's async steps are built as these rather than as coroutines, so a step that will
    never be awaited (an exception cut the chain short) leaves nothing of ours unawaited, and
    `discard` closes the user's coroutine inside it: no "never awaited" warnings.
    """

    __slots__ = ("args", "started", "step")

    def __init__(self, step: Callable[..., Any], *args: Any) -> None:
        self.step = step
        self.args = args
        self.started = False

    def __await__(self) -> Any:
        self.started = True
        return self.step(*self.args).__await__()

    def discard(self) -> None:
        """Close what this step would have awaited, if it never started."""
        if not self.started:
            self.started = True
            _discard(self.args[0])


def _discard(awaitable: Any) -> None:
    if isinstance(awaitable, _Deferred):
        awaitable.discard()
    elif inspect.iscoroutine(awaitable) and inspect.getcoroutinestate(awaitable) == "CORO_CREATED":
        awaitable.close()


class _Completed:
    """What `next()` returns when the rest of the chain already finished: awaiting it is a no-op,
    so `await next()` works in async middleware whatever the rest of the chain is."""

    __slots__ = ()

    def __await__(self) -> Any:
        return iter(())


_COMPLETED = _Completed()


class _Next:
    """The `next` callback given to one middleware: runs the rest of the chain once."""

    __slots__ = ("called", "chain", "index", "pending")

    def __init__(self, chain: _Chain, index: int) -> None:
        self.chain = chain
        self.index = index
        self.called = False
        self.pending: Any = None

    def __call__(self, error: BaseException | None = None) -> Any:
        """Continue the chain; `next(exc)` raises `exc` instead (Express's `next(err)`).

        Returns:
            An awaitable: the rest of the chain, or an already completed one.
        """
        if error is not None:
            if isinstance(error, BaseException):
                raise error
            raise TypeError(f"next() takes an exception or nothing, not {error!r}")
        if self.called:
            raise RuntimeError("next() called twice by one middleware")
        self.called = True
        pending = self.chain.run(self.index)
        if pending is None:
            return _COMPLETED
        self.pending = pending
        return pending


class _Chain:
    """One dispatch: the middleware that apply, then the final handler."""

    __slots__ = ("middleware", "req", "res", "route")

    def __init__(
        self, req: Request, res: Response, middleware: list[Handler], route: Handler | _Responder
    ) -> None:
        self.req = req
        self.res = res
        self.middleware = middleware
        self.route = route

    def run(self, index: int) -> Any:
        """Run the chain from step `index`: None when it finished, else an awaitable."""
        if index < len(self.middleware):
            proceed = _Next(self, index + 1)
            try:
                result = self.middleware[index].fn(self.req, self.res, proceed)
            except BaseException:
                _discard(proceed.pending)
                raise
            if (
                result is None
                or result is _COMPLETED  # `return next()` on a finished rest
                or result is proceed.pending  # `return next()` on an async rest
                or not inspect.isawaitable(result)
            ):
                # A sync middleware that called next() on an async rest hands that rest on.
                return proceed.pending
            return _Deferred(self._after_middleware, result, proceed)
        route = self.route
        arity = route.arity
        if arity == 2:
            result = route.fn(self.req, self.res)
        elif arity == 1:
            result = route.fn(self.req)
        else:
            result = route.fn()
        return self._settle(result)

    async def _after_middleware(self, awaitable: Any, proceed: _Next) -> None:
        try:
            await awaitable
        except BaseException:
            _discard(proceed.pending)
            raise
        pending = proceed.pending
        if pending is not None and not pending.started:
            await pending  # the middleware called next() but did not await it

    def _settle(self, result: Any) -> Any:
        """Apply a route handler's return value: a sendable value is sent if nothing was."""
        if result is None:
            return None
        res = self.res
        if isinstance(result, _SENDABLE):
            if not res.sent:
                res.send(result)
            return None
        if isinstance(result, Response):
            return None
        if inspect.isawaitable(result):
            return _Deferred(self._settle_async, result)
        raise TypeError(
            f"route handler returned a {type(result).__name__}; return str, bytes, dict, list, "
            "the response, or None"
        )

    async def _settle_async(self, awaitable: Any) -> None:
        pending = self._settle(await awaitable)
        if pending is not None:
            await pending


def _finish(res: Response) -> None:
    """Send an empty response if nobody sent one: 204, or the status a handler set."""
    if not res.sent:
        if not res.status_set:
            res.status(204)
        res.send(None)


def _allow_header(methods: set[str]) -> str:
    allowed = set(methods)
    if "GET" in allowed:
        allowed.add("HEAD")
    allowed.add("OPTIONS")  # answered by the router when no route handles it
    return ", ".join(method for method in METHODS if method in allowed)


class _Responder:
    """A final step of the router's own (404, 405, OPTIONS), shaped like a route `Handler`."""

    __slots__ = ("arity", "fn")

    def __init__(self, fn: Callable[[Request, Response], None]) -> None:
        self.fn = fn
        self.arity = 2


def _not_found(req: Request, res: Response) -> None:
    # Answered, not raised: middleware code after `next()` runs and sees the 404.
    Router.handle_error(HTTPError(404, f"no route for {req.method} {req.raw_path}"), res)


class Router:
    """Routes and middleware of an HTTP app; see the module docstring for the dispatch contract.

    Route patterns: literal segments, `:name` parameters (one non-empty segment each) and an
    optional trailing `*` (the rest of the path, possibly empty, in `params["*"]`). A literal
    segment beats a parameter, which beats `*`; when the preferred branch has no route for the
    request, the others are tried. A trailing slash is ignored on both sides. Parameters are
    percent-decoded after the path is split, so `%2F` never splits a segment.
    """

    def __init__(self) -> None:
        """An empty router: every request gets 404."""
        self._root = _Node()
        self._middleware: list[tuple[tuple[str, ...], Handler]] = []

    # --- registration ---------------------------------------------------------------------------

    def add(self, method: str, path: str, handler: Callable[..., Any]) -> None:
        """Register `handler` for `method` requests to paths matching `path`.

        Args:
            method: One of get, post, put, patch, delete, head, options (any case), or "ALL".
            path: The pattern, e.g. "/users/:id", "/files/:dir/:name" or "/static/*".
            handler: `fn(req, res)` (or `fn(req)`, `fn()`), sync or async. It answers through
                `res`, or returns a str, bytes, dict or list to be sent with `res.send`.

        Raises:
            ValueError: An unknown method, an invalid pattern, or a route already registered
                for this method and pattern shape.
            TypeError: `handler` is not callable or cannot take its arguments.
        """
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise ValueError(
                f"unknown method {method!r}; use one of {', '.join(METHODS)} (any case)"
            )
        method = method.upper()
        resolved = Handler(handler, "route handler", 2)
        node = self._root
        names: list[str] = []
        segments = self._parse_pattern(path)
        for index, segment in enumerate(segments):
            if segment == "*":
                if index != len(segments) - 1:
                    raise ValueError(f"route {path!r}: '*' may only be the last segment")
                node.wildcard = node.wildcard or _Node()
                node = node.wildcard
                names.append("*")
            elif segment.startswith(":"):
                name = segment[1:]
                if not name.isidentifier():
                    raise ValueError(f"route {path!r}: parameter {segment!r} needs a name")
                if name in names:
                    raise ValueError(f"route {path!r}: parameter {name!r} appears twice")
                node.param = node.param or _Node()
                node = node.param
                names.append(name)
            else:
                if "*" in segment:
                    raise ValueError(
                        f"route {path!r}: '*' is only supported as a whole, final segment"
                    )
                node = node.literals.setdefault(_decode_pattern_segment(path, segment), _Node())
        if method in node.routes:
            raise ValueError(f"route {method} {path!r} is already registered")
        node.routes[method] = (resolved, tuple(names))

    def use(self, *args: Any) -> None:
        """Add middleware, run in the order added, before the route handler.

        `use(fn, ...)` applies to every request; `use("/api", fn, ...)` to "/api" and the
        paths below it ("/api/users", not "/apix"). Middleware runs for every request, matched
        or not (a 404 or 405 is the last step of the chain), Express's `fn(req, res, next)`:
        call `next()` to continue; don't call it after answering. It may be `async def`; then
        `await next()` runs the rest of the chain first. `next(exc)` raises `exc`.

        Raises:
            TypeError: No middleware given, a non-callable, or one that does not accept
                (req, res, next).
            ValueError: The prefix is not a literal path ("/api", no parameters).
        """
        prefix: tuple[str, ...] = ()
        if args and isinstance(args[0], str):
            path, args = args[0], args[1:]
            segments = self._parse_pattern(path)
            if any(segment.startswith(":") or "*" in segment for segment in segments):
                raise ValueError(f"middleware prefix {path!r} must be a literal path like '/api'")
            prefix = tuple(_decode_pattern_segment(path, segment) for segment in segments)
        if not args:
            raise TypeError("use() needs at least one middleware function")
        for middleware in args:
            resolved = Handler(middleware, "middleware", 3)
            if resolved.arity != 3:
                raise TypeError(
                    f"middleware {middleware!r} must accept (req, res, next); a function that "
                    "never receives next can never continue the chain"
                )
            self._middleware.append((prefix, resolved))

    @staticmethod
    def _parse_pattern(path: Any) -> list[str]:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"a route path must be a str starting with '/', got {path!r}")
        if any(char in path for char in "?# \t\r\n"):
            raise ValueError(f"a route path has no query, fragment or whitespace: {path!r}")
        return _split_path(path)

    # --- lookup ---------------------------------------------------------------------------------

    def _find(
        self,
        node: _Node,
        segments: list[str],
        index: int,
        values: list[str],
        method: str,
        allowed: set[str],
    ) -> tuple[Handler, dict[str, str]] | None:
        """Depth-first search in priority order; collects the methods seen into `allowed`."""
        if index == len(segments):
            if node.routes:
                route = _pick(node.routes, method)
                if route is not None:
                    return route[0], dict(zip(route[1], values))
                allowed.update(node.routes)
        else:
            segment = segments[index]
            child = node.literals.get(segment)
            if child is not None:
                found = self._find(child, segments, index + 1, values, method, allowed)
                if found is not None:
                    return found
            if node.param is not None and segment:
                values.append(segment)
                found = self._find(node.param, segments, index + 1, values, method, allowed)
                if found is not None:
                    return found
                values.pop()
        wildcard = node.wildcard
        if wildcard is not None and wildcard.routes:
            route = _pick(wildcard.routes, method)
            if route is not None:
                rest = "/".join(segments[index:])
                return route[0], dict(zip(route[1], [*values, rest]))
            allowed.update(wildcard.routes)
        return None

    def _middleware_for(self, segments: list[str]) -> list[Handler]:
        return [
            handler
            for prefix, handler in self._middleware
            if not prefix or tuple(segments[: len(prefix)]) == prefix
        ]

    def match(self, method: str, path: str) -> tuple[list[Handler], dict[str, str]] | None:
        """Find what handles `method` on `path`.

        Args:
            method: The request method (HEAD falls back to GET routes).
            path: The path as in the request target, still percent-encoded, without the query.

        Returns:
            `(chain, params)`: the `Handler` records of the applicable middleware followed by the
            route handler, and the decoded route parameters; None when no route matches
            (`dispatch` then answers 404 or 405).

        Raises:
            HTTPError: 400 for a percent-encoded sequence that is not UTF-8.
        """
        segments = _decode_segments(path)
        if segments is None:
            return None
        found = self._find(self._root, segments, 0, [], method.upper(), set())
        if found is None:
            return None
        handler, params = found
        return [*self._middleware_for(segments), handler], params

    # --- dispatch -------------------------------------------------------------------------------

    def _chain(self, req: Request, res: Response) -> _Chain:
        segments = _decode_segments(req.raw_path)
        allowed: set[str] = set()
        found = None
        if segments is not None:
            found = self._find(self._root, segments, 0, [], req.method, allowed)
        middleware = self._middleware_for(segments) if segments is not None else []
        if found is not None:
            route, req.params = found
        elif not allowed:
            route = _NOT_FOUND
        elif req.method == "OPTIONS":
            route = _Responder(_options_responder(_allow_header(allowed)))
        else:
            route = _Responder(_method_not_allowed(req.method, _allow_header(allowed)))
        return _Chain(req, res, middleware, route)

    def dispatch(self, req: Request, res: Response) -> Any:
        """Run the middleware and route handler for `req`, filling `res`.

        Args:
            req: The request; the router sets `req.params`.
            res: A fresh response.

        Returns:
            None when everything ran synchronously (`res` is then complete), or an awaitable
            the caller must await (then `res` is complete).

        Raises:
            Exception: Whatever a handler raised, other than `HTTPError`, which is answered
                here. Pass it to `handle_error` and log it.
        """
        try:
            pending = self._chain(req, res).run(0)
        except HTTPError as exc:
            self.handle_error(exc, res)
            return None
        if pending is None:
            _finish(res)
            return None
        return self._dispatch_async(pending, res)

    async def _dispatch_async(self, pending: Any, res: Response) -> None:
        try:
            await pending
        except HTTPError as exc:
            self.handle_error(exc, res)
            return
        _finish(res)

    @staticmethod
    def handle_error(exc: BaseException, res: Response) -> None:
        """Replace whatever `res` holds by the answer to `exc`.

        An `HTTPError` gives its status, message (text/plain) and headers; anything else a
        generic 500 that reveals nothing of the exception (log it yourself).

        Args:
            exc: The exception a handler raised.
            res: The response to overwrite.
        """
        res.reset()
        if isinstance(exc, HTTPError):
            res.status(exc.status)
            for name, value in exc.headers:
                res.header(name, value)
            res.text(exc.message)
        else:
            res.status(500).text("Internal Server Error")


def _options_responder(allow: str) -> Callable[[Request, Response], None]:
    def answer_options(req: Request, res: Response) -> None:
        res.status(204).header("Allow", allow).send(None)

    return answer_options


def _method_not_allowed(method: str, allow: str) -> Callable[[Request, Response], None]:
    def refuse(req: Request, res: Response) -> None:
        Router.handle_error(HTTPError(405, f"{method} is not allowed here", {"Allow": allow}), res)

    return refuse


_NOT_FOUND = _Responder(_not_found)
