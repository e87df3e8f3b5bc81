/* Dropout on CPU without a mask tensor: neurofm's fused dropout kernels.
 *
 * Built together with mamba_kernels.c by neurofm/nn/cpu_kernels.py (the system C compiler, no
 * torch headers) and called through ctypes from neurofm/nn/dropout_kernels.py.
 *
 * Whether element i of a call is kept is a function of the call's 64-bit seed and i alone:
 * a 32-bit random word compared with a threshold (p * 2^32). The words of each block of BLOCK
 * elements come from generators seeded by (seed, block), so the backward regenerates the
 * forward's mask instead of reading a saved one, threads draw their blocks without
 * coordination, and the result does not depend on the number of threads. PyTorch's dropout
 * draws, writes a mask tensor, reads it twice (forward and backward) and multiplies; here it is
 * one pass each way.
 *
 * The feed-forward network's GELU is fused with its dropout: the forward writes gelu(h) * mask
 * and gelu'(h) (kept for the backward instead of h), the backward grad * mask * gelu'(h).
 *
 * Every kernel scales the kept elements by a factor per *item*: items are consecutive runs of
 * `per_item` elements (one item for plain dropout, the batch items for drop-path, whose
 * factors are 0 for a dropped item). Types: float32 ("f32"), bfloat16 ("bf16", stored as
 * uint16, converted with round-to-nearest-even as PyTorch does) and float64 ("f64");
 * arithmetic in float, or double for float64.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define INLINE static inline __attribute__((always_inline))

#include "kernel_math.h"

#include "kernel_dtypes.h"
#include "kernel_random.h"

/* Elements per block that one thread takes at a time: element e of block b takes word e of
 * stream b (kernel_random.h); the words are made SUB at a time, in L1, then used. */
#define BLOCK 16384
#define SUB 1024

/* Threads for n elements: one below a few blocks (starting threads costs more). */
INLINE int threads_for(int64_t n, int64_t threads) {
    return n < 4 * BLOCK ? 1 : (int)threads;
}

/* Run STATEMENT for every element i in [0, n), with `keep` (whether it is kept) and `f` (its
 * item's factor, of type CT) defined; blocks go to the threads, items may end inside a block. */
#define FOR_ELEMENTS(CT, STATEMENT)                                                            \
    do {                                                                                   \
        int64_t n_blocks_ = (n + BLOCK - 1) / BLOCK;                                       \
        _Pragma("omp parallel for schedule(static) num_threads(threads_for(n, threads))")  \
        for (int64_t b_ = 0; b_ < n_blocks_; b_++) {                                       \
            uint32_t words_[SUB] __attribute__((aligned(64)));                             \
            stream_t stream_;                                                              \
            stream_start(&stream_, seed, (uint64_t)b_);                                    \
            int64_t end_ = (b_ + 1) * BLOCK < n ? (b_ + 1) * BLOCK : n;                    \
            for (int64_t c0_ = b_ * BLOCK; c0_ < end_; c0_ += SUB) {                       \
                int64_t c1_ = c0_ + SUB < end_ ? c0_ + SUB : end_;                         \
                stream_next(&stream_, words_, SUB);                                        \
                for (int64_t lo_ = c0_; lo_ < c1_;) {                                      \
                    int64_t item_ = lo_ / per_item;                                        \
                    int64_t hi_ = (item_ + 1) * per_item < c1_ ? (item_ + 1) * per_item : c1_; \
                    const uint32_t *w_ = words_ - c0_;                                     \
                    const CT f = factor[item_];                                            \
                    _Pragma("omp simd")                                                    \
                    for (int64_t i = lo_; i < hi_; i++) {                                  \
                        const int keep = w_[i] >= threshold;                               \
                        STATEMENT;                                                         \
                    }                                                                      \
                    lo_ = hi_;                                                             \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    } while (0)

/* out = x * (keep ? factor[item] : 0) (as x * mask: NaN and inf stay NaN where dropped), x of
 * type TX, out of type TO, arithmetic in CT. */
#define DEFINE_DROPOUT(IN, OUT, TX, TO, CT)                                                \
    void dropout_##IN##_##OUT(const TX *x, TO *out, int64_t n, int64_t per_item,           \
                              const CT *factor, uint64_t seed, uint32_t threshold,         \
                              int64_t threads) {                                           \
        FOR_ELEMENTS(CT, store_##OUT(out, i, load_##IN(x, i) * (keep ? f : (CT)0)));             \
    }

/* out = base + x * (keep ? factor[item] : 0); out and base of type TB, x of type TX. */
#define DEFINE_DROPOUT_ADD(BASE, IN, TB, TX, CT)                                           \
    void dropout_add_##BASE##_##IN(const TB *base, const TX *x, TB *out, int64_t n,        \
                                   int64_t per_item, const CT *factor, uint64_t seed,      \
                                   uint32_t threshold, int64_t threads) {                  \
        FOR_ELEMENTS(CT, store_##BASE(out, i, load_##BASE(base, i)                             \
                                          + load_##IN(x, i) * (keep ? f : (CT)0)));        \
    }

/* The standard normal CDF and density at x, for GELU (x CDF(x)) and its derivative
 * (CDF + x density). float: erfc(z) = t (a1 + a2 t + ... + a5 t^4) exp(-z^2), t = 1 / (1 + p z)
 * (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7), the one exp shared with the density; double:
 * libm. */
INLINE void normal_f32(float x, float *cdf, float *density) {
    float z = fabsf(x) * 0.70710678118654752f;
    float t = 1.0f / (1.0f + 0.3275911f * z);
    float fit = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f
                + t * (-1.453152027f + t * 1.061405429f))));
    float gauss = exp_f32(-z * z); /* exp(-x^2 / 2) */
    float lower_tail = 0.5f * fit * gauss; /* CDF(-|x|) = erfc(|x| / sqrt 2) / 2 */
    *cdf = x < 0.0f ? lower_tail : 1.0f - lower_tail;
    *density = 0.398942280401432678f * gauss;
}

