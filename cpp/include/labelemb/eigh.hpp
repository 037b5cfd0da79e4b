// Truncated eigendecomposition of a symmetric matrix by randomized range finding
// (Halko, Martinsson and Tropp 2011, algorithms 4.3 and 5.5), specialised to symmetric A,
// with a block Krylov extraction (Musco and Musco 2015).
//
//   Y = A Omega                      Omega: n x l random, l = k + oversample
//   repeat n_iter - 1 times: Q = orth(Y), Y = A Q   (one product per iteration: A = A^T)
//   Q_0 = orth(Y)
//   Q_1 = orth((I - P_0) A Q_0)      block Lanczos with full reorthogonalisation: K spans
//   Q_2 = orth((I - P_1) A Q_1)      (Q, A Q, A^2 Q), 3 l columns (P_j: projector onto
//   K = [Q_0 Q_1 Q_2], B = K^T A K   Q_0 .. Q_j); Rayleigh-Ritz on K.
//   (w, W) = eig(B), U = K W, keep k pairs
//
// n_iter + 3 products with A in all. For the same number of products, the Rayleigh-Ritz
// step on the last three Krylov blocks is markedly more accurate than on the last block
// alone: on label PMI matrices it beats scikit-learn's randomized_svd, which takes
// 2 n_iter + 2 products (A and A^T per iteration), at the same n_iter and oversampling.
//
// Block products go through `apply` (sparse: spmm.hpp, in float32; dense: sgemm/dgemm).
// Everything else is float64 LAPACK/BLAS: orthonormalisation by Cholesky QR (dsyrk,
// dpotrf, dtrsm: BLAS-3, faster than Householder on tall-skinny blocks), one pass between
// power iterations (orthogonality to about u cond^2 is enough there) and, for the blocks
// of K, a second pass when the block's condition number (estimated from R) is above 100;
// Householder QR (dgeqrf, dorgqr) when a block is rank deficient or too ill-conditioned
// for Cholesky QR. The projected problem B (3l x 3l) is solved by dsyevd. Dense BLAS runs
// single-threaded on fixed row blocks of the tall n x l blocks inside OpenMP regions,
// partial sums reduced in block order: the results do not depend on the number of
// threads.
//
// Power iteration amplifies by magnitude: with `largest_algebraic` ("LA") the basis still
// follows the eigenvalues largest in |lambda|, and the k largest algebraic Ritz pairs are
// kept among them. When A has negative eigenvalues of large magnitude they take slots of
// the basis; oversampling makes up for them.
//
// Work: (n_iter + 3) products with an n x l block, plus O(n l^2) flops of dense algebra
// (about 40 n l^2). Memory: 2 blocks of n x 3l doubles, plus O(l^2). When 3 l >= n the
// problem is solved exactly instead (B = A, n x n).
// The random block depends only on (seed, n, l), never on the number of threads.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "blas.hpp"
#include "common.hpp"
#include "spmm.hpp"

