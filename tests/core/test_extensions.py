"""permessage-deflate negotiation (verb.extensions, RFC 7692 section 7.1): offers of real clients,
header syntax, declined offers, server settings, the client side, and interoperability with the
websockets library's own negotiation and compression code."""

import pytest
import websockets.exceptions
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode
from websockets.headers import build_extension, parse_extension

from verb.core._deflate import Deflater, Inflater
from verb.core.extensions import (
    ClientOffer,
    DeflateParameters,
    DeflateSettings,
    NegotiationError,
    negotiate,
    parse_extensions,
)

SHARED = DeflateSettings()
DEDICATED = DeflateSettings(mode="dedicated")
BOTH_NCT = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


def websockets_offer(**kwargs):
    """The offer the websockets client sends, formatted by websockets itself."""
    factory = ClientPerMessageDeflateFactory(**kwargs)
    return build_extension([(factory.name, factory.get_request_params())])


# Offers sent by real clients with their default settings.
CHROMIUM = "permessage-deflate; client_max_window_bits"
FIREFOX = "permessage-deflate"
NODE_WS = "permessage-deflate; client_max_window_bits"
WEBSOCKETS = websockets_offer()


def test_websockets_default_offer_is_what_browsers_send():
    assert WEBSOCKETS == "permessage-deflate; client_max_window_bits"


# ---------------------------------------------------------------------------------------------
# Server: tables of offers


@pytest.mark.parametrize(
    "offer",
    [CHROMIUM, FIREFOX, NODE_WS, WEBSOCKETS],
    ids=["chromium", "firefox", "ws", "websockets"],
)
def test_real_clients_shared(offer):
    assert negotiate(offer, SHARED) == (BOTH_NCT, DeflateParameters(True, True, 15, 15))
    assert negotiate(offer) == negotiate(offer, SHARED)  # shared is the default


@pytest.mark.parametrize(
    "offer",
    [CHROMIUM, FIREFOX, NODE_WS, WEBSOCKETS],
    ids=["chromium", "firefox", "ws", "websockets"],
)
def test_real_clients_dedicated(offer):
    assert negotiate(offer, DEDICATED) == ("permessage-deflate", DeflateParameters())


