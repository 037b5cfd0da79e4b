// The extension module _core: PYBIND11_MODULE, the BLAS registry, config and
// thread_limit; each area's entry points are bound in its own file (bind_counts.cpp,
// bind_linalg.cpp, bind_topk.cpp; shared helpers in bind_common.hpp). These are the only
// files that know pybind11: they check arrays, release the GIL, and call the kernels in
// include/labelemb/. Arrays arrive already converted by the Python layer (dtype and C
// order); arguments are marked noconvert so nothing is copied silently.
#include <cstdint>
#include <exception>
#include <string>

#include "bind_common.hpp"
#include "labelemb/blas.hpp"
#include "labelemb/common.hpp"

using namespace labelemb;

namespace {

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

    bind_counts(m);
    bind_linalg(m);
    bind_topk(m);
}
