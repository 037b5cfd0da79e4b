// Exact top-k and threshold decoding of inner products: each query q (a prediction in
// embedding space) ranks the labels by q . v_l; ties go to the lower label id.
//
// Exhaustive path (topk_blocked). Queries are cut into blocks of nb rows and labels into
// blocks of lb; each (query block, label block) score tile comes from one single-threaded
// sgemm into a thread-local buffer small enough to stay in L2, and each tile row is then
// scanned against the row's current k-th score: a vectorised pre-filter skips groups of
// 16 scores that cannot enter, the few survivors go to a per-row buffer of `cap` entries
// that nth_element cuts back to k when full (no full sort, no n x L matrix).
// Work: 2 n L d flops in sgemm, n L compares, O(n k log(L / k)) expected selection.
// Memory per thread: nb x lb floats (tile) + nb x cap entries.
// OpenMP over query blocks (and over label ranges when there are fewer query blocks
// than threads); BLAS is single-threaded inside the region.
//
// Pruned path (topk_clustered). The labels come grouped in clusters, each contiguous
// (after a permutation) with a centre c and a radius r (max |v - c| over its labels).
// Since q . v <= q . c + |q| r, a cluster is skipped for a query block when that bound,
// plus a margin covering float rounding, is below every row's current k-th score. Queries
// are processed grouped by their most promising cluster, clusters in decreasing order of
// bound, in batches of growing size so the k-th scores rise early. The scores that are
// computed come from the same sgemm, so results are those of the exhaustive path.
//
// Threshold (threshold_blocked): every (row, label) with score > min_score, per query
// block, in row then label order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
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

// The running selection of one query row: a buffer of up to `cap` candidates (cap > k)
// holding every candidate seen so far that may still belong to the top k. `thr` is the
// k-th best score once k candidates were seen (-inf before): below it, a candidate can
// never enter. When the buffer fills, nth_element cuts it back to the best k.
template <class I>
class RowTopk {
public:
    void reset(Entry<I>* buf, int64_t k, int64_t cap, const int64_t* ex_begin,
               const int64_t* ex_end) {
        buf_ = buf;
        k_ = k;
        cap_ = cap;
        m_ = 0;
        thr = kNegInf;
        ex_begin_ = ex_begin;
        ex_end_ = ex_end;
    }

    // `id` is the label's original id (the one exclusion lists and results use).
    inline void offer(float s, I id) {
        if (ex_begin_ != ex_end_ && std::binary_search(ex_begin_, ex_end_, static_cast<int64_t>(id)))
            return;
        buf_[m_++] = Entry<I>{s, id};
        if (m_ == k_ && thr == kNegInf) {
            // The first k: the threshold is their minimum (no cut needed).
            float t = buf_[0].s;
            for (int64_t j = 1; j < k_; ++j) t = std::min(t, buf_[j].s);
            thr = t;
        } else if (m_ == cap_) {
            cut();
        }
    }

    // Cuts the buffer back to the best k so that thr is the exact k-th score.
    void tighten() {
        if (m_ > k_) cut();
    }

    // Writes the top k in ranking order; rows with fewer than k candidates (labels
    // excluded) are padded with id -1 and score -inf.
    void finish(float* out_s, I* out_id) {
        if (m_ > k_) cut();
        std::sort(buf_, buf_ + m_, Better<I>());
        for (int64_t j = 0; j < m_; ++j) {
            out_s[j] = buf_[j].s;
            out_id[j] = buf_[j].id;
        }
        for (int64_t j = m_; j < k_; ++j) {
            out_s[j] = kNegInf;
            out_id[j] = static_cast<I>(-1);
        }
    }

    float thr = kNegInf;

private:
    void cut() {
        std::nth_element(buf_, buf_ + (k_ - 1), buf_ + m_, Better<I>());
        m_ = k_;
        thr = buf_[k_ - 1].s;  // nth_element put the k-th best there
    }

    Entry<I>* buf_ = nullptr;
    int64_t k_ = 0, cap_ = 0, m_ = 0;
    const int64_t* ex_begin_ = nullptr;
    const int64_t* ex_end_ = nullptr;
};

