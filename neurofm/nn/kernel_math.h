/* Vectorisable math shared by neurofm's C kernels (included by mamba_kernels.c and
 * dropout_kernels.c). Needs INLINE defined and <math.h>, <stdint.h> included. */
#ifndef NEUROFM_KERNEL_MATH_H
#define NEUROFM_KERNEL_MATH_H

/* exp for float32, vectorisable: exp(x) = 2^k exp(r), |r| <= ln(2) / 2, with Cephes' expf
 * polynomial for exp(r) (about 1 ulp); x is clamped to the normal range. */
INLINE float exp_f32(float x) {
    x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
    /* k = round(x / ln 2): adding 1.5 * 2^23 rounds to an integer (no floorf, which gcc will
       not vectorise here; needs strict float semantics, so no -ffast-math). */
    float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - k * 0.693359375f;
    r = r + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale = {((int32_t)k + 127) << 23};  /* 2^k */
    return p * scale.f;
}

#endif
