// BLAS/LAPACK entry points reached at run time.
//
// labelemb does not link a BLAS of its own: at import, Python hands the C++ core the
// addresses of the routines scipy already ships (scipy.linalg.cython_blas and
// cython_lapack, Fortran calling convention, column-major), and of OpenBLAS's thread
// controls when scipy's BLAS is OpenBLAS. Every kernel reaches BLAS through `blas()`.
#pragma once

#include <stdexcept>

namespace labelemb {

extern "C" {
typedef void (*sgemm_t)(const char*, const char*, const int*, const int*, const int*,
                        const float*, const float*, const int*, const float*, const int*,
                        const float*, float*, const int*);
typedef void (*dgemm_t)(const char*, const char*, const int*, const int*, const int*,
                        const double*, const double*, const int*, const double*, const int*,
                        const double*, double*, const int*);
typedef void (*dsyrk_t)(const char*, const char*, const int*, const int*, const double*,
                        const double*, const int*, const double*, double*, const int*);
typedef void (*dtrsm_t)(const char*, const char*, const char*, const char*, const int*,
                        const int*, const double*, const double*, const int*, double*,
                        const int*);
typedef void (*dgeqrf_t)(const int*, const int*, double*, const int*, double*, double*,
                         const int*, int*);
typedef void (*dorgqr_t)(const int*, const int*, const int*, double*, const int*,
                         const double*, double*, const int*, int*);
typedef void (*dsyevd_t)(const char*, const char*, const int*, double*, const int*, double*,
                         double*, const int*, int*, const int*, int*);
typedef void (*dpotrf_t)(const char*, const int*, double*, const int*, int*);
typedef int (*set_threads_local_t)(int);
typedef void (*set_threads_t)(int);
typedef int (*get_threads_t)(void);
}

struct BlasTable {
    sgemm_t sgemm = nullptr;
    dgemm_t dgemm = nullptr;
    dsyrk_t dsyrk = nullptr;
    dtrsm_t dtrsm = nullptr;
    dgeqrf_t dgeqrf = nullptr;
    dorgqr_t dorgqr = nullptr;
    dsyevd_t dsyevd = nullptr;
    dpotrf_t dpotrf = nullptr;
    // Optional (OpenBLAS only): per-calling-thread and global thread counts.
    set_threads_local_t set_threads_local = nullptr;
    set_threads_t set_threads = nullptr;
    get_threads_t get_threads = nullptr;
};

inline BlasTable& blas_table() {
    static BlasTable table;
    return table;
}

inline const BlasTable& blas() {
    const BlasTable& t = blas_table();
    if (!t.sgemm || !t.dgemm || !t.dgeqrf || !t.dorgqr || !t.dsyevd)
        throw std::runtime_error("labelemb: BLAS/LAPACK routines were not registered "
                                 "(labelemb._blas.register() must run at import)");
    return t;
}

// Within its scope, BLAS calls made by this thread run single-threaded (so that
// OpenMP threads each calling BLAS do not oversubscribe the cores). A no-op when the
// BLAS offers no per-thread control.
class BlasSingleThreaded {
public:
    BlasSingleThreaded() {
        auto f = blas_table().set_threads_local;
        if (f) previous_ = f(1);
    }
    ~BlasSingleThreaded() {
        auto f = blas_table().set_threads_local;
        if (f && previous_ > 0) f(previous_);
    }
    BlasSingleThreaded(const BlasSingleThreaded&) = delete;
    BlasSingleThreaded& operator=(const BlasSingleThreaded&) = delete;

private:
    int previous_ = 0;
};

// Within its scope, BLAS runs on `n` threads (for a big product called outside any
// OpenMP region). Restores the previous count after.
class BlasThreads {
public:
    explicit BlasThreads(int n) {
        auto& t = blas_table();
        if (t.set_threads_local && n > 0) previous_ = t.set_threads_local(n);
    }
    ~BlasThreads() {
        auto f = blas_table().set_threads_local;
        if (f && previous_ > 0) f(previous_);
    }
    BlasThreads(const BlasThreads&) = delete;
    BlasThreads& operator=(const BlasThreads&) = delete;

private:
    int previous_ = 0;
};

}  // namespace labelemb
