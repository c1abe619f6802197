"""Tests of verb.app.routing: patterns, middleware chains, sync and async dispatch, errors."""

import asyncio

import pytest

from verb.server.http import HTTPError, Request, Response
from verb.server.options import Handler
from verb.app.routing import METHODS, Router

# A coroutine created and never awaited would be a bug of the router: make its warning fail.
pytestmark = pytest.mark.filterwarnings("error")


def request(method="GET", url="/"):
    return Request(method, url, [(b"Host", b"example.com")])


def dispatch(router, method="GET", url="/"):
    """Dispatch like the connection layer: await only when dispatch returns an awaitable."""
    req, res = request(method, url), Response()
    pending = router.dispatch(req, res)
    if pending is not None:
        asyncio.run(_await(pending))
    assert res.sent
    return res


def dispatch_sync(router, method="GET", url="/"):
    """Dispatch and assert that it completed without returning an awaitable."""
    req, res = request(method, url), Response()
    assert router.dispatch(req, res) is None
    assert res.sent
    return res


async def _await(awaitable):
    return await awaitable


def body(res):
    return res.body.decode()


def echo_params(req, res):
    res.json(req.params)


# --- patterns ------------------------------------------------------------------------------------


def test_literal_param_and_wildcard_routes():
    router = Router()
    router.add("get", "/", lambda req: "root")
    router.add("get", "/users/:id", echo_params)
    router.add("get", "/files/:dir/:name", echo_params)
    router.add("get", "/static/*", echo_params)
    assert body(dispatch_sync(router, url="/")) == "root"
    assert dispatch_sync(router, url="/users/42").body == b'{"id":"42"}'
    assert dispatch_sync(router, url="/files/a/b.txt").body == b'{"dir":"a","name":"b.txt"}'
    assert dispatch_sync(router, url="/static/css/site.css").body == b'{"*":"css/site.css"}'
    assert dispatch_sync(router, url="/static").body == b'{"*":""}'


def test_literal_beats_param_beats_wildcard():
    router = Router()
    router.add("get", "/users/me", lambda req: "me")
    router.add("get", "/users/:id", lambda req: "id " + req.params["id"])
    router.add("get", "/users/*", lambda req: "rest " + req.params["*"])
    assert body(dispatch_sync(router, url="/users/me")) == "me"
    assert body(dispatch_sync(router, url="/users/7")) == "id 7"
    assert body(dispatch_sync(router, url="/users/7/posts")) == "rest 7/posts"


def test_registration_order_does_not_change_priority():
    router = Router()
    router.add("get", "/a/:x", lambda req: "param")
    router.add("get", "/a/b", lambda req: "literal")
    assert body(dispatch_sync(router, url="/a/b")) == "literal"


def test_backtracking_when_the_literal_branch_has_no_route():
    router = Router()
    router.add("get", "/users/new/edit", lambda req: "edit form")
    router.add("get", "/users/:id", lambda req: "user " + req.params["id"])
    router.add("delete", "/users/new", lambda req: "deleted new")
    assert body(dispatch_sync(router, url="/users/new")) == "user new"
    assert body(dispatch_sync(router, "DELETE", "/users/new")) == "deleted new"
    assert body(dispatch_sync(router, url="/users/new/edit")) == "edit form"


def test_params_are_decoded_after_splitting():
    router = Router()
    router.add("get", "/files/:name", echo_params)
    router.add("get", "/tags/:tag/posts", echo_params)
    assert dispatch_sync(router, url="/files/a%2Fb").body == b'{"name":"a/b"}'
    assert dispatch_sync(router, url="/files/caf%C3%A9").json is not None
    assert dispatch_sync(router, url="/files/caf%C3%A9").body == '{"name":"café"}'.encode()
    assert dispatch_sync(router, url="/files/a+b%20c").body == b'{"name":"a+b c"}'
    assert dispatch_sync(router, url="/tags/c%23/posts?page=2").body == b'{"tag":"c#"}'


def test_literal_routes_match_encoded_and_unicode_paths():
    router = Router()
    router.add("get", "/café", lambda req: "unicode")
    router.add("get", "/a%20b", lambda req: "encoded")
    assert body(dispatch_sync(router, url="/caf%C3%A9")) == "unicode"
    assert body(dispatch_sync(router, url="/a%20b")) == "encoded"
    assert body(dispatch_sync(router, url="/a b")) == "encoded"


