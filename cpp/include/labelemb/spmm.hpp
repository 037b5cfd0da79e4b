// Sparse (CSR, float32) times dense block products, and a symmetry check of a CSR matrix.
//
// spmm computes Y = A X for a CSR matrix A (n_rows x n_cols, float32 values) and a dense
// block X (n_cols x w, column-major float64, as the LAPACK side of randomized_eigh keeps
// it). The product is memory bound: each stored a_ij gathers row j of X. So X is taken in
// column panels of kPanel columns, each converted once to a row-major float32 copy
// (n_cols x kPanel floats: 4 MB for 20,000 labels, so it stays in the last-level cache
// while the rows of A gather from it); a row's kPanel sums live in registers and are
// written straight into the column-major output. Rows are split into chunks of about
// equal work (rows + stored entries, since label frequencies follow a power law) and
// scheduled dynamically over OpenMP threads. Each output row is summed by one thread in
// storage order, so the result does not depend on the number of threads.
// Work: 2 nnz w flops; memory traffic: A once per panel, plus X and Y once.
// Extra memory: n_cols x w floats (the converted panels).
//
// The inner kernel is compiled twice on x86-64 Linux with GCC (AVX2+FMA and the baseline)
// and the loader picks the one the CPU runs (function multiversioning), since the
// package is built without -march flags.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common.hpp"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define LABELEMB_MULTIVERSION __attribute__((target_clones("arch=haswell", "default")))
#define LABELEMB_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define LABELEMB_MULTIVERSION
#define LABELEMB_ALWAYS_INLINE inline
#endif

#if defined(__GNUC__) || defined(__clang__)
#define LABELEMB_PREFETCH(p) __builtin_prefetch(p)
#else
#define LABELEMB_PREFETCH(p) ((void)0)
#endif

namespace labelemb {

namespace spmm_detail {

// Columns per panel: 6 AVX2 registers of sums, and a panel row is 3 cache lines (the
// panels are 64-byte aligned). Measured on the PMI matrix of 20,000 labels (CPU time, one
// thread): 48 columns beat 32, 40, 56, 64 and wider panels by 10 to 30%; prefetching the
// rows 16 entries ahead halves the time of no prefetching.
constexpr int kPanel = 48;
constexpr int kAhead = 16;  // stored entries to prefetch ahead

// Rows [r0, r1) of one panel: Y[:, c0:c0+w] = A[r0:r1] Xp, Xp row-major n_cols x W,
// zero-padded from w to W columns.
template <int W, class I>
LABELEMB_ALWAYS_INLINE void panel_rows(int64_t r0, int64_t r1, const int64_t* indptr,
                                       const I* indices, const float* data, const float* Xp,
                                       int w, double* Y, int64_t ldy) {
    for (int64_t i = r0; i < r1; ++i) {
        float acc[W];
        for (int c = 0; c < W; ++c) acc[c] = 0.0f;
        const int64_t end = indptr[i + 1];
        for (int64_t p = indptr[i]; p < end; ++p) {
            if (p + kAhead < end) {
                const float* ahead = Xp + static_cast<int64_t>(indices[p + kAhead]) * W;
                for (int c = 0; c < W; c += 16) LABELEMB_PREFETCH(ahead + c);
            }
            const float v = data[p];
            const float* x = Xp + static_cast<int64_t>(indices[p]) * W;
            for (int c = 0; c < W; ++c) acc[c] += v * x[c];
        }
        for (int c = 0; c < w; ++c) Y[c * ldy + i] = static_cast<double>(acc[c]);
    }
}

template <class I>
LABELEMB_ALWAYS_INLINE void panel_dispatch(int64_t r0, int64_t r1, const int64_t* indptr,
                                           const I* indices, const float* data,
                                           const float* Xp, int W, int w, double* Y,
                                           int64_t ldy) {
    switch (W) {
        case 8: panel_rows<8>(r0, r1, indptr, indices, data, Xp, w, Y, ldy); break;
        case 16: panel_rows<16>(r0, r1, indptr, indices, data, Xp, w, Y, ldy); break;
        case 24: panel_rows<24>(r0, r1, indptr, indices, data, Xp, w, Y, ldy); break;
        case 32: panel_rows<32>(r0, r1, indptr, indices, data, Xp, w, Y, ldy); break;
        case 40: panel_rows<40>(r0, r1, indptr, indices, data, Xp, w, Y, ldy); break;
        default: panel_rows<48>(r0, r1, indptr, indices, data, Xp, w, Y, ldy); break;
    }
}

// One non-template entry per index type, so that it can be multiversioned.
LABELEMB_MULTIVERSION
inline void panel_kernel_i32(int64_t r0, int64_t r1, const int64_t* indptr, const int32_t* indices,
                             const float* data, const float* Xp, int W, int w, double* Y,
                             int64_t ldy) {
    panel_dispatch<int32_t>(r0, r1, indptr, indices, data, Xp, W, w, Y, ldy);
}

LABELEMB_MULTIVERSION
inline void panel_kernel_i64(int64_t r0, int64_t r1, const int64_t* indptr, const int64_t* indices,
                             const float* data, const float* Xp, int W, int w, double* Y,
                             int64_t ldy) {
    panel_dispatch<int64_t>(r0, r1, indptr, indices, data, Xp, W, w, Y, ldy);
}

inline void panel_kernel(int64_t r0, int64_t r1, const int64_t* indptr, const int32_t* indices,
                         const float* data, const float* Xp, int W, int w, double* Y,
                         int64_t ldy) {
    panel_kernel_i32(r0, r1, indptr, indices, data, Xp, W, w, Y, ldy);
}

inline void panel_kernel(int64_t r0, int64_t r1, const int64_t* indptr, const int64_t* indices,
                         const float* data, const float* Xp, int W, int w, double* Y,
                         int64_t ldy) {
    panel_kernel_i64(r0, r1, indptr, indices, data, Xp, W, w, Y, ldy);
}

}  // namespace spmm_detail

// Row chunks of about equal work (rows + stored entries): boundaries[0] = 0, ...,
// boundaries[parts] = n. Computed once per matrix and reused by every product.
inline std::vector<int64_t> balanced_row_chunks(int64_t n, const int64_t* indptr, int64_t parts) {
    parts = std::max<int64_t>(1, std::min<int64_t>(parts, std::max<int64_t>(n, 1)));
    const int64_t total = n + indptr[n];
    std::vector<int64_t> b(static_cast<size_t>(parts) + 1, n);
    b[0] = 0;
    int64_t r = 0;
    for (int64_t c = 1; c < parts; ++c) {
        const int64_t target = total / parts * c + (total % parts) * c / parts;
        // first row r with r + indptr[r] >= target (work is non-decreasing in r)
        int64_t lo = r, hi = n;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (mid + indptr[mid] < target) lo = mid + 1;
            else hi = mid;
        }
        r = lo;
        b[static_cast<size_t>(c)] = r;
    }
    return b;
}

