// Exact top-k and threshold decoding of inner products: each query q (a prediction in
// embedding space) ranks the labels by q . v_l; ties go to the lower label id.
//
// Reported scores are "exact": q . v accumulated in double (a product of two floats is
// exact in double) in a fixed order and rounded once to float (exact_dot). They do not
// depend on the BLAS, the blocking or the thread count, so every path (exhaustive,
// pruned, split over threads, torch) returns the same indices and scores. Candidates
// are found with sgemm scores s, which differ from the exact ones by at most
// eps(q) = c_d |q| max|v| (c_d ~ 2 (d + 3) 2^-24); a row keeps every candidate within
// 2 eps of its k-th sgemm score, which provably contains the exact top k, and rescores
// only those (about k per row) at the end.
//
// Exhaustive path (topk_blocked). Queries are cut into blocks of nb rows and labels into
// blocks of lb; each (query block, label block) score tile comes from one single-threaded
// sgemm into a thread-local buffer, and each tile row is scanned against the row's
// current threshold (k-th score - 2 eps): a vectorised pre-filter compares 16 scores at
// once and visits only those above, the survivors go to a per-row buffer of about 2k
// entries that a radix select cuts back when full (no sort, no n x L matrix). A row's
// first tile sets its threshold at once from the tile's own k-th score (for k >= 32 from
// a sample of every 8th score, kept once k scores of the tile reach it). Rescoring visits
// a block's candidates in label order, so the label vectors stream through the cache.
// Block sizes were measured (AMD EPYC, 2 threads, d = 256): 1024 x 2048 runs sgemm at
// the rate of one big multi-threaded call; smaller, cache-resident tiles (128-256 rows)
// lose 5-15% to packing.
// Work: 2 n L d flops in sgemm, n L compares, O(n k (log(L / lb) + d)) selection.
// Memory per thread: nb x lb floats (tile) + nb buffers of about 2k entries.
// OpenMP over query blocks (and over label ranges when there are fewer query blocks
// than threads); BLAS is single-threaded inside the region (BlasSingleThreaded).
//
// Pruned path (topk_clustered). The labels come grouped in clusters with a centre c;
// within a cluster they are ordered by decreasing distance delta_v = |v - c|. Since
// q . v <= q . c + |q| delta_v, label v cannot enter a row whose threshold t exceeds
// that bound (plus a margin for rounding): each row wants only the prefix of a cluster
// with delta_v >= (t - q . c) / |q| (often nothing; the few loose labels otherwise).
// Queries are processed grouped by their two most promising clusters, clusters in
// decreasing order of bound, in batches of growing size so the thresholds rise early.
// The part of a prefix wanted by at least a third of a block's rows is batched and
// scored for the whole block; the rest only for the rows that want it. Work: the centre
// scores (n x n_clusters x d) plus the scored prefixes.
//
// Threshold (threshold_blocked): every (row, label) with exact score > min_score, per
// query block, in row then label order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "blas.hpp"
#include "common.hpp"

