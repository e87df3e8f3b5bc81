/* Loads and stores of the element types of neurofm's C kernels, each as its arithmetic type:
 * float32 ("f32"), float64 ("f64") and bfloat16 ("bf16": stored as uint16, rounded to nearest
 * even as PyTorch does, NaN kept). Included by dropout_kernels.c and attention_kernels.c; needs
 * INLINE defined and <stdint.h>, <string.h> included. */
#ifndef NEUROFM_KERNEL_DTYPES_H
#define NEUROFM_KERNEL_DTYPES_H

INLINE float load_f32(const float *p, int64_t i) { return p[i]; }
INLINE double load_f64(const double *p, int64_t i) { return p[i]; }
INLINE float load_bf16(const uint16_t *p, int64_t i) {
    uint32_t bits = (uint32_t)p[i] << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
INLINE void store_f32(float *p, int64_t i, float v) { p[i] = v; }
INLINE void store_f64(double *p, int64_t i, double v) { p[i] = v; }
INLINE void store_bf16(uint16_t *p, int64_t i, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
    uint32_t quiet_nan = (bits >> 16) | 0x40u; /* NaN stays NaN (rounding could make it inf) */
    p[i] = (uint16_t)((bits & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

#endif
