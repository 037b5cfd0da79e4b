// Bindings of the top-k search (topk.hpp): exact top-k, exhaustive and over clustered
// labels, the threshold decoding, and exact_dot's versions (for tests).
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

#include "bind_common.hpp"
#include "labelemb/common.hpp"
#include "labelemb/cooccurrence.hpp"
#include "labelemb/csr.hpp"
#include "labelemb/topk.hpp"

using namespace labelemb;

namespace {

// ---------------------------------------------------------------- top-k and threshold

// The exclusion lists (CSR over the n query rows, sorted label ids in [0, L)), checked.
Exclusions topk_exclusions(const std::optional<carray<int64_t>>& indptr,
                           const std::optional<carray<int64_t>>& indices, int64_t n, int64_t L,
                           int nt) {
    Exclusions ex;
    LABELEMB_CHECK(indptr.has_value() == indices.has_value(),
                   "exclude: pass both indptr and indices, or neither");
    if (!indptr) return ex;
    require_1d(*indptr, "exclude indptr");
    require_1d(*indices, "exclude indices");
    LABELEMB_CHECK(alen(*indptr) == n + 1, "exclude must have one row per query (" << n
                                               << "), got " << alen(*indptr) - 1);
    const int64_t* ip = cptr(*indptr);
    const int64_t* ix = cptr(*indices);
    bool sorted;
    {
        py::gil_scoped_release release;
        check_csr("exclude", n, ip, alen(*indices), ix, L, nt);
        sorted = rows_canonical(n, ip, ix, nt);
    }
    LABELEMB_CHECK(sorted, "exclude: each row's label ids must be sorted and unique");
    ex.indptr = ip;
    ex.indices = ix;
    return ex;
}

template <class I>
void check_topk_outputs(const carray<float>& out_s, const carray<I>& out_id, int64_t n, int64_t k,
                        int64_t L) {
    require_2d(out_s, "out_scores");
    require_2d(out_id, "out_indices");
    LABELEMB_CHECK(out_s.shape(0) == n && out_s.shape(1) == k && out_id.shape(0) == n &&
                       out_id.shape(1) == k,
                   "outputs must have shape (" << n << ", " << k << ")");
    LABELEMB_CHECK(L - 1 <= static_cast<int64_t>(std::numeric_limits<I>::max()),
                   "out_indices: the index type cannot hold " << L << " labels");
}

TopkParams topk_params(int64_t query_block, int64_t label_block) {
    LABELEMB_CHECK(query_block >= 0 && query_block <= (1 << 20),
                   "query_block must be in [0, 2^20], got " << query_block);
    LABELEMB_CHECK(label_block >= 0 && label_block <= (1 << 20),
                   "label_block must be in [0, 2^20], got " << label_block);
    TopkParams prm;
    prm.query_block = query_block;
    prm.label_block = label_block;
    return prm;
}

template <class I>
void topk(const carray<float>& queries, const carray<float>& vectors, int64_t k,
          const std::optional<carray<int64_t>>& ex_indptr,
          const std::optional<carray<int64_t>>& ex_indices, carray<float>& out_s,
          carray<I>& out_id, int num_threads, int64_t query_block, int64_t label_block) {
    require_2d(queries, "queries");
    require_2d(vectors, "vectors");
    const int64_t n = queries.shape(0), d = queries.shape(1), L = vectors.shape(0);
    LABELEMB_CHECK(vectors.shape(1) == d, "queries have " << d << " columns but vectors have "
                                                          << vectors.shape(1));
    LABELEMB_CHECK(d >= 1 && d <= std::numeric_limits<int>::max(),
                   "the number of columns must be in [1, 2^31), got " << d);
    LABELEMB_CHECK(k >= 1 && k <= L, "k must be in [1, " << L << "], got " << k);
    check_topk_outputs(out_s, out_id, n, k, L);
    TopkParams prm = topk_params(query_block, label_block);
    int nt = resolve_threads(num_threads);
    Exclusions ex = topk_exclusions(ex_indptr, ex_indices, n, L, nt);
    const float* q = cptr(queries);
    const float* v = cptr(vectors);
    float* os = mptr(out_s);
    I* oi = mptr(out_id);
    SigintGuard sigint;
    py::gil_scoped_release release;
    topk_blocked<I>(q, n, v, L, d, k, ex, os, oi, prm, nt);
}

template <class I>
int64_t topk_clustered_py(const carray<float>& queries, const carray<float>& vectors,
                          const carray<float>& sorted, const carray<I>& ids,
                          const carray<double>& delta,
                          const carray<int64_t>& offsets, const carray<float>& centres, int64_t k,
                          const std::optional<carray<int64_t>>& ex_indptr,
                          const std::optional<carray<int64_t>>& ex_indices, carray<float>& out_s,
                          carray<I>& out_id, int num_threads, int64_t query_block,
                          int64_t label_block) {
    require_2d(queries, "queries");
    require_2d(vectors, "vectors");
    require_2d(centres, "centres");
    require_2d(sorted, "sorted");
    require_1d(ids, "ids");
    require_1d(delta, "delta");
    require_1d(offsets, "offsets");
    const int64_t n = queries.shape(0), d = queries.shape(1), L = vectors.shape(0);
    const int64_t nc = alen(offsets) - 1;
    LABELEMB_CHECK(vectors.shape(1) == d, "queries have " << d << " columns but the index has "
                                                          << vectors.shape(1));
    LABELEMB_CHECK(d >= 1 && d <= std::numeric_limits<int>::max(),
                   "the number of columns must be in [1, 2^31), got " << d);
    LABELEMB_CHECK(k >= 1 && k <= L, "k must be in [1, " << L << "], got " << k);
    LABELEMB_CHECK(nc >= 1, "the index must have at least one cluster");
    LABELEMB_CHECK(alen(ids) == L && alen(delta) == L, "ids and delta need one entry per vector");
    LABELEMB_CHECK(sorted.shape(0) == L && sorted.shape(1) == d,
                   "sorted must have the shape of vectors");
    LABELEMB_CHECK(centres.shape(0) == nc && centres.shape(1) == d,
                   "centres must have shape (" << nc << ", " << d << ")");
    check_topk_outputs(out_s, out_id, n, k, L);
    TopkParams prm = topk_params(query_block, label_block);
    int nt = resolve_threads(num_threads);
    Exclusions ex = topk_exclusions(ex_indptr, ex_indices, n, L, nt);
    ClusterIndex<I> ix;
    ix.V = cptr(vectors);
    ix.S = cptr(sorted);
    ix.L = L;
    ix.d = d;
    ix.n_clusters = nc;
    ix.ids = cptr(ids);
    ix.delta = cptr(delta);
    ix.offsets = cptr(offsets);
    ix.centres = cptr(centres);
    const float* q = cptr(queries);
    float* os = mptr(out_s);
    I* oi = mptr(out_id);
    PruneStats stats;
    SigintGuard sigint;
    {
        py::gil_scoped_release release;
        check_cluster_index(ix);
        topk_clustered<I>(q, n, ix, k, ex, os, oi, prm, &stats, nt);
    }
    return stats.scored;
}

template <class I>
py::tuple threshold_impl(const float* q, int64_t n, const float* v, int64_t L, int64_t d,
                         float min_score, const TopkParams& prm, int nt) {
    ThresholdResult<I> res;
    {
        py::gil_scoped_release release;
        threshold_blocked<I>(q, n, v, L, d, min_score, res, prm, nt);
    }
    carray<int64_t> indptr(n + 1);
    int64_t* ip = mptr(indptr);
    ip[0] = 0;
    for (int64_t r = 0; r < n; ++r) ip[r + 1] = ip[r] + res.row_nnz[r];
    carray<I> indices(ip[n]);
    carray<float> data(ip[n]);
    I* oi = mptr(indices);
    float* od = mptr(data);
    {
        py::gil_scoped_release release;
        threshold_gather<I>(res, ip, oi, od, nt);
    }
    return py::make_tuple(indptr, indices, data);
}

float exact_dot_py(const carray<float>& a, const carray<float>& b, int version) {
    require_1d(a, "a");
    require_1d(b, "b");
    LABELEMB_CHECK(alen(a) == alen(b), "a and b differ in length");
    return topk_detail::exact_dot_version(version, cptr(a), cptr(b), alen(a));
}

py::tuple threshold(const carray<float>& queries, const carray<float>& vectors, double min_score,
                    int num_threads, int64_t query_block, int64_t label_block) {
    require_2d(queries, "queries");
    require_2d(vectors, "vectors");
    const int64_t n = queries.shape(0), d = queries.shape(1), L = vectors.shape(0);
    LABELEMB_CHECK(vectors.shape(1) == d, "queries have " << d << " columns but vectors have "
                                                          << vectors.shape(1));
    LABELEMB_CHECK(d >= 1 && d <= std::numeric_limits<int>::max(),
                   "the number of columns must be in [1, 2^31), got " << d);
    LABELEMB_CHECK(std::isfinite(min_score), "min_score must be finite");
    TopkParams prm = topk_params(query_block, label_block);
    int nt = resolve_threads(num_threads);
    SigintGuard sigint;
    if (L - 1 <= static_cast<int64_t>(std::numeric_limits<int32_t>::max()))
        return threshold_impl<int32_t>(cptr(queries), n, cptr(vectors), L, d,
                                       static_cast<float>(min_score), prm, nt);
    return threshold_impl<int64_t>(cptr(queries), n, cptr(vectors), L, d,
                                   static_cast<float>(min_score), prm, nt);
}

}  // namespace

