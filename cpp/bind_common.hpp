// What the binding files (bindings.cpp, bind_*.cpp) share: the Ctrl-C guard around a
// kernel call, the C-order array alias and the argument checks, and the bind_* functions
// that PYBIND11_MODULE (bindings.cpp) calls to register each area's entry points.
// Internal to the extension module: not installed, included only by those files.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // in every binding file alike (pybind11 asks for that)

#include <csignal>
#include <cstdint>

#include "labelemb/common.hpp"

namespace py = pybind11;

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
            labelemb::interrupt_flag().store(false);
            struct sigaction sa {};
            sa.sa_handler = [](int) { labelemb::interrupt_flag().store(true); };
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
        if (labelemb::interrupt_flag().exchange(false)) PyErr_SetInterrupt();
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

template <class T>
inline const T* cptr(const carray<T>& a) {
    return a.data();
}

template <class T>
inline T* mptr(carray<T>& a) {
    return a.mutable_data();
}

inline int64_t alen(const py::array& a) {
    return a.ndim() == 0 ? 1 : static_cast<int64_t>(a.shape(0));
}

inline void require_1d(const py::array& a, const char* name) {
    LABELEMB_CHECK(a.ndim() == 1, name << " must be 1-D, got " << a.ndim() << " dimensions");
}

inline void require_2d(const py::array& a, const char* name) {
    LABELEMB_CHECK(a.ndim() == 2, name << " must be 2-D, got " << a.ndim() << " dimensions");
}

// Each registers one area's functions on the module (one file each).
void bind_counts(py::module_& m);  // cooccurrence, pmi, sum_counts (bind_counts.cpp)
void bind_linalg(py::module_& m);  // eigh_*, csr_asymmetry, csr_spmm (bind_linalg.cpp)
void bind_topk(py::module_& m);    // topk, topk_clustered, _exact_dot, threshold (bind_topk.cpp)
