/* Helpers shared by the load generator (loadgen.c) and the C echo server (cecho.c):
 * SHA-1 and base64 for the opening handshake (RFC 6455 §4.2.2, Sec-WebSocket-Accept),
 * a small PRNG, a monotonic clock and socket setup. Plain C, libc only.
 */
#ifndef WS_COMMON_H
#define WS_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: payloads, masking keys and Sec-WebSocket-Key values; not cryptographic. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static inline uint64_t rng_next(void) {
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static inline int set_nonblock(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Raise the soft open-files limit to the hard one (10,000 connections need it). */
static inline void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- SHA-1 (FIPS 180-4), enough for the 60-byte handshake input ---------------------------- */

static inline uint32_t rol32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const unsigned char *p) {
    uint32_t w[80], a, b, c, d, e, f, k, t;
    int i;
    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (i = 16; i < 80; i++) w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4];
    for (i = 0; i < 80; i++) {
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6; }
        t = rol32(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol32(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

static void sha1(const void *data, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const unsigned char *p = data;
    unsigned char block[64];
    size_t i, rest;
    uint64_t bits = (uint64_t)len * 8;
    for (i = 0; i + 64 <= len; i += 64) sha1_block(h, p + i);
    rest = len - i;
    memset(block, 0, 64);
    memcpy(block, p + i, rest);
    block[rest] = 0x80;
    if (rest >= 56) {
        sha1_block(h, block);
        memset(block, 0, 64);
    }
    for (i = 0; i < 8; i++) block[63 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, block);
    for (i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h[i];
    }
}

/* base64 of n bytes into out (4*ceil(n/3) chars + NUL). */
static void base64(const unsigned char *in, size_t n, char *out) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;
    for (i = 0; i + 2 < n; i += 3) {
        *out++ = tbl[in[i] >> 2];
        *out++ = tbl[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *out++ = tbl[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        *out++ = tbl[in[i + 2] & 63];
    }
    if (i < n) {
        *out++ = tbl[in[i] >> 2];
        if (i + 1 < n) {
            *out++ = tbl[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
            *out++ = tbl[(in[i + 1] & 15) << 2];
        } else {
            *out++ = tbl[(in[i] & 3) << 4];
            *out++ = '=';
        }
        *out++ = '=';
    }
    *out = 0;
}

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (key_len <= 64): 28 chars + NUL into out. */
static void ws_accept(const char *key, size_t key_len, char out[29]) {
    char buf[64 + sizeof(WS_GUID)];
    unsigned char digest[20];
    if (key_len > 64) key_len = 64;
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, WS_GUID, sizeof(WS_GUID) - 1);
    sha1(buf, key_len + sizeof(WS_GUID) - 1, digest);
    base64(digest, 20, out);
}

/* Case-insensitive search for a header line "name:" in an HTTP head (NUL-terminated);
 * returns a pointer to its value (leading spaces skipped) or NULL; *len gets the value length. */
static const char *find_header(const char *head, const char *name, size_t *len) {
    size_t n = strlen(name);
    const char *p = strstr(head, "\r\n");
    while (p && p[2] != '\r' && p[2] != 0) {
        const char *line = p + 2, *end = strstr(line, "\r\n");
        if (!end) return NULL;
        if ((size_t)(end - line) > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            const char *v = line + n + 1;
            while (v < end && (*v == ' ' || *v == '\t')) v++;
            const char *e = end;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t')) e--;
            *len = (size_t)(e - v);
            return v;
        }
        p = end;
    }
    return NULL;
}

#endif
