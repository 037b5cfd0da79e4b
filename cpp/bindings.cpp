// The only file that knows pybind11: it checks arrays, releases the GIL, and calls the
// kernels in include/labelemb/. Arrays arrive already converted by the Python layer
// (dtype and C order); arguments are marked noconvert so nothing is copied silently.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "labelemb/blas.hpp"
#include "labelemb/common.hpp"
#include "labelemb/cooccurrence.hpp"
#include "labelemb/csr.hpp"
#include "labelemb/eigh.hpp"
#include "labelemb/pmi.hpp"
#include "labelemb/topk.hpp"

namespace py = pybind11;
using namespace labelemb;

#include <csignal>

// While a kernel runs with the GIL released, Python cannot see Ctrl-C. On the main
// thread, this guard routes SIGINT to labelemb::interrupt_flag() (kernels poll it) and
// restores the previous handler after; the Interrupted exception a kernel then throws
// becomes KeyboardInterrupt (see the translator in PYBIND11_MODULE). A Ctrl-C that came
// after the kernel's last poll is handed to Python (PyErr_SetInterrupt), not lost. Calls
// on other threads leave the flag alone. Create it holding the GIL, before releasing it.
class SigintGuard {
public:
    SigintGuard() {
        if (PyGILState_Check() && PyThread_get_thread_ident() == main_thread_ident()) {
            interrupt_flag().store(false);
            struct sigaction sa {};
            sa.sa_handler = [](int) { interrupt_flag().store(true); };
            sigemptyset(&sa.sa_mask);
            installed_ = sigaction(SIGINT, &sa, &old_) == 0;
            if (installed_ && old_.sa_handler == SIG_IGN) {  // a program that ignores Ctrl-C
                sigaction(SIGINT, &old_, nullptr);
                installed_ = false;
            }
        }
    }
    ~SigintGuard() {
        if (!installed_) return;
        sigaction(SIGINT, &old_, nullptr);
        if (interrupt_flag().exchange(false)) PyErr_SetInterrupt();
    }
    SigintGuard(const SigintGuard&) = delete;
    SigintGuard& operator=(const SigintGuard&) = delete;

    static unsigned long& main_thread_ident() {
        static unsigned long ident = 0;
        return ident;
    }

private:
    struct sigaction old_ {};
    bool installed_ = false;
};

template <class T>
using carray = py::array_t<T, py::array::c_style>;

