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
#include "labelemb/pmi.hpp"

namespace py = pybind11;
using namespace labelemb;

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
    LABELEMB_CHECK(n_labels >= 0, "n_labels must be >= 0, got " << n_labels);
    int64_t n = alen(indptr) - 1;
    int nt = resolve_threads(num_threads);
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

PYBIND11_MODULE(_core, m) {
    m.doc() = "labelemb native kernels (internal; use the labelemb package API)";
    m.def("_set_blas", &set_blas, py::arg("pointers"));
    m.def("config", &config);

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

    // -- further kernels register below (one block per header) --
}
