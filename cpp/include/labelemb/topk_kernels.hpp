// The vector kernels of the top-k search (topk.hpp, topk_clustered.hpp): exact_dot, the
// score every path reports (scalar, SSE2 and AVX2 + FMA versions that agree bit for bit
// on every machine), row norms and the bound on sgemm's rounding error, the 16-wide
// compares that pre-filter a tile row (ge_mask16, collect_ge), and score_tile (one
// sgemm per (query block, label block) tile). Why the reported score is exact and how
// the error bound is used: see topk.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "blas.hpp"
#include "common.hpp"

namespace labelemb {

namespace topk_detail {

inline int lowest_bit(unsigned m) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctz(m);
#else
    int i = 0;
    while (!(m & 1u)) {
        m >>= 1;
        ++i;
    }
    return i;
#endif
}

// Bit j set when p[j] >= t, for j in [0, 16).
inline unsigned ge_mask16(const float* p, float t) {
#if defined(__SSE2__)
    __m128 tv = _mm_set1_ps(t);
    unsigned a = static_cast<unsigned>(_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p), tv)));
    unsigned b = static_cast<unsigned>(_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 4), tv)));
    unsigned c = static_cast<unsigned>(_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 8), tv)));
    unsigned d = static_cast<unsigned>(_mm_movemask_ps(_mm_cmpge_ps(_mm_loadu_ps(p + 12), tv)));
    return a | (b << 4) | (c << 8) | (d << 12);
#else
    unsigned m = 0;
    for (int i = 0; i < 16; ++i) m |= static_cast<unsigned>(p[i] >= t) << i;
    return m;
#endif
}

// The reported score: the products are exact in double; they are summed in a fixed
// order, eight partial sums s_l over j = l mod 8 (j < d8 = d - d % 8), combined as
// ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)), then the last d % 8 products added
// in turn; the result is rounded once to float. Every version below (scalar, SSE2,
// AVX2 + FMA) follows exactly that order, and a fused multiply-add changes nothing
// since the product is exact, so the score is the same on every machine.
inline float exact_dot_scalar(const float* a, const float* b, int64_t d) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const int64_t d8 = d - d % 8;
    for (int64_t j = 0; j < d8; j += 8)
        for (int l = 0; l < 8; ++l) s[l] += double(a[j + l]) * double(b[j + l]);
    double t = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
    for (int64_t j = d8; j < d; ++j) t += double(a[j]) * double(b[j]);
    return static_cast<float>(t);
}

#if defined(__SSE2__)
inline float exact_dot_sse2(const float* a, const float* b, int64_t d) {
    __m128d s01 = _mm_setzero_pd(), s23 = s01, s45 = s01, s67 = s01;
    const int64_t d8 = d - d % 8;
    for (int64_t j = 0; j < d8; j += 8) {
        const __m128 a0 = _mm_loadu_ps(a + j), a1 = _mm_loadu_ps(a + j + 4);
        const __m128 b0 = _mm_loadu_ps(b + j), b1 = _mm_loadu_ps(b + j + 4);
        s01 = _mm_add_pd(s01, _mm_mul_pd(_mm_cvtps_pd(a0), _mm_cvtps_pd(b0)));
        s23 = _mm_add_pd(s23, _mm_mul_pd(_mm_cvtps_pd(_mm_movehl_ps(a0, a0)),
                                         _mm_cvtps_pd(_mm_movehl_ps(b0, b0))));
        s45 = _mm_add_pd(s45, _mm_mul_pd(_mm_cvtps_pd(a1), _mm_cvtps_pd(b1)));
        s67 = _mm_add_pd(s67, _mm_mul_pd(_mm_cvtps_pd(_mm_movehl_ps(a1, a1)),
                                         _mm_cvtps_pd(_mm_movehl_ps(b1, b1))));
    }
    // (s0 + s4, s1 + s5) + (s2 + s6, s3 + s7), then lane 0 + lane 1.
    const __m128d w = _mm_add_pd(_mm_add_pd(s01, s45), _mm_add_pd(s23, s67));
    double t = _mm_cvtsd_f64(w) + _mm_cvtsd_f64(_mm_unpackhi_pd(w, w));
    for (int64_t j = d8; j < d; ++j) t += double(a[j]) * double(b[j]);
    return static_cast<float>(t);
}
#endif

#if (defined(__GNUC__) || defined(__clang__)) && defined(__SSE2__) && \
    (defined(__x86_64__) || defined(__i386__))
#define LABELEMB_HAVE_AVX2_DOT 1
__attribute__((target("avx2,fma"))) inline float exact_dot_avx2(const float* a, const float* b,
                                                                int64_t d) {
    __m256d s0123 = _mm256_setzero_pd(), s4567 = s0123;
    const int64_t d8 = d - d % 8;
    for (int64_t j = 0; j < d8; j += 8) {
        s0123 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + j)),
                                _mm256_cvtps_pd(_mm_loadu_ps(b + j)), s0123);
        s4567 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + j + 4)),
                                _mm256_cvtps_pd(_mm_loadu_ps(b + j + 4)), s4567);
    }
    const __m256d u = _mm256_add_pd(s0123, s4567);  // s0+s4, s1+s5, s2+s6, s3+s7
    const __m128d w = _mm_add_pd(_mm256_castpd256_pd128(u), _mm256_extractf128_pd(u, 1));
    double t = _mm_cvtsd_f64(w) + _mm_cvtsd_f64(_mm_unpackhi_pd(w, w));
    for (int64_t j = d8; j < d; ++j) t += double(a[j]) * double(b[j]);
    return static_cast<float>(t);
}