namespace labelemb {

struct EighParams {
    int64_t k = 1;                  // eigenpairs returned
    int64_t l = 1;                  // block size: k + oversample, at most n
    int n_iter = 4;                 // products: n_iter + 3 in all
    int64_t blocks = 3;             // Krylov blocks of the Rayleigh-Ritz basis
    bool largest_algebraic = true;  // "LA"; false: largest magnitude ("LM")
    uint64_t seed = 0;
};

struct EighStats {
    int products = 0;     // block products with A
    int householder = 0;  // orthonormalisations done by Householder QR (fallback)
    bool exact = false;   // solved densely (the Krylov basis would have n columns or more)
};

namespace eigh_detail {

// Below this many entries in the n x l block, the whole call runs on the calling thread.
constexpr int64_t kSmallWork = int64_t(1) << 16;
// One Cholesky QR pass leaves a block of (1-norm) condition number below this orthonormal
// to about 1e-16 * cond^2 <= 1e-12: no second pass.
constexpr double kOnePassCond = 100.0;
// Dense steps with fewer multiply-adds than this run on the calling thread.
constexpr int64_t kParallelWork = int64_t(1) << 23;

inline int to_int(int64_t x) {
    LABELEMB_CHECK(x >= 0 && x <= INT_MAX, "dimension " << x << " does not fit BLAS's int");
    return static_cast<int>(x);
}

inline uint64_t splitmix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// The random test block: entries uniform in [-1, 1) (as fbpca does; any sub-Gaussian
// distribution serves the range finder, and this one costs a hash per two entries instead
// of a log and a sine), column-major n x l; entry m (= j n + i) depends only on (seed, m).
inline void random_block(int64_t n, int64_t l, uint64_t seed, double* X, int nt) {
    const uint64_t key = splitmix64(seed + 0x9E3779B97F4A7C15ULL);
    const int64_t total = n * l;
    const int64_t pairs = (total + 1) / 2;
    (void)nt;  // unused without OpenMP
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t m = 0; m < pairs; ++m) {
        const uint64_t h = splitmix64(key + static_cast<uint64_t>(m + 1) * 0x9E3779B97F4A7C15ULL);
        X[2 * m] = static_cast<double>(static_cast<uint32_t>(h)) * 0x1.0p-31 - 1.0;
        if (2 * m + 1 < total) X[2 * m + 1] = static_cast<double>(h >> 32) * 0x1.0p-31 - 1.0;
    }
}

inline void gemm(char ta, char tb, int64_t m, int64_t n, int64_t k, double alpha, const double* A,
                 int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
    if (m == 0 || n == 0) return;
    const int M = to_int(m), N = to_int(n), K = to_int(k);
    const int LDA = to_int(lda), LDB = to_int(ldb), LDC = to_int(ldc);
    blas().dgemm(&ta, &tb, &M, &N, &K, &alpha, A, &LDA, B, &LDB, &beta, C, &LDC);
}

// Fixed row blocks for the dense algebra on tall-skinny n x w blocks. Each block is handed
// to single-threaded BLAS inside an OpenMP region (so no BLAS thread pool competes with the
// OpenMP threads of the sparse products), and partial sums are reduced in block order, so
// the results do not depend on the number of threads. Blocks of at least 1024 rows, at
// most 64 of them, and partial sums (count x 3 l^2 doubles at most) within a quarter of
// the two n x 3l working blocks.
struct Blocks {
    int64_t n = 0, size = 1, count = 0;
    Blocks(int64_t rows, int64_t l) : n(rows) {
        count = std::min<int64_t>({(rows + 1023) / 1024, 64, rows / (2 * std::max<int64_t>(l, 1))});
        count = std::max<int64_t>(count, 1);
        size = (rows + count - 1) / count;
        count = (rows + size - 1) / size;
    }
    int64_t begin(int64_t b) const { return b * size; }
    int64_t end(int64_t b) const { return std::min(n, (b + 1) * size); }
};

// f(block, first row, rows) for every block; in parallel when the step is worth it (`work`:
// its multiply-adds), since a parallel region costs a barrier, and a barrier on a busy
// machine can cost a scheduler time slice.
// Ctrl-C (labelemb::interrupted) skips the remaining blocks and throws Interrupted.
template <class F>
void for_blocks(const Blocks& bl, int nt, int64_t work, F&& f) {
    if (bl.count == 1 || nt == 1 || work < kParallelWork) {
        for (int64_t b = 0; b < bl.count; ++b) {
            check_interrupt();
            f(b, bl.begin(b), bl.end(b) - bl.begin(b));
        }
        return;
    }
    ExceptionGuard guard;
#pragma omp parallel num_threads(nt)
    {
        BlasSingleThreaded single;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < bl.count; ++b) {
            if (interrupted()) continue;
            guard.run([&] { f(b, bl.begin(b), bl.end(b) - bl.begin(b)); });
        }
    }
    guard.rethrow();
    check_interrupt();
}

