/* Self-attention with dropout on CPU in one pass each way: neurofm's fused attention kernels.
 *
 * Built together with the other kernels by neurofm/nn/cpu_kernels.py (the system C compiler, no
 * torch headers) and called through ctypes from neurofm/nn/attention_kernels.py.
 *
 * For each sequence and head, with q, k, v [L, e] read in place from the QKV projection's
 * output (any strides, the last one 1) and keys masked by `valid`:
 *
 *     P = softmax(q k^T / sqrt(e))          (rows; invalid keys get weight 0)
 *     out = (P * M) v                       (M: the dropout mask, 1 / (1 - p) or 0)
 *
 * written in place into the output projection's input. Nothing of size [L, L] is stored: the
 * backward recomputes P (the same code, the same numbers) and regenerates M, so the weights,
 * their dropout, the scaling and the layout changes around them cost no memory passes. The
 * explicit attention it replaces writes scores, float32 weights, dropped weights and heads-first
 * copies of q, k, v, and reads them back in the backward.
 *
 * Arithmetic in float (double for float64), storage float32, bfloat16 or float64. The work per
 * (sequence, head) fits in the L1/L2 cache: K and V transposed or padded to multiples of LANES,
 * rows of scores LANES at a time in registers.
 *
 * Dropout words: (sequence, head) pair number n takes stream n of the call's seed
 * (kernel_random.h); row i takes the next LP words (LP = L rounded up to LANES), element j the
 * j-th of them, kept when it is >= threshold.
 *
 * Geometry `geo` (13 int64): n1, n2 (the sequences, pair n = (s1 * n2 + s2) * H + h), L, H, e;
 * strides of q, k, v and of their gradients over s1, s2, position, head; strides of out and of
 * its gradient over s1, s2, position, head. valid [n1, L] (uint8, 1 = a key that takes part)
 * or NULL.
 *
 * The body below is compiled three times (float32, bfloat16 with float arithmetic, float64):
 * the file includes itself with T, CT, SUFFIX and EXP defined.
 */
#ifndef T
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))
#define CONCAT2(a, b) a##_##b
#define CONCAT(a, b) CONCAT2(a, b)
#define NAME(x) CONCAT(x, SUFFIX)

#include "kernel_dtypes.h"
#include "kernel_math.h"
#include "kernel_random.h"

INLINE double exp_f64_attention(double x) { return exp(x); }

/* Rows of a matrix product at a time (kernel `matmul`). */
#define ROWS 4

/* n rounded up to a multiple of LANES. */
INLINE int64_t padded(int64_t n) { return (n + LANES - 1) / LANES * LANES; }

/* The sizes and strides in `geo` (see above), and the padded sizes of the work buffers. */
typedef struct {
    int64_t n1, n2, len, heads, dim, s1, s2, sl, sh, o1, o2, ol, oh;
    int64_t pairs;      /* (sequence, head) pairs */
    int64_t lr, lp, ep; /* L rounded up to ROWS and to LANES, e to LANES */
} geometry_t;

INLINE geometry_t read_geometry(const int64_t *geo) {
    geometry_t g = {geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6],
                    geo[7], geo[8], geo[9], geo[10], geo[11], geo[12], 0, 0, 0, 0};
    g.pairs = g.n1 * g.n2 * g.heads;
    g.lr = (g.len + ROWS - 1) / ROWS * ROWS;
    g.lp = padded(g.len);
    g.ep = padded(g.dim);
    return g;
}

/* Threads for a call: one for small work (starting threads costs more than it saves). */
INLINE int attention_threads(int64_t pairs, int64_t len, int64_t dim, int64_t threads) {
    return pairs * len * len * dim < (1 << 18) || pairs < 2 ? 1 : (int)threads;
}

#define T float
#define CT float
#define SUFFIX f32
#define EXP exp_f32
#include "attention_kernels.c"
#undef T
#undef CT
#undef SUFFIX
#undef EXP

#define T uint16_t
#define CT float
#define SUFFIX bf16
#define EXP exp_f32
#include "attention_kernels.c"
#undef T
#undef CT
#undef SUFFIX
#undef EXP

