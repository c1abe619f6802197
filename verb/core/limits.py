"""The default limits shared by the server and the client, and the rule for the payload limit.

One home for each number: the server's `Options`, the client's `connect` and the frame parser
take their defaults from here, and `check_max_payload_length` is the one validation of the
payload limit, whoever is given it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DEFAULT_CLIENT_MAX_QUEUE",
    "DEFAULT_CLIENT_WRITE_LIMIT",
    "DEFAULT_COMPRESSION_THRESHOLD",
    "DEFAULT_MAX_PAYLOAD_LENGTH",
    "KIB",
    "MIB",
    "check_max_payload_length",
]

KIB = 1024
MIB = 1024 * 1024

# Largest message accepted (RFC 6455 section 10.4), after reassembly and inflation.
DEFAULT_MAX_PAYLOAD_LENGTH = 16 * MIB
# Messages shorter than this are sent uncompressed: below ~128 B deflate saves nothing worth its
# CPU (benchmarks/test_deflate_bench.py measures the crossover).
DEFAULT_COMPRESSION_THRESHOLD = 128
# Client: received messages held before reading pauses, and transport bytes above which
# `drain()` waits.
DEFAULT_CLIENT_MAX_QUEUE = 64
DEFAULT_CLIENT_WRITE_LIMIT = 64 * KIB


def check_max_payload_length(name: str, value: Any) -> int | None:
    """The payload limit as given to a server, a client or a parser: an int >= 1 (bytes), or
    None for no limit. Returns it; raises TypeError or ValueError naming `name` otherwise."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int (bytes) or None (no limit), "
                        f"got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1, or None for no limit, got {value!r}")
    return value
