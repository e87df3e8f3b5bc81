/* The random words of neurofm's dropout masks (dropout_kernels.c, attention_kernels.c): streams
 * of sixteen xoshiro128+ generators (the lanes of one vector) seeded by SplitMix64 from a seed
 * and a stream number; word w of a stream comes from lane w % 16. Needs INLINE defined and
 * <stdint.h>, <string.h> included. */
#ifndef NEUROFM_KERNEL_RANDOM_H
#define NEUROFM_KERNEL_RANDOM_H

#define LANES 16

INLINE uint64_t splitmix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    uint32_t s[4][LANES];
} stream_t;

/* Start stream number `stream` of `seed`. */
INLINE void stream_start(stream_t *st, uint64_t seed, uint64_t stream) {
    uint64_t base = splitmix64(seed) ^ (stream * 2 * LANES);
    for (int l = 0; l < LANES; l++) {
        uint64_t a = splitmix64(base + 2 * l), b = splitmix64(base + 2 * l + 1);
        st->s[0][l] = (uint32_t)a | 1u; /* never the all-zero state */
        st->s[1][l] = (uint32_t)(a >> 32);
        st->s[2][l] = (uint32_t)b;
        st->s[3][l] = (uint32_t)(b >> 32);
    }
}

/* The next `count` words, a multiple of LANES (xoshiro128+ steps of all lanes; the sum's high
 * bits are its best). */
INLINE void stream_next(stream_t *restrict st, uint32_t *restrict words, int64_t count) {
    uint32_t s0[LANES], s1[LANES], s2[LANES], s3[LANES];
    memcpy(s0, st->s[0], sizeof s0);
    memcpy(s1, st->s[1], sizeof s1);
    memcpy(s2, st->s[2], sizeof s2);
    memcpy(s3, st->s[3], sizeof s3);
    for (int64_t t = 0; t < count; t += LANES) {
#pragma omp simd
        for (int l = 0; l < LANES; l++) {
            uint32_t shifted = s1[l] << 9;
            words[t + l] = s0[l] + s3[l];
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= shifted;
            s3[l] = (s3[l] << 11) | (s3[l] >> 21);
        }
    }
    memcpy(st->s[0], s0, sizeof s0);
    memcpy(st->s[1], s1, sizeof s1);
    memcpy(st->s[2], s2, sizeof s2);
    memcpy(st->s[3], s3, sizeof s3);
}

#endif