// out (wa x wb, column-major) = A^T B for n x wa and n x wb blocks (leading dimension n).
// With `upper`, A == B and only the upper triangle of out is computed (dsyrk).
inline void inner(const Blocks& bl, int nt, int64_t wa, const double* A, int64_t wb,
                  const double* B, double* out, bool upper) {
    const int64_t n = bl.n, cell = wa * wb;
    std::vector<double> part(static_cast<size_t>(bl.count * cell));
    for_blocks(bl, nt, n * cell, [&](int64_t b, int64_t r0, int64_t rows) {
        double* pb = part.data() + b * cell;
        const int R = to_int(rows), LD = to_int(n), WA = to_int(wa), WB = to_int(wb);
        const double one = 1.0, zero = 0.0;
        const char up = 'U', tr = 'T', no = 'N';
        if (upper) {
            blas().dsyrk(&up, &tr, &WA, &R, &one, A + r0, &LD, &zero, pb, &WA);
        } else {
            blas().dgemm(&tr, &no, &WA, &WB, &R, &one, A + r0, &LD, B + r0, &LD, &zero, pb, &WA);
        }
    });
    for (int64_t j = 0; j < wb; ++j) {  // O(count wa wb): serial, no barrier
        const int64_t rows = upper ? j + 1 : wa;
        for (int64_t i = 0; i < rows; ++i) {
            double s = 0.0;
            for (int64_t b = 0; b < bl.count; ++b) s += part[b * cell + j * wa + i];
            out[j * wa + i] = s;
        }
    }
}

// Squared norms of the w columns of an n x w block.
inline std::vector<double> col_norms2(const Blocks& bl, int nt, int64_t w, const double* Y) {
    std::vector<double> part(static_cast<size_t>(bl.count * w), 0.0), out(static_cast<size_t>(w));
    for_blocks(bl, nt, bl.n * w, [&](int64_t b, int64_t r0, int64_t rows) {
        for (int64_t j = 0; j < w; ++j) {
            const double* col = Y + j * bl.n + r0;
            double s = 0.0;
            for (int64_t i = 0; i < rows; ++i) s += col[i] * col[i];
            part[b * w + j] = s;
        }
    });
    for (int64_t j = 0; j < w; ++j) {
        double s = 0.0;
        for (int64_t b = 0; b < bl.count; ++b) s += part[b * w + j];
        out[j] = s;
    }
    return out;
}

// In place: Y (n x w, column-major) <- an orthonormal basis of its range (Householder QR,
// single-threaded: only the fallback for rank-deficient blocks, which get orthonormal
// completions).
inline void householder(int64_t m, int64_t w, double* Y, int64_t ldy) {
    const int M = to_int(m), N = to_int(w), LD = to_int(ldy);
    int info = 0, lwork = -1;
    double query = 0.0;
    std::vector<double> tau(static_cast<size_t>(std::max<int64_t>(w, 1)));
    blas().dgeqrf(&M, &N, Y, &LD, tau.data(), &query, &lwork, &info);
    lwork = std::max(1, static_cast<int>(query));
    std::vector<double> work(static_cast<size_t>(lwork));
    blas().dgeqrf(&M, &N, Y, &LD, tau.data(), work.data(), &lwork, &info);
    if (info != 0) throw std::runtime_error("randomized_eigh: dgeqrf failed");
    lwork = -1;
    blas().dorgqr(&M, &N, &N, Y, &LD, tau.data(), &query, &lwork, &info);
    lwork = std::max(1, static_cast<int>(query));
    work.assign(static_cast<size_t>(lwork), 0.0);
    blas().dorgqr(&M, &N, &N, Y, &LD, tau.data(), work.data(), &lwork, &info);
    if (info != 0) throw std::runtime_error("randomized_eigh: dorgqr failed");
}