def test_trailing_slash_is_ignored_and_params_need_a_segment():
    router = Router()
    router.add("get", "/users/", lambda req: "list")
    router.add("get", "/users/:id", echo_params)
    assert body(dispatch_sync(router, url="/users")) == "list"
    assert body(dispatch_sync(router, url="/users/")) == "list"
    assert dispatch_sync(router, url="/users/5/").body == b'{"id":"5"}'
    assert dispatch_sync(router, url="/users//").status_code == 404


def test_same_shape_with_different_param_names_per_method():
    router = Router()
    router.add("get", "/items/:id", echo_params)
    router.add("put", "/items/:item_id", echo_params)
    assert dispatch_sync(router, url="/items/1").body == b'{"id":"1"}'
    assert dispatch_sync(router, "PUT", "/items/1").body == b'{"item_id":"1"}'


def test_absolute_form_targets_route_by_their_path():
    router = Router()
    router.add("get", "/x", lambda req: "x")
    assert body(dispatch_sync(router, url="http://example.com/x?y=1")) == "x"


def test_asterisk_form_target_is_404():
    assert dispatch_sync(Router(), "OPTIONS", "*").status_code == 404


def test_invalid_percent_encoding_is_400_before_any_middleware():
    router = Router()
    seen = []
    router.use(lambda req, res, next: seen.append(1) or next())
    router.add("get", "/:x", echo_params)
    res = dispatch_sync(router, url="/%C3%28")
    assert res.status_code == 400 and seen == []


# --- methods -------------------------------------------------------------------------------------


def test_404_and_405_with_allow():
    router = Router()
    router.add("get", "/things", lambda req: "list")
    router.add("post", "/things", lambda req: "created")
    res = dispatch_sync(router, url="/nothing")
    assert (res.status_code, res.get_header("Content-Type")) == (404, None)
    assert b"Content-Type: text/plain" in res.to_bytes()
    res = dispatch_sync(router, "DELETE", "/things")
    assert res.status_code == 405
    assert res.get_header("Allow") == "GET, POST, HEAD, OPTIONS"


def test_head_falls_back_to_get_and_an_explicit_head_wins():
    router = Router()
    router.add("get", "/a", lambda req: "a body")
    router.add("get", "/b", lambda req: "b body")
    router.add("head", "/b", lambda req, res: res.status(200).header("X-Head", "1").send())
    res = dispatch_sync(router, "HEAD", "/a")
    assert res.body == b"a body"
    head = res.to_bytes(head_request=True)
    assert b"Content-Length: 6\r\n" in head and not head.endswith(b"a body")
    assert dispatch_sync(router, "HEAD", "/b").get_header("X-Head") == "1"


def test_all_matches_every_method_but_a_specific_method_wins():
    router = Router()
    router.add("ALL", "/any", lambda req: "all " + req.method)
    router.add("post", "/any", lambda req: "post")
    assert body(dispatch_sync(router, "PATCH", "/any")) == "all PATCH"
    assert body(dispatch_sync(router, "POST", "/any")) == "post"
    assert body(dispatch_sync(router, "PROPFIND", "/any")) == "all PROPFIND"


def test_options_is_answered_with_allow_unless_routed():
    router = Router()
    router.add("get", "/a", lambda req: "a")
    router.add("options", "/b", lambda req, res: res.status(200).header("X-Own", "1").send())
    res = dispatch_sync(router, "OPTIONS", "/a")
    assert (res.status_code, res.get_header("Allow"), res.body) == (204, "GET, HEAD, OPTIONS", b"")
    assert dispatch_sync(router, "OPTIONS", "/b").get_header("X-Own") == "1"
    assert dispatch_sync(router, "OPTIONS", "/c").status_code == 404


def test_methods_are_case_insensitive_when_adding():
    router = Router()
    for method in METHODS:
        router.add(method.lower(), f"/{method}", lambda req: "ok")
    assert body(dispatch_sync(router, "PATCH", "/PATCH")) == "ok"


# --- handler results -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, content_type, sent_body",
    [
        ({"a": 1}, "application/json", b'{"a":1}'),
        ([1, 2], "application/json", b"[1,2]"),
        ("<p>hi</p>", "text/html; charset=utf-8", b"<p>hi</p>"),
        (b"\x00raw", "application/octet-stream", b"\x00raw"),
    ],
)
def test_returned_values_are_sent(value, content_type, sent_body):
    router = Router()
    router.add("get", "/", lambda req: value)
    res = dispatch_sync(router)
    assert (res.status_code, res.body) == (200, sent_body)
    assert f"Content-Type: {content_type}".encode() in res.to_bytes()