@pytest.mark.parametrize(
    ("offer", "settings", "response", "params"),
    [
        # Dedicated mode with smaller windows: the client's window only if it offers the param.
        (
            CHROMIUM,
            DeflateSettings("dedicated", 12, 10),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10",
            (False, False, 12, 10),
        ),
        (
            FIREFOX,
            DeflateSettings("dedicated", 12, 10),
            "permessage-deflate; server_max_window_bits=12",
            (False, False, 12, 15),
        ),
        # The client's limit on the server's window is honoured (equal or smaller).
        (
            "permessage-deflate; server_max_window_bits=10",
            DEDICATED,
            "permessage-deflate; server_max_window_bits=10",
            (False, False, 10, 15),
        ),
        (
            "permessage-deflate; server_max_window_bits=12",
            DeflateSettings("dedicated", 11),
            "permessage-deflate; server_max_window_bits=11",
            (False, False, 11, 15),
        ),
        (
            "permessage-deflate; server_max_window_bits=9",
            SHARED,
            BOTH_NCT + "; server_max_window_bits=9",
            (True, True, 9, 15),
        ),
        # A client that announces its window: confirmed, or lowered to ours.
        (
            "permessage-deflate; client_max_window_bits=10",
            DEDICATED,
            "permessage-deflate; client_max_window_bits=10",
            (False, False, 15, 10),
        ),
        (
            "permessage-deflate; client_max_window_bits=14",
            DeflateSettings("dedicated", client_max_window_bits=11),
            "permessage-deflate; client_max_window_bits=11",
            (False, False, 15, 11),
        ),
        # 8 is fine for the client's window: our decompressor can use 256 bytes.
        (
            "permessage-deflate; client_max_window_bits=8",
            DEDICATED,
            "permessage-deflate; client_max_window_bits=8",
            (False, False, 15, 8),
        ),
        # Context takeover requests in dedicated mode: honoured / echoed.
        (
            "permessage-deflate; server_no_context_takeover",
            DEDICATED,
            "permessage-deflate; server_no_context_takeover",
            (True, False, 15, 15),
        ),
        (
            "permessage-deflate; client_no_context_takeover; client_max_window_bits",
            DEDICATED,
            "permessage-deflate; client_no_context_takeover",
            (False, True, 15, 15),
        ),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            DEDICATED,
            BOTH_NCT,
            (True, True, 15, 15),
        ),
        # Every parameter at once, in any order.
        (
            (
                "permessage-deflate; client_max_window_bits=12; server_max_window_bits=13; "
                "client_no_context_takeover; server_no_context_takeover"
            ),
            DEDICATED,
            BOTH_NCT + "; server_max_window_bits=13; client_max_window_bits=12",
            (True, True, 13, 12),
        ),
        # Quoted values (RFC 6455 section 9.1: they must unquote to a token).
        (
            'permessage-deflate; server_max_window_bits="10"',
            DEDICATED,
            "permessage-deflate; server_max_window_bits=10",
            (False, False, 10, 15),
        ),
        (
            'permessage-deflate; client_max_window_bits="1\\2"',
            DEDICATED,
            "permessage-deflate; client_max_window_bits=12",
            (False, False, 15, 12),
        ),
        # Whitespace, case.
        (
            "  PerMessage-Deflate ;client_max_window_bits ;\tSERVER_NO_CONTEXT_TAKEOVER  ",
            DEDICATED,
            "permessage-deflate; server_no_context_takeover",
            (True, False, 15, 15),
        ),
        (
            "permessage-deflate;server_max_window_bits = 11 ; client_max_window_bits= 9",
            DEDICATED,
            "permessage-deflate; server_max_window_bits=11; client_max_window_bits=9",
            (False, False, 11, 9),
        ),
        ("PERMESSAGE-DEFLATE", DEDICATED, "permessage-deflate", (False, False, 15, 15)),
    ],
)
def test_offer_table(offer, settings, response, params):
    assert negotiate(offer, settings) == (response, DeflateParameters(*params))


@pytest.mark.parametrize(
    "offer",
    [
        # Unknown parameter.
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate; client_max_window_bits; x-extra",
        # Duplicate parameter.
        "permessage-deflate; client_max_window_bits; client_max_window_bits",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_max_window_bits=10; Client_Max_Window_Bits=10",
        # Invalid window bits.
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; server_max_window_bits=abc",
        "permessage-deflate; server_max_window_bits=10.0",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=0",
        'permessage-deflate; client_max_window_bits="1 2"',
        'permessage-deflate; client_max_window_bits=""',
        # A value on a flag.
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=true",
        'permessage-deflate; client_no_context_takeover=""',
        # zlib cannot honour a 256-byte window for our compressor.
        "permessage-deflate; server_max_window_bits=8",
        'permessage-deflate; server_max_window_bits="8"',
        # Malformed syntax.
        "permessage-deflate; =10",
        "permessage-deflate;;",
        "permessage-deflate; server_max_window_bits=",
        'permessage-deflate; server_max_window_bits="10',
        "permessage-deflate server_no_context_takeover",
        "permessage-deflate; client_max_window_bits=1 0",
        # Not permessage-deflate.
        "x-webkit-deflate-frame",
        "permessage-deflate-x",
        "deflate-frame; client_max_window_bits",
        "",
        "  ,  ,",
    ],
)
def test_declined(offer):
    for settings in (SHARED, DEDICATED):
        assert negotiate(offer, settings) is None


