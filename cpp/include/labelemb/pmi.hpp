// Pointwise mutual information from co-occurrence counts.
//
// Input: the strict upper triangle of C (CSR, sorted columns, int64 counts). Output:
// the full symmetric PMI matrix (CSR, sorted columns, float32), with an optional
// diagonal. The value of a pair is
//     log(C_ij) - log_n - h_i - h_j - shift
// where h holds each label's half log-marginals (computed by the caller, so that the
// smoothing variants live in one place), pairs seen fewer than min_count times are
// dropped, and with `positive` only values > 0 are kept (PPMI).
// Work O(pairs); memory: one float and one byte per upper pair, and the output.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "common.hpp"

namespace labelemb {

struct PmiParams {
    double log_n = 0.0;
    double shift = 0.0;
    int64_t min_count = 1;
    bool positive = true;
};

// Pass 1: the value of each upper pair (NaN when dropped) and the row sizes of the
// full output. `diag` (L entries, NaN = none) may be null.
template <class J>
void pmi_sizes(int64_t L, const int64_t* up_indptr, const J* up_indices, const int64_t* up_counts,
               const double* h, const double* diag, const PmiParams& prm, float* values,
               int64_t* row_nnz, int num_threads) {
    int nt = resolve_threads(num_threads);
    if (L < 256) nt = 1;
    std::vector<int64_t> hist(static_cast<size_t>(nt) * static_cast<size_t>(L), 0);
#pragma omp parallel num_threads(nt)
    {
        int64_t* lower = hist.data() + static_cast<size_t>(thread_id()) * L;
#pragma omp for schedule(dynamic, 64)
        for (int64_t i = 0; i < L; ++i) {
            if (interrupted()) continue;
            int64_t kept = 0;
            for (int64_t p = up_indptr[i]; p < up_indptr[i + 1]; ++p) {
                int64_t j = static_cast<int64_t>(up_indices[p]);
                float v = NAN;
                if (up_counts[p] >= prm.min_count && up_counts[p] > 0) {
                    double x = std::log(static_cast<double>(up_counts[p])) - prm.log_n - h[i] -
                               h[j] - prm.shift;
                    if (!prm.positive || x > 0.0) v = static_cast<float>(x);
                }
                values[p] = v;
                if (!std::isnan(v)) {
                    ++kept;
                    ++lower[j];
                }
            }
            row_nnz[i] = kept;
            if (diag && !std::isnan(diag[i])) ++row_nnz[i];
        }
    }
    check_interrupt();  // row_nnz is incomplete: the caller must not size outputs from it
    for (int t = 0; t < nt; ++t)
        for (int64_t l = 0; l < L; ++l) row_nnz[l] += hist[static_cast<size_t>(t) * L + l];
}

// Pass 2: writes row i as [lower part sorted] [diagonal] [upper part sorted].
// out_indptr has L + 1 entries (prefix sums of row_nnz).
template <class J>
void pmi_fill(int64_t L, const int64_t* up_indptr, const J* up_indices, const float* values,
              const double* diag, const int64_t* out_indptr, J* out_indices, float* out_data,
              int num_threads) {
    // Lower parts first: row j receives (i, v) from every upper row i < j in increasing i.
    // A serial sweep keeps the order without a sort; it is O(pairs) and memory bound.
    std::vector<int64_t> cursor(out_indptr, out_indptr + L);
    for (int64_t i = 0; i < L; ++i) {
        if ((i & 1023) == 0) check_interrupt();  // serial here: no OpenMP region to leave
        for (int64_t p = up_indptr[i]; p < up_indptr[i + 1]; ++p) {
            float v = values[p];
            if (std::isnan(v)) continue;
            int64_t j = static_cast<int64_t>(up_indices[p]);
            int64_t w = cursor[j]++;
            out_indices[w] = static_cast<J>(i);
            out_data[w] = v;
        }
    }
    int nt = resolve_threads(num_threads);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 64)
    for (int64_t i = 0; i < L; ++i) {
        if (interrupted()) continue;
        int64_t w = cursor[i];
        if (diag && !std::isnan(diag[i])) {
            out_indices[w] = static_cast<J>(i);
            out_data[w] = static_cast<float>(diag[i]);
            ++w;
        }
        for (int64_t p = up_indptr[i]; p < up_indptr[i + 1]; ++p) {
            float v = values[p];
            if (std::isnan(v)) continue;
            out_indices[w] = up_indices[p];
            out_data[w] = v;
            ++w;
        }
    }
    check_interrupt();
}

}  // namespace labelemb