// 1-norm condition number of the upper-triangular w x w matrix R (leading dimension w):
// ||R||_1 ||R^-1||_1, with R^-1 by a triangular solve (O(w^3 / 3), small next to a pass
// over the n x w block).
inline double triangular_cond1(int64_t w, const double* R) {
    std::vector<double> inv(static_cast<size_t>(w * w), 0.0);
    for (int64_t i = 0; i < w; ++i) inv[i * w + i] = 1.0;
    const char left = 'L', up = 'U', no = 'N';
    const int N = to_int(w);
    const double one = 1.0;
    blas().dtrsm(&left, &up, &no, &no, &N, &N, &one, R, &N, inv.data(), &N);
    double norm_r = 0.0, norm_inv = 0.0;
    for (int64_t j = 0; j < w; ++j) {
        double a = 0.0, b = 0.0;
        for (int64_t i = 0; i <= j; ++i) {
            a += std::fabs(R[j * w + i]);
            b += std::fabs(inv[j * w + i]);
        }
        norm_r = std::max(norm_r, a);
        norm_inv = std::max(norm_inv, b);
    }
    return norm_r * norm_inv;
}

// One Cholesky QR pass, Y <- Y R^-1 where R^T R = Y^T Y, with the columns scaled to unit
// norm first (so the test below is scale free). Returns false, leaving Y untouched, when
// the block is numerically rank deficient: a zero or non-finite column, a failed
// Cholesky, or a column whose part independent of the previous ones is below `tol` of
// its norm (cond(Y) > 1 / tol: Cholesky QR would lose orthogonality). `cond` receives the
// 1-norm condition number of the scaled block: the pass leaves Y orthonormal to about
// u cond^2, so a second pass is needed only when cond is large.
inline bool cholqr(const Blocks& bl, int nt, int64_t w, double* Y, std::vector<double>& G,
                   double* cond) {
    const double tol = 1e-7;
    const int N = to_int(w), LDG = to_int(w);
    G.assign(static_cast<size_t>(w * w), 0.0);
    inner(bl, nt, w, Y, w, Y, G.data(), true);
    std::vector<double> s(static_cast<size_t>(w));
    double biggest = 0.0;
    for (int64_t j = 0; j < w; ++j) {
        const double d = G[j * w + j];
        if (!std::isfinite(d)) return false;
        biggest = std::max(biggest, d);
    }
    for (int64_t j = 0; j < w; ++j) {
        const double d = G[j * w + j];
        if (!(d > 1e-300) || d < biggest * 1e-280) return false;
        s[j] = 1.0 / std::sqrt(d);
    }
    for (int64_t j = 0; j < w; ++j)
        for (int64_t i = 0; i <= j; ++i) G[j * w + i] *= s[i] * s[j];
    int info = 0;
    const char up = 'U';
    blas().dpotrf(&up, &N, G.data(), &LDG, &info);
    if (info != 0) return false;
    for (int64_t j = 0; j < w; ++j)
        if (!(G[j * w + j] > tol)) return false;
    *cond = triangular_cond1(w, G.data());
    // R = R_scaled D^-1 (D = diag(s)): unscale R rather than scale Y (one pass less over Y).
    for (int64_t j = 0; j < w; ++j)
        for (int64_t i = 0; i <= j; ++i) G[j * w + i] /= s[j];
    for_blocks(bl, nt, bl.n * w * w / 2, [&](int64_t, int64_t r0, int64_t rows) {
        const char right = 'R', no = 'N';
        const double one = 1.0;
        const int R = to_int(rows), LD = to_int(bl.n);
        blas().dtrsm(&right, &up, &no, &no, &R, &N, &one, G.data(), &LDG, Y + r0, &LD);
    });
    return true;
}