#define T double
#define CT double
#define SUFFIX f64
#define EXP exp_f64_attention
#include "attention_kernels.c"
#undef T
#undef CT
#undef SUFFIX
#undef EXP

#else /* the body, for one T */

#define LOAD CONCAT(load, SUFFIX)
#define STORE CONCAT(store, SUFFIX)

/* LANES values of CT in one (GCC/Clang) vector: a register or two. */
typedef CT NAME(vec) __attribute__((vector_size(LANES * sizeof(CT))));

/* c[i * n + j] = sum_k a[i * ai + k * ak] * b[k * n + j] for i < m (a multiple of 4) and
 * j < n (a multiple of LANES): a [m, depth] (any strides: a^T is a with ai, ak swapped) times
 * b [depth, n]. Four rows by two vectors of columns at a time: eight independent sums, each
 * in registers. */
INLINE void NAME(matmul)(CT *restrict c, const CT *restrict a, int64_t ai, int64_t ak,
                         const CT *restrict b, int64_t m, int64_t depth, int64_t n) {
    typedef NAME(vec) vec;
    for (int64_t i0 = 0; i0 < m; i0 += 4) {
        const CT *restrict a0 = a + i0 * ai, *restrict a1 = a0 + ai, *restrict a2 = a1 + ai,
                 *restrict a3 = a2 + ai;
        CT *restrict c0 = c + i0 * n, *restrict c1 = c0 + n, *restrict c2 = c1 + n,
           *restrict c3 = c2 + n;
        int64_t j = 0;
        for (; j + 2 * LANES <= n; j += 2 * LANES) {
            vec s00 = {0}, s01 = {0}, s10 = {0}, s11 = {0}, s20 = {0}, s21 = {0}, s30 = {0},
                s31 = {0};
            for (int64_t k = 0; k < depth; k++) {
                vec b0, b1;
                memcpy(&b0, b + k * n + j, sizeof b0);
                memcpy(&b1, b + k * n + j + LANES, sizeof b1);
                const CT x0 = a0[k * ak], x1 = a1[k * ak], x2 = a2[k * ak], x3 = a3[k * ak];
                s00 += x0 * b0; s01 += x0 * b1;
                s10 += x1 * b0; s11 += x1 * b1;
                s20 += x2 * b0; s21 += x2 * b1;
                s30 += x3 * b0; s31 += x3 * b1;
            }
            memcpy(c0 + j, &s00, sizeof s00); memcpy(c0 + j + LANES, &s01, sizeof s01);
            memcpy(c1 + j, &s10, sizeof s10); memcpy(c1 + j + LANES, &s11, sizeof s11);
            memcpy(c2 + j, &s20, sizeof s20); memcpy(c2 + j + LANES, &s21, sizeof s21);
            memcpy(c3 + j, &s30, sizeof s30); memcpy(c3 + j + LANES, &s31, sizeof s31);
        }
        if (j < n) { /* one vector of columns left */
            vec s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
            for (int64_t k = 0; k < depth; k++) {
                vec b0;
                memcpy(&b0, b + k * n + j, sizeof b0);
                s0 += a0[k * ak] * b0; s1 += a1[k * ak] * b0;
                s2 += a2[k * ak] * b0; s3 += a3[k * ak] * b0;
            }
            memcpy(c0 + j, &s0, sizeof s0); memcpy(c1 + j, &s1, sizeof s1);
            memcpy(c2 + j, &s2, sizeof s2); memcpy(c3 + j, &s3, sizeof s3);
        }
    }
}

/* s [lp] -> softmax over the keys with ok[j] = 1 (the others, padding included, get 0). No
 * valid key: NaN, as softmax over nothing but -inf. */
INLINE void NAME(softmax_row)(CT *restrict s, const CT *restrict ok, int64_t lp) {
    CT top = -INFINITY;
#pragma omp simd reduction(max : top)
    for (int64_t j = 0; j < lp; j++) {
        const CT sj = ok[j] != 0 ? s[j] : (CT)-INFINITY;
        top = sj > top ? sj : top;
    }
    CT sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < lp; j++) {
        CT e = EXP(s[j] - top);
        s[j] = ok[j] != 0 ? e : (CT)0;
        sum += s[j];
    }
    const CT inv = (CT)1 / sum;