def test_returned_value_is_ignored_once_the_handler_sent():
    router = Router()
    router.add("get", "/", lambda req, res: res.text("sent") and {"ignored": True})
    router.add("get", "/chained", lambda req, res: res.status(201).json([]))
    assert body(dispatch_sync(router)) == "sent"
    assert dispatch_sync(router, url="/chained").status_code == 201


def test_handler_sending_nothing_gets_204_or_its_own_status():
    router = Router()
    router.add("delete", "/a", lambda req: None)
    router.add("post", "/b", lambda req, res: res.status(202))
    router.add("get", "/c", lambda req, res: res.header("X-A", "1"))
    res = dispatch_sync(router, "DELETE", "/a")
    assert (res.status_code, res.body) == (204, b"")
    assert dispatch_sync(router, "POST", "/b").status_code == 202
    res = dispatch_sync(router, "GET", "/c")
    assert (res.status_code, res.get_header("X-A")) == (204, "1")


def test_returning_an_unsupported_type_is_a_type_error():
    router = Router()
    router.add("get", "/", lambda req: 42)
    with pytest.raises(TypeError, match="returned a int"):
        router.dispatch(request(), Response())


def test_handlers_of_any_arity():
    router = Router()
    router.add("get", "/0", lambda: "zero")
    router.add("get", "/1", lambda req: "one " + req.method)
    router.add("get", "/2", lambda req, res: res.text("two"))
    router.add("get", "/print", print)  # no signature: offered (req, res)
    assert [body(dispatch_sync(router, url=f"/{n}")) for n in range(3)] == [
        "zero",
        "one GET",
        "two",
    ]


# --- errors --------------------------------------------------------------------------------------


def test_http_error_becomes_its_response():
    router = Router()

    def guarded(req, res):
        res.header("X-Half", "built")
        raise HTTPError(401, "log in first", {"WWW-Authenticate": 'Basic realm="x"'})

    router.add("get", "/", guarded)
    res = dispatch_sync(router)
    assert (res.status_code, body(res)) == (401, "log in first")
    assert res.get_header("WWW-Authenticate") == 'Basic realm="x"'
    assert res.get_header("X-Half") is None


def test_request_json_error_becomes_400():
    router = Router()
    router.add("post", "/", lambda req: req.json())
    res = dispatch_sync(router, "POST", "/")
    assert res.status_code == 400 and "invalid JSON" in body(res)


def test_other_exceptions_propagate_and_handle_error_makes_a_500():
    router = Router()
    router.add("get", "/", lambda req: 1 / 0)
    req, res = request(), Response()
    with pytest.raises(ZeroDivisionError) as info:
        router.dispatch(req, res)
    Router.handle_error(info.value, res)
    assert (res.status_code, body(res)) == (500, "Internal Server Error")
    assert b"ZeroDivision" not in res.to_bytes()


def test_exceptions_from_async_handlers_propagate_from_the_awaitable():
    router = Router()

    async def broken(req, res):
        raise KeyError("boom")

    async def forbidden(req, res):
        raise HTTPError(403)

    router.add("get", "/broken", broken)
    router.add("get", "/forbidden", forbidden)
    pending = router.dispatch(request(url="/broken"), Response())
    with pytest.raises(KeyError):
        asyncio.run(_await(pending))
    assert dispatch(router, url="/forbidden").status_code == 403


# --- middleware ----------------------------------------------------------------------------------


def test_middleware_runs_in_order_around_the_handler():
    router = Router()
    log = []

    def first(req, res, next):
        log.append("first in")
        next()
        log.append("first out")

    def second(req, res, next):
        log.append("second in")
        next()
        log.append("second out")

    router.use(first, second)
    router.add("get", "/", lambda req: log.append("handler") or "ok")
    dispatch_sync(router)
    assert log == ["first in", "second in", "handler", "second out", "first out"]


def test_middleware_that_answers_stops_the_chain():
    router = Router()
    router.use(
        lambda req, res, next: res.status(401).text("no") if "x" not in req.query else next()
    )
    router.add("get", "/", lambda req: "secret")
    assert dispatch_sync(router).status_code == 401
    assert body(dispatch_sync(router, url="/?x")) == "secret"


def test_middleware_prefix_matches_whole_segments():
    router = Router()
    router.use("/api", lambda req, res, next: res.header("X-Api", "1") and next())
    for path in ("/api", "/api/users", "/apix", "/"):
        router.add("get", path, lambda req: "ok")
    assert dispatch_sync(router, url="/api").get_header("X-Api") == "1"
    assert dispatch_sync(router, url="/api/users").get_header("X-Api") == "1"
    assert dispatch_sync(router, url="/apix").get_header("X-Api") is None
    assert dispatch_sync(router, url="/").get_header("X-Api") is None


