// Exact top-k over labels grouped in clusters (topk_clustered): the pruned path of the
// top-k search, with the same results as the exhaustive one (topk.hpp).
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
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "blas.hpp"
#include "common.hpp"
#include "topk_kernels.hpp"
#include "topk_select.hpp"

namespace labelemb {

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

}  // namespace labelemb