#pragma omp simd
    for (int64_t j = 0; j < lp; j++) s[j] *= inv;
}

/* The dropout factors of the next row: f[j] = factor where the word is kept, else 0. */
INLINE void NAME(row_mask)(stream_t *st, uint32_t *restrict words, CT *restrict f, int64_t lp,
                           CT factor, uint32_t threshold) {
    stream_next(st, words, lp);
#pragma omp simd
    for (int64_t j = 0; j < lp; j++) f[j] = words[j] >= threshold ? factor : (CT)0;
}

/* rows[i * ep + d] = scale * x[i * sl + d] for i < len, d < dim (the padding stays 0). Not
 * inlined: with a constant scale of 1 the compiler would call memcpy for every row. */
static __attribute__((noinline)) void NAME(load_rows)(CT *restrict rows, const T *restrict x, CT scale, int64_t sl,
                            int64_t len, int64_t dim, int64_t ep) {
    for (int64_t i = 0; i < len; i++) {
        CT *restrict r = rows + i * ep;
#pragma omp simd
        for (int64_t d = 0; d < dim; d++) r[d] = scale * LOAD(x + i * sl, d);
    }
}

/* x[i * sl + d] = scale * rows[i * ep + d] for i < len, d < dim. Not inlined (as load_rows). */
static __attribute__((noinline)) void NAME(store_rows)(T *restrict x, const CT *restrict rows, CT scale, int64_t sl,
                             int64_t len, int64_t dim, int64_t ep) {
    for (int64_t i = 0; i < len; i++) {
        const CT *restrict r = rows + i * ep;
#pragma omp simd
        for (int64_t d = 0; d < dim; d++) STORE(x + i * sl, d, scale * r[d]);
    }
}

/* t[d * lp + j] = rows[j * ep + d] for d < dim, j < len: [L, EP] rows -> [e, LP] columns. */
INLINE void NAME(transpose)(CT *restrict t, const CT *restrict rows, int64_t len, int64_t dim,
                            int64_t lp, int64_t ep) {
    for (int64_t d = 0; d < dim; d++) {
#pragma omp simd
        for (int64_t j = 0; j < len; j++) t[d * lp + j] = rows[j * ep + d];
    }
}

/* Per-thread work buffers, zeroed once: what is never written (padding) stays 0. Matrices
 * [LR, EP] or [LR, LP] (LR = L rounded up to ROWS, LP and EP to LANES); [e, LP] for the
 * transposes. */
typedef struct {
    CT *qs, *kr, *vr, *go;  /* scale * Q, K, V, the output's gradient (then dQ) [LR, EP] */
    CT *gk, *gv;            /* dK, dV (the forward: its output) [LR, EP] */
    CT *kt, *vt;            /* K^T, V^T [e, LP] */
    CT *p, *pm, *dw;        /* weights, dropped weights, their gradient (then dS) [LR, LP] */
    CT *ok, *f;             /* valid keys, one row's dropout factors [LP] */
    uint32_t *words;        /* [LP] */
    void *base;
} NAME(scratch_t);

INLINE int NAME(scratch_alloc)(NAME(scratch_t) *w, int64_t len, int64_t dim) {
    const int64_t lr = (len + ROWS - 1) / ROWS * ROWS, lp = padded(len), ep = padded(dim);
    const int64_t sizes[] = {lr * ep, lr * ep, lr * ep, lr * ep, lr * ep, lr * ep, dim * lp,
                             dim * lp, lr * lp, lr * lp, lr * lp, lp, lp, lp};
    CT **slots[] = {&w->qs, &w->kr, &w->vr, &w->go, &w->gk, &w->gv, &w->kt, &w->vt, &w->p,
                    &w->pm, &w->dw, &w->ok, &w->f, (CT **)&w->words};
    const int count = (int)(sizeof sizes / sizeof sizes[0]);
    int64_t total = 0;
    for (int i = 0; i < count; i++) total += (sizes[i] * (int64_t)sizeof(CT) + 63) / 64 * 64;
    char *at = aligned_alloc(64, (size_t)total);
    if (at == NULL) return 1;
    memset(at, 0, (size_t)total);
    w->base = at;
    for (int i = 0; i < count; i++) {
        *slots[i] = (CT *)at;
        at += (sizes[i] * (int64_t)sizeof(CT) + 63) / 64 * 64;
    }
    return 0;
}

