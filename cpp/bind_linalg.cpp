// Bindings of the linear algebra: the randomized eigendecomposition (eigh.hpp), sparse
// or dense, and the CSR helpers behind it (spmm.hpp: csr_asymmetry, csr_spmm).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "bind_common.hpp"
#include "labelemb/common.hpp"
#include "labelemb/csr.hpp"
#include "labelemb/eigh.hpp"
#include "labelemb/spmm.hpp"

using namespace labelemb;

namespace {

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

void bind_linalg(py::module_& m) {
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
}
