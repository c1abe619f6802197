/* XOR masking of WebSocket payloads (RFC 6455 section 5.3).
 *
 * One kernel serves masking and unmasking, in place (dst == src) or into a new buffer, from any
 * position in the 4-byte key: `offset` is the index into the key of the first byte, which is what
 * streaming needs when a frame's payload arrives in pieces.
 *
 * The body works a 64-bit word at a time on an 8-byte aligned destination, unrolled so that
 * compilers vectorise it with the baseline instruction set of the target (SSE2 on x86_64, NEON on
 * aarch64); no -march flags are needed and none are used.
 */
#ifndef VERB_MASK_KERNEL_H
#define VERB_MASK_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Returns the key offset for the byte after the last one processed. */
static inline int verb_mask(unsigned char *dst, const unsigned char *src, size_t n,
                            const unsigned char key[4], int offset)
{
    size_t i = 0;
    offset &= 3;

    /* Head: byte at a time until dst is 8-byte aligned. */
    while (i < n && (((uintptr_t)(dst + i)) & 7u) != 0) {
        dst[i] = src[i] ^ key[offset];
        offset = (offset + 1) & 3;
        i++;
    }

    if (n - i >= 8) {
        /* Key rotated so that byte 0 of each word gets key[offset], repeated to 8 bytes. */
        unsigned char k8[8];
        uint64_t k;
        for (int j = 0; j < 8; j++) {
            k8[j] = key[(offset + j) & 3];
        }
        memcpy(&k, k8, 8);

        /* 32-byte blocks: four independent words per iteration. src may be unaligned. */
        for (; n - i >= 32; i += 32) {
            uint64_t a, b, c, d;
            memcpy(&a, src + i, 8);
            memcpy(&b, src + i + 8, 8);
            memcpy(&c, src + i + 16, 8);
            memcpy(&d, src + i + 24, 8);
            a ^= k; b ^= k; c ^= k; d ^= k;
            memcpy(dst + i, &a, 8);
            memcpy(dst + i + 8, &b, 8);
            memcpy(dst + i + 16, &c, 8);
            memcpy(dst + i + 24, &d, 8);
        }
        for (; n - i >= 8; i += 8) {
            uint64_t a;
            memcpy(&a, src + i, 8);
            a ^= k;
            memcpy(dst + i, &a, 8);
        }
        /* Whole words keep the key phase: 8 is a multiple of 4. */
    }

    /* Tail. */
    for (; i < n; i++) {
        dst[i] = src[i] ^ key[offset];
        offset = (offset + 1) & 3;
    }
    return offset;
}

#endif /* VERB_MASK_KERNEL_H */
