/* Incremental UTF-8 validation (RFC 3629; Unicode Table 3-7, "well-formed byte sequences").
 *
 * The state carries a code point split across chunks, so a text message can be validated as its
 * bytes arrive and rejected at the first chunk holding a byte that cannot start or continue a
 * well-formed sequence (fail fast, as RFC 6455 section 8.1 allows and Autobahn 6.4 expects).
 *
 * State, as callers see it: VERB_UTF8_ACCEPT (0) between code points, VERB_UTF8_REJECT once
 * invalid (sticky); any other value means "inside a sequence" and is private to this file.
 *
 * Two engines share the work:
 *   - a shift-based DFA, portable C: one table load and one shift per byte;
 *   - on x86-64, an SSE2 check of 16 bytes at a time for the bulk of a chunk, which skips ASCII
 *     runs 64 bytes at a time. It checks each byte against the three before it, so it needs no
 *     state; the DFA handles the chunk's edges, where a code point can be split: a sequence left
 *     open by the previous chunk, and the last code point of this one.
 * Define VERB_UTF8_NO_SIMD to build with the DFA alone (what other CPUs run), e.g. to test it:
 * CFLAGS=-DVERB_UTF8_NO_SIMD python setup.py build_ext --inplace --force
 */
#ifndef VERB_UTF8_KERNEL_H
#define VERB_UTF8_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VERB_UTF8_ACCEPT 0u
#define VERB_UTF8_REJECT 8u

/* ---- The DFA ---------------------------------------------------------------------------------
 *
 * Each state is a bit offset into a 64-bit row. verb_utf8_dfa[byte] holds, at the offset of each
 * state, the 6-bit offset of the state that the byte leads to from there:
 *
 *     next = verb_utf8_dfa[byte] >> (state & 63)       (then & 63; the garbage above can wait)
 *
 * The table load depends on the byte only, so the loop-carried path is a single shift (the
 * "shift-based DFA" technique). REJECT is offset 0: a transition the table does not name leads
 * there, and from there nowhere. ACCEPT is offset 8, the others follow every 6 bits up to 50..55.
 * The state callers see is the internal one XOR 8, which swaps the two (0 = accept, 8 = reject,
 * as the contract has it) and maps the other states to values of their own.
 */
enum {
    VERB_UTF8_S_REJECT = 0,
    VERB_UTF8_S_ACCEPT = 8,
    VERB_UTF8_S_TAIL1 = 14, /* 1 more continuation byte (80..BF) to go */
    VERB_UTF8_S_TAIL2 = 20, /* 2 more */
    VERB_UTF8_S_TAIL3 = 26, /* 3 more */
    VERB_UTF8_S_E0 = 32,    /* after E0: A0..BF (no overlongs), then 1 more */
    VERB_UTF8_S_ED = 38,    /* after ED: 80..9F (no surrogates), then 1 more */
    VERB_UTF8_S_F0 = 44,    /* after F0: 90..BF (no overlongs), then 2 more */
    VERB_UTF8_S_F4 = 50     /* after F4: 80..8F (nothing above U+10FFFF), then 2 more */
};

#if defined(A_) || defined(X_) || defined(L2) || defined(E0) || defined(L3) || defined(ED) || \
    defined(F0) || defined(L4) || defined(F4) || defined(C_) || defined(C8) || defined(C9) || \
    defined(CA)
#error "verb/_utf8_kernel.h: the table below needs its short row names; one is already a macro"
#endif
#define VERB_UTF8_GO(from, to) ((uint64_t)VERB_UTF8_S_##to << VERB_UTF8_S_##from)
/* The rows, one per class of bytes. */
#define A_ VERB_UTF8_GO(ACCEPT, ACCEPT)                                 /* 00..7F ASCII */
#define X_ 0                                                            /* C0 C1 F5..FF */
#define L2 VERB_UTF8_GO(ACCEPT, TAIL1)                                  /* C2..DF */
#define E0 VERB_UTF8_GO(ACCEPT, E0)                                     /* E0 */
#define L3 VERB_UTF8_GO(ACCEPT, TAIL2)                                  /* E1..EC EE EF */
#define ED VERB_UTF8_GO(ACCEPT, ED)                                     /* ED */
#define F0 VERB_UTF8_GO(ACCEPT, F0)                                     /* F0 */
#define L4 VERB_UTF8_GO(ACCEPT, TAIL3)                                  /* F1..F3 */
#define F4 VERB_UTF8_GO(ACCEPT, F4)                                     /* F4 */
#define C_ (VERB_UTF8_GO(TAIL1, ACCEPT) | VERB_UTF8_GO(TAIL2, TAIL1) | VERB_UTF8_GO(TAIL3, TAIL2))
#define C8 (C_ | VERB_UTF8_GO(ED, TAIL1) | VERB_UTF8_GO(F4, TAIL2))     /* 80..8F */
#define C9 (C_ | VERB_UTF8_GO(ED, TAIL1) | VERB_UTF8_GO(F0, TAIL2))     /* 90..9F */
#define CA (C_ | VERB_UTF8_GO(E0, TAIL1) | VERB_UTF8_GO(F0, TAIL2))     /* A0..BF */