// Cholesky QR, repeated (up to `passes` times) while the block was too ill-conditioned
// for one pass to reach orthogonality ~1e-12; Householder QR when Cholesky QR fails.
inline void orthonormalize(const Blocks& bl, int nt, int64_t w, double* Y, int passes,
                           std::vector<double>& G, EighStats& stats) {
    for (int p = 0; p < passes; ++p) {
        double cond = 0.0;
        if (!cholqr(bl, nt, w, Y, G, &cond)) {
            householder(bl.n, w, Y, bl.n);
            ++stats.householder;
            return;
        }
        if (cond < kOnePassCond) return;
    }
}

// C (n x w) += alpha A (n x m) M (m x w, column-major, leading dimension m).
inline void update(const Blocks& bl, int nt, int64_t m, int64_t w, double alpha, const double* A,
                   const double* M, double beta, double* C) {
    for_blocks(bl, nt, bl.n * m * w, [&](int64_t, int64_t r0, int64_t rows) {
        gemm('N', 'N', rows, w, m, alpha, A + r0, bl.n, M, m, beta, C + r0, bl.n);
    });
}

// Eigenpairs of the symmetric b x b matrix B (column-major, destroyed): values ascending,
// vectors in B.
inline void syevd(int64_t b, double* B, double* w) {
    const char v = 'V', up = 'U';
    const int N = to_int(b);
    int info = 0, lwork = -1, liwork = -1, iquery = 0;
    double query = 0.0;
    blas().dsyevd(&v, &up, &N, B, &N, w, &query, &lwork, &iquery, &liwork, &info);
    lwork = std::max(1, static_cast<int>(query));
    liwork = std::max(1, iquery);
    std::vector<double> work(static_cast<size_t>(lwork));
    std::vector<int> iwork(static_cast<size_t>(liwork));
    blas().dsyevd(&v, &up, &N, B, &N, w, work.data(), &lwork, iwork.data(), &liwork, &info);
    if (info != 0) throw std::runtime_error("randomized_eigh: dsyevd did not converge");
}

// Indices of the k kept Ritz values (largest algebraic, or largest magnitude), ordered by
// decreasing value.
inline std::vector<int64_t> select(const double* w, int64_t b, int64_t k, bool algebraic) {
    std::vector<int64_t> idx(static_cast<size_t>(b));
    std::iota(idx.begin(), idx.end(), 0);
    if (algebraic) {
        std::stable_sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) { return w[x] > w[y]; });
    } else {
        std::stable_sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) {
            return std::fabs(w[x]) > std::fabs(w[y]);
        });
    }
    idx.resize(static_cast<size_t>(k));
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) { return w[x] > w[y]; });
    return idx;
}

// U (n x k, column-major) -> vectors (n x k, row-major float32), each column's sign fixed
// so that its largest-magnitude entry (the first one on ties) is positive.
inline void store_vectors(int64_t n, int64_t k, const double* U, float* out, int nt) {
    std::vector<double> sign(static_cast<size_t>(k), 1.0);
    for (int64_t j = 0; j < k; ++j) {
        const double* col = U + j * n;
        int64_t best = 0;
        for (int64_t i = 1; i < n; ++i)
            if (std::fabs(col[i]) > std::fabs(col[best])) best = i;
        if (col[best] < 0) sign[j] = -1.0;
    }
    (void)nt;  // unused without OpenMP
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i0 = 0; i0 < n; i0 += 64) {
        const int64_t i1 = std::min(n, i0 + 64);
        for (int64_t j = 0; j < k; ++j)
            for (int64_t i = i0; i < i1; ++i)
                out[i * k + j] = static_cast<float>(sign[j] * U[j * n + i]);
    }
}

inline void symmetrize(int64_t b, double* B, int64_t ld) {
    for (int64_t j = 0; j < b; ++j)
        for (int64_t i = 0; i < j; ++i) {
            const double x = 0.5 * (B[j * ld + i] + B[i * ld + j]);
            B[j * ld + i] = x;
            B[i * ld + j] = x;
        }
}

}  // namespace eigh_detail