/* Weights of pair n (the forward's and the backward's, the same code): p = softmax(scale Q
 * K^T) over the valid keys, pm = p * the dropout mask. Reads K, Q into kr, kt, qs. */
INLINE void NAME(weights)(NAME(scratch_t) *w, const T *q, const T *k, const uint8_t *valid,
                          int64_t sl, int64_t len, int64_t dim, CT scale, CT factor,
                          uint64_t seed, uint32_t threshold, int64_t n) {
    const int64_t lr = (len + ROWS - 1) / ROWS * ROWS, lp = padded(len), ep = padded(dim);
    NAME(load_rows)(w->qs, q, scale, sl, len, dim, ep);
    NAME(load_rows)(w->kr, k, 1, sl, len, dim, ep);
    NAME(transpose)(w->kt, w->kr, len, dim, lp, ep);
    for (int64_t j = 0; j < len; j++) w->ok[j] = valid == NULL || valid[j] ? 1 : 0;
    NAME(matmul)(w->p, w->qs, ep, 1, w->kt, lr, dim, lp); /* scores */
    stream_t st;
    stream_start(&st, seed, (uint64_t)n);
    for (int64_t i = 0; i < len; i++) {
        CT *restrict pi = w->p + i * lp, *restrict pmi = w->pm + i * lp;
        NAME(softmax_row)(pi, w->ok, lp);
        NAME(row_mask)(&st, w->words, w->f, lp, factor, threshold);
#pragma omp simd
        for (int64_t j = 0; j < lp; j++) pmi[j] = pi[j] * w->f[j];
    }
}

/* Pair n's output: out = (P * M) V, written at `out`. */
INLINE void NAME(forward_pair)(NAME(scratch_t) *w, const geometry_t *g, const T *v, T *out) {
    NAME(load_rows)(w->vr, v, 1, g->sl, g->len, g->dim, g->ep);
    NAME(matmul)(w->gv, w->pm, g->lp, 1, w->vr, g->lr, g->len, g->ep);
    NAME(store_rows)(out, w->gv, 1, g->ol, g->len, g->dim, g->ep);
}

/* Pair n's gradients of q, k, v from the output's gradient at `gout`. */
INLINE void NAME(backward_pair)(NAME(scratch_t) *w, const geometry_t *g, const T *v,
                                const T *gout, T *gq, T *gk, T *gv, CT scale, CT factor,
                                uint64_t seed, uint32_t threshold, int64_t n) {
    const int64_t len = g->len, dim = g->dim, lr = g->lr, lp = g->lp, ep = g->ep;
    NAME(load_rows)(w->vr, v, 1, g->sl, len, dim, ep);
    NAME(transpose)(w->vt, w->vr, len, dim, lp, ep);
    NAME(load_rows)(w->go, gout, 1, g->ol, len, dim, ep);
    NAME(matmul)(w->dw, w->go, ep, 1, w->vt, lr, dim, lp);   /* dO V^T */
    NAME(matmul)(w->gv, w->pm, 1, lp, w->go, lr, len, ep);   /* dV = (P * M)^T dO */
    /* dS = P (dW - sum_j P dW), dW = dO V^T * M the gradient of the weights */
    stream_t st;
    stream_start(&st, seed, (uint64_t)n);
    for (int64_t i = 0; i < len; i++) {
        CT *restrict pi = w->p + i * lp, *restrict dwi = w->dw + i * lp;
        NAME(row_mask)(&st, w->words, w->f, lp, factor, threshold);
        CT dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < lp; j++) {
            dwi[j] *= w->f[j];
            dot += pi[j] * dwi[j];
        }
#pragma omp simd
        for (int64_t j = 0; j < lp; j++) dwi[j] = pi[j] * (dwi[j] - dot);
    }
    NAME(matmul)(w->go, w->dw, lp, 1, w->kr, lr, len, ep);   /* dQ / scale = dS K */
    NAME(matmul)(w->gk, w->dw, 1, lp, w->qs, lr, len, ep);   /* dK = dS^T (scale Q) */
    NAME(store_rows)(gq, w->go, scale, g->sl, len, dim, ep);
    NAME(store_rows)(gk, w->gk, 1, g->sl, len, dim, ep);
    NAME(store_rows)(gv, w->gv, 1, g->sl, len, dim, ep);
}