INLINE void normal_f64(double x, double *cdf, double *density) {
    *cdf = 0.5 * erfc(-x * 0.707106781186547524);
    *density = 0.398942280401432678 * exp(-0.5 * x * x);
}

/* out = gelu(h) * (keep ? factor[item] : 0) and slope = gelu'(h) = CDF(h) + h density(h)
 * (for the backward, which then reads it instead of h: same memory, no math), all of type T. */
#define DEFINE_GELU_DROPOUT(S, T, CT, NORMAL)                                              \
    void gelu_dropout_##S(const T *h, T *out, T *slope, int64_t n, int64_t per_item,       \
                          const CT *factor, uint64_t seed, uint32_t threshold,             \
                          int64_t threads) {                                               \
        FOR_ELEMENTS(CT, {                                                                 \
            CT x = load_##S(h, i);                                                         \
            CT cdf;                                                                        \
            CT density;                                                                    \
            NORMAL(x, &cdf, &density);                                                     \
            store_##S(out, i, x * cdf * (keep ? f : (CT)0));                               \
            store_##S(slope, i, cdf + x * density);                                        \
        });                                                                                \
    }                                                                                      \
    /* grad_h = grad * (keep ? factor[item] : 0) * slope */                                \
    void gelu_dropout_backward_##S(const T *grad, const T *slope, T *grad_h, int64_t n,    \
                                   int64_t per_item, const CT *factor, uint64_t seed,      \
                                   uint32_t threshold, int64_t threads) {                  \
        FOR_ELEMENTS(CT, store_##S(grad_h, i, load_##S(grad, i) * (keep ? f : (CT)0)       \
                                                  * load_##S(slope, i)));                  \
    }

/* out = keep ? factor[item] : 0 (the mask itself, for code that wants it). */
#define DEFINE_MASK(OUT, TO, CT)                                                           \
    void keep_mask_##OUT(TO *out, int64_t n, int64_t per_item, const CT *factor,           \
                         uint64_t seed, uint32_t threshold, int64_t threads) {             \
        FOR_ELEMENTS(CT, store_##OUT(out, i, keep ? f : (CT)0));                               \
    }

DEFINE_DROPOUT(f32, f32, float, float, float)
DEFINE_DROPOUT(f32, bf16, float, uint16_t, float)
DEFINE_DROPOUT(bf16, bf16, uint16_t, uint16_t, float)
DEFINE_DROPOUT(bf16, f32, uint16_t, float, float)
DEFINE_DROPOUT(f64, f64, double, double, double)

DEFINE_DROPOUT_ADD(f32, f32, float, float, float)
DEFINE_DROPOUT_ADD(f32, bf16, float, uint16_t, float)
DEFINE_DROPOUT_ADD(bf16, bf16, uint16_t, uint16_t, float)
DEFINE_DROPOUT_ADD(f64, f64, double, double, double)

DEFINE_MASK(f32, float, float)
DEFINE_MASK(bf16, uint16_t, float)
DEFINE_MASK(f64, double, double)

DEFINE_GELU_DROPOUT(f32, float, float, normal_f32)
DEFINE_GELU_DROPOUT(bf16, uint16_t, float, normal_f32)
DEFINE_GELU_DROPOUT(f64, double, double, normal_f64)