static const uint64_t verb_utf8_dfa[256] = {
    A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, /* 00 */
    A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, /* 10 */
    A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, /* 20 */
    A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, /* 30 */
    A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, /* 40 */
    A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, /* 50 */
    A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, /* 60 */
    A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, A_, /* 70 */
    C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, C8, /* 80 */
    C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, C9, /* 90 */
    CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, /* A0 */
    CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, CA, /* B0 */
    X_, X_, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, /* C0 */
    L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, L2, /* D0 */
    E0, L3, L3, L3, L3, L3, L3, L3, L3, L3, L3, L3, L3, ED, L3, L3, /* E0 */
    F0, L4, L4, L4, F4, X_, X_, X_, X_, X_, X_, X_, X_, X_, X_, X_, /* F0 */
};

#undef A_
#undef X_
#undef L2
#undef E0
#undef L3
#undef ED
#undef F0
#undef L4
#undef F4
#undef C_
#undef C8
#undef C9
#undef CA
#undef VERB_UTF8_GO

#define VERB_UTF8_STEP(s, c) (verb_utf8_dfa[(c)] >> ((s) & 63))

/* 16 bytes from p are all ASCII. */
static inline int verb_utf8_ascii16(const unsigned char *p)
{
    uint64_t a, b;
    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    return !((a | b) & UINT64_C(0x8080808080808080));
}

/* Run the DFA over [p, end) from internal state s; returns the internal state, masked. Checks
 * for REJECT every 16 bytes, and skips 16 ASCII bytes at a time between code points. */
static inline uint64_t verb_utf8_dfa_run(uint64_t s, const unsigned char *p,
                                         const unsigned char *end)
{
    while (end - p >= 16) {
        if (s == VERB_UTF8_S_ACCEPT && verb_utf8_ascii16(p)) {
            p += 16;
            continue;
        }
        for (int i = 0; i < 16; i++)
            s = VERB_UTF8_STEP(s, p[i]);
        s &= 63;
        if (s == VERB_UTF8_S_REJECT)
            return s;
        p += 16;
    }
    while (p != end)
        s = VERB_UTF8_STEP(s, *p++);
    return s & 63;
}

/* ---- SSE2 (x86-64) -------------------------------------------------------------------------- */

#if (defined(__SSE2__) || defined(_M_X64)) && !defined(VERB_UTF8_NO_SIMD)
#define VERB_UTF8_SSE2 1
#include <emmintrin.h>

#define VERB_UTF8_SET(c) _mm_set1_epi8((char)(c))
#define VERB_UTF8_LOAD(p) _mm_loadu_si128((const __m128i *)(const void *)(p))

/* The errors in the 16 bytes `cur`, given prevK: the 16 bytes K places before them (byte i of
 * prevK is the byte K places before byte i of cur). A nonzero byte of the result marks an error
 * there. Everything in Table 3-7 that can be seen looking back at most 3 bytes; what it cannot
 * see is a sequence cut short by the end of the data. Comparisons are signed (SSE2 has no other):
 * as signed values 80..BF come first and keep their order, then C0..FF, then 00..7F.
 */
static inline __m128i verb_utf8_sse2_errors(__m128i prev1, __m128i prev2, __m128i prev3,
                                            __m128i cur)
{
    /* A byte must be a continuation byte exactly when a lead 1, 2 or 3 bytes back calls for one:
     * C0..FF needs 1 after it, E0..FF 2, F0..FF 3 (saturating subtraction: nonzero if above). */
    __m128i needed = _mm_or_si128(_mm_subs_epu8(prev1, VERB_UTF8_SET(0xBF)),
                                  _mm_or_si128(_mm_subs_epu8(prev2, VERB_UTF8_SET(0xDF)),
                                               _mm_subs_epu8(prev3, VERB_UTF8_SET(0xEF))));
    __m128i is_cont = _mm_cmplt_epi8(cur, VERB_UTF8_SET(0xC0));
    __m128i not_needed = _mm_cmpeq_epi8(needed, _mm_setzero_si128());
    __m128i err = _mm_cmpeq_epi8(is_cont, not_needed);
    /* Bytes that never occur: C0 and C1 (they could only start overlongs), F5..FF. */
    err = _mm_or_si128(err, _mm_subs_epu8(cur, VERB_UTF8_SET(0xF4)));
    err = _mm_or_si128(err, _mm_cmpeq_epi8(_mm_and_si128(cur, VERB_UTF8_SET(0xFE)),
                                           VERB_UTF8_SET(0xC0)));
    /* Leads whose second byte has a narrower range: E0 A0..BF, ED 80..9F, F0 90..BF, F4 80..8F.
     * (A second byte that is no continuation byte at all is caught above.) */
    __m128i from_a0 = _mm_cmpgt_epi8(cur, VERB_UTF8_SET(0x9F));
    __m128i from_90 = _mm_cmpgt_epi8(cur, VERB_UTF8_SET(0x8F));
    err = _mm_or_si128(err, _mm_andnot_si128(from_a0, _mm_cmpeq_epi8(prev1, VERB_UTF8_SET(0xE0))));
    err = _mm_or_si128(err, _mm_and_si128(from_a0, _mm_cmpeq_epi8(prev1, VERB_UTF8_SET(0xED))));
    err = _mm_or_si128(err, _mm_andnot_si128(from_90, _mm_cmpeq_epi8(prev1, VERB_UTF8_SET(0xF0))));
    err = _mm_or_si128(err, _mm_and_si128(from_90, _mm_cmpeq_epi8(prev1, VERB_UTF8_SET(0xF4))));
    return err;
}

