"""verb's sans-I/O core: bytes in, events and bytes out (RFC 6455, RFC 7692).

Owns masking (_mask), UTF-8 validation (_utf8), the frame parser and every frame builder
(_frame), permessage-deflate over zlib (_deflate) and its negotiation (extensions), the opening
handshake (handshake), the HTTP header grammar (headers), the HTTP errors (errors), the default
limits (limits) and the Python event objects (events).

May import: the standard library only; nothing here imports asyncio or any other verb layer.
"""