def test_middleware_sees_params_and_router_answers():
    router = Router()
    seen = []

    def log(req, res, next):
        next()
        seen.append((req.params, res.status_code))

    router.use(log)
    router.add("get", "/users/:id", lambda req: "user")
    dispatch_sync(router, url="/users/9")
    dispatch_sync(router, url="/missing")
    dispatch_sync(router, "POST", "/users/9")
    assert seen == [({"id": "9"}, 200), ({}, 404), ({}, 405)]


def test_middleware_can_serve_what_no_route_matches():
    router = Router()
    router.use(lambda req, res, next: res.text("from middleware") if req.path == "/mw" else next())
    assert body(dispatch_sync(router, url="/mw")) == "from middleware"
    assert dispatch_sync(router, url="/other").status_code == 404


def test_middleware_sending_nothing_and_not_continuing_gets_204():
    router = Router()
    router.use(lambda req, res, next: None)
    router.add("get", "/", lambda req: "never")
    assert dispatch_sync(router).status_code == 204


def test_next_twice_is_an_error():
    router = Router()

    def twice(req, res, next):
        next()
        next()

    router.use(twice)
    router.add("get", "/", lambda req: "ok")
    with pytest.raises(RuntimeError, match="next\\(\\) called twice"):
        router.dispatch(request(), Response())


def test_next_with_an_error_raises_it():
    router = Router()
    router.use(lambda req, res, next: next(HTTPError(429, "slow down")))
    router.add("get", "/", lambda req: "ok")
    res = dispatch_sync(router)
    assert (res.status_code, body(res)) == (429, "slow down")
    bad = Router()
    bad.use(lambda req, res, next: next("route"))
    with pytest.raises(TypeError, match="exception or nothing"):
        bad.dispatch(request(), Response())


def test_use_validation():
    router = Router()
    with pytest.raises(TypeError, match="at least one"):
        router.use("/api")
    with pytest.raises(TypeError, match=r"must accept \(req, res, next\)"):
        router.use(lambda req, res: None)
    with pytest.raises(TypeError, match="must be callable"):
        router.use("/api", "nope")
    with pytest.raises(ValueError, match="literal path"):
        router.use("/users/:id", lambda req, res, next: next())
    with pytest.raises(ValueError):
        router.use("api", lambda req, res, next: next())
    router.use("/", lambda req, res, next: next())
    router.use(print)  # no signature: assumed to take (req, res, next)


# --- async ---------------------------------------------------------------------------------------


def test_all_sync_dispatch_returns_none():
    router = Router()
    router.use(lambda req, res, next: next())
    router.add("get", "/", lambda req: "sync")
    assert router.dispatch(request(), Response()) is None


def test_async_handler():
    router = Router()

    async def handler(req, res):
        await asyncio.sleep(0)
        res.status(201).json({"async": True})

    async def returning(req):
        await asyncio.sleep(0)
        return {"returned": True}

    router.add("post", "/", handler)
    router.add("get", "/", returning)
    req, res = request("POST"), Response()
    pending = router.dispatch(req, res)
    assert pending is not None and not res.sent
    asyncio.run(_await(pending))
    assert (res.status_code, res.body) == (201, b'{"async":true}')
    assert dispatch(router).body == b'{"returned":true}'


def test_async_handler_sending_nothing_gets_204():
    router = Router()

    async def quiet(req, res):
        await asyncio.sleep(0)

    router.add("get", "/", quiet)
    assert dispatch(router).status_code == 204


def test_async_middleware_awaits_sync_and_async_rest():
    log = []

    async def timing(req, res, next):
        log.append("before")
        await next()
        log.append(f"after {res.status_code}")
        res.header("X-Timed", "1")

    async def async_handler(req, res):
        await asyncio.sleep(0)
        log.append("async handler")
        res.status(202).text("async")

    router = Router()
    router.use(timing)
    router.add("get", "/sync", lambda req: log.append("sync handler") or "sync")
    router.add("get", "/async", async_handler)
    res = dispatch(router, url="/sync")
    assert (body(res), res.get_header("X-Timed")) == ("sync", "1")
    res = dispatch(router, url="/async")
    assert (body(res), res.get_header("X-Timed")) == ("async", "1")
    assert log == [
        "before",
        "sync handler",
        "after 200",
        "before",
        "async handler",
        "after 202",
    ]