// A CSR matrix with float32 values, already checked (check_csr) by the caller, and its
// row chunks.
template <class I>
struct CsrF32 {
    int64_t n_rows = 0;
    int64_t n_cols = 0;
    const int64_t* indptr = nullptr;
    const I* indices = nullptr;
    const float* data = nullptr;
    std::vector<int64_t> chunks;

    CsrF32(int64_t rows, int64_t cols, const int64_t* ip, const I* ix, const float* d, int nt)
        : n_rows(rows), n_cols(cols), indptr(ip), indices(ix), data(d) {
        chunks = balanced_row_chunks(rows, ip, 16 * static_cast<int64_t>(std::max(nt, 1)));
    }
};

// Y (n_rows x w, column-major, leading dimension ldy) = A X (X: n_cols x w, column-major,
// leading dimension ldx). `panels` is scratch, resized to n_cols x w (rounded up to 8)
// floats: every panel is converted first, then each row chunk runs through all panels, so
// that a product costs one parallel region and two barriers whatever its width.
template <class I>
void spmm(const CsrF32<I>& A, const double* X, int64_t ldx, int64_t w, double* Y, int64_t ldy,
          std::vector<float>& panels, int num_threads) {
    using namespace spmm_detail;
    // Small products are not worth waking threads for (a barrier on a busy machine can cost
    // a scheduler time slice).
    const int nt = (A.indptr[A.n_rows] + A.n_rows) * w < (int64_t(1) << 23)
                       ? 1
                       : resolve_threads(num_threads);
    const int64_t n_chunks = static_cast<int64_t>(A.chunks.size()) - 1;
    const int64_t nc = A.n_cols;
    const int64_t n_panels = (w + kPanel - 1) / kPanel;
    auto width = [&](int64_t p) {
        return static_cast<int>(std::min<int64_t>(kPanel, w - p * kPanel));
    };
    auto padded = [&](int64_t p) { return (width(p) + 7) / 8 * 8; };
    // Panel p starts at nc * kPanel * p; only the last one may be narrower.
    const int64_t cols = n_panels == 0 ? 0 : kPanel * (n_panels - 1) + padded(n_panels - 1);
    panels.resize(static_cast<size_t>(nc * cols) + 16);  // + room to align to 64 bytes
    float* base = reinterpret_cast<float*>(
        (reinterpret_cast<uintptr_t>(panels.data()) + 63) & ~static_cast<uintptr_t>(63));
    (void)nt;  // unused without OpenMP
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(dynamic, 16)
        for (int64_t j0 = 0; j0 < nc; j0 += 64) {
            const int64_t j1 = std::min(nc, j0 + 64);
            for (int64_t p = 0; p < n_panels; ++p) {
                const int wp = width(p), W = padded(p);
                const double* Xc = X + p * kPanel * ldx;
                float* panel = base + nc * kPanel * p;
                for (int64_t j = j0; j < j1; ++j) {
                    float* row = panel + j * W;
                    for (int c = 0; c < wp; ++c) row[c] = static_cast<float>(Xc[c * ldx + j]);
                    for (int c = wp; c < W; ++c) row[c] = 0.0f;
                }
            }
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < n_chunks; ++t) {
            if (interrupted()) continue;  // Ctrl-C: skip the rest, thrown below
            for (int64_t p = 0; p < n_panels; ++p)
                panel_kernel(A.chunks[t], A.chunks[t + 1], A.indptr, A.indices, A.data,
                             base + nc * kPanel * p, padded(p), width(p), Y + p * kPanel * ldy,
                             ldy);
        }
    }
    check_interrupt();
}