/* Every (sequence, head) pair, split among the threads, each with its work buffers: the
 * weights, then the forward (out) or, where gout is given, the backward (gq, gk, gv).
 * Nonzero: a work buffer could not be allocated. */
static int NAME(attention_pairs)(const T *q, const T *k, const T *v, T *out, const T *gout,
                                 T *gq, T *gk, T *gv, const uint8_t *valid, const int64_t *geo,
                                 CT scale, CT factor, uint64_t seed, uint32_t threshold,
                                 int64_t threads) {
    const geometry_t g = read_geometry(geo);
    int failed = 0;
#pragma omp parallel num_threads(attention_threads(g.pairs, g.len, g.dim, threads)) \
    reduction(| : failed)
    {
        NAME(scratch_t) w;
        failed = NAME(scratch_alloc)(&w, g.len, g.dim);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < g.pairs; n++) {
            if (failed) continue;
            const int64_t h = n % g.heads, s = n / g.heads, i2 = s % g.n2, i1 = s / g.n2;
            const int64_t at = i1 * g.s1 + i2 * g.s2 + h * g.sh;
            const int64_t out_at = i1 * g.o1 + i2 * g.o2 + h * g.oh;
            NAME(weights)(&w, q + at, k + at, valid == NULL ? NULL : valid + i1 * g.len, g.sl,
                          g.len, g.dim, scale, factor, seed, threshold, n);
            if (gout == NULL)
                NAME(forward_pair)(&w, &g, v + at, out + out_at);
            else
                NAME(backward_pair)(&w, &g, v + at, gout + out_at, gq + at, gk + at, gv + at,
                                    scale, factor, seed, threshold, n);
        }
        if (!failed) free(w.base);
    }
    return failed;
}

int NAME(attention_forward)(const T *q, const T *k, const T *v, T *out, const uint8_t *valid,
                            const int64_t *geo, CT scale, CT factor, uint64_t seed,
                            uint32_t threshold, int64_t threads) {
    return NAME(attention_pairs)(q, k, v, out, NULL, NULL, NULL, NULL, valid, geo, scale,
                                 factor, seed, threshold, threads);
}

int NAME(attention_backward)(const T *q, const T *k, const T *v, const T *gout, T *gq, T *gk,
                             T *gv, const uint8_t *valid, const int64_t *geo, CT scale,
                             CT factor, uint64_t seed, uint32_t threshold, int64_t threads) {
    return NAME(attention_pairs)(q, k, v, NULL, gout, gq, gk, gv, valid, geo, scale, factor,
                                 seed, threshold, threads);
}

/* The mask the kernels apply, for tests: mask [pairs, L, L] = factor where kept, else 0. */
void NAME(attention_keep_mask)(T *mask, int64_t pairs, int64_t len, CT factor, uint64_t seed,
                               uint32_t threshold) {
    const int64_t lp = padded(len);
    uint32_t *words = malloc((size_t)lp * sizeof(uint32_t));
    CT *f = malloc((size_t)lp * sizeof(CT));
    for (int64_t n = 0; n < pairs && words != NULL && f != NULL; n++) {
        stream_t st;
        stream_start(&st, seed, (uint64_t)n);
        for (int64_t i = 0; i < len; i++) {
            NAME(row_mask)(&st, words, f, lp, factor, threshold);
            for (int64_t j = 0; j < len; j++) STORE(mask, (n * len + i) * len + j, f[j]);
        }
    }
    free(words);
    free(f);
}

#undef LOAD
#undef STORE

#endif