@pytest.mark.parametrize(
    ("offer", "response"),
    [
        # The first acceptable offer wins; declined ones are skipped.
        (
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            "permessage-deflate; server_max_window_bits=8, permessage-deflate",
            "permessage-deflate",
        ),
        (
            "permessage-deflate; server_max_window_bits=12, permessage-deflate",
            "permessage-deflate; server_max_window_bits=12",
        ),
        (
            "permessage-deflate; foo, permessage-deflate; client_max_window_bits",
            "permessage-deflate",
        ),
        (
            (
                "permessage-deflate; client_max_window_bits; client_max_window_bits, "
                "permessage-deflate; server_no_context_takeover"
            ),
            "permessage-deflate; server_no_context_takeover",
        ),
        # Other extensions are ignored; malformed elements only lose their own offer.
        ("x-webkit-deflate-frame, permessage-deflate", "permessage-deflate"),
        ('foo; bar="a,b", permessage-deflate', "permessage-deflate"),
        ('permessage-deflate; a="unterminated, permessage-deflate', None),
        (
            "permessage-deflate;;, permessage-deflate; server_max_window_bits=11",
            "permessage-deflate; server_max_window_bits=11",
        ),
        # Empty list elements (RFC 7230 section 7).
        (", ,permessage-deflate,,", "permessage-deflate"),
    ],
)
def test_several_offers(offer, response):
    result = negotiate(offer, DEDICATED)
    assert (result and result[0]) == response


def test_several_header_lines():
    lines = [
        "x-webkit-deflate-frame",
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=13",
    ]
    assert negotiate(lines, DEDICATED) == (
        "permessage-deflate; server_max_window_bits=13",
        DeflateParameters(server_max_window_bits=13),
    )
    assert negotiate([b"permessage-deflate"], DEDICATED)[0] == "permessage-deflate"
    assert negotiate(b"permessage-deflate; client_max_window_bits", SHARED)[0] == BOTH_NCT
    assert negotiate([], DEDICATED) is None


def test_shared_mode_always_both_no_context_takeover():
    for offer in [
        FIREFOX,
        CHROMIUM,
        "permessage-deflate; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover; client_max_window_bits=12",
    ]:
        response, params = negotiate(offer, SHARED)
        assert response.startswith(BOTH_NCT)
        assert params.shared
    _, params = negotiate(FIREFOX, DEDICATED)
    assert not params.shared


def test_parse_extensions():
    assert parse_extensions(
        ['a, B; X="1"; y', "permessage-deflate ; client_max_window_bits = 10,, c=1"]
    ) == [
        ("a", []),
        ("b", [("x", "1"), ("y", None)]),
        ("permessage-deflate", [("client_max_window_bits", "10")]),
        None,  # "c=1": an extension name cannot have a value
    ]
    assert parse_extensions('a; b="x\\"y"') == [None]  # unquotes to x"y: not a token
    assert parse_extensions('a; b="x,y", c') == [None, ("c", [])]
    assert parse_extensions('a; b="\\x\\y"') == [("a", [("b", "xy")])]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "both"},
        {"server_max_window_bits": 8},
        {"server_max_window_bits": 16},
        {"client_max_window_bits": 8},
        {"client_max_window_bits": "12"},
        {"server_max_window_bits": True},
    ],
)
def test_bad_settings(kwargs):
    with pytest.raises(NegotiationError):
        DeflateSettings(**kwargs)


# ---------------------------------------------------------------------------------------------
# Our responses, as the websockets client sees them


WEBSOCKETS_CLIENTS = [
    {},
    {"compress_settings": {"memLevel": 5}},
    {"server_max_window_bits": 10},
    {"server_max_window_bits": 8},  # we decline this one: no response to check
    {"client_max_window_bits": 10},
    {"client_max_window_bits": None},
    {"server_no_context_takeover": True},
    {"client_no_context_takeover": True},
    {
        "server_no_context_takeover": True,
        "client_no_context_takeover": True,
        "server_max_window_bits": 12,
        "client_max_window_bits": 11,
    },
]
SETTINGS = [
    SHARED,
    DEDICATED,
    DeflateSettings("dedicated", 11, 9),
    DeflateSettings("shared", 10, 12),
]


