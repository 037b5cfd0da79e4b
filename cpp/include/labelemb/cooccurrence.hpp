// Label co-occurrence counts C = Yᵀ Y of a binary samples x labels matrix Y (CSR).
//
// Only the strict upper triangle (i < j) is computed; the diagonal is the label
// counts. Rows of C are built label by label from a column index of Y (for each
// label i, the samples that carry it); each sample then contributes its labels j > i,
// which sit at the end of its sorted row. Work is sum over samples of k_s (k_s - 1) / 2
// for k_s labels in sample s, parallel over labels with dynamic scheduling because
// label frequencies follow a power law. Two passes (count, then fill) so the output
// is allocated once at its exact size.
//
// Memory: the column index (nnz sample ids + L + 1 offsets), one dense counter and one
// marker array of L entries per thread, and the output.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.hpp"

namespace labelemb {

// Row r of Y is indices[indptr[r] .. indptr[r+1]). Returns true when every row is
// strictly increasing (sorted, no duplicates).
template <class I>
bool rows_canonical(int64_t n, const int64_t* indptr, const I* indices, int num_threads) {
    int nt = resolve_threads(num_threads);
    int ok = 1;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(&& : ok)
    for (int64_t r = 0; r < n; ++r) {
        for (int64_t p = indptr[r] + 1; p < indptr[r + 1]; ++p)
            if (indices[p] <= indices[p - 1]) ok = 0;
    }
    return ok != 0;
}

// Sorts each row and drops repeated labels. Writes the new row pointers to
// out_indptr (n + 1) and the labels to out_indices (capacity indptr[n]).
template <class I>
void canonicalize_rows(int64_t n, const int64_t* indptr, const I* indices, int64_t* out_indptr,
                       I* out_indices, int num_threads) {
    int nt = resolve_threads(num_threads);
    std::vector<int64_t> row_len(static_cast<size_t>(n));
#pragma omp parallel num_threads(nt)
    {
        std::vector<I> buf;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < n; ++r) {
            // Sort in place inside the output slot that starts where the input row does;
            // rows are compacted afterwards.
            int64_t a = indptr[r], b = indptr[r + 1];
            I* dst = out_indices + a;
            std::copy(indices + a, indices + b, dst);
            std::sort(dst, dst + (b - a));
            I* end = std::unique(dst, dst + (b - a));
            row_len[r] = end - dst;
        }
    }
    out_indptr[0] = 0;
    for (int64_t r = 0; r < n; ++r) out_indptr[r + 1] = out_indptr[r] + row_len[r];
    // Compaction moves rows left only, so a serial sweep in order is safe.
    for (int64_t r = 0; r < n; ++r) {
        int64_t src = indptr[r], dst = out_indptr[r];
        if (src != dst) std::memmove(out_indices + dst, out_indices + src, sizeof(I) * row_len[r]);
    }
}

// Column index of Y: for label l, the samples carrying it, in increasing order, are
// given by col_ends[col_ptr[l] .. col_ptr[l+1]): the end offset (indptr[s + 1]) of each
// such sample's row. Storing the row end rather than the sample id saves a dependent
// load: with sorted rows, the labels j > l of sample s are read backwards from its end
// until l itself. Built from per-thread histograms over contiguous sample ranges so
// that each column stays sorted without a sort.
template <class I, class S>
void build_columns(int64_t n, int64_t L, const int64_t* indptr, const I* indices, int64_t* col_ptr,
                   S* col_ends, int num_threads) {
    int nt = resolve_threads(num_threads);
    if (n < 4096) nt = 1;
    std::vector<int64_t> hist(static_cast<size_t>(nt) * static_cast<size_t>(L), 0);
#pragma omp parallel num_threads(nt)
    {
        int t = thread_id();
        int tn = 1;
#ifdef _OPENMP
        tn = omp_get_num_threads();
#endif
        int64_t lo = n * t / tn, hi = n * (t + 1) / tn;
        int64_t* h = hist.data() + static_cast<size_t>(t) * L;
        for (int64_t p = indptr[lo]; p < indptr[hi]; ++p) ++h[indices[p]];
#pragma omp barrier
#pragma omp single
        {
            // Exclusive prefix sums: column-major over (label, thread).
            int64_t run = 0;
            for (int64_t l = 0; l < L; ++l) {
                col_ptr[l] = run;
                for (int u = 0; u < tn; ++u) {
                    int64_t c = hist[static_cast<size_t>(u) * L + l];
                    hist[static_cast<size_t>(u) * L + l] = run;
                    run += c;
                }
            }
            col_ptr[L] = run;
        }
        for (int64_t r = lo; r < hi; ++r) {
            S end = static_cast<S>(indptr[r + 1]);
            for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) col_ends[h[indices[p]]++] = end;
        }
    }
}

