/* Fused kernels of Mamba-1's mixer for CPUs, float32 and float64: the selective scan (forward
 * and adjoint) and the causal depthwise convolution with its SiLU (forward and backward).
 *
 * Built at first use by neurofm/nn/mamba_kernels.py (the system C compiler, no torch headers) and
 * called through ctypes. Threads: OpenMP, which inside a torch process binds to the libgomp torch
 * already loaded (same soname), so the kernels share torch's thread team instead of competing
 * with its spinning threads. The recurrence, per sequence s, feature d and state n:
 *
 *     h_t[n, d] = exp(delta_t[d] * A[d, n]) * h_{t-1}[n, d] + delta_t[d] * u_t[d] * B_t[n]
 *     y_t[d]    = (sum_n C_t[n] * h_t[n, d] + D[d] * u_t[d]) * silu(z_t[d])
 *
 * (the gate silu(z) is optional: z may be NULL), which is Mamba's mixer between its projections.
 *
 * The state of a block of LANES features stays in the L1 cache while the block goes through
 * time, so every input is read once and no [L, N, Din] tensor is ever written: the eager scan
 * makes about 35 passes over such tensors. The adjoint recomputes each segment's states (and
 * decays) from the state saved where the segment starts, then runs backwards through it.
 *
 * The convolution, per sequence, channel c and step t (taps_t [K, C] is the weight transposed):
 *
 *     out[t, c] = silu(bias[c] + sum_j taps_t[j, c] * x[t - (K - 1) + j, c])   (x = 0 before t = 0)
 *
 * in one pass over x instead of K multiply-adds of shifted copies and a SiLU; its backward
 * recomputes the pre-activation and goes through time once (gradients of x, taps and bias).
 *
 * Layouts (C-contiguous): x, out, gout, gx [S, L, C]; taps_t, gtaps [K, C]; bias, gbias [C];
 * u, delta, z, y, gy, gu, gdelta, gz [S, L, Din]; a_t = A^T [N, Din]; d_skip [Din];
 * b, c, gb, gc [S, L, N]; h0, last, carry, gh0 [S, N, Din]; saved [S, ceil(L / seg), N, Din].
 * ga [N, Din], gd [Din], gtaps and gbias are accumulated into, one of each per slice of the
 * sequences (see the entry points at the end), and summed by the caller.
 *
 * The inputs and outputs at the mixer's projections (the convolution's x; the scan's z, y, gy,
 * gz) are of type TI, the rest of type T: the body below is compiled three times, for float
 * (suffix f32), for float with bfloat16 at the projections (f32_bf16: what bf16 autocast
 * gives and takes there, converted on the fly instead of by separate casts; the same numbers)
 * and for double (f64): the file includes itself with T, TI, IO (the suffix of TI's loads and
 * stores), SUFFIX and EXP defined.
 */
#ifndef T
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Features per block: one 512-bit vector of float32. Whole blocks run with this trip count as
 * a constant (fully vectorised); a last, narrower block takes the same code with a variable one. */
#define LANES 16
#define INLINE static inline __attribute__((always_inline))
#define CONCAT2(a, b) a##_##b
#define CONCAT(a, b) CONCAT2(a, b)
#define NAME(x) CONCAT(x, SUFFIX)

#include "kernel_dtypes.h"
#include "kernel_math.h"

INLINE double exp_f64(double x) { return exp(x); }

