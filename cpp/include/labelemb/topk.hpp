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
// Threshold (threshold_blocked): every (row, label) with exact score > min_score, per
// query block, in row then label order.
//
// Files: this header holds the exhaustive path and the threshold; topk_clustered.hpp the
// pruned path; topk_select.hpp the per-row selection both paths share; topk_kernels.hpp
// exact_dot, the error bound and the sgemm tiles. Including this header includes them all.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "blas.hpp"
#include "common.hpp"
#include "topk_clustered.hpp"
#include "topk_kernels.hpp"
#include "topk_select.hpp"

namespace labelemb {

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