namespace labelemb {

namespace topk_detail {

template <class I>
struct Entry {
    float s;
    I id;
};

// The ranking order: higher score first, then lower id.
template <class I>
inline bool better(const Entry<I>& a, const Entry<I>& b) {
    return a.s > b.s || (a.s == b.s && a.id < b.id);
}

template <class I>
struct Better {
    bool operator()(const Entry<I>& a, const Entry<I>& b) const { return better(a, b); }
};

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

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

// Order-preserving map of a float to an unsigned key (larger float, larger key).
inline uint32_t float_key(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

inline float key_float(uint32_t u) {
    u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// The k-th largest of the keys a[0..m) (1 <= k <= m; a is clobbered, b is scratch of
// m entries): radix select one byte at a time from the top, branch-free passes, until
// few keys are left, then a plain selection among those. About 3x faster than
// nth_element on the buffers of a row.
inline uint32_t kth_key(uint32_t* a, uint32_t* b, size_t m, size_t k) {
    size_t n = m, need = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        if (n <= 48) break;
        size_t hist[256] = {0};
        for (size_t i = 0; i < n; ++i) ++hist[(a[i] >> shift) & 255u];
        int digit = 255;
        size_t above = 0;
        for (; digit > 0; --digit) {
            if (above + hist[digit] >= need) break;
            above += hist[digit];
        }
        need -= above;
        size_t w = 0;
        for (size_t i = 0; i < n; ++i) {
            b[w] = a[i];
            w += ((a[i] >> shift) & 255u) == static_cast<uint32_t>(digit);
        }
        n = w;
        std::swap(a, b);
    }
    // The n keys left share every byte decided so far: the need-th largest of them is
    // the answer.
    std::nth_element(a, a + (need - 1), a + n, std::greater<uint32_t>());
    return a[need - 1];
}

// Scratch for kth_key, per thread.
inline uint32_t* kth_scratch(size_t m) {
    thread_local std::vector<uint32_t> buf;
    if (buf.size() < 2 * m) buf.resize(2 * m);
    return buf.data();
}

// The k-th largest score of e[0..m), or of s[0..m).
template <class I>
float kth_largest(const Entry<I>* e, size_t m, size_t k) {
    uint32_t* a = kth_scratch(m);
    for (size_t i = 0; i < m; ++i) a[i] = float_key(e[i].s);
    return key_float(kth_key(a, a + m, m, k));
}

inline float kth_largest(const float* s, size_t m, size_t k) {
    uint32_t* a = kth_scratch(m);
    for (size_t i = 0; i < m; ++i) a[i] = float_key(s[i]);
    return key_float(kth_key(a, a + m, m, k));
}

// The running selection of one query row. It holds every candidate seen so far that may
// still belong to the exact top k: the best k by sgemm score plus all within `slack`
// (2 eps) of the k-th. `thr` (k-th sgemm score - slack, -inf before k candidates) is the
// bar a new candidate must reach. When the buffer fills, a radix select cuts it back.
template <class I>
class RowTopk {
public:
    void reset(int64_t k, float slack, const int64_t* ex_begin, const int64_t* ex_end) {
        k_ = k;
        cap_ = static_cast<size_t>(k + std::max<int64_t>(k, 32));
        slack_ = slack;
        thr = kNegInf;
        final_ = false;
        n_ = 0;
        if (c_.size() < cap_) c_.resize(cap_);
        ex_begin_ = ex_begin;
        ex_end_ = ex_end;
    }

    // `id` is the label's original id (the one exclusion lists and results use).
    inline void offer(float s, I id) {
        if (ex_begin_ != ex_end_ &&
            std::binary_search(ex_begin_, ex_end_, static_cast<int64_t>(id)))
            return;
        // The buffer is sized ahead (c_.size() >= cap_ > n_): the fields are stored in
        // place. (Building an Entry and copying it in made the compiler store the two
        // halves on the stack and reload them as one word, a store-forwarding stall on
        // every offer.)
        if (n_ >= c_.size()) c_.resize(std::max(cap_, 2 * n_ + 1));  // only after candidates()
        Entry<I>& e = c_[n_++];
        e.s = s;
        e.id = id;
        if (n_ == static_cast<size_t>(k_) && thr == kNegInf) {
            float t = c_[0].s;  // exactly k candidates: the k-th is the smallest
            for (size_t i = 1; i < n_; ++i) t = std::min(t, c_[i].s);
            thr = t - slack_;
        } else if (n_ >= cap_) {
            cut();
        }
    }

    // Before the row has a threshold, the k-th largest of a tile row (any k real scores
    // bound the final k-th score from below) gives one at once, so that the first tile
    // admits about k candidates instead of k (1 + log(tile / k)).
    // Excluded labels may be among the tile's best: the bound is then the (k + number
    // excluded)-th largest.
    void seed(const float* s, int64_t len) {
        if (thr != kNegInf) return;
        const int64_t kk = k_ + (ex_end_ - ex_begin_);
        if (len >= 4 * kk)
            thr = kth_largest(s, static_cast<size_t>(len), static_cast<size_t>(kk)) - slack_;
    }

    // A cheaper first bar for large k: a score t from every 8th entry of the tile row,
    // ranked so that about 2 kk scores of the row should reach it. It is only a bound
    // once at least kk scores are >= t (checked by the caller on the collected ones);
    // returns false when the row is too short or k too small for sampling to pay.
    bool sampled_bar(const float* s, int64_t len, float* t, int64_t* kk_out) const {
        constexpr int64_t stride = 8;
        const int64_t kk = k_ + (ex_end_ - ex_begin_);
        if (kk < 32 || len < 16 * kk) return false;
        const int64_t m = len / stride;
        const int64_t rank = std::min<int64_t>(m, (2 * kk + stride - 1) / stride);
        uint32_t* a = kth_scratch(static_cast<size_t>(m));
        for (int64_t i = 0; i < m; ++i) a[i] = float_key(s[i * stride]);
        *t = key_float(kth_key(a, a + m, static_cast<size_t>(m), static_cast<size_t>(rank)));
        *kk_out = kk;
        return true;
    }

    float slack() const { return slack_; }

    // Cuts the buffer back so that thr reflects the current k-th score.
    void tighten() {
        if (n_ > static_cast<size_t>(k_)) cut();
    }

    // The candidates that may belong to the exact top k (after a final cut); their
    // scores are to be replaced by exact ones before emit().
    std::vector<Entry<I>>& candidates() {
        if (n_ > static_cast<size_t>(k_) && !final_) cut();
        final_ = true;
        c_.resize(n_);
        return c_;
    }

    // Writes the top k of the (rescored) candidates in ranking order; rows with fewer
    // than k candidates (labels excluded) are padded with id -1 and score -inf.
    void emit(float* out_s, I* out_id) {
        const size_t m = std::min(n_, static_cast<size_t>(k_));
        const auto end = c_.begin() + static_cast<std::ptrdiff_t>(n_);
        // After the final cut there are about k candidates: a selection then a sort
        // beats partial_sort's heap when m is close to their number.
        if (m < n_) std::nth_element(c_.begin(), c_.begin() + m, end, Better<I>());
        std::sort(c_.begin(), c_.begin() + m, Better<I>());
        for (size_t j = 0; j < m; ++j) {
            out_s[j] = c_[j].s;
            out_id[j] = c_[j].id;
        }
        for (int64_t j = static_cast<int64_t>(m); j < k_; ++j) {
            out_s[j] = kNegInf;
            out_id[j] = static_cast<I>(-1);
        }
    }

    float thr = kNegInf;

private:
    void cut() {
        thr = kth_largest(c_.data(), n_, static_cast<size_t>(k_)) - slack_;
        const float bar = thr;
        size_t w = 0;  // keep the entries at or above the bar (at least k), in place
        for (size_t i = 0; i < n_; ++i) {
            c_[w] = c_[i];
            w += c_[i].s >= bar;
        }
        n_ = w;
        if (2 * n_ > cap_) {  // many near-ties: make room
            cap_ = 2 * n_;
            if (c_.size() < cap_) c_.resize(cap_);
        }
    }

    // c_[0..n_) are the candidates; c_ is kept at least cap_ long until candidates().
    std::vector<Entry<I>> c_;
    size_t n_ = 0;
    bool final_ = false;  // candidates() was called: no more cuts
    int64_t k_ = 0;
    size_t cap_ = 0;
    float slack_ = 0;
    const int64_t* ex_begin_ = nullptr;
    const int64_t* ex_end_ = nullptr;
};

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

// Offers the scores s[0..len) of one tile row (len <= the size of pos); id_of(j) gives
// the label id of column j. Candidates are collected against the threshold at the start
// and checked again as it rises.
template <class I, class IdOf>
inline void scan_row(const float* s, int64_t len, IdOf id_of, RowTopk<I>& row, int32_t* pos) {
    static const CollectGe collect = collect_ge_fn();
    int64_t n = -1;
    if (row.thr == kNegInf) {
        // First tile of the row: try a sampled bar (valid once kk scores reach t), else
        // the exact k-th largest of the tile.
        float t;
        int64_t kk;
        if (row.sampled_bar(s, len, &t, &kk)) {
            n = collect(s, len, t - row.slack(), pos);
            int64_t reach = 0;
            for (int64_t i = 0; i < n; ++i) reach += s[pos[i]] >= t;
            if (reach < kk) n = -1;
        }
        if (n < 0) row.seed(s, len);
    }
    if (n < 0) n = collect(s, len, row.thr, pos);
    for (int64_t i = 0; i < n; ++i) {
        const int32_t j = pos[i];
        if (s[j] >= row.thr) row.offer(s[j], id_of(j));
    }
}

// Rescores the candidates of a block of rows exactly and writes each row's top k.
// Candidates are visited in label order, so the label vectors stream through the cache
// once per block instead of once per row. q_of(r): the query of row r; out_of(r): its
// output pointers (scores, ids).
struct Pending {
    int64_t id;
    int64_t row;
    int64_t pos;
};

template <class I, class QOf, class OutOf>
void finish_rows(std::vector<RowTopk<I>>& rows, int64_t nq, QOf q_of, const float* V, int64_t d,
                 std::vector<Pending>& work, OutOf out_of) {
    const ExactDot dot = exact_dot_fn();
    // Counting sort of the candidates by label chunk (256 labels): within a chunk the
    // vectors stay in cache, across chunks they stream in order.
    int64_t max_id = 0, total = 0;
    for (int64_t r = 0; r < nq; ++r) {
        for (const auto& e : rows[r].candidates())
            max_id = std::max<int64_t>(max_id, static_cast<int64_t>(e.id));
        total += static_cast<int64_t>(rows[r].candidates().size());
    }
    const int64_t n_chunks = (max_id >> 8) + 1;
    std::vector<int64_t> start(static_cast<size_t>(n_chunks) + 1, 0);
    for (int64_t r = 0; r < nq; ++r)
        for (const auto& e : rows[r].candidates()) ++start[(static_cast<int64_t>(e.id) >> 8) + 1];
    for (int64_t c = 0; c < n_chunks; ++c) start[c + 1] += start[c];
    work.resize(static_cast<size_t>(total));
    for (int64_t r = 0; r < nq; ++r) {
        const auto& c = rows[r].candidates();
        for (size_t p = 0; p < c.size(); ++p) {
            const int64_t id = static_cast<int64_t>(c[p].id);
            work[start[id >> 8]++] = Pending{id, r, static_cast<int64_t>(p)};
        }
    }
    for (const Pending& w : work)
        rows[w.row].candidates()[w.pos].s = dot(q_of(w.row), V + w.id * d, d);
    for (int64_t r = 0; r < nq; ++r) {
        float* os;
        I* oi;
        out_of(r, &os, &oi);
        rows[r].emit(os, oi);
    }
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

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Query block size: about `want` rows, fewer when there would be fewer blocks than
// threads.
inline int64_t query_block(int64_t want, int64_t n, int nt) {
    int64_t nb = std::max<int64_t>(1, want);
    if (n > 0 && ceil_div(n, nb) < nt)
        nb = std::max<int64_t>(std::min<int64_t>(nb, 16), ceil_div(n, nt));
    return nb;
}

}  // namespace topk_detail

struct TopkParams {
    int64_t query_block = 0;  // rows per block (0 = automatic)
    int64_t label_block = 0;  // labels per tile (0 = automatic)
};

// Rows of `exclude` (CSR over the n queries, sorted ids) name labels a row must not return.
struct Exclusions {
    const int64_t* indptr = nullptr;   // n + 1, or null for none
    const int64_t* indices = nullptr;  // sorted within each row
    void row(int64_t q, const int64_t** b, const int64_t** e) const {
        *b = *e = nullptr;
        if (indptr) {
            *b = indices + indptr[q];
            *e = indices + indptr[q + 1];
        }
    }
};

// Exact top-k of Q (n x d) against V (L x d), both row-major float32. Writes out_s and
// out_id (n x k, row-major), each row in ranking order. 1 <= k <= L.
template <class I>
void topk_blocked(const float* Q, int64_t n, const float* V, int64_t L, int64_t d, int64_t k,
                  const Exclusions& ex, float* out_s, I* out_id, const TopkParams& prm,
                  int num_threads) {
    using namespace topk_detail;
    if (n == 0) return;
    LABELEMB_CHECK(k >= 1 && k <= L, "k must be in [1, " << L << "], got " << k);
    LABELEMB_CHECK(d >= 1, "vectors must have at least one column");
    int nt = resolve_threads(num_threads);
    const int64_t lb = std::min<int64_t>(prm.label_block > 0 ? prm.label_block : 2048, L);
    const int64_t nb = query_block(prm.query_block > 0 ? prm.query_block : 1024, n, nt);
    const int64_t n_qb = ceil_div(n, nb);
    // Fewer query blocks than threads (few queries): split the labels into parts too and
    // merge the parts' top-k per row afterwards.
    int64_t parts = 1;
    if (n_qb < nt) parts = std::min<int64_t>(ceil_div(nt, n_qb), ceil_div(L, lb));
    const int64_t span = ceil_div(ceil_div(L, parts), lb) * lb;  // labels per part
    parts = ceil_div(L, span);
    std::vector<float> part_s(parts > 1 ? static_cast<size_t>(n * parts * k) : 0);
    std::vector<I> part_id(parts > 1 ? static_cast<size_t>(n * parts * k) : 0);
    const double slack_coef = 2.0 * error_coef(d) * max_row_norm(V, L, d, nt);
    const double slack_abs = 2.0 * error_abs(d);
    const int64_t items = n_qb * parts;
    ExceptionGuard guard;
#pragma omp parallel num_threads(nt)
    {
        BlasSingleThreaded single;
        std::vector<float> tile;
        std::vector<RowTopk<I>> rows;
        std::vector<Pending> work;
        std::vector<int32_t> pos;
        guard.run([&] {
            tile.resize(static_cast<size_t>(nb * lb));
            pos.resize(static_cast<size_t>(lb));
            rows.resize(static_cast<size_t>(nb));
        });
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; ++it) {
            if (interrupted()) continue;  // Ctrl-C: skip the rest, thrown after the region
            guard.run([&] {
                const int64_t qb = it / parts, part = it % parts;
                const int64_t q0 = qb * nb, nq = std::min(nb, n - q0);
                const int64_t l_begin = part * span, l_end = std::min(L, l_begin + span);
                for (int64_t r = 0; r < nq; ++r) {
                    const int64_t* eb;
                    const int64_t* ee;
                    ex.row(q0 + r, &eb, &ee);
                    const double slack = slack_coef * norm2(Q + (q0 + r) * d, d) + slack_abs;
                    rows[r].reset(k, static_cast<float>(slack), eb, ee);
                }
                for (int64_t l0 = l_begin; l0 < l_end; l0 += lb) {
                    if (interrupted()) return;  // per tile: an item can span many labels
                    const int64_t nl = std::min(lb, l_end - l0);
                    score_tile(V + l0 * d, nl, Q + q0 * d, nq, d, tile.data());
                    for (int64_t r = 0; r < nq; ++r)
                        scan_row<I>(tile.data() + r * nl, nl,
                                    [l0](int64_t j) { return static_cast<I>(l0 + j); }, rows[r],
                                    pos.data());
                }
                finish_rows<I>(
                    rows, nq, [&](int64_t r) { return Q + (q0 + r) * d; }, V, d, work,
                    [&](int64_t r, float** os, I** oi) {
                        const int64_t q = q0 + r;
                        const int64_t at = parts == 1 ? q * k : (q * parts + part) * k;
                        *os = parts == 1 ? out_s + at : part_s.data() + at;
                        *oi = parts == 1 ? out_id + at : part_id.data() + at;
                    });
            });
        }
    }
    guard.rethrow();
    check_interrupt();
    if (parts == 1) return;
    // Each part's exact top-k holds the part's share of the global one: merge them.
#pragma omp parallel num_threads(nt)
    {
        std::vector<Entry<I>> all;
#pragma omp for schedule(static)
        for (int64_t q = 0; q < n; ++q) {
            guard.run([&] {
                all.clear();
                for (int64_t j = q * parts * k; j < (q + 1) * parts * k; ++j)
                    if (part_id[j] >= 0) all.push_back({part_s[j], part_id[j]});
                const int64_t m = std::min<int64_t>(k, static_cast<int64_t>(all.size()));
                std::partial_sort(all.begin(), all.begin() + m, all.end(), Better<I>());
                for (int64_t j = 0; j < k; ++j) {
                    out_s[q * k + j] = j < m ? all[j].s : kNegInf;
                    out_id[q * k + j] = j < m ? all[j].id : static_cast<I>(-1);
                }
            });
        }
    }
    guard.rethrow();
}

// Labels grouped in clusters for the pruned path. Cluster c holds the labels at
// positions offsets[c] .. offsets[c+1]: position p is original label ids[p], stored at
// S[p * d ..] (the vectors in position order), at distance delta[p] >=
// |S[p] - centre_c| from the centre (centres[c * d ..]); positions within a cluster
// are in decreasing delta. V holds the same vectors in original label order.
template <class I>
struct ClusterIndex {
    const float* V = nullptr;
    const float* S = nullptr;
    int64_t L = 0, d = 0, n_clusters = 0;
    const I* ids = nullptr;
    const double* delta = nullptr;
    const int64_t* offsets = nullptr;
    const float* centres = nullptr;
};

// Checks that an index cannot lead the search out of bounds: offsets from 0 to L,
// non-decreasing; ids a permutation of 0 .. L-1; delta finite, >= 0, non-increasing
// within each cluster. O(L).
template <class I>
void check_cluster_index(const ClusterIndex<I>& ix) {
    const int64_t L = ix.L, nc = ix.n_clusters;
    LABELEMB_CHECK(ix.offsets[0] == 0 && ix.offsets[nc] == L, "offsets must run from 0 to " << L);
    std::vector<char> seen(static_cast<size_t>(L), 0);
    for (int64_t c = 0; c < nc; ++c) {
        LABELEMB_CHECK(ix.offsets[c + 1] >= ix.offsets[c], "offsets must be non-decreasing");
        for (int64_t p = ix.offsets[c]; p < ix.offsets[c + 1]; ++p) {
            const int64_t id = static_cast<int64_t>(ix.ids[p]);
            LABELEMB_CHECK(id >= 0 && id < L && !seen[id], "ids must be a permutation of 0 .. "
                                                               << L - 1);
            seen[id] = 1;
            LABELEMB_CHECK(std::isfinite(ix.delta[p]) && ix.delta[p] >= 0,
                           "delta must be finite and >= 0");
            LABELEMB_CHECK(p == ix.offsets[c] || ix.delta[p] <= ix.delta[p - 1],
                           "delta must be non-increasing within each cluster");
        }
    }
}

struct PruneStats {
    int64_t scored = 0;  // (row, label) scores computed by sgemm, centres excluded
};

// Exact top-k of Q (n x d) against the clustered labels: the output of topk_blocked.
// Queries are taken in chunks whose centre scores (chunk x n_clusters floats, <= 64 MB)
// are computed once, used to group the chunk's queries and then to bound the clusters.
template <class I>
void topk_clustered(const float* Q, int64_t n, const ClusterIndex<I>& ix, int64_t k,
                    const Exclusions& ex, float* out_s, I* out_id, const TopkParams& prm,
                    PruneStats* stats, int num_threads) {
    using namespace topk_detail;
    if (n == 0) return;
    const int64_t L = ix.L, d = ix.d, nc = ix.n_clusters;
    LABELEMB_CHECK(k >= 1 && k <= L, "k must be in [1, " << L << "], got " << k);
    LABELEMB_CHECK(d >= 1 && nc >= 1, "the index must have at least one cluster and column");
    int nt = resolve_threads(num_threads);
    const int64_t lb = std::min<int64_t>(prm.label_block > 0 ? prm.label_block : 1024, L);
    const int64_t nb = query_block(prm.query_block > 0 ? prm.query_block : 256, n, nt);
    const double inf = std::numeric_limits<double>::infinity();
    // Labels of a cluster wanted by at least 1/share of a block's rows are scored for the
    // whole block; the rest only for the rows that want them (measured: 3 is best).
    const int64_t share = 3;

    // Rounding: a computed centre score is within error_coef |q| |c| of the exact one
    // and a computed label score within error_coef |q| |v|; the margin covers both, so a
    // label is skipped only when its sgemm score is surely below the row's threshold.
    const double vmax = max_row_norm(ix.V, L, d, nt);
    const double cmax = max_row_norm(ix.centres, nc, d, nt);
    const double margin_coef = error_coef(d) * (vmax + cmax);
    const double margin_abs = 2.0 * error_abs(d);
    const double slack_coef = 2.0 * error_coef(d) * vmax;
    std::vector<double> radius(static_cast<size_t>(nc));
    for (int64_t c = 0; c < nc; ++c)
        radius[c] = ix.offsets[c + 1] > ix.offsets[c] ? ix.delta[ix.offsets[c]] : -inf;

    const int64_t chunk = std::min<int64_t>(
        n, std::max<int64_t>(1, (int64_t(64) << 20) / (4 * nc) / nb) * nb);
    std::vector<float> G(static_cast<size_t>(chunk * nc));
    std::vector<double> qnorm(static_cast<size_t>(chunk));
    std::vector<int64_t> key(static_cast<size_t>(chunk)), order(static_cast<size_t>(chunk));
    int64_t scored_total = 0;
    ExceptionGuard guard;
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        const int64_t cn = std::min(chunk, n - c0);
        const int64_t n_qb = ceil_div(cn, nb);
        // Pass 1: centre scores, norms, and each query's two most promising clusters
        // (largest bounds), to group queries that will need the same clusters.
#pragma omp parallel num_threads(nt)
        {
            BlasSingleThreaded single;
#pragma omp for schedule(dynamic, 1)
            for (int64_t qb = 0; qb < n_qb; ++qb) {
                if (interrupted()) continue;
                guard.run([&] {
                    const int64_t r0 = qb * nb, nq = std::min(nb, cn - r0);
                    score_tile(ix.centres, nc, Q + (c0 + r0) * d, nq, d, G.data() + r0 * nc);
                    for (int64_t r = r0; r < r0 + nq; ++r) {
                        const double qn = norm2(Q + (c0 + r) * d, d);
                        qnorm[r] = qn;
                        const float* g = G.data() + r * nc;
                        int64_t a1 = 0, a2 = 0;
                        double b1 = -inf, b2 = -inf;
                        for (int64_t c = 0; c < nc; ++c) {
                            const double b = double(g[c]) + qn * radius[c];
                            if (b > b1) {
                                b2 = b1;
                                a2 = a1;
                                b1 = b;
                                a1 = c;
                            } else if (b > b2) {
                                b2 = b;
                                a2 = c;
                            }
                        }
                        key[r] = a1 * nc + a2;
                    }
                });
            }
        }
        guard.rethrow();
        check_interrupt();
        std::iota(order.begin(), order.begin() + cn, int64_t(0));
        std::sort(order.begin(), order.begin() + cn, [&](int64_t a, int64_t b) {
            return key[a] < key[b] || (key[a] == key[b] && a < b);
        });

        // Pass 2: blocks of grouped queries; per block, the clusters by decreasing bound
        // and, of each, the prefix some row may still need.
#pragma omp parallel num_threads(nt) reduction(+ : scored_total)
        {
            BlasSingleThreaded single;
            std::vector<float> qbuf, tile, vbuf, thr;
            std::vector<I> idbuf;
            std::vector<double> gt, base, inv_qn, maxb;
            std::vector<Pending> work;
            std::vector<int32_t> pos;
            std::vector<int64_t> corder, sub;
            std::vector<double> need, tmp;
            std::vector<float> qsub, tile2;
            std::vector<RowTopk<I>> rows;
            guard.run([&] {
                need.resize(static_cast<size_t>(nb));
                pos.resize(static_cast<size_t>(lb));
                tmp.resize(static_cast<size_t>(nb));
                sub.resize(static_cast<size_t>(nb));
                qsub.resize(static_cast<size_t>(nb * d));
                tile2.resize(static_cast<size_t>(nb * lb));
                qbuf.resize(static_cast<size_t>(nb * d));
                tile.resize(static_cast<size_t>(nb * lb));
                vbuf.resize(static_cast<size_t>(lb * d));
                idbuf.resize(static_cast<size_t>(lb));
                thr.resize(static_cast<size_t>(nb));
                gt.resize(static_cast<size_t>(nc * nb));
                base.resize(static_cast<size_t>(nb));
                inv_qn.resize(static_cast<size_t>(nb));
                maxb.resize(static_cast<size_t>(nc));
                corder.resize(static_cast<size_t>(nc));
                rows.resize(static_cast<size_t>(nb));
            });
#pragma omp for schedule(dynamic, 1)
            for (int64_t qb = 0; qb < n_qb; ++qb) {
                if (interrupted()) continue;
                guard.run([&] {
                    const int64_t r0 = qb * nb, nq = std::min(nb, cn - r0);
                    std::fill(maxb.begin(), maxb.end(), -inf);
                    for (int64_t r = 0; r < nq; ++r) {
                        const int64_t rc = order[r0 + r], q = c0 + rc;
                        std::memcpy(qbuf.data() + r * d, Q + q * d, sizeof(float) * d);
                        const int64_t* eb;
                        const int64_t* ee;
                        ex.row(q, &eb, &ee);
                        const double qn = qnorm[rc];
                        rows[r].reset(k, static_cast<float>(slack_coef * qn + margin_abs), eb, ee);
                        thr[r] = rows[r].thr;
                        inv_qn[r] = qn > 0 ? 1.0 / qn : inf;
                        // gt (clusters x rows): centre score plus margin, so that a row
                        // can want a label of cluster c only if gt + |q| delta >= thr.
                        const double m = margin_coef * qn + margin_abs;
                        const float* g = G.data() + rc * nc;
                        for (int64_t c = 0; c < nc; ++c) {
                            const double b = double(g[c]) + m;
                            gt[c * nb + r] = b;
                            maxb[c] = std::max(maxb[c], b + qn * radius[c]);
                        }
                    }
                    for (int64_t r = 0; r < nq; ++r) base[r] = double(thr[r]);
                    std::iota(corder.begin(), corder.end(), int64_t(0));
                    std::sort(corder.begin(), corder.end(), [&](int64_t a, int64_t b) {
                        return maxb[a] > maxb[b] || (maxb[a] == maxb[b] && a < b);
                    });
                    int64_t batch = 0;
                    int64_t target = std::min(lb, std::max<int64_t>(256, 2 * k));
                    double min_thr = -inf;  // the lowest threshold of the block's rows
                    auto flush = [&] {
                        if (batch == 0) return;
                        score_tile(vbuf.data(), batch, qbuf.data(), nq, d, tile.data());
                        scored_total += batch * nq;
                        const I* idp = idbuf.data();
                        float lowest = std::numeric_limits<float>::infinity();
                        for (int64_t r = 0; r < nq; ++r) {
                            scan_row<I>(tile.data() + r * batch, batch,
                                        [idp](int64_t j) { return idp[j]; }, rows[r], pos.data());
                            rows[r].tighten();
                            thr[r] = rows[r].thr;
                            base[r] = double(thr[r]);
                            lowest = std::min(lowest, thr[r]);
                        }
                        min_thr = lowest;
                        batch = 0;
                        target = std::min(lb, 2 * target);
                    };
                    for (int64_t ci = 0; ci < nc; ++ci) {
                        if (interrupted()) return;  // per cluster: a block can take long
                        const int64_t c = corder[ci];
                        // Clusters come in decreasing order of their best bound over the
                        // block: once it is below every row's threshold, none later helps.
                        if (maxb[c] < min_thr) break;
                        // A row may want the labels of the cluster far enough from its
                        // centre: delta >= need = (thr - q . c) / |q| (-inf: all of them);
                        // labels are stored by decreasing delta, so each row wants a prefix.
                        const int64_t a = ix.offsets[c], e_all = ix.offsets[c + 1];
                        const double* gc = gt.data() + c * nb;
                        double lo = inf;
                        for (int64_t r = 0; r < nq; ++r) {
                            const double gap = base[r] - gc[r];
                            need[r] = gap <= 0 ? -inf : gap * inv_qn[r];
                            lo = std::min(lo, need[r]);
                        }
                        if (!(lo <= radius[c])) continue;  // no row wants any of it
                        auto prefix_end = [&](double x) -> int64_t {
                            if (x == -inf) return e_all;
                            return std::partition_point(ix.delta + a, ix.delta + e_all,
                                                        [x](double v) { return v >= x; }) -
                                   ix.delta;
                        };
                        const int64_t e_max = prefix_end(lo);
                        // Labels wanted by many rows (a share of the block) are scored for
                        // the whole block, batched; the rest only for the rows that want it.
                        const int64_t many = std::max<int64_t>(1, (nq + share - 1) / share);
                        std::copy(need.begin(), need.begin() + nq, tmp.begin());
                        std::nth_element(tmp.begin(), tmp.begin() + (many - 1), tmp.begin() + nq);
                        const int64_t e_common =
                            tmp[many - 1] > radius[c] ? a : prefix_end(tmp[many - 1]);
                        for (int64_t p = a; p < e_common;) {
                            const int64_t take = std::min(e_common - p, lb - batch);
                            std::memcpy(vbuf.data() + batch * d, ix.S + p * d,
                                        sizeof(float) * take * d);
                            std::copy(ix.ids + p, ix.ids + p + take, idbuf.data() + batch);
                            batch += take;
                            p += take;
                            if (batch == lb) flush();
                        }
                        if (e_max > e_common) {
                            // The rows that want the tail; grouped queries make them mostly
                            // contiguous, then their span of the block is used in place.
                            int64_t m = 0;
                            const double bar = ix.delta[e_common];
                            for (int64_t r = 0; r < nq; ++r)
                                if (need[r] <= bar) sub[m++] = r;
                            const int64_t r_lo = sub[0], span = sub[m - 1] - r_lo + 1;
                            const bool in_place = span <= 2 * m;
                            if (!in_place)
                                for (int64_t i = 0; i < m; ++i)
                                    std::memcpy(qsub.data() + i * d, qbuf.data() + sub[i] * d,
                                                sizeof(float) * d);
                            const float* qs = in_place ? qbuf.data() + r_lo * d : qsub.data();
                            const int64_t nqs = in_place ? span : m;
                            for (int64_t p = e_common; p < e_max; p += lb) {
                                const int64_t len = std::min(lb, e_max - p);
                                score_tile(ix.S + p * d, len, qs, nqs, d, tile2.data());
                                scored_total += len * nqs;
                                const I* idp = ix.ids + p;
                                for (int64_t i = 0; i < m; ++i) {
                                    const int64_t r = sub[i];
                                    const int64_t row = in_place ? r - r_lo : i;
                                    scan_row<I>(tile2.data() + row * len, len,
                                                [idp](int64_t j) { return idp[j]; }, rows[r],
                                                pos.data());
                                    rows[r].tighten();
                                    thr[r] = rows[r].thr;
                                    base[r] = double(thr[r]);
                                }
                            }
                        }
                        if (batch >= target) flush();
                    }
                    flush();
                    finish_rows<I>(
                        rows, nq, [&](int64_t r) { return qbuf.data() + r * d; }, ix.V, d, work,
                        [&](int64_t r, float** os, I** oi) {
                            const int64_t q = c0 + order[r0 + r];
                            *os = out_s + q * k;
                            *oi = out_id + q * k;
                        });
                });
            }
        }
        guard.rethrow();
        check_interrupt();
    }
    if (stats) stats->scored = scored_total;
}

// Every (row, label) with exact score > min_score. Results per query block `b` (rows
// b * block .. ) in row then label order: row_nnz (n entries), and ids/scores per block.
template <class I>
struct ThresholdResult {
    int64_t block = 0;
    std::vector<int64_t> row_nnz;
    std::vector<std::vector<I>> ids;
    std::vector<std::vector<float>> scores;
};

template <class I>
void threshold_blocked(const float* Q, int64_t n, const float* V, int64_t L, int64_t d,
                       float min_score, ThresholdResult<I>& out, const TopkParams& prm,
                       int num_threads) {
    using namespace topk_detail;
    LABELEMB_CHECK(d >= 1, "vectors must have at least one column");
    int nt = resolve_threads(num_threads);
    const int64_t lb = std::max<int64_t>(
        1, std::min<int64_t>(prm.label_block > 0 ? prm.label_block : 2048, L));
    const int64_t nb = query_block(prm.query_block > 0 ? prm.query_block : 256, n, nt);
    const int64_t n_qb = ceil_div(n, nb);
    out.block = nb;
    out.row_nnz.assign(static_cast<size_t>(n), 0);
    out.ids.assign(static_cast<size_t>(n_qb), {});
    out.scores.assign(static_cast<size_t>(n_qb), {});
    if (n == 0 || L == 0) return;
    const double err_coef = error_coef(d) * max_row_norm(V, L, d, nt);
    const ExactDot dot = exact_dot_fn();
    ExceptionGuard guard;
#pragma omp parallel num_threads(nt)
    {
        BlasSingleThreaded single;
        std::vector<float> tile, bar;
        std::vector<std::vector<I>> rid;
        std::vector<std::vector<float>> rs;
        guard.run([&] {
            tile.resize(static_cast<size_t>(nb * lb));
            bar.resize(static_cast<size_t>(nb));
            rid.resize(static_cast<size_t>(nb));
            rs.resize(static_cast<size_t>(nb));
        });
#pragma omp for schedule(dynamic, 1)
        for (int64_t qb = 0; qb < n_qb; ++qb) {
            if (interrupted()) continue;  // Ctrl-C: skip the rest, thrown after the region
            guard.run([&] {
                const int64_t q0 = qb * nb, nq = std::min(nb, n - q0);
                for (int64_t r = 0; r < nq; ++r) {
                    rid[r].clear();
                    rs[r].clear();
                    // An sgemm score within eps of min_score may be above it exactly.
                    const double eps = err_coef * norm2(Q + (q0 + r) * d, d) + 2 * error_abs(d);
                    bar[r] = static_cast<float>(double(min_score) - eps);
                }
                for (int64_t l0 = 0; l0 < L; l0 += lb) {
                    if (interrupted()) return;  // per tile
                    const int64_t nl = std::min(lb, L - l0);
                    score_tile(V + l0 * d, nl, Q + q0 * d, nq, d, tile.data());
                    for (int64_t r = 0; r < nq; ++r) {
                        const float* s = tile.data() + r * nl;
                        const float* q = Q + (q0 + r) * d;
                        auto visit = [&](int64_t j) {
                            const float x = dot(q, V + (l0 + j) * d, d);
                            if (x > min_score) {
                                rid[r].push_back(static_cast<I>(l0 + j));
                                rs[r].push_back(x);
                            }
                        };
                        int64_t j = 0;
                        for (; j + 16 <= nl; j += 16) {
                            unsigned mask = ge_mask16(s + j, bar[r]);
                            while (mask) {
                                const int t = lowest_bit(mask);
                                mask &= mask - 1;
                                visit(j + t);
                            }
                        }
                        for (; j < nl; ++j)
                            if (s[j] >= bar[r]) visit(j);
                    }
                }
                int64_t total = 0;
                for (int64_t r = 0; r < nq; ++r) {
                    out.row_nnz[q0 + r] = static_cast<int64_t>(rid[r].size());
                    total += out.row_nnz[q0 + r];
                }
                auto& bi = out.ids[qb];
                auto& bs = out.scores[qb];
                bi.reserve(static_cast<size_t>(total));
                bs.reserve(static_cast<size_t>(total));
                for (int64_t r = 0; r < nq; ++r) {
                    bi.insert(bi.end(), rid[r].begin(), rid[r].end());
                    bs.insert(bs.end(), rs[r].begin(), rs[r].end());
                }
            });
        }
    }
    guard.rethrow();
    check_interrupt();  // row_nnz is incomplete: the caller must not size outputs from it
}

// Copies the blocks of `res` into CSR arrays whose indptr (n + 1) was built from
// res.row_nnz.
template <class I>
void threshold_gather(const ThresholdResult<I>& res, const int64_t* indptr, I* indices,
                      float* data, int num_threads) {
    const int64_t nblocks = static_cast<int64_t>(res.ids.size());
    int nt = resolve_threads(num_threads);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t b = 0; b < nblocks; ++b) {
        const int64_t at = indptr[b * res.block];
        std::copy(res.ids[b].begin(), res.ids[b].end(), indices + at);
        std::copy(res.scores[b].begin(), res.scores[b].end(), data + at);
    }
}

}  // namespace labelemb