namespace eigh_detail {

// Appends the next Krylov block: K[:, m:m+l] <- an orthonormal basis of the part of
// `src` (n x l) orthogonal to K[:, :m] (block Gram-Schmidt, projected a second time when a
// column lost more than 90% of its norm, as cancellation leaves a share of K behind).
// When `src` lies (nearly) inside span(K[:, :m]), rounding noise would be amplified: the
// block is then completed by Householder QR of K[:, :m+l] instead (orthogonal to K[:, :m]
// by construction, K[:, :m] kept as it was). `C` receives K[:, :m]^T src (m x l).
inline void next_block(const Blocks& bl, int nt, int64_t m, int64_t l, double* K,
                       const double* src, std::vector<double>& C, std::vector<double>& G,
                       EighStats& stats) {
    const int64_t n = bl.n;
    double* W = K + n * m;
    C.assign(static_cast<size_t>(m * l), 0.0);
    std::memcpy(W, src, sizeof(double) * n * l);
    inner(bl, nt, m, K, l, W, C.data(), false);
    update(bl, nt, m, l, -1.0, K, C.data(), 1.0, W);
    const std::vector<double> zn = col_norms2(bl, nt, l, src);
    std::vector<double> pn = col_norms2(bl, nt, l, W);
    double zmax = 0.0, ratio = INFINITY;
    for (int64_t j = 0; j < l; ++j) {
        if (!std::isfinite(zn[j])) throw std::invalid_argument("A contains NaN or Inf");
        zmax = std::max(zmax, zn[j]);
        ratio = std::min(ratio, zn[j] > 0 ? pn[j] / zn[j] : 0.0);
    }
    if (ratio < 1e-2) {
        std::vector<double> C2(static_cast<size_t>(m * l));
        inner(bl, nt, m, K, l, W, C2.data(), false);
        update(bl, nt, m, l, -1.0, K, C2.data(), 1.0, W);
        pn = col_norms2(bl, nt, l, W);
    }
    const double pmin = *std::min_element(pn.begin(), pn.end());
    bool ok = pmin > 1e-12 * zmax;
    for (int pass = 0; ok && pass < 2; ++pass) {
        double cond = 0.0;
        ok = cholqr(bl, nt, l, W, G, &cond);
        if (cond < kOnePassCond) break;
    }
    if (!ok) {
        std::vector<double> keep(K, K + n * m);
        householder(n, m + l, K, n);
        std::memcpy(K, keep.data(), sizeof(double) * n * m);
        ++stats.householder;
    }
}

}  // namespace eigh_detail