@pytest.mark.parametrize(
    "settings",
    SETTINGS,
    ids=lambda s: f"{s.mode}-{s.server_max_window_bits}-{s.client_max_window_bits}",
)
@pytest.mark.parametrize("client", WEBSOCKETS_CLIENTS, ids=str)
def test_websockets_client_accepts_our_response(client, settings):
    factory = ClientPerMessageDeflateFactory(**client)
    offer = build_extension([(factory.name, factory.get_request_params())])
    result = negotiate(offer, settings)
    if client.get("server_max_window_bits") == 8:
        assert result is None
        return
    response, params = result
    [(_, response_params)] = parse_extension(response)
    extension = factory.process_response_params(response_params, [])
    # websockets' view (remote = server, local = client) agrees with ours.
    assert extension.remote_no_context_takeover == params.server_no_context_takeover
    assert extension.local_no_context_takeover == params.client_no_context_takeover
    assert extension.remote_max_window_bits == params.server_max_window_bits
    assert extension.local_max_window_bits == params.client_max_window_bits

    # And the agreed parameters work: websockets' client compresses, we decompress, and back.
    server_deflater = Deflater(params.server_max_window_bits, params.server_no_context_takeover)
    server_inflater = Inflater(params.client_max_window_bits, params.client_no_context_takeover)
    for i in range(5):
        text = f'{{"n": {i}, "payload": "{"abc" * 50}"}}'.encode()
        frame = extension.encode(Frame(Opcode.TEXT, text))
        assert frame.rsv1
        assert server_inflater.decompress(frame.data) == text
        reply = Frame(Opcode.TEXT, server_deflater.compress(text), rsv1=True)
        assert extension.decode(reply).data == text


@pytest.mark.parametrize("client", WEBSOCKETS_CLIENTS, ids=str)
def test_we_accept_what_websockets_server_accepts(client):
    # Where the websockets server accepts an offer, we accept it too (dedicated mode is the
    # closest to its defaults), except server_max_window_bits=8, which both decline.
    factory = ClientPerMessageDeflateFactory(**client)
    offer = build_extension([(factory.name, factory.get_request_params())])
    try:
        ServerPerMessageDeflateFactory().process_request_params(factory.get_request_params(), [])
        theirs = True
    except (websockets.exceptions.NegotiationError, ValueError):
        # ValueError: on some CPython builds zlib itself refuses a raw window of 8 bits
        # ("Invalid initialization option") while websockets sets up its compressor.
        theirs = False
    assert (negotiate(offer, DEDICATED) is not None) == theirs


# ---------------------------------------------------------------------------------------------
# Client side


def websockets_server_response(offer_header, **server_kwargs):
    [(name, params)] = parse_extension(offer_header)
    response_params, _ = ServerPerMessageDeflateFactory(**server_kwargs).process_request_params(
        params, []
    )
    return build_extension([(name, response_params)])


def test_client_offer_header():
    assert ClientOffer().header() == "permessage-deflate; client_max_window_bits"
    assert ClientOffer().header() == WEBSOCKETS
    assert ClientOffer(client_max_window_bits=False).header() == "permessage-deflate"
    assert (
        ClientOffer(True, True, 10, 12).header()
        == BOTH_NCT + "; server_max_window_bits=10; client_max_window_bits=12"
    )
    # Our offers are accepted by our own server side.
    assert negotiate(ClientOffer(True, True, 10, 12).header(), DEDICATED)[1] == DeflateParameters(
        True, True, 10, 12
    )


@pytest.mark.parametrize(
    "server",
    [
        {},
        {"server_no_context_takeover": True},
        {"client_no_context_takeover": True},
        {"server_max_window_bits": 10},
        {"client_max_window_bits": 9},
        {
            "server_max_window_bits": 12,
            "client_max_window_bits": 11,
            "server_no_context_takeover": True,
            "client_no_context_takeover": True,
        },
    ],
    ids=str,
)
@pytest.mark.parametrize(
    "offer",
    [
        ClientOffer(),
        ClientOffer(client_max_window_bits=12),
        ClientOffer(server_max_window_bits=11),
        ClientOffer(True, True),
    ],
    ids=str,
)
def test_client_accepts_websockets_server_response(offer, server):
    response = websockets_server_response(offer.header(), **server)
    params = offer.accept(response)
    [(_, request_params)] = parse_extension(offer.header())
    _, extension = ServerPerMessageDeflateFactory(**server).process_request_params(
        request_params, []
    )
    # websockets' server view: remote = client, local = server.
    assert params == DeflateParameters(
        extension.local_no_context_takeover,
        extension.remote_no_context_takeover,
        extension.local_max_window_bits,
        extension.remote_max_window_bits,
    )


