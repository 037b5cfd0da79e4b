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
    ExceptionGuard guard;
#pragma omp parallel num_threads(nt)
    {
        std::vector<int64_t> mark;  // last label that saw j
        guard.run([&] { mark.assign(static_cast<size_t>(L), -1); });
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < L; ++i) {
            if (guard.failed() || interrupted()) continue;
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
    guard.rethrow();
    check_interrupt();
}

// Pass 2: fills row i of the strict upper triangle (columns sorted) at
// out_indices/out_counts[out_indptr[i] ..).
template <class I, class S, class J>
void cooccurrence_fill(int64_t L, const I* indices, const int64_t* col_ptr,
                       const S* col_ends, const int64_t* out_indptr, J* out_indices,
                       int64_t* out_counts, int num_threads) {
    int nt = resolve_threads(num_threads);
    ExceptionGuard guard;
#pragma omp parallel num_threads(nt)
    {
        std::vector<int64_t> acc;
        std::vector<J> touched;
        guard.run([&] { acc.assign(static_cast<size_t>(L), 0); });
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < L; ++i) {
            int64_t m = out_indptr[i + 1] - out_indptr[i];
            if (m == 0 || guard.failed() || interrupted()) continue;
            guard.run([&] { touched.reserve(static_cast<size_t>(m)); });
            if (guard.failed()) continue;
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
    guard.rethrow();
}

}  // namespace labelemb

namespace labelemb {

// Sum of k count matrices (CSR, L rows, sorted columns) over the same label space, in
// one parallel pass per row instead of k - 1 pairwise additions. Pass 1 sizes the rows
// (`row_nnz`), pass 2 fills them (columns sorted). O(total nnz + L) work.
// Both passes find a row's distinct columns the same way (a mark per column), so that the
// fill writes exactly row_nnz entries whatever the values: zeros, or counts that cancel,
// cannot make it write past its row. Sums wrap modulo 2^64 (counts of real data are far
// below; signed overflow would be undefined).
template <class J>
struct CsrView {
    const int64_t* indptr;
    const J* indices;
    const int64_t* data;
};

// A row whose columns are strictly increasing in every part (what the counting kernel
// and any canonical CSR give) is merged run against run, O(row nnz x log k), with no
// per-column mark or sort; any other row takes the mark path. The choice depends only on
// the input, so both passes treat a row the same way.
template <class J>
bool row_is_canonical(const std::vector<CsrView<J>>& parts, int64_t i) {
    for (const auto& p : parts)
        for (int64_t q = p.indptr[i] + 1; q < p.indptr[i + 1]; ++q)
            if (!(p.indices[q - 1] < p.indices[q])) return false;
    return true;
}

// Sorted runs (columns strictly increasing) merged into (idx, val), columns summed.
// Pairs of runs are merged in rounds (log2 k rounds); a and b are scratch.
template <class J>
struct RowMerger {
    struct Run {
        const J* idx;
        const int64_t* val;
        int64_t len;
    };
    std::vector<J> ia, ib;
    std::vector<uint64_t> va, vb;
    std::vector<Run> runs, next;

    static int64_t merge2(const Run& x, const Run& y, J* oi, uint64_t* ov) {
        int64_t a = 0, b = 0, w = 0;
        while (a < x.len && b < y.len) {
            const J u = x.idx[a], v = y.idx[b];
            if (u < v) {
                oi[w] = u;
                ov[w++] = static_cast<uint64_t>(x.val[a++]);
            } else if (v < u) {
                oi[w] = v;
                ov[w++] = static_cast<uint64_t>(y.val[b++]);
            } else {
                oi[w] = u;
                ov[w++] = static_cast<uint64_t>(x.val[a++]) + static_cast<uint64_t>(y.val[b++]);
            }
        }
        for (; a < x.len; ++a, ++w) {
            oi[w] = x.idx[a];
            ov[w] = static_cast<uint64_t>(x.val[a]);
        }
        for (; b < y.len; ++b, ++w) {
            oi[w] = y.idx[b];
            ov[w] = static_cast<uint64_t>(y.val[b]);
        }
        return w;
    }