void bind_topk(py::module_& m) {
    m.def("topk", &topk<int32_t>, py::arg("queries").noconvert(), py::arg("vectors").noconvert(),
          py::arg("k"), py::arg("exclude_indptr").noconvert(),
          py::arg("exclude_indices").noconvert(), py::arg("out_scores").noconvert(),
          py::arg("out_indices").noconvert(), py::arg("num_threads") = 0,
          py::arg("query_block") = 0, py::arg("label_block") = 0);
    m.def("topk", &topk<int64_t>, py::arg("queries").noconvert(), py::arg("vectors").noconvert(),
          py::arg("k"), py::arg("exclude_indptr").noconvert(),
          py::arg("exclude_indices").noconvert(), py::arg("out_scores").noconvert(),
          py::arg("out_indices").noconvert(), py::arg("num_threads") = 0,
          py::arg("query_block") = 0, py::arg("label_block") = 0);
    m.def("topk_clustered", &topk_clustered_py<int32_t>, py::arg("queries").noconvert(),
          py::arg("vectors").noconvert(), py::arg("sorted").noconvert(),
          py::arg("ids").noconvert(), py::arg("delta").noconvert(), py::arg("offsets").noconvert(),
          py::arg("centres").noconvert(), py::arg("k"), py::arg("exclude_indptr").noconvert(),
          py::arg("exclude_indices").noconvert(), py::arg("out_scores").noconvert(),
          py::arg("out_indices").noconvert(), py::arg("num_threads") = 0,
          py::arg("query_block") = 0, py::arg("label_block") = 0);
    m.def("topk_clustered", &topk_clustered_py<int64_t>, py::arg("queries").noconvert(),
          py::arg("vectors").noconvert(), py::arg("sorted").noconvert(),
          py::arg("ids").noconvert(), py::arg("delta").noconvert(), py::arg("offsets").noconvert(),
          py::arg("centres").noconvert(), py::arg("k"), py::arg("exclude_indptr").noconvert(),
          py::arg("exclude_indices").noconvert(), py::arg("out_scores").noconvert(),
          py::arg("out_indices").noconvert(), py::arg("num_threads") = 0,
          py::arg("query_block") = 0, py::arg("label_block") = 0);
    m.def("_exact_dot", &exact_dot_py, py::arg("a").noconvert(), py::arg("b").noconvert(),
          py::arg("version"));
    m.def("threshold", &threshold, py::arg("queries").noconvert(), py::arg("vectors").noconvert(),
          py::arg("min_score"), py::arg("num_threads") = 0, py::arg("query_block") = 0,
          py::arg("label_block") = 0);
}
