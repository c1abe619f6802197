"""Markus Kuhn's "UTF-8 decoder capability and stress test" (UTF-8-test.txt) as byte literals.

Shared by the validator's tests (test_utf8.py) and the frame parser's (test_frame.py).
"""

VALID = "valid"
# A prefix of valid UTF-8 that ends inside a code point: not a valid text, but not failed either.
INCOMPLETE = "incomplete"

# --------------------------------------------------------------------------------------------
# Markus Kuhn, UTF-8 decoder capability and stress test. Each case: (section and title, bytes,
# expected outcome). An int outcome is the index of the first byte that cannot be valid there.
# Kuhn's file shows most sequences between quotes; the bare sequence is the case here, and
# test_kuhn_embedded puts each one back into text.
# --------------------------------------------------------------------------------------------

KUHN = [
    # 1  Some correct UTF-8 text
    ("1 kosme", b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", VALID),
    # 2.1  First possible sequence of a certain length
    ("2.1.1 1 byte U+0000", b"\x00", VALID),
    ("2.1.2 2 bytes U+0080", b"\xc2\x80", VALID),
    ("2.1.3 3 bytes U+0800", b"\xe0\xa0\x80", VALID),
    ("2.1.4 4 bytes U+10000", b"\xf0\x90\x80\x80", VALID),
    ("2.1.5 5 bytes U-200000", b"\xf8\x88\x80\x80\x80", 0),
    ("2.1.6 6 bytes U-4000000", b"\xfc\x84\x80\x80\x80\x80", 0),
    # 2.2  Last possible sequence of a certain length
    ("2.2.1 1 byte U+007F", b"\x7f", VALID),
    ("2.2.2 2 bytes U+07FF", b"\xdf\xbf", VALID),
    ("2.2.3 3 bytes U+FFFF", b"\xef\xbf\xbf", VALID),
    ("2.2.4 4 bytes U-1FFFFF", b"\xf7\xbf\xbf\xbf", 0),
    ("2.2.5 5 bytes U-3FFFFFF", b"\xfb\xbf\xbf\xbf\xbf", 0),
    ("2.2.6 6 bytes U-7FFFFFFF", b"\xfd\xbf\xbf\xbf\xbf\xbf", 0),
    # 2.3  Other boundary conditions
    ("2.3.1 U+D7FF", b"\xed\x9f\xbf", VALID),
    ("2.3.2 U+E000", b"\xee\x80\x80", VALID),
    ("2.3.3 U+FFFD", b"\xef\xbf\xbd", VALID),
    ("2.3.4 U+10FFFF", b"\xf4\x8f\xbf\xbf", VALID),
    ("2.3.5 U+110000", b"\xf4\x90\x80\x80", 1),
    # 3.1  Unexpected continuation bytes
    ("3.1.1 first continuation byte", b"\x80", 0),
    ("3.1.2 last continuation byte", b"\xbf", 0),
    ("3.1.3 2 continuation bytes", b"\x80\xbf", 0),
    ("3.1.4 3 continuation bytes", b"\x80\xbf\x80", 0),
    ("3.1.5 4 continuation bytes", b"\x80\xbf\x80\xbf", 0),
    ("3.1.6 5 continuation bytes", b"\x80\xbf\x80\xbf\x80", 0),
    ("3.1.7 6 continuation bytes", b"\x80\xbf\x80\xbf\x80\xbf", 0),
    ("3.1.8 7 continuation bytes", b"\x80\xbf\x80\xbf\x80\xbf\x80", 0),
    ("3.1.9 all 64 continuation bytes", bytes(range(0x80, 0xC0)), 0),
    # 3.2  Lonely start characters, each followed by a space (C0 and C1 cannot start anything)
    ("3.2.1 all 32 2-byte leads + space", b"".join(bytes([b, 0x20]) for b in range(0xC0, 0xE0)), 0),
    ("3.2.2 all 16 3-byte leads + space", b"".join(bytes([b, 0x20]) for b in range(0xE0, 0xF0)), 1),
    ("3.2.3 all 8 4-byte leads + space", b"".join(bytes([b, 0x20]) for b in range(0xF0, 0xF8)), 1),
    ("3.2.4 all 4 5-byte leads + space", b"\xf8 \xf9 \xfa \xfb ", 0),
    ("3.2.5 all 2 6-byte leads + space", b"\xfc \xfd ", 0),
]
# 3.2, one lead at a time: C2..F4 can start a sequence, so the space is the bad byte.
KUHN += [
    ("3.2 lonely {:02X} + space".format(b), bytes([b, 0x20]), 1 if 0xC2 <= b <= 0xF4 else 0)
    for b in range(0xC0, 0xFE)
]
KUHN += [
    # 3.3  Sequences with last continuation byte missing
    ("3.3.1 2 bytes U+0000", b"\xc0", 0),
    ("3.3.2 3 bytes U+0000", b"\xe0\x80", 1),
    ("3.3.3 4 bytes U+0000", b"\xf0\x80\x80", 1),
    ("3.3.4 5 bytes U+0000", b"\xf8\x80\x80\x80", 0),
    ("3.3.5 6 bytes U+0000", b"\xfc\x80\x80\x80\x80", 0),
    ("3.3.6 2 bytes U+07FF", b"\xdf", INCOMPLETE),
    ("3.3.7 3 bytes U+FFFF", b"\xef\xbf", INCOMPLETE),
    ("3.3.8 4 bytes U-1FFFFF", b"\xf7\xbf\xbf", 0),
    ("3.3.9 5 bytes U-3FFFFFF", b"\xfb\xbf\xbf\xbf", 0),
    ("3.3.10 6 bytes U-7FFFFFFF", b"\xfd\xbf\xbf\xbf\xbf", 0),
    # Not in the file: the valid truncations of 4-byte sequences.
    ("3.3 4 bytes U+10FFFF, last missing", b"\xf4\x8f\xbf", INCOMPLETE),
    ("3.3 4 bytes U+10000, two missing", b"\xf0\x90", INCOMPLETE),
    # 3.4  Concatenation of incomplete sequences (all of 3.3)
    (
        "3.4 concatenation of 3.3",
        b"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80"
        b"\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf",
        0,
    ),
    # The valid-prefix members of 3.3 concatenated: the second lead is the bad byte.
    ("3.4 concatenation of 3.3.6 and 3.3.7", b"\xdf\xef\xbf", 1),
    # 3.5  Impossible bytes
    ("3.5.1 fe", b"\xfe", 0),
    ("3.5.2 ff", b"\xff", 0),
    ("3.5.3 fe fe ff ff", b"\xfe\xfe\xff\xff", 0),
    # 4.1  Examples of an overlong ASCII character ("/")
    ("4.1.1 U+002F 2 bytes", b"\xc0\xaf", 0),
    ("4.1.2 U+002F 3 bytes", b"\xe0\x80\xaf", 1),
    ("4.1.3 U+002F 4 bytes", b"\xf0\x80\x80\xaf", 1),
    ("4.1.4 U+002F 5 bytes", b"\xf8\x80\x80\x80\xaf", 0),
    ("4.1.5 U+002F 6 bytes", b"\xfc\x80\x80\x80\x80\xaf", 0),
    # 4.2  Maximum overlong sequences
    ("4.2.1 U+007F 2 bytes", b"\xc1\xbf", 0),
    ("4.2.2 U+07FF 3 bytes", b"\xe0\x9f\xbf", 1),
    ("4.2.3 U+FFFF 4 bytes", b"\xf0\x8f\xbf\xbf", 1),
    ("4.2.4 U-1FFFFF 5 bytes", b"\xf8\x87\xbf\xbf\xbf", 0),
    ("4.2.5 U-3FFFFFF 6 bytes", b"\xfc\x83\xbf\xbf\xbf\xbf", 0),
    # 4.3  Overlong representation of the NUL character
    ("4.3.1 U+0000 2 bytes", b"\xc0\x80", 0),
    ("4.3.2 U+0000 3 bytes", b"\xe0\x80\x80", 1),
    ("4.3.3 U+0000 4 bytes", b"\xf0\x80\x80\x80", 1),
    ("4.3.4 U+0000 5 bytes", b"\xf8\x80\x80\x80\x80", 0),
    ("4.3.5 U+0000 6 bytes", b"\xfc\x80\x80\x80\x80\x80", 0),
    # 5.1  Single UTF-16 surrogates
    ("5.1.1 U+D800", b"\xed\xa0\x80", 1),
    ("5.1.2 U+DB7F", b"\xed\xad\xbf", 1),
    ("5.1.3 U+DB80", b"\xed\xae\x80", 1),
    ("5.1.4 U+DBFF", b"\xed\xaf\xbf", 1),
    ("5.1.5 U+DC00", b"\xed\xb0\x80", 1),
    ("5.1.6 U+DF80", b"\xed\xbe\x80", 1),
    ("5.1.7 U+DFFF", b"\xed\xbf\xbf", 1),
    # 5.2  Paired UTF-16 surrogates
    ("5.2.1 U+D800 U+DC00", b"\xed\xa0\x80\xed\xb0\x80", 1),
    ("5.2.2 U+D800 U+DFFF", b"\xed\xa0\x80\xed\xbf\xbf", 1),
    ("5.2.3 U+DB7F U+DC00", b"\xed\xad\xbf\xed\xb0\x80", 1),
    ("5.2.4 U+DB7F U+DFFF", b"\xed\xad\xbf\xed\xbf\xbf", 1),
    ("5.2.5 U+DB80 U+DC00", b"\xed\xae\x80\xed\xb0\x80", 1),
    ("5.2.6 U+DB80 U+DFFF", b"\xed\xae\x80\xed\xbf\xbf", 1),
    ("5.2.7 U+DBFF U+DC00", b"\xed\xaf\xbf\xed\xb0\x80", 1),
    ("5.2.8 U+DBFF U+DFFF", b"\xed\xaf\xbf\xed\xbf\xbf", 1),
    # 5.3  Noncharacter code positions: well-formed UTF-8, to be accepted
    ("5.3.1 U+FFFE", b"\xef\xbf\xbe", VALID),
    ("5.3.2 U+FFFF", b"\xef\xbf\xbf", VALID),
    ("5.3.3 U+FDD0 .. U+FDEF", b"".join(b"\xef\xb7" + bytes([b]) for b in range(0x90, 0xB0)), VALID),
    (
        "5.3.4 U+nFFFE U+nFFFF, n = 1..10 (hex)",
        b"\xf0\x9f\xbf\xbe\xf0\x9f\xbf\xbf\xf0\xaf\xbf\xbe\xf0\xaf\xbf\xbf"
        b"\xf0\xbf\xbf\xbe\xf0\xbf\xbf\xbf\xf1\x8f\xbf\xbe\xf1\x8f\xbf\xbf"
        b"\xf1\x9f\xbf\xbe\xf1\x9f\xbf\xbf\xf1\xaf\xbf\xbe\xf1\xaf\xbf\xbf"
        b"\xf1\xbf\xbf\xbe\xf1\xbf\xbf\xbf\xf2\x8f\xbf\xbe\xf2\x8f\xbf\xbf"
        b"\xf2\x9f\xbf\xbe\xf2\x9f\xbf\xbf\xf2\xaf\xbf\xbe\xf2\xaf\xbf\xbf"
        b"\xf2\xbf\xbf\xbe\xf2\xbf\xbf\xbf\xf3\x8f\xbf\xbe\xf3\x8f\xbf\xbf"
        b"\xf3\x9f\xbf\xbe\xf3\x9f\xbf\xbf\xf3\xaf\xbf\xbe\xf3\xaf\xbf\xbf"
        b"\xf3\xbf\xbf\xbe\xf3\xbf\xbf\xbf\xf4\x8f\xbf\xbe\xf4\x8f\xbf\xbf",
        VALID,
    ),
]

# The code points that the named cases of sections 2 and 5 encode (surrogates included), to check
# the literals above against Python's encoder.
KUHN_CODE_POINTS = {
    "2.1.1 1 byte U+0000": [0x0],
    "2.1.2 2 bytes U+0080": [0x80],
    "2.1.3 3 bytes U+0800": [0x800],
    "2.1.4 4 bytes U+10000": [0x10000],
    "2.2.1 1 byte U+007F": [0x7F],
    "2.2.2 2 bytes U+07FF": [0x7FF],
    "2.2.3 3 bytes U+FFFF": [0xFFFF],
    "2.3.1 U+D7FF": [0xD7FF],
    "2.3.2 U+E000": [0xE000],
    "2.3.3 U+FFFD": [0xFFFD],
    "2.3.4 U+10FFFF": [0x10FFFF],
    "5.1.1 U+D800": [0xD800],
    "5.1.2 U+DB7F": [0xDB7F],
    "5.1.3 U+DB80": [0xDB80],
    "5.1.4 U+DBFF": [0xDBFF],
    "5.1.5 U+DC00": [0xDC00],
    "5.1.6 U+DF80": [0xDF80],
    "5.1.7 U+DFFF": [0xDFFF],
    "5.2.1 U+D800 U+DC00": [0xD800, 0xDC00],
    "5.2.2 U+D800 U+DFFF": [0xD800, 0xDFFF],
    "5.2.3 U+DB7F U+DC00": [0xDB7F, 0xDC00],
    "5.2.4 U+DB7F U+DFFF": [0xDB7F, 0xDFFF],
    "5.2.5 U+DB80 U+DC00": [0xDB80, 0xDC00],
    "5.2.6 U+DB80 U+DFFF": [0xDB80, 0xDFFF],
    "5.2.7 U+DBFF U+DC00": [0xDBFF, 0xDC00],
    "5.2.8 U+DBFF U+DFFF": [0xDBFF, 0xDFFF],
    "5.3.1 U+FFFE": [0xFFFE],
    "5.3.2 U+FFFF": [0xFFFF],
    "5.3.3 U+FDD0 .. U+FDEF": list(range(0xFDD0, 0xFDF0)),
    "5.3.4 U+nFFFE U+nFFFF, n = 1..10 (hex)": [
        (n << 16) | low for n in range(1, 0x11) for low in (0xFFFE, 0xFFFF)
    ],
}