    // Merges the parts' row i; returns its distinct columns and points *oi / *ov at them
    // (valid until the next call). Values are reinterpreted as uint64 (sums wrap).
    int64_t merge(const std::vector<CsrView<J>>& parts, int64_t i, const J** oi,
                  const uint64_t** ov) {
        runs.clear();
        int64_t total = 0;
        for (const auto& p : parts) {
            const int64_t len = p.indptr[i + 1] - p.indptr[i];
            if (len > 0) {
                runs.push_back({p.indices + p.indptr[i], p.data + p.indptr[i], len});
                total += len;
            }
        }
        if (ia.size() < static_cast<size_t>(total)) {
            ia.resize(static_cast<size_t>(total));
            ib.resize(static_cast<size_t>(total));
            va.resize(static_cast<size_t>(total));
            vb.resize(static_cast<size_t>(total));
        }
        if (runs.empty()) {
            *oi = ia.data();
            *ov = va.data();
            return 0;
        }
        if (runs.size() == 1) {  // copy, so values come out as uint64 like the others
            const Run& r = runs[0];
            std::copy(r.idx, r.idx + r.len, ia.data());
            for (int64_t q = 0; q < r.len; ++q) va[q] = static_cast<uint64_t>(r.val[q]);
            *oi = ia.data();
            *ov = va.data();
            return r.len;
        }
        // Round 1 merges pairs of input runs into ia/va; later rounds alternate buffers.
        // Runs in the buffers keep int64 views of the uint64 values (same bits).
        bool in_a = true;
        while (runs.size() > 1) {
            J* bi = in_a ? ia.data() : ib.data();
            uint64_t* bv = in_a ? va.data() : vb.data();
            next.clear();
            int64_t w = 0;
            for (size_t r = 0; r + 1 < runs.size(); r += 2) {
                const int64_t m = merge2(runs[r], runs[r + 1], bi + w, bv + w);
                next.push_back({bi + w, reinterpret_cast<const int64_t*>(bv + w), m});
                w += m;
            }
            if (runs.size() % 2) {  // the odd run out is copied along
                const Run& r = runs.back();
                std::copy(r.idx, r.idx + r.len, bi + w);
                for (int64_t q = 0; q < r.len; ++q) bv[w + q] = static_cast<uint64_t>(r.val[q]);
                next.push_back({bi + w, reinterpret_cast<const int64_t*>(bv + w), r.len});
            }
            runs.swap(next);
            in_a = !in_a;
        }
        *oi = runs[0].idx;
        *ov = reinterpret_cast<const uint64_t*>(runs[0].val);
        return runs[0].len;
    }
};

template <class J>
void sum_rows_sizes(int64_t L, const std::vector<CsrView<J>>& parts, int64_t* row_nnz,
                    int num_threads) {
    int nt = resolve_threads(num_threads);
    ExceptionGuard guard;
#pragma omp parallel num_threads(nt)
    {
        std::vector<int64_t> mark;
        RowMerger<J> merger;
#pragma omp for schedule(dynamic, 64)
        for (int64_t i = 0; i < L; ++i) {
            guard.run([&] {
                if (row_is_canonical(parts, i)) {
                    const J* oi;
                    const uint64_t* ov;
                    row_nnz[i] = merger.merge(parts, i, &oi, &ov);
                    return;
                }
                if (mark.empty()) mark.assign(static_cast<size_t>(L), -1);
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
            });
        }
    }
    guard.rethrow();
}

template <class J>
void sum_rows_fill(int64_t L, const std::vector<CsrView<J>>& parts, const int64_t* out_indptr,
                   J* out_indices, int64_t* out_data, int num_threads) {
    int nt = resolve_threads(num_threads);
    ExceptionGuard guard;
#pragma omp parallel num_threads(nt)
    {
        std::vector<uint64_t> acc;
        std::vector<int64_t> mark;  // last row that saw j
        std::vector<J> touched;
        RowMerger<J> merger;
#pragma omp for schedule(dynamic, 64)
        for (int64_t i = 0; i < L; ++i) {
            guard.run([&] {
                const int64_t room = out_indptr[i + 1] - out_indptr[i];
                int64_t w = out_indptr[i];
                if (row_is_canonical(parts, i)) {
                    const J* oi;
                    const uint64_t* ov;
                    const int64_t m = std::min(room, merger.merge(parts, i, &oi, &ov));
                    for (int64_t q = 0; q < m; ++q, ++w) {
                        out_indices[w] = oi[q];
                        out_data[w] = static_cast<int64_t>(ov[q]);
                    }
                    return;
                }
                if (mark.empty()) {
                    acc.assign(static_cast<size_t>(L), 0);
                    mark.assign(static_cast<size_t>(L), -1);
                }
                touched.clear();
                for (const auto& p : parts)
                    for (int64_t q = p.indptr[i]; q < p.indptr[i + 1]; ++q) {
                        J j = p.indices[q];
                        const size_t u = static_cast<size_t>(j);
                        if (mark[u] != i) {
                            mark[u] = i;
                            touched.push_back(j);
                        }
                        acc[u] += static_cast<uint64_t>(p.data[q]);
                    }
                std::sort(touched.begin(), touched.end());
                const int64_t m = std::min<int64_t>(room, static_cast<int64_t>(touched.size()));
                for (int64_t t = 0; t < static_cast<int64_t>(touched.size()); ++t) {
                    const size_t u = static_cast<size_t>(touched[t]);
                    if (t < m) {
                        out_indices[w] = touched[t];
                        out_data[w] = static_cast<int64_t>(acc[u]);
                        ++w;
                    }
                    acc[u] = 0;
                }
            });
        }
    }
    guard.rethrow();
}

}  // namespace labelemb
