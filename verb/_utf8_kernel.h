/* Incremental UTF-8 validation (RFC 3629; Unicode Table 3-7, "well-formed byte sequences").
 *
 * The state carries a code point split across chunks, so a text message can be validated as its
 * bytes arrive and rejected at the first byte that cannot start or continue a well-formed
 * sequence (fail fast, as RFC 6455 section 8.1 allows and Autobahn 6.4 expects).
 *
 * States: 0 accept (between code points); 1..7 inside a sequence, naming what the next byte must
 * be; VERB_UTF8_REJECT once invalid (sticky).
 */
#ifndef VERB_UTF8_KERNEL_H
#define VERB_UTF8_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VERB_UTF8_ACCEPT 0u
#define VERB_UTF8_REJECT 8u

/* For each in-sequence state: allowed range of the next byte, and the state after it. */
static const unsigned char verb_utf8_lo[8]   = {0, 0x80, 0x80, 0xA0, 0x80, 0x80, 0x90, 0x80};
static const unsigned char verb_utf8_hi[8]   = {0, 0xBF, 0xBF, 0xBF, 0x9F, 0xBF, 0xBF, 0x8F};
static const unsigned char verb_utf8_next[8] = {0, 0,    1,    1,    1,    2,    2,    2};

/* State after a lead byte (>= 0x80); VERB_UTF8_REJECT for bytes that cannot lead. */
static inline uint32_t verb_utf8_lead(unsigned char c)
{
    if (c < 0xC2) return VERB_UTF8_REJECT;  /* continuation byte, or overlong C0/C1 */
    if (c < 0xE0) return 1;
    if (c == 0xE0) return 3;                /* E0 A0..BF: no overlongs */
    if (c == 0xED) return 4;                /* ED 80..9F: no surrogates */
    if (c < 0xF0) return 2;
    if (c == 0xF0) return 6;                /* F0 90..BF: no overlongs */
    if (c < 0xF4) return 5;
    if (c == 0xF4) return 7;                /* F4 80..8F: nothing above U+10FFFF */
    return VERB_UTF8_REJECT;
}

/* Feed n bytes. Returns 0 while the input so far can be a prefix of valid UTF-8, -1 otherwise
 * (and *state is VERB_UTF8_REJECT from then on). The text is complete when *state == 0. */
static inline int verb_utf8_feed(uint32_t *state, const unsigned char *p, size_t n)
{
    uint32_t s = *state;
    size_t i = 0;
    if (s == VERB_UTF8_REJECT) return -1;
    while (i < n) {
        if (s == VERB_UTF8_ACCEPT) {
            /* ASCII fast path: 16 then 8 bytes at a time. */
            while (n - i >= 16) {
                uint64_t a, b;
                memcpy(&a, p + i, 8);
                memcpy(&b, p + i + 8, 8);
                if ((a | b) & UINT64_C(0x8080808080808080)) break;
                i += 16;
            }
            while (n - i >= 8) {
                uint64_t a;
                memcpy(&a, p + i, 8);
                if (a & UINT64_C(0x8080808080808080)) break;
                i += 8;
            }
            while (i < n && p[i] < 0x80) i++;
            if (i == n) break;
            s = verb_utf8_lead(p[i++]);
            if (s == VERB_UTF8_REJECT) {
                *state = s;
                return -1;
            }
        } else {
            unsigned char c = p[i++];
            if (c < verb_utf8_lo[s] || c > verb_utf8_hi[s]) {
                *state = VERB_UTF8_REJECT;
                return -1;
            }
            s = verb_utf8_next[s];
        }
    }
    *state = s;
    return 0;
}

#endif /* VERB_UTF8_KERNEL_H */
