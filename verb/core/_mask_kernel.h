/* XOR masking of WebSocket payloads (RFC 6455 section 5.3).
 *
 * One kernel serves masking and unmasking, in place (dst == src) or into a new buffer, from any
 * position in the 4-byte key: `offset` is the index into the key of the first byte, which is what
 * streaming needs when a frame's payload arrives in pieces.
 *
 * Layout of the work, for a destination at any address:
 *   head    bytes, then 8-byte words, until dst is 32-byte aligned (aligned stores never split a
 *           cache line; a misaligned dst costs up to a third of the throughput otherwise);
 *   body    128-byte blocks of 32-byte AVX2 registers, on x86_64 CPUs that have AVX2 (checked at
 *           run time: wheels are built for the baseline, never with -march flags), then 64-byte
 *           blocks of 16-byte registers, the baseline of x86_64 (SSE2) and aarch64 (NEON);
 *   tail    8-byte words, then bytes.
 * The 16-byte and 32-byte registers are GCC vector extensions (gcc and clang), so one source
 * serves SSE2, NEON and AVX2; other compilers get the portable 8-byte word loop alone.
 * A whole word or register keeps the key phase, since 8, 16 and 32 are multiples of 4.
 *
 * Measured on x86_64 (Zen 4), 1 MiB in place: 16-byte registers ~58 GB/s, AVX2 ~93 GB/s, where
 * memcpy of the same 1 MiB into another buffer is ~47 GB/s.
 */
#ifndef VERB_MASK_KERNEL_H
#define VERB_MASK_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define VERB_MASK_VECTORS 1
#if defined(__x86_64__) && !defined(VERB_MASK_NO_AVX2)
#define VERB_MASK_AVX2 1
#include <cpuid.h>
#endif
#endif

/* Loads and stores go through memcpy: src may be at any address, and compilers turn a
 * fixed-size memcpy into one (unaligned) load or store. */

#ifdef VERB_MASK_VECTORS
typedef uint64_t verb_u64x2 __attribute__((vector_size(16)));

/* Whole 64-byte blocks with 16-byte registers; returns the number of bytes done. */
static inline size_t verb_mask_blocks16(unsigned char *dst, const unsigned char *src, size_t n,
                                        uint64_t k)
{
    const verb_u64x2 kv = {k, k};
    size_t i = 0;
    for (; n - i >= 64; i += 64) {
        verb_u64x2 a, b, c, d;
        memcpy(&a, src + i, 16);
        memcpy(&b, src + i + 16, 16);
        memcpy(&c, src + i + 32, 16);
        memcpy(&d, src + i + 48, 16);
        a ^= kv; b ^= kv; c ^= kv; d ^= kv;
        memcpy(dst + i, &a, 16);
        memcpy(dst + i + 16, &b, 16);
        memcpy(dst + i + 32, &c, 16);
        memcpy(dst + i + 48, &d, 16);
    }
    return i;
}
#endif /* VERB_MASK_VECTORS */

#ifdef VERB_MASK_AVX2
typedef uint64_t verb_u64x4 __attribute__((vector_size(32)));

/* Whole 128-byte blocks with 32-byte registers; returns the number of bytes done.
 * Compiled for AVX2 whatever the build flags; call only when verb_mask_have_avx2(). */
__attribute__((target("avx2")))
static inline size_t verb_mask_blocks_avx2(unsigned char *dst, const unsigned char *src, size_t n,
                                           uint64_t k)
{
    const verb_u64x4 kv = {k, k, k, k};
    size_t i = 0;
    for (; n - i >= 128; i += 128) {
        verb_u64x4 a, b, c, d;
        memcpy(&a, src + i, 32);
        memcpy(&b, src + i + 32, 32);
        memcpy(&c, src + i + 64, 32);
        memcpy(&d, src + i + 96, 32);
        a ^= kv; b ^= kv; c ^= kv; d ^= kv;
        memcpy(dst + i, &a, 32);
        memcpy(dst + i + 32, &b, 32);
        memcpy(dst + i + 64, &c, 32);
        memcpy(dst + i + 96, &d, 32);
    }
    return i;
}

/* Whether the CPU has AVX2 and the OS saves the 32-byte registers, from cpuid directly:
 * __builtin_cpu_supports needs a runtime symbol that Apple's x86_64 toolchain may lack.
 * Out of line and cold: it runs once per module ("unused": not every includer masks). */
__attribute__((noinline, cold, unused))
static int verb_mask_detect_avx2(void)
{
    unsigned int a, b, c, d, xcr0_lo, xcr0_hi;
    /* Leaf 1, ECX: bit 27 OSXSAVE (xgetbv usable), bit 28 AVX. */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)) || !(c & (1u << 28))) {
        return 0;
    }
    /* XCR0 bits 1 and 2: the OS saves SSE and AVX state on context switches. */
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 6u) != 6u || __get_cpuid_max(0, NULL) < 7) {
        return 0;
    }
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 5) & 1u; /* leaf 7, EBX bit 5: AVX2 */
}

/* The answer, cached per module (relaxed atomics: a race only asks the CPU twice). */
static inline int verb_mask_have_avx2(void)
{
    static int state = -1; /* -1 unknown, 0 no, 1 yes */
    int have = __atomic_load_n(&state, __ATOMIC_RELAXED);
    if (have < 0) {
        have = verb_mask_detect_avx2();
        __atomic_store_n(&state, have, __ATOMIC_RELAXED);
    }
    return have;
}
#endif /* VERB_MASK_AVX2 */

/* Returns the key offset for the byte after the last one processed. */
static inline int verb_mask(unsigned char *dst, const unsigned char *src, size_t n,
                            const unsigned char key[4], int offset)
{
    size_t i = 0;
    offset &= 3;

    /* Head: bytes until dst is 8-byte aligned. */
    for (; i < n && ((uintptr_t)(dst + i) & 7u) != 0; i++) {
        dst[i] = src[i] ^ key[offset];
        offset = (offset + 1) & 3;
    }

    if (n - i >= 8) {
        /* The key from `offset` on, repeated to 8 bytes (in memory order, whatever the
         * endianness), so that a word's first byte gets key[offset]. */
        unsigned char k8[8];
        uint64_t k, w;
        for (int j = 0; j < 8; j++) {
            k8[j] = key[(offset + j) & 3];
        }
        memcpy(&k, k8, 8);

        /* Words until dst is 32-byte aligned, if there is enough to gain from it. */
        if (n - i >= 64) {
            for (; ((uintptr_t)(dst + i) & 31u) != 0; i += 8) {
                memcpy(&w, src + i, 8);
                w ^= k;
                memcpy(dst + i, &w, 8);
            }
        }
#ifdef VERB_MASK_AVX2
        /* 256 bytes: below that, the 16-byte loop does as well. */
        if (n - i >= 256 && verb_mask_have_avx2()) {
            i += verb_mask_blocks_avx2(dst + i, src + i, n - i, k);
        }
#endif
#ifdef VERB_MASK_VECTORS
        i += verb_mask_blocks16(dst + i, src + i, n - i, k);
#endif
        for (; n - i >= 8; i += 8) {
            memcpy(&w, src + i, 8);
            w ^= k;
            memcpy(dst + i, &w, 8);
        }
    }

    /* Tail: bytes. */
    for (; i < n; i++) {
        dst[i] = src[i] ^ key[offset];
        offset = (offset + 1) & 3;
    }
    return offset;
}

#endif /* VERB_MASK_KERNEL_H */