namespace {

template <class T>
const T* cptr(const carray<T>& a) {
    return a.data();
}

template <class T>
T* mptr(carray<T>& a) {
    return a.mutable_data();
}

int64_t alen(const py::array& a) { return a.ndim() == 0 ? 1 : static_cast<int64_t>(a.shape(0)); }

void require_1d(const py::array& a, const char* name) {
    LABELEMB_CHECK(a.ndim() == 1, name << " must be 1-D, got " << a.ndim() << " dimensions");
}

// ---------------------------------------------------------------- BLAS registry
void set_blas(const py::dict& ptrs) {
    auto& t = blas_table();
    auto get = [&](const char* key) -> void* {
        if (!ptrs.contains(key)) return nullptr;
        return reinterpret_cast<void*>(ptrs[key].cast<uintptr_t>());
    };
    t.sgemm = reinterpret_cast<sgemm_t>(get("sgemm"));
    t.dgemm = reinterpret_cast<dgemm_t>(get("dgemm"));
    t.dsyrk = reinterpret_cast<dsyrk_t>(get("dsyrk"));
    t.dtrsm = reinterpret_cast<dtrsm_t>(get("dtrsm"));
    t.dgeqrf = reinterpret_cast<dgeqrf_t>(get("dgeqrf"));
    t.dorgqr = reinterpret_cast<dorgqr_t>(get("dorgqr"));
    t.dsyevd = reinterpret_cast<dsyevd_t>(get("dsyevd"));
    t.dpotrf = reinterpret_cast<dpotrf_t>(get("dpotrf"));
    t.set_threads_local = reinterpret_cast<set_threads_local_t>(get("set_threads_local"));
    t.set_threads = reinterpret_cast<set_threads_t>(get("set_threads"));
    t.get_threads = reinterpret_cast<get_threads_t>(get("get_threads"));
}

py::dict config() {
    py::dict d;
#ifdef LABELEMB_COMPILER
    d["compiler"] = std::string(LABELEMB_COMPILER);
#else
    d["compiler"] = std::string("unknown");
#endif
    d["openmp"] = openmp_enabled();
    d["max_threads"] = max_threads();
    d["thread_limit"] = thread_limit();
    auto& t = blas_table();
    d["blas_registered"] = t.sgemm != nullptr;
    d["blas_thread_control"] = t.set_threads_local != nullptr;
    return d;
}

// ---------------------------------------------------------------- co-occurrence
template <class I, class S>
py::tuple cooccurrence_impl(const int64_t* indptr, const I* indices, int64_t n, int64_t L,
                            int nt) {
    std::vector<int64_t> col_ptr(static_cast<size_t>(L) + 1);
    std::vector<S> col_ends(static_cast<size_t>(indptr[n]));
    carray<int64_t> up_indptr(L + 1);
    int64_t* up = mptr(up_indptr);
    {
        py::gil_scoped_release release;
        build_columns<I, S>(n, L, indptr, indices, col_ptr.data(), col_ends.data(), nt);
        cooccurrence_row_sizes<I, S>(L, indices, col_ptr.data(), col_ends.data(), up + 1, nt);
        up[0] = 0;
        for (int64_t i = 0; i < L; ++i) up[i + 1] += up[i];
    }
    int64_t pairs = up[L];
    carray<int64_t> up_counts(pairs);
    carray<int64_t> label_counts(L);
    int64_t* lc = mptr(label_counts);
    for (int64_t l = 0; l < L; ++l) lc[l] = col_ptr[l + 1] - col_ptr[l];
    auto fill = [&](auto& out_indices) {
        using J = typename std::remove_reference_t<decltype(out_indices)>::value_type;
        J* oi = mptr(out_indices);
        int64_t* oc = mptr(up_counts);
        py::gil_scoped_release release;
        cooccurrence_fill<I, S, J>(L, indices, col_ptr.data(), col_ends.data(), up, oi, oc, nt);
    };
    if (L <= std::numeric_limits<int32_t>::max()) {
        carray<int32_t> out_indices(pairs);
        fill(out_indices);
        return py::make_tuple(label_counts, up_indptr, out_indices, up_counts);
    }
    carray<int64_t> out_indices(pairs);
    fill(out_indices);
    return py::make_tuple(label_counts, up_indptr, out_indices, up_counts);
}

template <class I>
py::tuple cooccurrence(const carray<int64_t>& indptr, const carray<I>& indices, int64_t n_labels,
                       int num_threads) {
    require_1d(indptr, "indptr");
    require_1d(indices, "indices");
    LABELEMB_CHECK(alen(indptr) >= 1, "indptr must have at least one entry");
    LABELEMB_CHECK(n_labels >= 0 && n_labels < std::numeric_limits<int64_t>::max(),
                   "n_labels must be >= 0 (and below 2^63 - 1), got " << n_labels);
    int64_t n = alen(indptr) - 1;
    int nt = resolve_threads(num_threads);
    SigintGuard sigint;
    const int64_t* ip = cptr(indptr);
    const I* ix = cptr(indices);
    bool canonical;
    {
        py::gil_scoped_release release;
        check_csr("labels", n, ip, alen(indices), ix, n_labels, nt);
        canonical = rows_canonical(n, ip, ix, nt);
    }
    std::vector<int64_t> c_indptr;
    std::vector<I> c_indices;
    if (!canonical) {
        c_indptr.resize(static_cast<size_t>(n) + 1);
        c_indices.resize(static_cast<size_t>(ip[n]));
        py::gil_scoped_release release;
        canonicalize_rows(n, ip, ix, c_indptr.data(), c_indices.data(), nt);
        ip = c_indptr.data();
        ix = c_indices.data();
    }
    // Column entries hold row end offsets: 32 bits while the input has < 2^32 entries.
    if (ip[n] <= static_cast<int64_t>(std::numeric_limits<uint32_t>::max()))
        return cooccurrence_impl<I, uint32_t>(ip, ix, n, n_labels, nt);
    return cooccurrence_impl<I, int64_t>(ip, ix, n, n_labels, nt);
}

// Sum of count matrices over one label space (shards, chunks, Dask partials).
template <class J>
py::tuple sum_counts(const std::vector<carray<int64_t>>& indptrs,
                     const std::vector<carray<J>>& indices, const std::vector<carray<int64_t>>& data,
                     int64_t n_labels, int num_threads) {
    LABELEMB_CHECK(!indptrs.empty(), "no count matrices to sum");
    LABELEMB_CHECK(n_labels >= 0 && n_labels < std::numeric_limits<int64_t>::max(),
                   "n_labels must be in [0, 2^63 - 1), got " << n_labels);
    LABELEMB_CHECK(indptrs.size() == indices.size() && indices.size() == data.size(),
                   "indptrs, indices and data differ in length");
    int nt = resolve_threads(num_threads);
    std::vector<CsrView<J>> parts;
    for (size_t k = 0; k < indptrs.size(); ++k) {
        require_1d(indptrs[k], "indptr");
        LABELEMB_CHECK(alen(indptrs[k]) == n_labels + 1, "every indptr must have n_labels + 1 entries");
        LABELEMB_CHECK(alen(indices[k]) == alen(data[k]), "indices and data differ in length");
        {
            py::gil_scoped_release release;
            check_csr("counts", n_labels, cptr(indptrs[k]), alen(indices[k]), cptr(indices[k]),
                      n_labels, nt);
        }
        parts.push_back({cptr(indptrs[k]), cptr(indices[k]), cptr(data[k])});
    }
    carray<int64_t> out_indptr(n_labels + 1);
    int64_t* op = mptr(out_indptr);
    {
        py::gil_scoped_release release;
        sum_rows_sizes<J>(n_labels, parts, op + 1, nt);
        op[0] = 0;
        for (int64_t i = 0; i < n_labels; ++i) op[i + 1] += op[i];
    }
    carray<J> out_indices(op[n_labels]);
    carray<int64_t> out_data(op[n_labels]);
    J* oi = mptr(out_indices);
    int64_t* od = mptr(out_data);
    {
        py::gil_scoped_release release;
        sum_rows_fill<J>(n_labels, parts, op, oi, od, nt);
    }
    return py::make_tuple(out_indptr, out_indices, out_data);
}

// ---------------------------------------------------------------- PMI
template <class J>
py::tuple pmi(const carray<int64_t>& up_indptr, const carray<J>& up_indices,
              const carray<int64_t>& up_counts, const carray<double>& h,
              const std::optional<carray<double>>& diag, double log_n, double shift,
              int64_t min_count, bool positive, int num_threads) {
    require_1d(up_indptr, "indptr");
    int64_t L = alen(up_indptr) - 1;
    LABELEMB_CHECK(L >= 0, "indptr must have at least one entry");
    LABELEMB_CHECK(alen(up_indices) == alen(up_counts), "indices and counts differ in length");
    LABELEMB_CHECK(alen(h) == L, "h must have one entry per label");
    LABELEMB_CHECK(!diag || alen(*diag) == L, "diag must have one entry per label");
    int nt = resolve_threads(num_threads);
    SigintGuard sigint;
    const int64_t* ip = cptr(up_indptr);
    const J* ix = cptr(up_indices);
    PmiParams prm;
    prm.log_n = log_n;
    prm.shift = shift;
    prm.min_count = min_count;
    prm.positive = positive;
    const double* dg = diag ? cptr(*diag) : nullptr;
    std::vector<float> values(static_cast<size_t>(alen(up_indices)));
    carray<int64_t> out_indptr(L + 1);
    int64_t* op = mptr(out_indptr);
    {
        py::gil_scoped_release release;
        check_csr("counts", L, ip, alen(up_indices), ix, L, nt);
        pmi_sizes<J>(L, ip, ix, cptr(up_counts), cptr(h), dg, prm, values.data(), op + 1, nt);
        op[0] = 0;
        for (int64_t i = 0; i < L; ++i) op[i + 1] += op[i];
    }
    carray<J> out_indices(op[L]);
    carray<float> out_data(op[L]);
    J* oi = mptr(out_indices);
    float* od = mptr(out_data);
    {
        py::gil_scoped_release release;
        pmi_fill<J>(L, ip, ix, values.data(), dg, op, oi, od, nt);
    }
    return py::make_tuple(out_indptr, out_indices, out_data);
}

// ---------------------------------------------------------------- top-k and threshold
void require_2d(const py::array& a, const char* name) {
    LABELEMB_CHECK(a.ndim() == 2, name << " must be 2-D, got " << a.ndim() << " dimensions");
}

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

// ---------------------------------------------------------------- randomized eigh (eigh.hpp)
EighParams eigh_params(int64_t n, int64_t k, int64_t oversample, int n_iter,
                       bool largest_algebraic, uint64_t seed) {
    LABELEMB_CHECK(n >= 2 && n <= std::numeric_limits<int>::max(),
                   "A must have between 2 and 2^31 - 1 rows, got " << n);
    LABELEMB_CHECK(k >= 1 && k < n, "k must be in [1, " << n - 1 << "], got " << k);
    LABELEMB_CHECK(oversample >= 0, "oversample must be >= 0, got " << oversample);
    LABELEMB_CHECK(n_iter >= 0 && n_iter <= 10000, "n_iter must be in [0, 10000], got " << n_iter);
    EighParams prm;
    prm.k = k;
    prm.l = std::min(n, k + std::min(oversample, n));  // no overflow for a huge oversample
    prm.n_iter = n_iter;
    prm.largest_algebraic = largest_algebraic;
    prm.seed = seed;
    return prm;
}

void check_eigh_outputs(const carray<double>& values, const carray<float>& vectors, int64_t n,
                        int64_t k) {
    require_1d(values, "out_values");
    LABELEMB_CHECK(alen(values) == k, "out_values must have " << k << " entries");
    LABELEMB_CHECK(vectors.ndim() == 2 && vectors.shape(0) == n && vectors.shape(1) == k,
                   "out_vectors must have shape (" << n << ", " << k << ")");
}

py::dict eigh_stats(const EighStats& s) {
    py::dict d;
    d["products"] = s.products;
    d["householder"] = s.householder;
    d["exact"] = s.exact;
    return d;
}

template <class I>
py::dict eigh_csr(const carray<int64_t>& indptr, const carray<I>& indices,
                  const carray<float>& data, int64_t k, int64_t oversample, int n_iter,
                  bool largest_algebraic, uint64_t seed, carray<double>& out_values,
                  carray<float>& out_vectors, int num_threads) {
    require_1d(indptr, "indptr");
    require_1d(indices, "indices");
    require_1d(data, "data");
    LABELEMB_CHECK(alen(indptr) >= 1, "indptr must have at least one entry");
    LABELEMB_CHECK(alen(indices) == alen(data), "indices and data differ in length");
    const int64_t n = alen(indptr) - 1;
    EighParams prm = eigh_params(n, k, oversample, n_iter, largest_algebraic, seed);
    check_eigh_outputs(out_values, out_vectors, n, k);
    const int nt = resolve_threads(num_threads);
    double* ov = mptr(out_values);
    float* ovec = mptr(out_vectors);
    EighStats stats;
    SigintGuard sigint;
    {
        py::gil_scoped_release release;
        check_csr("A", n, cptr(indptr), alen(indices), cptr(indices), n, nt);
        CsrF32<I> A(n, n, cptr(indptr), cptr(indices), cptr(data), nt);
        randomized_eigh_csr(A, prm, ov, ovec, nt, &stats);
    }
    return eigh_stats(stats);
}

template <class T>
py::dict eigh_dense(const carray<T>& a, int64_t k, int64_t oversample, int n_iter,
                    bool largest_algebraic, uint64_t seed, carray<double>& out_values,
                    carray<float>& out_vectors, int num_threads) {
    require_2d(a, "A");
    const int64_t n = a.shape(0);
    LABELEMB_CHECK(a.shape(1) == n, "A must be square, got " << n << " x " << a.shape(1));
    EighParams prm = eigh_params(n, k, oversample, n_iter, largest_algebraic, seed);
    check_eigh_outputs(out_values, out_vectors, n, k);
    const int nt = resolve_threads(num_threads);
    const T* ap = cptr(a);
    double* ov = mptr(out_values);
    float* ovec = mptr(out_vectors);
    EighStats stats;
    SigintGuard sigint;
    {
        py::gil_scoped_release release;
        randomized_eigh_dense<T>(ap, n, prm, ov, ovec, nt, &stats);
    }
    return eigh_stats(stats);
}

// (max |a_ij - a_ji|, max |a_ij|) of a square CSR matrix with sorted rows.
template <class I>
py::tuple csr_asymmetry_py(const carray<int64_t>& indptr, const carray<I>& indices,
                           const carray<float>& data, int num_threads) {
    require_1d(indptr, "indptr");
    require_1d(indices, "indices");
    require_1d(data, "data");
    LABELEMB_CHECK(alen(indptr) >= 1, "indptr must have at least one entry");
    LABELEMB_CHECK(alen(indices) == alen(data), "indices and data differ in length");
    const int64_t n = alen(indptr) - 1;
    const int nt = resolve_threads(num_threads);
    double asym = 0.0, biggest = 0.0;
    bool sorted = true;
    {
        py::gil_scoped_release release;
        check_csr("A", n, cptr(indptr), alen(indices), cptr(indices), n, nt);
        asym = csr_asymmetry(n, cptr(indptr), cptr(indices), cptr(data), &biggest, &sorted, nt);
    }
    LABELEMB_CHECK(sorted, "A: the column indices of each row must be sorted and unique");
    return py::make_tuple(asym, biggest);
}

// Y^T (w x n_rows) = (A X)^T for X^T (w x n_cols): the sparse block product alone.
template <class I>
void csr_spmm_py(const carray<int64_t>& indptr, const carray<I>& indices, const carray<float>& data,
                 int64_t n_cols, const carray<double>& xt, carray<double>& yt, int num_threads) {
    require_1d(indptr, "indptr");
    require_1d(indices, "indices");
    require_1d(data, "data");
    require_2d(xt, "xt");
    require_2d(yt, "yt");
    LABELEMB_CHECK(alen(indptr) >= 1, "indptr must have at least one entry");
    LABELEMB_CHECK(alen(indices) == alen(data), "indices and data differ in length");
    LABELEMB_CHECK(n_cols >= 0, "n_cols must be >= 0");
    const int64_t n = alen(indptr) - 1, w = xt.shape(0);
    LABELEMB_CHECK(xt.shape(1) == n_cols, "xt must have shape (w, " << n_cols << ")");
    LABELEMB_CHECK(yt.shape(0) == w && yt.shape(1) == n, "yt must have shape (" << w << ", " << n
                                                                               << ")");
    const int nt = resolve_threads(num_threads);
    const double* x = cptr(xt);
    double* y = mptr(yt);
    SigintGuard sigint;
    py::gil_scoped_release release;
    check_csr("A", n, cptr(indptr), alen(indices), cptr(indices), n_cols, nt);
    CsrF32<I> A(n, n_cols, cptr(indptr), cptr(indices), cptr(data), nt);
    std::vector<float> panels;
    spmm(A, x, n_cols, w, y, n, panels, nt);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "labelemb native kernels (internal; use the labelemb package API)";
    SigintGuard::main_thread_ident() = PyThread_get_thread_ident();
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const Interrupted&) {
            // Let Python's own SIGINT handler run (it raises KeyboardInterrupt, or does
            // what the program installed instead).
            PyErr_SetInterrupt();
            if (PyErr_CheckSignals() == 0) PyErr_SetNone(PyExc_KeyboardInterrupt);
        }
    });
    m.def("_set_blas", &set_blas, py::arg("pointers"));
    m.def("config", &config);
    m.def("thread_limit", &thread_limit,
          "The largest num_threads a kernel accepts (4 x the cores, at least 64).");

    m.def("cooccurrence", &cooccurrence<int32_t>, py::arg("indptr").noconvert(),
          py::arg("indices").noconvert(), py::arg("n_labels"), py::arg("num_threads") = 0);
    m.def("cooccurrence", &cooccurrence<int64_t>, py::arg("indptr").noconvert(),
          py::arg("indices").noconvert(), py::arg("n_labels"), py::arg("num_threads") = 0);

    m.def("pmi", &pmi<int32_t>, py::arg("indptr").noconvert(), py::arg("indices").noconvert(),
          py::arg("counts").noconvert(), py::arg("h").noconvert(), py::arg("diag").noconvert(),
          py::arg("log_n"), py::arg("shift"), py::arg("min_count"), py::arg("positive"),
          py::arg("num_threads") = 0);
    m.def("pmi", &pmi<int64_t>, py::arg("indptr").noconvert(), py::arg("indices").noconvert(),
          py::arg("counts").noconvert(), py::arg("h").noconvert(), py::arg("diag").noconvert(),
          py::arg("log_n"), py::arg("shift"), py::arg("min_count"), py::arg("positive"),
          py::arg("num_threads") = 0);

    m.def("sum_counts", &sum_counts<int32_t>, py::arg("indptrs"), py::arg("indices"),
          py::arg("data"), py::arg("n_labels"), py::arg("num_threads") = 0);
    m.def("sum_counts", &sum_counts<int64_t>, py::arg("indptrs"), py::arg("indices"),
          py::arg("data"), py::arg("n_labels"), py::arg("num_threads") = 0);

    // -- further kernels register below (one block per header) --

    // eigh.hpp, spmm.hpp
    m.def("eigh_csr", &eigh_csr<int32_t>, py::arg("indptr").noconvert(),
          py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("k"),
          py::arg("oversample"), py::arg("n_iter"), py::arg("largest_algebraic"), py::arg("seed"),
          py::arg("out_values").noconvert(), py::arg("out_vectors").noconvert(),
          py::arg("num_threads") = 0);
    m.def("eigh_csr", &eigh_csr<int64_t>, py::arg("indptr").noconvert(),
          py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("k"),
          py::arg("oversample"), py::arg("n_iter"), py::arg("largest_algebraic"), py::arg("seed"),
          py::arg("out_values").noconvert(), py::arg("out_vectors").noconvert(),
          py::arg("num_threads") = 0);
    m.def("eigh_dense", &eigh_dense<float>, py::arg("a").noconvert(), py::arg("k"),
          py::arg("oversample"), py::arg("n_iter"), py::arg("largest_algebraic"), py::arg("seed"),
          py::arg("out_values").noconvert(), py::arg("out_vectors").noconvert(),
          py::arg("num_threads") = 0);
    m.def("eigh_dense", &eigh_dense<double>, py::arg("a").noconvert(), py::arg("k"),
          py::arg("oversample"), py::arg("n_iter"), py::arg("largest_algebraic"), py::arg("seed"),
          py::arg("out_values").noconvert(), py::arg("out_vectors").noconvert(),
          py::arg("num_threads") = 0);
    m.def("csr_asymmetry", &csr_asymmetry_py<int32_t>, py::arg("indptr").noconvert(),
          py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("num_threads") = 0);
    m.def("csr_asymmetry", &csr_asymmetry_py<int64_t>, py::arg("indptr").noconvert(),
          py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("num_threads") = 0);
    m.def("csr_spmm", &csr_spmm_py<int32_t>, py::arg("indptr").noconvert(),
          py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("n_cols"),
          py::arg("xt").noconvert(), py::arg("yt").noconvert(), py::arg("num_threads") = 0);
    m.def("csr_spmm", &csr_spmm_py<int64_t>, py::arg("indptr").noconvert(),
          py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("n_cols"),
          py::arg("xt").noconvert(), py::arg("yt").noconvert(), py::arg("num_threads") = 0);

    // topk.hpp
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