/* 1 when built with OpenMP (the entry points then run their slices in parallel). */
int kernels_threaded(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

#define T float
#define TI float
#define IO f32
#define SUFFIX f32
#define EXP exp_f32
#include "mamba_kernels.c"
#undef TI
#undef IO
#undef SUFFIX

#define TI uint16_t
#define IO bf16
#define SUFFIX f32_bf16
#include "mamba_kernels.c"
#undef T
#undef TI
#undef IO
#undef SUFFIX
#undef EXP

#define T double
#define TI double
#define IO f64
#define SUFFIX f64
#define EXP exp_f64
#include "mamba_kernels.c"
#undef T
#undef TI
#undef IO
#undef SUFFIX
#undef EXP

#else /* the body, for one T and TI */

#define LOADI(p, i) CONCAT(load, IO)(p, i)
#define STOREI(p, i, v) CONCAT(store, IO)(p, i, v)

/* One sequence, features [d0, d0 + wn): the forward through time. h [N * LANES] is scratch. */
INLINE void NAME(forward_block)(const T *u, const T *delta, const T *a_t, const T *b,
                                const T *c, const T *d_skip, const TI *z, const T *h0, TI *y,
                                T *last, T *saved, T *h, int64_t length, int64_t din,
                                int64_t n_state, int64_t seg, int64_t wn) {
    for (int64_t n = 0; n < n_state; n++)
        for (int64_t w = 0; w < wn; w++) h[n * LANES + w] = h0[n * din + w];
    for (int64_t t = 0; t < length; t++) {
        if (t % seg == 0) {
            T *out = saved + (t / seg) * n_state * din;
            for (int64_t n = 0; n < n_state; n++)
                for (int64_t w = 0; w < wn; w++) out[n * din + w] = h[n * LANES + w];
        }
        const T *dl = delta + t * din, *ul = u + t * din;
        const T *bl = b + t * n_state, *cl = c + t * n_state;
        T x[LANES], acc[LANES];
        for (int64_t w = 0; w < wn; w++) {
            x[w] = dl[w] * ul[w];
            acc[w] = d_skip[w] * ul[w];
        }
        for (int64_t n = 0; n < n_state; n++) {
            const T *an = a_t + n * din;
            T *hn = h + n * LANES;
            T bn = bl[n], cn = cl[n];
#pragma omp simd
            for (int64_t w = 0; w < wn; w++) {
                hn[w] = EXP(dl[w] * an[w]) * hn[w] + x[w] * bn;
                acc[w] += cn * hn[w];
            }
        }
        if (z) {
            const TI *zl = z + t * din;
#pragma omp simd
            for (int64_t w = 0; w < wn; w++) {
                const T zw = LOADI(zl, w);
                acc[w] *= zw / (1 + EXP(-zw));
            }
        }
        for (int64_t w = 0; w < wn; w++) STOREI(y, t * din + w, acc[w]);
    }
    for (int64_t n = 0; n < n_state; n++)
        for (int64_t w = 0; w < wn; w++) last[n * din + w] = h[n * LANES + w];
}

static int NAME(scan_forward_piece)(const T *u, const T *delta, const T *a_t, const T *b,
                                    const T *c, const T *d_skip, const TI *z, const T *h0, TI *y,
                                    T *last, T *saved, int64_t s0, int64_t s1, int64_t length,
                                    int64_t din, int64_t n_state, int64_t seg) {
    int64_t n_seg = (length + seg - 1) / seg;
    T *h = malloc(sizeof(T) * n_state * LANES);
    if (!h) return 1;
    for (int64_t s = s0; s < s1; s++) {
        const T *bs = b + s * length * n_state, *cs = c + s * length * n_state;
        for (int64_t d0 = 0; d0 < din; d0 += LANES) {
            int64_t off = s * length * din + d0, state = s * n_state * din + d0;
            const TI *zs = z ? z + off : NULL;
            T *saved_s = saved + s * n_seg * n_state * din + d0;
            if (din - d0 >= LANES)
                NAME(forward_block)(u + off, delta + off, a_t + d0, bs, cs, d_skip + d0, zs,
                                    h0 + state, y + off, last + state, saved_s, h, length, din,
                                    n_state, seg, LANES);
            else
                NAME(forward_block)(u + off, delta + off, a_t + d0, bs, cs, d_skip + d0, zs,
                                    h0 + state, y + off, last + state, saved_s, h, length, din,
                                    n_state, seg, din - d0);
        }
    }
    free(h);
    return 0;
}

/* One sequence, features [d0, d0 + wn): the adjoint, from the last segment to the first.
 * Scratch: hs [(seg + 1) * N * LANES] the states entering and leaving each step of a segment,
 * da [seg * N * LANES] its decays, g [N * LANES] the adjoint state; gbw, gcw [L * N * LANES]
 * collect per-lane sums of gb and gc over the feature blocks. */
INLINE void NAME(backward_block)(const T *u, const T *delta, const T *a_t, const T *b,
                                 const T *c, const T *d_skip, const TI *z, const T *saved,
                                 const TI *gy, const T *carry, T *gu, T *gdelta, TI *gz, T *gh0,
                                 T *ga, T *gd, T *hs, T *da, T *g, T *gbw, T *gcw,
                                 int64_t length, int64_t din, int64_t n_state, int64_t seg,
                                 int64_t wn) {
    int64_t n_seg = (length + seg - 1) / seg, block = n_state * LANES;
    for (int64_t n = 0; n < n_state; n++)
        for (int64_t w = 0; w < wn; w++) g[n * LANES + w] = carry[n * din + w];
    for (int64_t k = n_seg - 1; k >= 0; k--) {
        int64_t t0 = k * seg, t1 = t0 + seg < length ? t0 + seg : length;
        const T *entering = saved + k * n_state * din;
        for (int64_t n = 0; n < n_state; n++)
            for (int64_t w = 0; w < wn; w++) hs[n * LANES + w] = entering[n * din + w];
        for (int64_t t = t0; t < t1; t++) {  /* recompute the segment's states and decays */
            const T *dl = delta + t * din, *ul = u + t * din, *bl = b + t * n_state;
            const T *prev = hs + (t - t0) * block;
            T *next = hs + (t - t0 + 1) * block, *dat = da + (t - t0) * block;
            T x[LANES];
            for (int64_t w = 0; w < wn; w++) x[w] = dl[w] * ul[w];
            for (int64_t n = 0; n < n_state; n++) {
                const T *an = a_t + n * din;
                T bn = bl[n];
#pragma omp simd
                for (int64_t w = 0; w < wn; w++) {
                    T decay = EXP(dl[w] * an[w]);
                    dat[n * LANES + w] = decay;
                    next[n * LANES + w] = decay * prev[n * LANES + w] + x[w] * bn;
                }
            }
        }
        for (int64_t t = t1 - 1; t >= t0; t--) {  /* and go back through them */
            const T *dl = delta + t * din, *ul = u + t * din;
            const TI *gyl = gy + t * din;
            const T *bl = b + t * n_state, *cl = c + t * n_state;
            const T *prev = hs + (t - t0) * block, *cur = hs + (t - t0 + 1) * block;
            const T *dat = da + (t - t0) * block;
            T *gbt = gbw + t * block, *gct = gcw + t * block;
            /* gys: d loss / d (the output before the gate); acc: that output, recomputed */
            T x[LANES], gx[LANES], glog[LANES], gys[LANES], acc[LANES], sig[LANES];
            for (int64_t w = 0; w < wn; w++) {
                x[w] = dl[w] * ul[w];
                gx[w] = 0;
                glog[w] = 0;
                gys[w] = LOADI(gyl, w);
                acc[w] = d_skip[w] * ul[w];
            }
            if (z) {
                const TI *zl = z + t * din;
#pragma omp simd
                for (int64_t w = 0; w < wn; w++) {
                    const T zw = LOADI(zl, w);
                    sig[w] = 1 / (1 + EXP(-zw));
                    gys[w] *= zw * sig[w];
                }
            }
            for (int64_t n = 0; n < n_state; n++) {
                const T *an = a_t + n * din;
                T *gan = ga + n * din, *gn = g + n * LANES;
                T bn = bl[n], cn = cl[n];
#pragma omp simd
                for (int64_t w = 0; w < wn; w++) {
                    T gh = gn[w] + cn * gys[w];  /* d loss / d h_t */
                    acc[w] += cn * cur[n * LANES + w];
                    gct[n * LANES + w] += gys[w] * cur[n * LANES + w];
                    gbt[n * LANES + w] += gh * x[w];
                    gx[w] += gh * bn;
                    T decayed = gh * dat[n * LANES + w];
                    T gl = decayed * prev[n * LANES + w];  /* d loss / d (delta_t A) */
                    glog[w] += gl * an[w];
                    gan[w] += gl * dl[w];
                    gn[w] = decayed;  /* d loss / d h_{t-1}, through h_t */
                }
            }
            if (z) {
                const TI *zl = z + t * din;
                TI *gzl = gz + t * din;
#pragma omp simd
                for (int64_t w = 0; w < wn; w++)  /* silu'(z) = sig (1 + z (1 - sig)) */
                    STOREI(gzl, w, LOADI(gyl, w) * acc[w] * sig[w]
                                       * (1 + LOADI(zl, w) * (1 - sig[w])));
            }
            for (int64_t w = 0; w < wn; w++) {
                gu[t * din + w] = gx[w] * dl[w] + gys[w] * d_skip[w];
                gdelta[t * din + w] = glog[w] + gx[w] * ul[w];
                gd[w] += gys[w] * ul[w];
            }
        }
    }
    for (int64_t n = 0; n < n_state; n++)
        for (int64_t w = 0; w < wn; w++) gh0[n * din + w] = g[n * LANES + w];
}

static int NAME(scan_backward_piece)(const T *u, const T *delta, const T *a_t, const T *b,
                                     const T *c, const T *d_skip, const TI *z, const T *saved,
                                     const TI *gy, const T *carry, T *gu, T *gdelta, T *gb,
                                     T *gc, TI *gz, T *gh0, T *ga, T *gd, int64_t s0, int64_t s1,
                                     int64_t length, int64_t din, int64_t n_state, int64_t seg) {
    int64_t n_seg = (length + seg - 1) / seg, block = n_state * LANES;
    T *hs = malloc(sizeof(T) * (seg + 1) * block), *da = malloc(sizeof(T) * seg * block);
    T *g = malloc(sizeof(T) * block);
    T *gbw = malloc(sizeof(T) * length * block), *gcw = malloc(sizeof(T) * length * block);
    int failed = !hs || !da || !g || !gbw || !gcw;
    for (int64_t s = s0; s < s1 && !failed; s++) {
        memset(gbw, 0, sizeof(T) * length * block);
        memset(gcw, 0, sizeof(T) * length * block);
        const T *bs = b + s * length * n_state, *cs = c + s * length * n_state;
        for (int64_t d0 = 0; d0 < din; d0 += LANES) {
            int64_t off = s * length * din + d0, state = s * n_state * din + d0;
            const TI *zs = z ? z + off : NULL;
            TI *gzs = z ? gz + off : NULL;
            const T *saved_s = saved + s * n_seg * n_state * din + d0;
            if (din - d0 >= LANES)
                NAME(backward_block)(u + off, delta + off, a_t + d0, bs, cs, d_skip + d0, zs,
                                     saved_s, gy + off, carry + state, gu + off, gdelta + off,
                                     gzs, gh0 + state, ga + d0, gd + d0, hs, da, g, gbw, gcw,
                                     length, din, n_state, seg, LANES);
            else
                NAME(backward_block)(u + off, delta + off, a_t + d0, bs, cs, d_skip + d0, zs,
                                     saved_s, gy + off, carry + state, gu + off, gdelta + off,
                                     gzs, gh0 + state, ga + d0, gd + d0, hs, da, g, gbw, gcw,
                                     length, din, n_state, seg, din - d0);
        }
        for (int64_t t = 0; t < length; t++)
            for (int64_t n = 0; n < n_state; n++) {
                T sb = 0, sc = 0;
                for (int64_t w = 0; w < LANES; w++) {
                    sb += gbw[t * block + n * LANES + w];
                    sc += gcw[t * block + n * LANES + w];
                }
                gb[(s * length + t) * n_state + n] = sb;
                gc[(s * length + t) * n_state + n] = sc;
            }
    }
    free(hs);
    free(da);
    free(g);
    free(gbw);
    free(gcw);
    return failed;
}

/* Causal depthwise convolution + SiLU of one step t of one sequence: pre [C] the
 * pre-activation (x points at the sequence). */
INLINE void NAME(conv_row)(const TI *x, const T *taps_t, const T *bias, T *pre, int64_t t,
                           int64_t channels, int64_t k) {
    for (int64_t ch = 0; ch < channels; ch++) pre[ch] = bias[ch];
    for (int64_t j = t < k - 1 ? k - 1 - t : 0; j < k; j++) {
        const T *tap = taps_t + j * channels;
        const TI *xr = x + (t - (k - 1) + j) * channels;
#pragma omp simd
        for (int64_t ch = 0; ch < channels; ch++) pre[ch] += tap[ch] * LOADI(xr, ch);
    }
}

static int NAME(conv_silu_forward_piece)(const TI *x, const T *taps_t, const T *bias, T *out,
                                         int64_t s0, int64_t s1, int64_t length, int64_t channels,
                                         int64_t k) {
    for (int64_t s = s0; s < s1; s++)
        for (int64_t t = 0; t < length; t++) {
            T *o = out + (s * length + t) * channels;
            NAME(conv_row)(x + s * length * channels, taps_t, bias, o, t, channels, k);
#pragma omp simd
            for (int64_t ch = 0; ch < channels; ch++) o[ch] = o[ch] / (1 + EXP(-o[ch]));
        }
    return 0;
}

/* gtaps [K, C] and gbias [C] are accumulated into (one per call). Each step's gradient of the
 * pre-activation goes to the K rows of gx it came from; row t is first written at step t. */
static int NAME(conv_silu_backward_piece)(const TI *x, const T *taps_t, const T *bias,
                                          const T *gout, T *gx, T *gtaps, T *gbias, int64_t s0,
                                          int64_t s1, int64_t length, int64_t channels, int64_t k) {
    T *gpre = malloc(sizeof(T) * channels);
    if (!gpre) return 1;
    for (int64_t s = s0; s < s1; s++) {
        const TI *xs = x + s * length * channels;
        T *gxs = gx + s * length * channels;
        for (int64_t t = 0; t < length; t++) {
            const T *go = gout + (s * length + t) * channels;
            NAME(conv_row)(xs, taps_t, bias, gpre, t, channels, k);
#pragma omp simd
            for (int64_t ch = 0; ch < channels; ch++) {  /* silu'(p) = sig (1 + p (1 - sig)) */
                T p = gpre[ch], sig = 1 / (1 + EXP(-p));
                gpre[ch] = go[ch] * sig * (1 + p * (1 - sig));
                gbias[ch] += gpre[ch];
            }
            for (int64_t j = t < k - 1 ? k - 1 - t : 0; j < k; j++) {
                int64_t row = t - (k - 1) + j;
                const T *tap = taps_t + j * channels;
                const TI *xr = xs + row * channels;
                T *gt = gtaps + j * channels, *gr = gxs + row * channels;
                if (j == k - 1) {
#pragma omp simd
                    for (int64_t ch = 0; ch < channels; ch++) gr[ch] = tap[ch] * gpre[ch];
                } else {
#pragma omp simd
                    for (int64_t ch = 0; ch < channels; ch++) gr[ch] += tap[ch] * gpre[ch];
                }
#pragma omp simd
                for (int64_t ch = 0; ch < channels; ch++) gt[ch] += gpre[ch] * LOADI(xr, ch);
            }
        }
    }
    free(gpre);
    return 0;
}

/* The entry points: the S sequences cut into `pieces` slices, taken in turn by `threads` OpenMP
 * threads (serial where the library is built without OpenMP); each slice has its own
 * accumulators (ga [pieces, N, Din], gd [pieces, Din], gtaps [pieces, K, C], gbias [pieces, C]).
 * Nonzero return: a work buffer could not be allocated. */
#define SLICE(k) n_seq * (k) / pieces, n_seq * ((k) + 1) / pieces

int NAME(scan_forward)(const T *u, const T *delta, const T *a_t, const T *b, const T *c,
                       const T *d_skip, const TI *z, const T *h0, TI *y, T *last, T *saved,
                       int64_t n_seq, int64_t length, int64_t din, int64_t n_state, int64_t seg,
                       int64_t pieces, int64_t threads) {
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(| : failed)
    for (int64_t k = 0; k < pieces; k++)
        failed |= NAME(scan_forward_piece)(u, delta, a_t, b, c, d_skip, z, h0, y, last, saved,
                                           SLICE(k), length, din, n_state, seg);
    return failed;
}

int NAME(scan_backward)(const T *u, const T *delta, const T *a_t, const T *b, const T *c,
                        const T *d_skip, const TI *z, const T *saved, const TI *gy,
                        const T *carry, T *gu, T *gdelta, T *gb, T *gc, TI *gz, T *gh0, T *ga,
                        T *gd, int64_t n_seq, int64_t length, int64_t din, int64_t n_state,
                        int64_t seg, int64_t pieces, int64_t threads) {
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(| : failed)
    for (int64_t k = 0; k < pieces; k++)
        failed |= NAME(scan_backward_piece)(u, delta, a_t, b, c, d_skip, z, saved, gy, carry,
                                            gu, gdelta, gb, gc, gz, gh0,
                                            ga + k * n_state * din, gd + k * din, SLICE(k),
                                            length, din, n_state, seg);
    return failed;
}

int NAME(conv_silu_forward)(const TI *x, const T *taps_t, const T *bias, T *out, int64_t n_seq,
                            int64_t length, int64_t channels, int64_t k_taps, int64_t pieces,
                            int64_t threads) {
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(| : failed)
    for (int64_t k = 0; k < pieces; k++)
        failed |= NAME(conv_silu_forward_piece)(x, taps_t, bias, out, SLICE(k), length,
                                                channels, k_taps);
    return failed;
}

int NAME(conv_silu_backward)(const TI *x, const T *taps_t, const T *bias, const T *gout, T *gx,
                             T *gtaps, T *gbias, int64_t n_seq, int64_t length, int64_t channels,
                             int64_t k_taps, int64_t pieces, int64_t threads) {
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(| : failed)
    for (int64_t k = 0; k < pieces; k++)
        failed |= NAME(conv_silu_backward_piece)(x, taps_t, bias, gout, gx,
                                                 gtaps + k * k_taps * channels,
                                                 gbias + k * channels, SLICE(k), length,
                                                 channels, k_taps);
    return failed;
}

#undef SLICE
#undef LOADI
#undef STOREI

#endif
