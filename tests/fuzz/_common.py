"""Shared setup of verb's atheris harnesses (tests/fuzz/fuzz_*.py).

Each harness is a script: `python tests/fuzz/fuzz_X.py [libFuzzer/atheris flags] [corpus dirs]`.
It calls `instrumented_imports()` before importing anything of verb's, so that the pure-Python
modules (verb.core.headers, verb.core.handshake, verb.core.extensions, tests/support/oracle.py, ...) are instrumented and
give libFuzzer coverage feedback; then `fuzz(test_one_input)`.

The Cython modules (verb.core._frame, verb.core._deflate, ...) are NOT instrumented by atheris: their C code
only gives feedback when built with clang and -fsanitize=fuzzer-no-link (see README.md). The
harnesses work either way; without it the structured inputs below (frames built field by field,
DEFLATE streams from zlib) are what gets the fuzzer past the headers.
"""

import inspect
import os
import sys
import zlib

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
# tests/ for the pure-Python oracle. verb itself is whatever `import verb` finds (the editable
# build in development, the installed wheel in the wheel check), as in the test suite.
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

# Choices the harnesses draw from: edge values of verb's limits.
# (A limit is >= 1 or None: verb.core.limits.check_max_payload_length.)
PAYLOAD_LIMITS = [None, 1, 2, 125, 126, 127, 200, 1000, 65535, 65536, 1 << 20]


def instrumented_imports():
    """Context manager: modules imported inside are instrumented for coverage feedback."""
    return atheris.instrument_imports()


def _instrument_module_functions(namespace, module_name):
    """atheris instruments imported modules; the harness script and this module are not
    imported that way, so their own functions are instrumented here."""
    for value in list(namespace.values()):
        if inspect.isfunction(value) and value.__module__ == module_name:
            atheris.instrument_func(value)


def fuzz(test_one_input):
    """Run libFuzzer on `test_one_input(data: bytes)` with this process's command line."""
    _instrument_module_functions(sys.modules[test_one_input.__module__].__dict__,
                                 test_one_input.__module__)
    _instrument_module_functions(globals(), __name__)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


def pick(fdp, choices):
    return choices[fdp.ConsumeIntInRange(0, len(choices) - 1)]


def chunk_sizes(fdp, count=16):
    """Up to `count` chunk sizes (1..64, 0 meaning "the rest") to cut a stream with."""
    return [fdp.ConsumeIntInRange(0, 64) for _ in range(fdp.ConsumeIntInRange(0, count))]


def split(stream, sizes):
    """Cut `stream` into pieces of the given sizes (cycled; 0 takes the rest)."""
    pieces = []
    pos = 0
    i = 0
    while pos < len(stream):
        size = sizes[i % len(sizes)] if sizes else 0
        i += 1
        end = len(stream) if size == 0 else pos + size
        pieces.append(stream[pos:end])
        pos = end
    return pieces


def raw_deflate(data, window_bits=15):
    """`data` compressed as permessage-deflate sends it: raw DEFLATE, sync flush, tail removed
    (RFC 7692 section 7.2.1). zlib cannot compress with 8 bits raw; 9 is used then."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -max(window_bits, 9))
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def frame_stream(fdp, server, build_frame, compress=None):
    """A byte stream for the frame parser, from the fuzzer's bytes.

    Either the raw remaining bytes, or frames built field by field with `build_frame` (the
    oracle's independent serializer): mostly well-formed, masked as `server` expects, with
    every header field (FIN, RSV, opcode, mask, declared length) open to fuzzing, so the
    parser is exercised past its header checks without coverage feedback from the C code.
    With `compress`, most frames with RSV1 carry compressed payloads (permessage-deflate).
    """
    if fdp.ConsumeIntInRange(0, 3) == 0:
        return fdp.ConsumeBytes(fdp.remaining_bytes())
    out = bytearray()
    for _ in range(fdp.ConsumeIntInRange(1, 8)):
        if fdp.remaining_bytes() == 0:
            break
        opcode = pick(fdp, [0, 1, 2, 8, 9, 10, 0, 1, 2, 3, 0xB, 0xF])
        fin = fdp.ConsumeIntInRange(0, 3) != 0
        rsv = pick(fdp, [0, 0, 0, 4, 2, 1, 7])
        masked = server if fdp.ConsumeIntInRange(0, 7) else not server
        key = fdp.ConsumeBytes(4).ljust(4, b"\0") if masked else None
        kind = fdp.ConsumeIntInRange(0, 3)
        if kind == 0 and opcode == 8:
            code = pick(fdp, [1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1012,
                              1014, 1015, 2999, 3000, 4999, 5000, 0, 65535])
            payload = code.to_bytes(2, "big") + fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 8))
        elif kind == 1:
            payload = fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 40)).encode(
                "utf-8", "surrogatepass")
        else:
            payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300))
        if compress is not None and rsv & 4 and fdp.ConsumeIntInRange(0, 3):
            payload = compress(payload)
        length = None
        if fdp.ConsumeIntInRange(0, 15) == 0:
            length = pick(fdp, [len(payload) + 1, len(payload) + 100, 125, 126, 65535, 65536,
                                1 << 20, (1 << 63) - 1, 0])
        out += build_frame(opcode, payload, fin=fin, rsv=rsv, key=key, length=length)
        if length is not None and length != len(payload):
            break  # the declared length no longer matches: the rest would be payload anyway
    if fdp.ConsumeBool():
        out += fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 16))  # trailing garbage / a partial frame
    return bytes(out)