inline bool cpu_has_avx2_fma() {
    static const bool has = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }();
    return has;
}
#endif

using ExactDot = float (*)(const float*, const float*, int64_t);

// The fastest version this CPU runs (all give the same result).
inline ExactDot exact_dot_fn() {
#if defined(LABELEMB_HAVE_AVX2_DOT)
    if (cpu_has_avx2_fma()) return exact_dot_avx2;
#endif
#if defined(__SSE2__)
    return exact_dot_sse2;
#else
    return exact_dot_scalar;
#endif
}

inline float exact_dot(const float* a, const float* b, int64_t d) { return exact_dot_fn()(a, b, d); }

// One named version (for tests: all must agree): 0 scalar, 1 SSE2, 2 AVX2 + FMA.
inline float exact_dot_version(int version, const float* a, const float* b, int64_t d) {
    switch (version) {
        case 0:
            return exact_dot_scalar(a, b, d);
#if defined(__SSE2__)
        case 1:
            return exact_dot_sse2(a, b, d);
#endif
#if defined(LABELEMB_HAVE_AVX2_DOT)
        case 2:
            LABELEMB_CHECK(cpu_has_avx2_fma(), "this CPU has no AVX2 + FMA");
            return exact_dot_avx2(a, b, d);
#endif
        default:
            LABELEMB_CHECK(false, "exact_dot version " << version << " is not built");
    }
    return 0;
}

inline double norm2(const float* a, int64_t d) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += double(a[j]) * double(a[j]);
    return std::sqrt(s);
}

// Largest row norm of X (m x d).
inline double max_row_norm(const float* X, int64_t m, int64_t d, int nt) {
    double best = 0;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(max : best)
    for (int64_t i = 0; i < m; ++i) best = std::max(best, norm2(X + i * d, d));
    return best;
}

// |sgemm score - exact_dot| <= error_coef(d) |q| |v| + d FLT_MIN: any float summation
// order is within (d - 1) u sum |q_j v_j| of the exact sum (u = 2^-24), the rounding to
// float adds u |q . v|; the coefficient doubles that for safety.
inline double error_coef(int64_t d) { return 2.0 * (double(d) + 2.0) * std::ldexp(1.0, -24); }
inline double error_abs(int64_t d) {
    return double(d) * double(std::numeric_limits<float>::min());
}

// Positions j in [0, len) with s[j] >= t, written to pos; returns their number. Groups
// of 16 scores are compared at once and only the set bits are visited.
inline int64_t collect_ge_base(const float* s, int64_t len, float t, int32_t* pos) {
    int64_t n = 0, j = 0;
    for (; j + 16 <= len; j += 16) {
        unsigned mask = ge_mask16(s + j, t);
        while (mask) {
            pos[n++] = static_cast<int32_t>(j + lowest_bit(mask));
            mask &= mask - 1;
        }
    }
    for (; j < len; ++j)
        if (s[j] >= t) pos[n++] = static_cast<int32_t>(j);
    return n;
}

#if defined(LABELEMB_HAVE_AVX2_DOT)
__attribute__((target("avx2"))) inline int64_t collect_ge_avx2(const float* s, int64_t len,
                                                               float t, int32_t* pos) {
    const __m256 tv = _mm256_set1_ps(t);
    int64_t n = 0, j = 0;
    for (; j + 16 <= len; j += 16) {
        const unsigned lo = static_cast<unsigned>(
            _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + j), tv, _CMP_GE_OQ)));
        const unsigned hi = static_cast<unsigned>(
            _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + j + 8), tv, _CMP_GE_OQ)));
        unsigned mask = lo | (hi << 8);
        while (mask) {
            pos[n++] = static_cast<int32_t>(j + __builtin_ctz(mask));
            mask &= mask - 1;
        }
    }
    for (; j < len; ++j)
        if (s[j] >= t) pos[n++] = static_cast<int32_t>(j);
    return n;
}
#endif

using CollectGe = int64_t (*)(const float*, int64_t, float, int32_t*);

inline CollectGe collect_ge_fn() {
#if defined(LABELEMB_HAVE_AVX2_DOT)
    if (cpu_has_avx2_fma()) return collect_ge_avx2;
#endif
    return collect_ge_base;
}

// tile (nq x nl, row-major) = Q (nq x d) V (nl x d)^T, by one column-major sgemm:
// C (nl x nq) = V' Q with V and Q seen as d x nl and d x nq column-major.
inline void score_tile(const float* V, int64_t nl, const float* Q, int64_t nq, int64_t d,
                       float* tile) {
    const char ta = 'T', tb = 'N';
    const int m = static_cast<int>(nl), n = static_cast<int>(nq), kk = static_cast<int>(d);
    const float one = 1.0f, zero = 0.0f;
    blas().sgemm(&ta, &tb, &m, &n, &kk, &one, V, &kk, Q, &kk, &zero, tile, &m);
}

}  // namespace topk_detail

}  // namespace labelemb
