// Shared helpers for the labelemb kernels: argument checks, thread counts, and a
// way to carry an exception out of an OpenMP region. No Python types here.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

// Throws std::invalid_argument (ValueError in Python) when `cond` is false.
#define LABELEMB_CHECK(cond, msg)                       \
    do {                                                \
        if (!(cond)) {                                  \
            std::ostringstream labelemb_oss_;           \
            labelemb_oss_ << msg;                       \
            throw std::invalid_argument(labelemb_oss_.str()); \
        }                                               \
    } while (0)

namespace labelemb {

inline bool openmp_enabled() {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

inline int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

// Cores this process may run on.
inline int num_cores() {
#ifdef _OPENMP
    const int procs = omp_get_num_procs();
#else
    const int procs = static_cast<int>(std::thread::hardware_concurrency());
#endif
    return std::max(procs, 1);
}

// The most threads a kernel accepts: 4 x the cores, and at least 64. Far more threads
// than cores only adds per-thread buffers and stacks, and a runtime asked for 10^5
// threads can fail to start them (a crash, not an error).
inline int thread_limit() { return std::max(64, 4 * num_cores()); }

// Every kernel's num_threads passes through here: 0 means "all cores", 1 .. thread_limit()
// is taken as given, anything else is refused (std::invalid_argument -> ValueError).
inline int resolve_threads(int num_threads) {
    LABELEMB_CHECK(num_threads >= 0 && num_threads <= thread_limit(),
                   "num_threads must be in [0, " << thread_limit() << "] (0 = all cores; at most "
                   "4 x the " << num_cores() << " cores, or 64), got " << num_threads);
    if (num_threads == 0) return max_threads();
    return num_threads;
}

inline int thread_id() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// Set from a SIGINT handler (installed by the bindings around a kernel call on the main
// thread). Long loops poll it and skip the rest of their work; the binding then raises
// KeyboardInterrupt, so Ctrl-C stops a kernel within moments.
inline std::atomic<bool>& interrupt_flag() {
    static std::atomic<bool> flag{false};
    return flag;
}

inline bool interrupted() { return interrupt_flag().load(std::memory_order_relaxed); }

struct Interrupted : std::exception {
    const char* what() const noexcept override { return "interrupted"; }
};

// Throws Interrupted when the flag is set (call after a parallel region).
inline void check_interrupt() {
    if (interrupted()) throw Interrupted();
}

// Keeps the first exception thrown inside a parallel region so it can be
// rethrown after the region ends (an exception may not cross an OpenMP boundary: it
// would terminate the process). Every region that allocates (per-thread buffers, a
// growing list) runs that code through run(); a failed allocation then reaches Python as
// MemoryError. Once one call has failed, later calls do nothing, so the remaining loop
// iterations finish at once.
class ExceptionGuard {
public:
    template <class F>
    void run(F&& f) noexcept {
        if (failed()) return;
        try {
            f();
        } catch (...) {
            std::lock_guard<std::mutex> lock(mu_);
            if (!ptr_) ptr_ = std::current_exception();
            failed_.store(true, std::memory_order_relaxed);
        }
    }
    bool failed() const { return failed_.load(std::memory_order_relaxed); }
    void rethrow() {
        if (ptr_) std::rethrow_exception(ptr_);
    }

private:
    std::mutex mu_;
    std::exception_ptr ptr_;
    std::atomic<bool> failed_{false};
};

}  // namespace labelemb
