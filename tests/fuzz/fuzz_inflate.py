"""Fuzz verb.core._deflate.Inflater with corrupt, random and bomb-like input and small limits.

Properties checked for every input:
- only DeflateError escapes, with close_code 1007 or 1009;
- no output ever exceeds max_size, and the output buffer never grows past max_size + 1 bytes;
- after an error (or a success) the Inflater is reusable: a known message inflates correctly;
- what verb's Deflater compresses, the Inflater gives back unchanged.

Inputs are raw bytes, or a real raw-DEFLATE stream (zlib, sync flush, tail removed as RFC 7692
section 7.2.1 does) of fuzzed text, then corrupted (bit flips, truncation, splicing).

Usage: python tests/fuzz/fuzz_inflate.py [libFuzzer flags] [corpus dirs]
"""

from _common import fuzz, instrumented_imports, pick, raw_deflate

with instrumented_imports():
    from verb.core._deflate import DeflateError, Deflater, Inflater

LIMITS = [0, 1, 16, 100, 1000, 4096]
KNOWN = b"verb known message " * 8


def compressed_input(fdp, window_bits):
    if fdp.ConsumeIntInRange(0, 2) == 0:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
    plain = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
    if fdp.ConsumeBool():
        plain = plain * fdp.ConsumeIntInRange(1, 200)  # compresses well: a little bomb
    data = bytearray(raw_deflate(plain, window_bits))
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        action = fdp.ConsumeIntInRange(0, 3)
        if action == 0 and data:
            i = fdp.ConsumeIntInRange(0, len(data) - 1)
            data[i] ^= 1 << fdp.ConsumeIntInRange(0, 7)
        elif action == 1 and data:
            del data[fdp.ConsumeIntInRange(0, len(data) - 1):]
        elif action == 2:
            data += fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 8))
        elif action == 3:
            data += b"\x01\x00\x00\xff\xff" if fdp.ConsumeBool() else b"\x03\x00"  # final blocks
    return bytes(data)


def check_known(inflater, window_bits):
    message = inflater.decompress(raw_deflate(KNOWN, window_bits), max_size=len(KNOWN))
    assert message == KNOWN, message


def test_one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    window_bits = fdp.ConsumeIntInRange(8, 15)
    no_context_takeover = fdp.ConsumeBool()
    inflater = Inflater(window_bits, no_context_takeover, max_size=pick(fdp, LIMITS))
    largest = inflater.max_size
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        payload = compressed_input(fdp, window_bits)
        limit = pick(fdp, LIMITS + [None])
        effective = inflater.max_size if limit is None else limit
        try:
            if fdp.ConsumeBool():
                out = inflater.decompress(payload, max_size=limit)
            else:
                # Frame by frame, as a dedicated Inflater is fed (limit: the constructor's).
                effective = inflater.max_size
                cut = fdp.ConsumeIntInRange(0, len(payload))
                inflater.feed(payload[:cut])
                assert inflater.buffered <= effective
                inflater.feed(payload[cut:])
                out = inflater.finish()
        except DeflateError as exc:
            assert exc.close_code in (1007, 1009), exc.close_code
            assert exc.reason, exc
            assert inflater.buffered == 0
        else:
            assert len(out) <= effective, (len(out), effective)
        # The buffer grows to at most limit + 1; a small one (<= 16 KiB) is kept for the next
        # message, so the bound is the largest limit used so far.
        largest = max(largest, effective)
        assert inflater.peak_buffer <= largest + 1, (inflater.peak_buffer, largest)
        if fdp.ConsumeBool():
            # Reusable as is, after an error or a success: a self-contained message inflates
            # correctly whatever window the previous ones left.
            check_known(inflater, window_bits)
            largest = max(largest, len(KNOWN))
    # Round trip through verb's own compressor.
    plain = fdp.ConsumeBytes(fdp.remaining_bytes())
    deflater = Deflater(window_bits, no_context_takeover)
    fresh = Inflater(window_bits, no_context_takeover)
    assert fresh.decompress(deflater.compress(plain)) == plain
    assert fresh.decompress(deflater.compress(plain)) == plain


import atheris  # noqa: E402

if __name__ == "__main__":
    fuzz(test_one_input)
