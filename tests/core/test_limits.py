"""verb.core.limits: one rule for the payload limit, whoever is given it (the server's options,
the client, the frame parser), and the defaults they share."""

import asyncio

import pytest

import verb
from verb.core import _frame
from verb.core.limits import DEFAULT_MAX_PAYLOAD_LENGTH, check_max_payload_length
from verb.server.options import Options


@pytest.mark.parametrize("value", [1, 125, DEFAULT_MAX_PAYLOAD_LENGTH, 1 << 40, None])
def test_a_positive_int_or_none_is_a_limit(value):
    assert check_max_payload_length("max_payload_length", value) == value


@pytest.mark.parametrize("value, error", [(0, ValueError), (-1, ValueError), (True, TypeError),
                                          (1.5, TypeError), ("1", TypeError)])
def test_anything_else_is_refused_with_its_name(value, error):
    with pytest.raises(error, match="maxPayloadLength"):
        check_max_payload_length("maxPayloadLength", value)


def test_server_parser_and_client_share_the_default_and_the_rule():
    assert Options().max_payload_length == DEFAULT_MAX_PAYLOAD_LENGTH
    assert _frame.FrameParser(_frame.EventCollector()).max_payload_length == \
        DEFAULT_MAX_PAYLOAD_LENGTH
    # None means no limit everywhere.
    assert Options(max_payload_length=None).max_payload_length is None
    assert _frame.FrameParser(_frame.EventCollector(), max_payload_length=None) \
        .max_payload_length > 1 << 60
    for refuse in (lambda: Options(max_payload_length=0),
                   lambda: _frame.FrameParser(_frame.EventCollector(), max_payload_length=0)):
        with pytest.raises(ValueError, match="max_payload_length must be an integer >= 1"):
            refuse()

    async def client():
        await verb.connect("ws://127.0.0.1:9/", max_payload_length=0)

    with pytest.raises(ValueError, match="max_payload_length must be an integer >= 1"):
        asyncio.run(client())


def test_a_server_without_a_payload_limit_takes_a_large_message():
    app = verb.create_server(verb.ServerProtocol.WEBSOCKET)
    app.websocket(message=lambda ws, message: ws.send(len(message).to_bytes(8, "big")),
                  max_payload_length=None)

    async def main(url):
        async with verb.connect(url, max_payload_length=None) as ws:
            ws.send(bytes(DEFAULT_MAX_PAYLOAD_LENGTH + 1))
            return int.from_bytes(await ws.recv(), "big")

    with app.run_in_thread() as server:
        assert asyncio.run(asyncio.wait_for(main(server.ws_url), 30)) == \
            DEFAULT_MAX_PAYLOAD_LENGTH + 1
