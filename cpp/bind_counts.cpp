// Bindings of the counting kernels: co-occurrence counts (cooccurrence.hpp), their sum
// over shards (sum_counts) and PMI (pmi.hpp).
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

#include "bind_common.hpp"
#include "labelemb/common.hpp"
#include "labelemb/cooccurrence.hpp"
#include "labelemb/csr.hpp"
#include "labelemb/pmi.hpp"

using namespace labelemb;

namespace {

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

}  // namespace

void bind_counts(py::module_& m) {
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
}
