// Structural checks of a CSR matrix given as raw arrays, so that no kernel can read
// out of bounds whatever the caller passes. O(n + nnz), parallel.
#pragma once

#include <cstdint>

#include "common.hpp"

namespace labelemb {

// indptr: n + 1 non-decreasing offsets from 0 to nnz; indices in [0, n_cols).
template <class P, class I>
void check_csr(const char* name, int64_t n, const P* indptr, int64_t nnz, const I* indices,
               int64_t n_cols, int num_threads) {
    LABELEMB_CHECK(n >= 0, name << ": negative number of rows");
    LABELEMB_CHECK(indptr[0] == 0, name << ": indptr must start at 0");
    LABELEMB_CHECK(static_cast<int64_t>(indptr[n]) == nnz,
                   name << ": indptr ends at " << static_cast<int64_t>(indptr[n])
                        << " but there are " << nnz << " indices");
    int nt = resolve_threads(num_threads);
    int monotone = 1;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(&& : monotone)
    for (int64_t r = 0; r < n; ++r)
        if (indptr[r + 1] < indptr[r]) monotone = 0;
    LABELEMB_CHECK(monotone, name << ": indptr must be non-decreasing");
    int in_range = 1;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(&& : in_range)
    for (int64_t p = 0; p < nnz; ++p)
        if (indices[p] < 0 || static_cast<int64_t>(indices[p]) >= n_cols) in_range = 0;
    LABELEMB_CHECK(in_range, name << ": column indices must lie in [0, " << n_cols << ")");
}

}  // namespace labelemb