// Offers the scores s[0..len) of one tile row; id_of(j) gives the label id of column j.
// Groups of 16 are compared with the threshold at once; only set bits are visited.
template <class I, class IdOf>
inline void scan_row(const float* s, int64_t len, IdOf id_of, RowTopk<I>& row) {
    int64_t j = 0;
    for (; j + 16 <= len; j += 16) {
        unsigned mask = ge_mask16(s + j, row.thr);
        while (mask) {
            const int t = lowest_bit(mask);
            mask &= mask - 1;
            if (s[j + t] >= row.thr) row.offer(s[j + t], id_of(j + t));  // thr may have risen
        }
    }
    for (; j < len; ++j)
        if (s[j] >= row.thr) row.offer(s[j], id_of(j));
}

// tile (nq x nl, row-major) = Q (nq x d) V (nl x d)^T, by one column-major sgemm:
// C (nl x nq) = V^T' Q' with V and Q seen as d x nl and d x nq column-major.
inline void score_tile(const float* V, int64_t nl, const float* Q, int64_t nq, int64_t d,
                       float* tile) {
    const char ta = 'T', tb = 'N';
    const int m = static_cast<int>(nl), n = static_cast<int>(nq), kk = static_cast<int>(d);
    const float one = 1.0f, zero = 0.0f;
    blas().sgemm(&ta, &tb, &m, &n, &kk, &one, V, &kk, Q, &kk, &zero, tile, &m);
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace topk_detail

struct TopkParams {
    int64_t query_block = 0;   // rows per block (0 = automatic)
    int64_t label_block = 0;   // labels per tile (0 = automatic)
};

// Rows of `exclude` (CSR over the n queries, sorted ids) name labels a row must not return.
struct Exclusions {
    const int64_t* indptr = nullptr;   // n + 1, or null for none
    const int64_t* indices = nullptr;  // sorted within each row
};

namespace topk_detail {

// Buffer capacity per row: room for k plus a batch of newcomers between two cuts.
inline int64_t row_capacity(int64_t k) { return k + std::max<int64_t>(k, 32); }

// Query block size: about `want` rows, fewer when k is large (the per-row buffers of a
// block stay under ~64 MB per thread) or when there would be fewer blocks than threads.
inline int64_t query_block(int64_t want, int64_t n, int64_t k, int nt) {
    int64_t per_row = row_capacity(k) * 16;
    int64_t nb = std::max<int64_t>(1, std::min<int64_t>(want, (int64_t(64) << 20) / per_row));
    if (n > 0 && ceil_div(n, nb) < nt) nb = std::max<int64_t>(std::min<int64_t>(nb, 16), ceil_div(n, nt));
    return std::max<int64_t>(1, nb);
}

}  // namespace topk_detail

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
    const int64_t cap = row_capacity(k);
    const int64_t lb = std::min<int64_t>(prm.label_block > 0 ? prm.label_block : 2048, L);
    const int64_t nb = query_block(prm.query_block > 0 ? prm.query_block : 128, n, k, nt);
    const int64_t n_qb = ceil_div(n, nb);
    // Fewer query blocks than threads (few queries): split the labels into parts too and
    // merge the parts' top-k per row afterwards.
    int64_t parts = 1;
    if (n_qb < nt) parts = std::min<int64_t>(ceil_div(nt, n_qb), ceil_div(L, lb));
    const int64_t span = ceil_div(ceil_div(L, parts), lb) * lb;  // labels per part
    parts = ceil_div(L, span);
    std::vector<float> part_s(parts > 1 ? static_cast<size_t>(n * parts * k) : 0);
    std::vector<I> part_id(parts > 1 ? static_cast<size_t>(n * parts * k) : 0);
    const int64_t items = n_qb * parts;
    ExceptionGuard guard;
#pragma omp parallel num_threads(nt)
    {
        BlasSingleThreaded single;
        std::vector<float> tile;
        std::vector<Entry<I>> buf;
        std::vector<RowTopk<I>> rows;
        guard.run([&] {
            tile.resize(static_cast<size_t>(nb * lb));
            buf.resize(static_cast<size_t>(nb * cap));
            rows.resize(static_cast<size_t>(nb));
        });
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; ++it) {
            guard.run([&] {
                const int64_t qb = it / parts, part = it % parts;
                const int64_t q0 = qb * nb, nq = std::min(nb, n - q0);
                const int64_t l_begin = part * span, l_end = std::min(L, l_begin + span);
                for (int64_t r = 0; r < nq; ++r) {
                    const int64_t* eb = nullptr;
                    const int64_t* ee = nullptr;
                    if (ex.indptr) {
                        eb = ex.indices + ex.indptr[q0 + r];
                        ee = ex.indices + ex.indptr[q0 + r + 1];
                    }
                    rows[r].reset(buf.data() + r * cap, k, cap, eb, ee);
                }
                for (int64_t l0 = l_begin; l0 < l_end; l0 += lb) {
                    const int64_t nl = std::min(lb, l_end - l0);
                    score_tile(V + l0 * d, nl, Q + q0 * d, nq, d, tile.data());
                    for (int64_t r = 0; r < nq; ++r) {
                        scan_row<I>(tile.data() + r * nl, nl,
                                    [l0](int64_t j) { return static_cast<I>(l0 + j); }, rows[r]);
                    }
                }
                for (int64_t r = 0; r < nq; ++r) {
                    const int64_t q = q0 + r;
                    if (parts == 1)
                        rows[r].finish(out_s + q * k, out_id + q * k);
                    else
                        rows[r].finish(part_s.data() + (q * parts + part) * k,
                                       part_id.data() + (q * parts + part) * k);
                }
            });
        }
    }
    guard.rethrow();
    if (parts == 1) return;