// The k eigenpairs of the symmetric n x n operator `apply` (apply(X, w, Y): Y = A X for
// column-major n x w blocks, leading dimension n) selected by `prm`; values (k, float64)
// by decreasing eigenvalue, vectors (n x k row-major float32, orthonormal columns).
// Requires 1 <= k <= l <= n.
template <class Apply>
void randomized_eigh(int64_t n, Apply&& apply, const EighParams& prm, double* values,
                     float* vectors, int num_threads, EighStats* stats_out) {
    using namespace eigh_detail;
    const int64_t k = prm.k, l = prm.l;
    // Krylov blocks: at most n_iter + 2, so that the range finder makes at least one product.
    const int64_t nb = std::min<int64_t>(prm.blocks, prm.n_iter + 2);
    // Small blocks are not worth waking threads for (each parallel region costs a barrier).
    const int nt = n * l < kSmallWork ? 1 : resolve_threads(num_threads);
    LABELEMB_CHECK(k >= 1 && k <= l && l <= n, "need 1 <= k <= l <= n, got k=" << k << ", l=" << l
                                                                             << ", n=" << n);
    LABELEMB_CHECK(prm.blocks >= 1 && prm.blocks <= 8, "blocks must be in [1, 8]");
    LABELEMB_CHECK(prm.n_iter >= 0, "n_iter must be >= 0");
    const BlasTable& lib = blas();
    if (!lib.dsyrk || !lib.dtrsm || !lib.dpotrf)
        throw std::runtime_error("labelemb: dsyrk, dtrsm and dpotrf were not registered");
    EighStats stats;
    // Every BLAS/LAPACK call runs single-threaded: the big ones on row blocks inside OpenMP
    // regions, the small ones (l x l) here. OpenBLAS's own threads, spinning between calls,
    // would compete with the OpenMP threads (measured: dsyevd of 544 x 544 took 30x longer
    // on 2 BLAS threads next to the OpenMP team than on one).
    BlasSingleThreaded single;
    std::vector<double> B, w, U;
    std::vector<int64_t> keep;
    if (nb * l >= n) {
        // Small problem: B = A exactly (apply to the identity), dense eigensolver.
        stats.exact = true;
        B.assign(static_cast<size_t>(n * n), 0.0);
        const int64_t chunk = std::min<int64_t>(n, 256);  // identity columns per product
        std::vector<double> I(static_cast<size_t>(n * chunk));
        for (int64_t c0 = 0; c0 < n; c0 += chunk) {
            const int64_t w = std::min(chunk, n - c0);
            std::fill(I.begin(), I.end(), 0.0);
            for (int64_t j = 0; j < w; ++j) I[j * n + c0 + j] = 1.0;
            apply(I.data(), w, B.data() + c0 * n);
            ++stats.products;
            check_interrupt();
        }
        for (double x : B)
            if (!std::isfinite(x)) throw std::invalid_argument("A contains NaN or Inf");
        symmetrize(n, B.data(), n);
        w.assign(static_cast<size_t>(n), 0.0);
        syevd(n, B.data(), w.data());
        keep = select(w.data(), n, k, prm.largest_algebraic);
        U.assign(static_cast<size_t>(n * k), 0.0);
        for (int64_t j = 0; j < k; ++j)
            std::memcpy(U.data() + j * n, B.data() + keep[j] * n, sizeof(double) * n);
    } else {
        const int64_t b = nb * l;  // columns of the Krylov basis K
        const Blocks bl(n, l);
        std::vector<double> buf1(static_cast<size_t>(n * b)), buf2(static_cast<size_t>(n * b));
        std::vector<double> G;
        double* cur = buf1.data();
        double* nxt = buf2.data();
        // Range finder: Q = orth(A^(n_iter + 3 - nb) Omega).
        random_block(n, l, prm.seed, cur, nt);
        const int powers = prm.n_iter + 3 - static_cast<int>(nb);
        for (int it = 0; it < powers; ++it) {
            apply(cur, l, nxt);
            ++stats.products;
            check_interrupt();  // between products, whatever `apply` polls itself
            orthonormalize(bl, nt, l, nxt, it + 1 == powers ? 2 : 1, G, stats);
            std::swap(cur, nxt);
        }
        // Block Lanczos with full reorthogonalisation: K = [Q_0 .. Q_nb-1] spans
        // (Q, A Q, .., A^(nb-1) Q); AK = A K, block by block. B = K^T A K is filled by
        // upper block columns K[:, :(j+1)l]^T (A Q_j): those of j < nb - 1 are the
        // projection coefficients of the next block, the last one is computed here.
        double* K = cur;
        double* AK = nxt;
        B.assign(static_cast<size_t>(b * b), 0.0);
        std::vector<double> col;
        auto put_column = [&](int64_t j) {
            const int64_t rows = (j + 1) * l;
            for (int64_t c = 0; c < l; ++c)
                for (int64_t r = 0; r < rows; ++r) B[(j * l + c) * b + r] = col[c * rows + r];
        };
        for (int64_t j = 0; j < nb; ++j) {
            if (j > 0) {
                next_block(bl, nt, j * l, l, K, AK + (j - 1) * n * l, col, G, stats);
                put_column(j - 1);
            }
            apply(K + j * n * l, l, AK + j * n * l);
            ++stats.products;
            check_interrupt();
        }
        col.assign(static_cast<size_t>(b * l), 0.0);
        inner(bl, nt, b, K, l, AK + (nb - 1) * n * l, col.data(), false);
        put_column(nb - 1);
        for (int64_t c = 0; c < b; ++c)
            for (int64_t r = c + 1; r < b; ++r)
                if (r / l > c / l) B[c * b + r] = B[r * b + c];
        symmetrize(b, B.data(), b);
        for (double x : B)
            if (!std::isfinite(x)) throw std::invalid_argument("A contains NaN or Inf");
        w.assign(static_cast<size_t>(b), 0.0);
        syevd(b, B.data(), w.data());
        keep = select(w.data(), b, k, prm.largest_algebraic);
        std::vector<double> Wk(static_cast<size_t>(b * k));
        for (int64_t j = 0; j < k; ++j)
            std::memcpy(Wk.data() + j * b, B.data() + keep[j] * b, sizeof(double) * b);
        U.assign(static_cast<size_t>(n * k), 0.0);
        update(bl, nt, b, k, 1.0, K, Wk.data(), 0.0, U.data());
    }
    for (int64_t j = 0; j < k; ++j) values[j] = w[keep[j]];
    store_vectors(n, k, U.data(), vectors, nt);
    if (stats_out) *stats_out = stats;
}