def test_sync_middleware_before_async_rest():
    log = []

    def sync_mw(req, res, next):
        log.append("sync in")
        next()
        log.append("sync out")

    async def async_mw(req, res, next):
        log.append("async in")
        await next()
        log.append("async out")

    async def handler(req):
        log.append("handler")
        return "done"

    router = Router()
    router.use(sync_mw, async_mw)
    router.add("get", "/", handler)
    assert body(dispatch(router)) == "done"
    # A sync middleware cannot wait: its next() returns before the async rest runs.
    assert log == ["sync in", "sync out", "async in", "handler", "async out"]


def test_async_middleware_that_forgets_to_await_next_still_runs_the_rest():
    async def forgetful(req, res, next):
        next()

    async def handler(req):
        return "rest ran"

    router = Router()
    router.use(forgetful)
    router.add("get", "/", handler)
    assert body(dispatch(router)) == "rest ran"


def test_async_middleware_can_catch_errors_of_the_rest():
    async def recover(req, res, next):
        try:
            await next()
        except ValueError:
            res.reset()
            res.status(503).text("recovered")

    async def failing(req):
        raise ValueError("down")

    router = Router()
    router.use(recover)
    router.add("get", "/", failing)
    res = dispatch(router)
    assert (res.status_code, body(res)) == (503, "recovered")


def test_async_middleware_that_answers_without_next():
    async def gate(req, res, next):
        await asyncio.sleep(0)
        res.status(403).text("closed")

    router = Router()
    router.use(gate)
    router.add("get", "/", lambda req: "open")
    assert dispatch(router).status_code == 403


def test_sync_middleware_raising_after_next_closes_the_pending_rest():
    def raising(req, res, next):
        next()
        raise LookupError("after next")

    async def handler(req):
        return "never awaited"

    router = Router()
    router.use(raising)
    router.add("get", "/", handler)
    with pytest.raises(LookupError):
        router.dispatch(request(), Response())
    # pytestmark turns a "coroutine ... was never awaited" warning into a failure.


def test_async_middleware_raising_before_awaiting_next_closes_the_rest():
    async def raising(req, res, next):
        next()
        raise LookupError("before await")

    async def handler(req):
        return "never awaited"

    router = Router()
    router.use(raising)
    router.add("get", "/", handler)
    with pytest.raises(LookupError):
        asyncio.run(_await(router.dispatch(request(), Response())))


# --- match and add -------------------------------------------------------------------------------


def test_match_returns_the_chain_and_params():
    def mw(req, res, next):
        next()

    def handler(req, res):
        return None

    router = Router()
    router.use(mw)
    router.use("/other", mw)
    router.add("get", "/users/:id", handler)
    chain, params = router.match("get", "/users/a%20b")
    assert [item.fn for item in chain] == [mw, handler]
    assert all(isinstance(item, Handler) for item in chain)
    assert params == {"id": "a b"}
    assert router.match("HEAD", "/users/1")[0][-1].fn is handler
    assert router.match("POST", "/users/1") is None
    assert router.match("GET", "/nothing") is None
    assert router.match("GET", "*") is None


@pytest.mark.parametrize(
    "method, path, error, match",
    [
        ("FETCH", "/", ValueError, "unknown method"),
        (None, "/", ValueError, "unknown method"),
        ("get", "users", ValueError, "starting with '/'"),
        ("get", b"/users", ValueError, "starting with '/'"),
        ("get", "/a?b", ValueError, "no query"),
        ("get", "/*/a", ValueError, "last segment"),
        ("get", "/a*", ValueError, "whole, final segment"),
        ("get", "/:", ValueError, "needs a name"),
        ("get", "/:1x", ValueError, "needs a name"),
        ("get", "/:id/:id", ValueError, "appears twice"),
        ("get", "/%ff", ValueError, "percent-encoded"),
    ],
)
def test_add_validation(method, path, error, match):
    with pytest.raises(error, match=match):
        Router().add(method, path, lambda req: None)


def test_add_refuses_duplicates_and_bad_handlers():
    router = Router()
    router.add("get", "/users/:id", lambda req: None)
    with pytest.raises(ValueError, match="already registered"):
        router.add("GET", "/users/:user", lambda req: None)
    with pytest.raises(ValueError, match="already registered"):
        router.add("get", "/users/:id/", lambda req: None)
    with pytest.raises(TypeError, match="route handler must be callable"):
        router.add("get", "/x", "handler")
    with pytest.raises(TypeError, match="requires 3 positional arguments"):
        router.add("get", "/y", lambda req, res, extra: None)