// Pass 1: number of distinct labels j > i co-occurring with each label i.
template <class I, class S>
void cooccurrence_row_sizes(int64_t L, const I* indices,
                            const int64_t* col_ptr, const S* col_ends, int64_t* row_nnz,
                            int num_threads) {
    int nt = resolve_threads(num_threads);
#pragma omp parallel num_threads(nt)
    {
        std::vector<int64_t> mark(static_cast<size_t>(L), -1);  // last label that saw j
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < L; ++i) {
            if (interrupted()) continue;
            int64_t cnt = 0;
            for (int64_t q = col_ptr[i]; q < col_ptr[i + 1]; ++q) {
                // Rows are canonical and contain i, so the scan stops at i.
                for (int64_t p = static_cast<int64_t>(col_ends[q]) - 1;; --p) {
                    int64_t j = static_cast<int64_t>(indices[p]);
                    if (j <= i) break;
                    if (mark[j] != i) {
                        mark[j] = i;
                        ++cnt;
                    }
                }
            }
            row_nnz[i] = cnt;
        }
    }
    check_interrupt();
}

// Pass 2: fills row i of the strict upper triangle (columns sorted) at
// out_indices/out_counts[out_indptr[i] ..).
template <class I, class S, class J>
void cooccurrence_fill(int64_t L, const I* indices, const int64_t* col_ptr,
                       const S* col_ends, const int64_t* out_indptr, J* out_indices,
                       int64_t* out_counts, int num_threads) {
    int nt = resolve_threads(num_threads);
#pragma omp parallel num_threads(nt)
    {
        std::vector<int64_t> acc(static_cast<size_t>(L), 0);
        std::vector<J> touched;
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < L; ++i) {
            int64_t m = out_indptr[i + 1] - out_indptr[i];
            if (m == 0 || interrupted()) continue;
            touched.clear();
            for (int64_t q = col_ptr[i]; q < col_ptr[i + 1]; ++q) {
                // Rows are canonical and contain i, so the scan stops at i.
                for (int64_t p = static_cast<int64_t>(col_ends[q]) - 1;; --p) {
                    int64_t j = static_cast<int64_t>(indices[p]);
                    if (j <= i) break;
                    if (acc[j]++ == 0) touched.push_back(static_cast<J>(j));
                }
            }
            J* oi = out_indices + out_indptr[i];
            int64_t* oc = out_counts + out_indptr[i];
            // Dense rows: a sweep of the counters beats sorting the touched list.
            if (m * 16 > L - i) {
                int64_t w = 0;
                for (int64_t j = i + 1; j < L && w < m; ++j) {
                    if (acc[j]) {
                        oi[w] = static_cast<J>(j);
                        oc[w] = acc[j];
                        acc[j] = 0;
                        ++w;
                    }
                }
            } else {
                std::sort(touched.begin(), touched.end());
                for (int64_t w = 0; w < m; ++w) {
                    J j = touched[static_cast<size_t>(w)];
                    oi[w] = j;
                    oc[w] = acc[static_cast<size_t>(j)];
                    acc[static_cast<size_t>(j)] = 0;
                }
            }
        }
    }
}

}  // namespace labelemb

namespace labelemb {

// Sum of k count matrices (CSR, L rows, sorted columns) over the same label space, in
// one parallel pass per row instead of k - 1 pairwise additions. Pass 1 sizes the rows
// (`row_nnz`), pass 2 fills them (columns sorted). O(total nnz + L) work.
template <class J>
struct CsrView {
    const int64_t* indptr;
    const J* indices;
    const int64_t* data;
};

template <class J>
void sum_rows_sizes(int64_t L, const std::vector<CsrView<J>>& parts, int64_t* row_nnz,
                    int num_threads) {
    int nt = resolve_threads(num_threads);
#pragma omp parallel num_threads(nt)
    {
        std::vector<int64_t> mark(static_cast<size_t>(L), -1);
#pragma omp for schedule(dynamic, 64)
        for (int64_t i = 0; i < L; ++i) {
            int64_t cnt = 0;
            for (const auto& p : parts)
                for (int64_t q = p.indptr[i]; q < p.indptr[i + 1]; ++q) {
                    int64_t j = static_cast<int64_t>(p.indices[q]);
                    if (mark[j] != i) {
                        mark[j] = i;
                        ++cnt;
                    }
                }
            row_nnz[i] = cnt;
        }
    }
}

template <class J>
void sum_rows_fill(int64_t L, const std::vector<CsrView<J>>& parts, const int64_t* out_indptr,
                   J* out_indices, int64_t* out_data, int num_threads) {
    int nt = resolve_threads(num_threads);
#pragma omp parallel num_threads(nt)
    {
        std::vector<int64_t> acc(static_cast<size_t>(L), 0);
        std::vector<J> touched;
#pragma omp for schedule(dynamic, 64)
        for (int64_t i = 0; i < L; ++i) {
            touched.clear();
            for (const auto& p : parts)
                for (int64_t q = p.indptr[i]; q < p.indptr[i + 1]; ++q) {
                    J j = p.indices[q];
                    if (acc[static_cast<size_t>(j)] == 0) touched.push_back(j);
                    acc[static_cast<size_t>(j)] += p.data[q];
                }
            std::sort(touched.begin(), touched.end());
            int64_t w = out_indptr[i];
            for (J j : touched) {
                out_indices[w] = j;
                out_data[w] = acc[static_cast<size_t>(j)];
                acc[static_cast<size_t>(j)] = 0;
                ++w;
            }
        }
    }
}

}  // namespace labelemb