def test_client_accepts_our_server_response():
    for settings in SETTINGS:
        for offer in (ClientOffer(), ClientOffer(client_max_window_bits=12), ClientOffer(True)):
            response, params = negotiate(offer.header(), settings)
            assert offer.accept(response) == params


def test_client_no_extension_in_response():
    assert ClientOffer().accept([]) is None
    assert ClientOffer().accept("") is None
    assert ClientOffer().accept(" , ") is None


@pytest.mark.parametrize(
    ("offer", "response"),
    [
        # Unknown, duplicate, invalid parameters.
        (ClientOffer(), "permessage-deflate; foo"),
        (
            ClientOffer(),
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        ),
        (ClientOffer(), "permessage-deflate; server_max_window_bits=16"),
        (ClientOffer(), "permessage-deflate; server_max_window_bits=07"),
        (ClientOffer(), "permessage-deflate; server_max_window_bits"),
        (ClientOffer(), "permessage-deflate; client_max_window_bits"),  # needs a value here
        (ClientOffer(), "permessage-deflate; client_no_context_takeover=1"),
        # Parameters the offer does not allow.
        (
            ClientOffer(client_max_window_bits=False),
            "permessage-deflate; client_max_window_bits=10",
        ),
        (ClientOffer(client_max_window_bits=10), "permessage-deflate; client_max_window_bits=12"),
        (ClientOffer(server_max_window_bits=10), "permessage-deflate; server_max_window_bits=12"),
        (ClientOffer(server_max_window_bits=10), "permessage-deflate"),
        (ClientOffer(server_no_context_takeover=True), "permessage-deflate"),
        (ClientOffer(), "permessage-deflate; client_max_window_bits=8"),
        # Other extensions, several, malformed.
        (ClientOffer(), "x-webkit-deflate-frame"),
        (ClientOffer(), "permessage-deflate, permessage-deflate"),
        (ClientOffer(), ["permessage-deflate", "permessage-deflate"]),
        (ClientOffer(), "permessage-deflate;;"),
        (ClientOffer(), 'permessage-deflate; server_max_window_bits="10'),
    ],
)
def test_client_rejects_bad_responses(offer, response):
    with pytest.raises(NegotiationError):
        offer.accept(response)


@pytest.mark.parametrize(
    ("offer", "response", "params"),
    [
        # The server may declare things unasked.
        (ClientOffer(), "permessage-deflate; server_no_context_takeover", (True, False, 15, 15)),
        (ClientOffer(), "permessage-deflate; client_no_context_takeover", (False, True, 15, 15)),
        (ClientOffer(), "permessage-deflate; server_max_window_bits=8", (False, False, 8, 15)),
        (ClientOffer(), "permessage-deflate; client_max_window_bits=10", (False, False, 15, 10)),
        # Our announced window holds when the response does not lower it.
        (ClientOffer(client_max_window_bits=12), "permessage-deflate", (False, False, 15, 12)),
        # Our client_no_context_takeover holds even if not echoed.
        (ClientOffer(client_no_context_takeover=True), "permessage-deflate", (False, True, 15, 15)),
        (
            ClientOffer(server_max_window_bits=12),
            'permessage-deflate; server_max_window_bits="9"',
            (False, False, 9, 15),
        ),
    ],
)
def test_client_accepts(offer, response, params):
    assert offer.accept(response) == DeflateParameters(*params)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"server_max_window_bits": 7},
        {"server_max_window_bits": 16},
        {"client_max_window_bits": 8},
        {"client_max_window_bits": 16},
        {"client_max_window_bits": "12"},
    ],
)
def test_bad_client_offers(kwargs):
    with pytest.raises(NegotiationError):
        ClientOffer(**kwargs)