// max |a_ij - a_ji| over the stored entries (an entry missing on the other side counts as
// 0), for a square CSR matrix whose rows are sorted. Sets `sorted` to false (and returns
// 0) when a row is not strictly increasing. Also reports max |a_ij| in `max_abs`.
// The transpose is built by a counting sort (its rows come out sorted), then each row is
// merged with its transposed row: O(n + nnz) work, one scattered write per entry (a binary
// search for each entry's mirror took 4x longer on a 20,000-label PMI matrix).
// Memory: nnz indices and values.
template <class I>
double csr_asymmetry(int64_t n, const int64_t* indptr, const I* indices, const float* data,
                     double* max_abs, bool* sorted, int num_threads) {
    const int64_t nnz = indptr[n];
    const int nt = nnz < (int64_t(1) << 16) ? 1 : resolve_threads(num_threads);
    (void)nt;  // unused without OpenMP
    int ok = 1;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(&& : ok)
    for (int64_t r = 0; r < n; ++r)
        for (int64_t p = indptr[r] + 1; p < indptr[r + 1]; ++p)
            if (indices[p] <= indices[p - 1]) ok = 0;
    *sorted = ok != 0;
    *max_abs = 0.0;
    if (!ok) return 0.0;
    std::vector<int64_t> tptr(static_cast<size_t>(n) + 1, 0);
    for (int64_t p = 0; p < nnz; ++p) ++tptr[static_cast<int64_t>(indices[p]) + 1];
    for (int64_t j = 0; j < n; ++j) tptr[j + 1] += tptr[j];
    std::vector<I> tidx(static_cast<size_t>(nnz));
    std::vector<float> tval(static_cast<size_t>(nnz));
    {
        std::vector<int64_t> cur(tptr.begin(), tptr.end() - 1);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t p = indptr[i]; p < indptr[i + 1]; ++p) {
                const int64_t q = cur[static_cast<int64_t>(indices[p])]++;
                tidx[q] = static_cast<I>(i);
                tval[q] = data[p];
            }
    }
    double worst = 0.0, biggest = 0.0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 256) reduction(max : worst, biggest)
    for (int64_t i = 0; i < n; ++i) {
        int64_t p = indptr[i], q = tptr[i];
        const int64_t pe = indptr[i + 1], qe = tptr[i + 1];
        while (p < pe || q < qe) {
            double d;
            if (q == qe || (p < pe && indices[p] < tidx[q])) {
                d = std::fabs(static_cast<double>(data[p]));
                biggest = std::max(biggest, d);
                ++p;
            } else if (p == pe || tidx[q] < indices[p]) {
                d = std::fabs(static_cast<double>(tval[q]));
                ++q;
            } else {
                biggest = std::max(biggest, std::fabs(static_cast<double>(data[p])));
                d = std::fabs(static_cast<double>(data[p]) - static_cast<double>(tval[q]));
                ++p;
                ++q;
            }
            // NaN compares false: a NaN entry counts as infinitely asymmetric
            if (!(d <= worst)) worst = std::isnan(d) ? INFINITY : d;
        }
    }
    *max_abs = biggest;
    return worst;
}

}  // namespace labelemb