// randomized_eigh of a symmetric CSR matrix (float32 values, checked by the caller).
template <class I>
void randomized_eigh_csr(const CsrF32<I>& A, const EighParams& prm, double* values,
                         float* vectors, int num_threads, EighStats* stats) {
    const int nt = resolve_threads(num_threads);
    std::vector<float> panels;
    const int64_t n = A.n_rows;
    auto apply = [&](const double* X, int64_t w, double* Y) {
        spmm(A, X, n, w, Y, n, panels, nt);
    };
    randomized_eigh(n, apply, prm, values, vectors, nt, stats);
}

// randomized_eigh of a dense symmetric n x n matrix (row-major; float32 or float64), the
// products by sgemm/dgemm on row blocks of A.
template <class T>
void randomized_eigh_dense(const T* A, int64_t n, const EighParams& prm, double* values,
                           float* vectors, int num_threads, EighStats* stats) {
    using eigh_detail::to_int;
    const int nt = resolve_threads(num_threads);
    const eigh_detail::Blocks bl(n, 1);
    const int N = to_int(n);
    std::vector<float> xf, yf;
    auto apply = [&](const double* X, int64_t w, double* Y) {
        const int W = to_int(w);
        if constexpr (!std::is_same<T, double>::value) {
            xf.resize(static_cast<size_t>(n * w));
            yf.resize(static_cast<size_t>(n * w));
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t i = 0; i < n * w; ++i) xf[i] = static_cast<float>(X[i]);
        }
        eigh_detail::for_blocks(bl, nt, n * n * w, [&](int64_t, int64_t r0, int64_t rows) {
            // Rows r0.. of row-major A, read as column-major, are columns of A^T: transposing
            // them back gives those rows of A X.
            const char t = 'T', no = 'N';
            const int R = to_int(rows);
            if constexpr (std::is_same<T, double>::value) {
                const double one = 1.0, zero = 0.0;
                blas().dgemm(&t, &no, &R, &W, &N, &one, A + r0 * n, &N, X, &N, &zero, Y + r0,
                             &N);
            } else {
                const float one = 1.0f, zero = 0.0f;
                blas().sgemm(&t, &no, &R, &W, &N, &one, A + r0 * n, &N, xf.data(), &N, &zero,
                             yf.data() + r0, &N);
                for (int64_t j = 0; j < w; ++j)
                    for (int64_t i = r0; i < r0 + rows; ++i) Y[j * n + i] = yf[j * n + i];
            }
        });
    };
    randomized_eigh(n, apply, prm, values, vectors, nt, stats);
}

}  // namespace labelemb