/* 64 bytes from p are all ASCII. */
static inline int verb_utf8_sse2_ascii64(const unsigned char *p)
{
    __m128i a = _mm_or_si128(VERB_UTF8_LOAD(p), VERB_UTF8_LOAD(p + 16));
    __m128i b = _mm_or_si128(VERB_UTF8_LOAD(p + 32), VERB_UTF8_LOAD(p + 48));
    return _mm_movemask_epi8(_mm_or_si128(a, b)) == 0;
}

/* Check [p, end), at least 16 bytes that start between code points, 16 at a time. Returns NULL
 * if invalid; else where the DFA is to take over, from ACCEPT: the start of the last code point
 * in the checked blocks, which may continue past them, or the end of the blocks. */
static inline const unsigned char *verb_utf8_sse2_bulk(const unsigned char *p,
                                                       const unsigned char *end)
{
    /* The first block: what came before it ended a code point, so it looks like ASCII. */
    __m128i cur = VERB_UTF8_LOAD(p);
    __m128i err = verb_utf8_sse2_errors(_mm_slli_si128(cur, 1), _mm_slli_si128(cur, 2),
                                        _mm_slli_si128(cur, 3), cur);
    p += 16;
    for (;;) {
        if (_mm_movemask_epi8(cur) == 0) {
            /* In ASCII: skip on while it lasts. The next block looks back at ASCII bytes. */
            while (end - p >= 64 && verb_utf8_sse2_ascii64(p))
                p += 64;
        }
        if (end - p < 16)
            break;
        cur = VERB_UTF8_LOAD(p);
        err = _mm_or_si128(err, verb_utf8_sse2_errors(VERB_UTF8_LOAD(p - 1), VERB_UTF8_LOAD(p - 2),
                                                      VERB_UTF8_LOAD(p - 3), cur));
        p += 16;
    }
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(err, _mm_setzero_si128())) != 0xFFFF)
        return NULL;
    /* The last lead, if it is among the last 3 bytes, may need bytes beyond them. */
    for (int k = 1; k <= 3; k++) {
        if ((p[-k] & 0xC0) != 0x80)
            return p - k;
    }
    return p;
}

#undef VERB_UTF8_SET
#undef VERB_UTF8_LOAD
#endif /* SSE2 */

/* ---- The entry point ------------------------------------------------------------------------ */

/* Feed n bytes. Returns 0 while the input so far can be a prefix of valid UTF-8, -1 otherwise
 * (and *state is VERB_UTF8_REJECT from then on). The text is complete when *state == 0.
 * A chunk holding an invalid byte returns -1, however much valid text precedes the byte in it. */
static inline int verb_utf8_feed(uint32_t *state, const unsigned char *p, size_t n)
{
    const unsigned char *end = p + n;
    uint64_t s;
    if (*state == VERB_UTF8_REJECT)
        return -1;
    s = *state ^ VERB_UTF8_S_ACCEPT;
    /* Finish a sequence that the previous chunk left open (at most 3 bytes). */
    while (s != VERB_UTF8_S_ACCEPT && s != VERB_UTF8_S_REJECT && p != end)
        s = VERB_UTF8_STEP(s, *p++) & 63;
#ifdef VERB_UTF8_SSE2
    if (s == VERB_UTF8_S_ACCEPT && end - p >= 16) {
        p = verb_utf8_sse2_bulk(p, end);
        if (p == NULL)
            s = VERB_UTF8_S_REJECT;
    }
#endif
    if (s != VERB_UTF8_S_REJECT)
        s = verb_utf8_dfa_run(s, p, end);
    *state = (uint32_t)s ^ VERB_UTF8_S_ACCEPT;
    return s == VERB_UTF8_S_REJECT ? -1 : 0;
}

#undef VERB_UTF8_STEP

#endif /* VERB_UTF8_KERNEL_H */