#pragma omp parallel num_threads(nt)
    {
        std::vector<Entry<I>> all;
#pragma omp for schedule(static)
        for (int64_t q = 0; q < n; ++q) {
            guard.run([&] {
                all.clear();
                for (int64_t j = 0; j < parts * k; ++j) {
                    const I id = part_id[static_cast<size_t>(q * parts * k + j)];
                    if (id >= 0) all.push_back({part_s[static_cast<size_t>(q * parts * k + j)], id});
                }
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
// positions offsets[c] .. offsets[c+1] of V (row-major, L x d), whose original ids are
// ids[pos]; its centre is centres[c * d ..], its radius radii[c] >= max |v - centre|.
template <class I>
struct ClusterIndex {
    const float* V = nullptr;
    const I* ids = nullptr;
    int64_t L = 0, d = 0, n_clusters = 0;
    const int64_t* offsets = nullptr;
    const float* centres = nullptr;
    const double* radii = nullptr;
};

struct PruneStats {
    int64_t scored = 0;  // (row, label) scores computed by sgemm, clusters' centres excluded
};

// Exact top-k of Q (n x d) against the clustered labels. Same output as topk_blocked
// on the unpermuted vectors.
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
    const int64_t cap = row_capacity(k);
    const int64_t lb = std::min<int64_t>(prm.label_block > 0 ? prm.label_block : 2048, L);
    const int64_t nb = query_block(prm.query_block > 0 ? prm.query_block : 128, n, k, nt);
    const int64_t n_qb = ceil_div(n, nb);

    // Rounding margin: a computed dot product x.y is within (d + 2) u |x||y| of the exact
    // one (u = 2^-24); doubled for safety. Applied to both the centre score and the label
    // scores, so a cluster is skipped only when no label in it can reach the k-th score.
    double vmax = 0, cmax = 0, rmax = 0;
    for (int64_t l = 0; l < L; ++l) {
        double s = 0;
        for (int64_t j = 0; j < d; ++j) s += double(ix.V[l * d + j]) * ix.V[l * d + j];
        vmax = std::max(vmax, s);
    }
    for (int64_t c = 0; c < nc; ++c) {
        double s = 0;
        for (int64_t j = 0; j < d; ++j) s += double(ix.centres[c * d + j]) * ix.centres[c * d + j];
        cmax = std::max(cmax, s);
        rmax = std::max(rmax, ix.radii[c]);
    }
    const double gamma = 2.0 * double(d + 2) * std::ldexp(1.0, -24);
    const double margin_scale = gamma * (std::sqrt(vmax) + std::sqrt(cmax) + rmax) + 1e-30;

    std::vector<double> qnorm(static_cast<size_t>(n));
    std::vector<int64_t> best(static_cast<size_t>(n));
    ExceptionGuard guard;
    // Pass 1: each query's most promising cluster (largest bound), to group queries that
    // will need the same clusters into the same blocks.
#pragma omp parallel num_threads(nt)
    {
        BlasSingleThreaded single;
        std::vector<float> g;
        guard.run([&] { g.resize(static_cast<size_t>(nb * nc)); });
#pragma omp for schedule(dynamic, 1)
        for (int64_t qb = 0; qb < n_qb; ++qb) {
            guard.run([&] {
                const int64_t q0 = qb * nb, nq = std::min(nb, n - q0);
                score_tile(ix.centres, nc, Q + q0 * d, nq, d, g.data());
                for (int64_t r = 0; r < nq; ++r) {
                    const float* q = Q + (q0 + r) * d;
                    double s = 0;
                    for (int64_t j = 0; j < d; ++j) s += double(q[j]) * q[j];
                    const double qn = std::sqrt(s) * (1 + 1e-12);
                    qnorm[q0 + r] = qn;
                    int64_t arg = 0;
                    double top = -std::numeric_limits<double>::infinity();
                    for (int64_t c = 0; c < nc; ++c) {
                        const double b = double(g[r * nc + c]) + qn * ix.radii[c];
                        if (b > top) {
                            top = b;
                            arg = c;
                        }
                    }
                    best[q0 + r] = arg;
                }
            });
        }
    }
    guard.rethrow();
    std::vector<int64_t> order(static_cast<size_t>(n));
    {
        std::vector<int64_t> start(static_cast<size_t>(nc) + 1, 0);
        for (int64_t q = 0; q < n; ++q) ++start[best[q] + 1];
        for (int64_t c = 0; c < nc; ++c) start[c + 1] += start[c];
        for (int64_t q = 0; q < n; ++q) order[start[best[q]]++] = q;
    }

    int64_t scored_total = 0;
#pragma omp parallel num_threads(nt) reduction(+ : scored_total)
    {
        BlasSingleThreaded single;
        std::vector<float> qbuf, g, tile, vbuf;
        std::vector<I> idbuf;
        std::vector<double> bound, margin, maxb;
        std::vector<int64_t> corder;
        std::vector<Entry<I>> buf;
        std::vector<RowTopk<I>> rows;
        guard.run([&] {
            qbuf.resize(static_cast<size_t>(nb * d));
            g.resize(static_cast<size_t>(nb * nc));
            tile.resize(static_cast<size_t>(nb * lb));
            vbuf.resize(static_cast<size_t>(lb * d));
            idbuf.resize(static_cast<size_t>(lb));
            bound.resize(static_cast<size_t>(nb * nc));
            margin.resize(static_cast<size_t>(nb));
            maxb.resize(static_cast<size_t>(nc));
            corder.resize(static_cast<size_t>(nc));
            buf.resize(static_cast<size_t>(nb * cap));
            rows.resize(static_cast<size_t>(nb));
        });
#pragma omp for schedule(dynamic, 1)
        for (int64_t qb = 0; qb < n_qb; ++qb) {
            guard.run([&] {
                const int64_t q0 = qb * nb, nq = std::min(nb, n - q0);
                for (int64_t r = 0; r < nq; ++r) {
                    const int64_t q = order[q0 + r];
                    std::memcpy(qbuf.data() + r * d, Q + q * d, sizeof(float) * d);
                    const int64_t* eb = nullptr;
                    const int64_t* ee = nullptr;
                    if (ex.indptr) {
                        eb = ex.indices + ex.indptr[q];
                        ee = ex.indices + ex.indptr[q + 1];
                    }
                    rows[r].reset(buf.data() + r * cap, k, cap, eb, ee);
                    margin[r] = margin_scale * qnorm[q];
                }
                score_tile(ix.centres, nc, qbuf.data(), nq, d, g.data());
                std::fill(maxb.begin(), maxb.end(), -std::numeric_limits<double>::infinity());
                for (int64_t r = 0; r < nq; ++r) {
                    const double qn = qnorm[order[q0 + r]];
                    for (int64_t c = 0; c < nc; ++c) {
                        const double b = double(g[r * nc + c]) + qn * ix.radii[c] + margin[r];
                        bound[r * nc + c] = b;
                        maxb[c] = std::max(maxb[c], b);
                    }
                }
                std::iota(corder.begin(), corder.end(), int64_t(0));
                std::sort(corder.begin(), corder.end(), [&](int64_t a, int64_t b) {
                    return maxb[a] > maxb[b] || (maxb[a] == maxb[b] && a < b);
                });
                int64_t batch = 0;
                int64_t target = std::min(lb, std::max<int64_t>(256, 2 * k));
                float min_thr = kNegInf;  // the lowest k-th score of the block's rows
                auto flush = [&] {
                    if (batch == 0) return;
                    score_tile(vbuf.data(), batch, qbuf.data(), nq, d, tile.data());
                    scored_total += batch * nq;
                    for (int64_t r = 0; r < nq; ++r) {
                        const I* idp = idbuf.data();
                        scan_row<I>(tile.data() + r * batch, batch,
                                    [idp](int64_t j) { return idp[j]; }, rows[r]);
                        rows[r].tighten();
                    }
                    min_thr = rows[0].thr;
                    for (int64_t r = 1; r < nq; ++r) min_thr = std::min(min_thr, rows[r].thr);
                    batch = 0;
                    target = std::min(lb, 2 * target);
                };
                for (int64_t ci = 0; ci < nc; ++ci) {
                    const int64_t c = corder[ci];
                    // Clusters come in decreasing order of their best bound over the block:
                    // once it is below every row's k-th score, no later cluster can help.
                    if (maxb[c] < double(min_thr)) break;
                    bool active = false;
                    for (int64_t r = 0; r < nq && !active; ++r)
                        active = bound[r * nc + c] >= double(rows[r].thr);
                    if (!active) continue;
                    for (int64_t p = ix.offsets[c]; p < ix.offsets[c + 1];) {
                        const int64_t take = std::min(ix.offsets[c + 1] - p, lb - batch);
                        std::memcpy(vbuf.data() + batch * d, ix.V + p * d, sizeof(float) * take * d);
                        std::copy(ix.ids + p, ix.ids + p + take, idbuf.data() + batch);
                        batch += take;
                        p += take;
                        if (batch == lb) flush();
                    }
                    if (batch >= target) flush();
                }
                flush();
                for (int64_t r = 0; r < nq; ++r) {
                    const int64_t q = order[q0 + r];
                    rows[r].finish(out_s + q * k, out_id + q * k);
                }
            });
        }
    }
    guard.rethrow();
    if (stats) stats->scored = scored_total;
}

// Every (row, label) with q . v_l > min_score. Results per query block `b` (rows
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
    const int64_t lb = std::max<int64_t>(1, std::min<int64_t>(prm.label_block > 0 ? prm.label_block : 2048, L));
    const int64_t nb = query_block(prm.query_block > 0 ? prm.query_block : 128, n, 1, nt);
    const int64_t n_qb = ceil_div(n, nb);
    out.block = nb;
    out.row_nnz.assign(static_cast<size_t>(n), 0);
    out.ids.assign(static_cast<size_t>(n_qb), {});
    out.scores.assign(static_cast<size_t>(n_qb), {});
    if (n == 0 || L == 0) return;
    ExceptionGuard guard;
#pragma omp parallel num_threads(nt)
    {
        BlasSingleThreaded single;
        std::vector<float> tile;
        std::vector<std::vector<I>> rid;
        std::vector<std::vector<float>> rs;
        guard.run([&] {
            tile.resize(static_cast<size_t>(nb * lb));
            rid.resize(static_cast<size_t>(nb));
            rs.resize(static_cast<size_t>(nb));
        });
#pragma omp for schedule(dynamic, 1)
        for (int64_t qb = 0; qb < n_qb; ++qb) {
            guard.run([&] {
                const int64_t q0 = qb * nb, nq = std::min(nb, n - q0);
                for (int64_t r = 0; r < nq; ++r) {
                    rid[r].clear();
                    rs[r].clear();
                }
                for (int64_t l0 = 0; l0 < L; l0 += lb) {
                    const int64_t nl = std::min(lb, L - l0);
                    score_tile(V + l0 * d, nl, Q + q0 * d, nq, d, tile.data());
                    for (int64_t r = 0; r < nq; ++r) {
                        const float* s = tile.data() + r * nl;
                        for (int64_t j = 0; j < nl; ++j) {
                            if (s[j] > min_score) {
                                rid[r].push_back(static_cast<I>(l0 + j));
                                rs[r].push_back(s[j]);
                            }
                        }
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
