// The per-row selection of the top-k search, shared by the exhaustive (topk.hpp) and
// the pruned (topk_clustered.hpp) paths: the ranking order, a radix select for the k-th
// largest score, RowTopk (one query row's candidates: the best k by sgemm score plus
// all within 2 eps of the k-th), scan_row (offers a tile row to it), finish_rows (the
// exact rescoring and the output of a block of rows), the query blocking, and the
// parameters of every search (TopkParams, Exclusions).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "common.hpp"
#include "topk_kernels.hpp"

namespace labelemb {

namespace topk_detail {

template <class I>
struct Entry {
    float s;
    I id;
};

// The ranking order: higher score first, then lower id.
template <class I>
inline bool better(const Entry<I>& a, const Entry<I>& b) {
    return a.s > b.s || (a.s == b.s && a.id < b.id);
}

template <class I>
struct Better {
    bool operator()(const Entry<I>& a, const Entry<I>& b) const { return better(a, b); }
};

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Order-preserving map of a float to an unsigned key (larger float, larger key).
inline uint32_t float_key(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

inline float key_float(uint32_t u) {
    u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// The k-th largest of the keys a[0..m) (1 <= k <= m; a is clobbered, b is scratch of
// m entries): radix select one byte at a time from the top, branch-free passes, until
// few keys are left, then a plain selection among those. About 3x faster than
// nth_element on the buffers of a row.
inline uint32_t kth_key(uint32_t* a, uint32_t* b, size_t m, size_t k) {
    size_t n = m, need = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        if (n <= 48) break;
        size_t hist[256] = {0};
        for (size_t i = 0; i < n; ++i) ++hist[(a[i] >> shift) & 255u];
        int digit = 255;
        size_t above = 0;
        for (; digit > 0; --digit) {
            if (above + hist[digit] >= need) break;
            above += hist[digit];
        }
        need -= above;
        size_t w = 0;
        for (size_t i = 0; i < n; ++i) {
            b[w] = a[i];
            w += ((a[i] >> shift) & 255u) == static_cast<uint32_t>(digit);
        }
        n = w;
        std::swap(a, b);
    }
    // The n keys left share every byte decided so far: the need-th largest of them is
    // the answer.
    std::nth_element(a, a + (need - 1), a + n, std::greater<uint32_t>());
    return a[need - 1];
}

// Scratch for kth_key, per thread.
inline uint32_t* kth_scratch(size_t m) {
    thread_local std::vector<uint32_t> buf;
    if (buf.size() < 2 * m) buf.resize(2 * m);
    return buf.data();
}

// The k-th largest score of e[0..m), or of s[0..m).
template <class I>
float kth_largest(const Entry<I>* e, size_t m, size_t k) {
    uint32_t* a = kth_scratch(m);
    for (size_t i = 0; i < m; ++i) a[i] = float_key(e[i].s);
    return key_float(kth_key(a, a + m, m, k));
}

inline float kth_largest(const float* s, size_t m, size_t k) {
    uint32_t* a = kth_scratch(m);
    for (size_t i = 0; i < m; ++i) a[i] = float_key(s[i]);
    return key_float(kth_key(a, a + m, m, k));
}

// The running selection of one query row. It holds every candidate seen so far that may
// still belong to the exact top k: the best k by sgemm score plus all within `slack`
// (2 eps) of the k-th. `thr` (k-th sgemm score - slack, -inf before k candidates) is the
// bar a new candidate must reach. When the buffer fills, a radix select cuts it back.
template <class I>
class RowTopk {
public:
    void reset(int64_t k, float slack, const int64_t* ex_begin, const int64_t* ex_end) {
        k_ = k;
        cap_ = static_cast<size_t>(k + std::max<int64_t>(k, 32));
        slack_ = slack;
        thr = kNegInf;
        final_ = false;
        n_ = 0;
        if (c_.size() < cap_) c_.resize(cap_);
        ex_begin_ = ex_begin;
        ex_end_ = ex_end;
    }

    // `id` is the label's original id (the one exclusion lists and results use).
    inline void offer(float s, I id) {
        if (ex_begin_ != ex_end_ &&
            std::binary_search(ex_begin_, ex_end_, static_cast<int64_t>(id)))
            return;
        // The buffer is sized ahead (c_.size() >= cap_ > n_): the fields are stored in
        // place. (Building an Entry and copying it in made the compiler store the two
        // halves on the stack and reload them as one word, a store-forwarding stall on
        // every offer.)
        if (n_ >= c_.size()) c_.resize(std::max(cap_, 2 * n_ + 1));  // only after candidates()
        Entry<I>& e = c_[n_++];
        e.s = s;
        e.id = id;
        if (n_ == static_cast<size_t>(k_) && thr == kNegInf) {
            float t = c_[0].s;  // exactly k candidates: the k-th is the smallest
            for (size_t i = 1; i < n_; ++i) t = std::min(t, c_[i].s);
            thr = t - slack_;
        } else if (n_ >= cap_) {
            cut();
        }
    }

    // Before the row has a threshold, the k-th largest of a tile row (any k real scores
    // bound the final k-th score from below) gives one at once, so that the first tile
    // admits about k candidates instead of k (1 + log(tile / k)).
    // Excluded labels may be among the tile's best: the bound is then the (k + number
    // excluded)-th largest.
    void seed(const float* s, int64_t len) {
        if (thr != kNegInf) return;
        const int64_t kk = k_ + (ex_end_ - ex_begin_);
        if (len >= 4 * kk)
            thr = kth_largest(s, static_cast<size_t>(len), static_cast<size_t>(kk)) - slack_;
    }

    // A cheaper first bar for large k: a score t from every 8th entry of the tile row,
    // ranked so that about 2 kk scores of the row should reach it. It is only a bound
    // once at least kk scores are >= t (checked by the caller on the collected ones);
    // returns false when the row is too short or k too small for sampling to pay.
    bool sampled_bar(const float* s, int64_t len, float* t, int64_t* kk_out) const {
        constexpr int64_t stride = 8;
        const int64_t kk = k_ + (ex_end_ - ex_begin_);
        if (kk < 32 || len < 16 * kk) return false;
        const int64_t m = len / stride;
        const int64_t rank = std::min<int64_t>(m, (2 * kk + stride - 1) / stride);
        uint32_t* a = kth_scratch(static_cast<size_t>(m));
        for (int64_t i = 0; i < m; ++i) a[i] = float_key(s[i * stride]);
        *t = key_float(kth_key(a, a + m, static_cast<size_t>(m), static_cast<size_t>(rank)));
        *kk_out = kk;
        return true;
    }

    float slack() const { return slack_; }

    // Cuts the buffer back so that thr reflects the current k-th score.
    void tighten() {
        if (n_ > static_cast<size_t>(k_)) cut();
    }

    // The candidates that may belong to the exact top k (after a final cut); their
    // scores are to be replaced by exact ones before emit().
    std::vector<Entry<I>>& candidates() {
        if (n_ > static_cast<size_t>(k_) && !final_) cut();
        final_ = true;
        c_.resize(n_);
        return c_;
    }

    // Writes the top k of the (rescored) candidates in ranking order; rows with fewer
    // than k candidates (labels excluded) are padded with id -1 and score -inf.
    void emit(float* out_s, I* out_id) {
        const size_t m = std::min(n_, static_cast<size_t>(k_));
        const auto end = c_.begin() + static_cast<std::ptrdiff_t>(n_);
        // After the final cut there are about k candidates: a selection then a sort
        // beats partial_sort's heap when m is close to their number.
        if (m < n_) std::nth_element(c_.begin(), c_.begin() + m, end, Better<I>());
        std::sort(c_.begin(), c_.begin() + m, Better<I>());
        for (size_t j = 0; j < m; ++j) {
            out_s[j] = c_[j].s;
            out_id[j] = c_[j].id;
        }
        for (int64_t j = static_cast<int64_t>(m); j < k_; ++j) {
            out_s[j] = kNegInf;
            out_id[j] = static_cast<I>(-1);
        }
    }

    float thr = kNegInf;

private:
    void cut() {
        thr = kth_largest(c_.data(), n_, static_cast<size_t>(k_)) - slack_;
        const float bar = thr;
        size_t w = 0;  // keep the entries at or above the bar (at least k), in place
        for (size_t i = 0; i < n_; ++i) {
            c_[w] = c_[i];
            w += c_[i].s >= bar;
        }
        n_ = w;
        if (2 * n_ > cap_) {  // many near-ties: make room
            cap_ = 2 * n_;
            if (c_.size() < cap_) c_.resize(cap_);
        }
    }

    // c_[0..n_) are the candidates; c_ is kept at least cap_ long until candidates().
    std::vector<Entry<I>> c_;
    size_t n_ = 0;
    bool final_ = false;  // candidates() was called: no more cuts
    int64_t k_ = 0;
    size_t cap_ = 0;
    float slack_ = 0;
    const int64_t* ex_begin_ = nullptr;
    const int64_t* ex_end_ = nullptr;
};

// Offers the scores s[0..len) of one tile row (len <= the size of pos); id_of(j) gives
// the label id of column j. Candidates are collected against the threshold at the start
// and checked again as it rises.
template <class I, class IdOf>
inline void scan_row(const float* s, int64_t len, IdOf id_of, RowTopk<I>& row, int32_t* pos) {
    static const CollectGe collect = collect_ge_fn();
    int64_t n = -1;
    if (row.thr == kNegInf) {
        // First tile of the row: try a sampled bar (valid once kk scores reach t), else
        // the exact k-th largest of the tile.
        float t;
        int64_t kk;
        if (row.sampled_bar(s, len, &t, &kk)) {
            n = collect(s, len, t - row.slack(), pos);
            int64_t reach = 0;
            for (int64_t i = 0; i < n; ++i) reach += s[pos[i]] >= t;
            if (reach < kk) n = -1;
        }
        if (n < 0) row.seed(s, len);
    }
    if (n < 0) n = collect(s, len, row.thr, pos);
    for (int64_t i = 0; i < n; ++i) {
        const int32_t j = pos[i];
        if (s[j] >= row.thr) row.offer(s[j], id_of(j));
    }
}

// Rescores the candidates of a block of rows exactly and writes each row's top k.
// Candidates are visited in label order, so the label vectors stream through the cache
// once per block instead of once per row. q_of(r): the query of row r; out_of(r): its
// output pointers (scores, ids).
struct Pending {
    int64_t id;
    int64_t row;
    int64_t pos;
};

template <class I, class QOf, class OutOf>
void finish_rows(std::vector<RowTopk<I>>& rows, int64_t nq, QOf q_of, const float* V, int64_t d,
                 std::vector<Pending>& work, OutOf out_of) {
    const ExactDot dot = exact_dot_fn();
    // Counting sort of the candidates by label chunk (256 labels): within a chunk the
    // vectors stay in cache, across chunks they stream in order.
    int64_t max_id = 0, total = 0;
    for (int64_t r = 0; r < nq; ++r) {
        for (const auto& e : rows[r].candidates())
            max_id = std::max<int64_t>(max_id, static_cast<int64_t>(e.id));
        total += static_cast<int64_t>(rows[r].candidates().size());
    }
    const int64_t n_chunks = (max_id >> 8) + 1;
    std::vector<int64_t> start(static_cast<size_t>(n_chunks) + 1, 0);
    for (int64_t r = 0; r < nq; ++r)
        for (const auto& e : rows[r].candidates()) ++start[(static_cast<int64_t>(e.id) >> 8) + 1];
    for (int64_t c = 0; c < n_chunks; ++c) start[c + 1] += start[c];
    work.resize(static_cast<size_t>(total));
    for (int64_t r = 0; r < nq; ++r) {
        const auto& c = rows[r].candidates();
        for (size_t p = 0; p < c.size(); ++p) {
            const int64_t id = static_cast<int64_t>(c[p].id);
            work[start[id >> 8]++] = Pending{id, r, static_cast<int64_t>(p)};
        }
    }
    for (const Pending& w : work)
        rows[w.row].candidates()[w.pos].s = dot(q_of(w.row), V + w.id * d, d);
    for (int64_t r = 0; r < nq; ++r) {
        float* os;
        I* oi;
        out_of(r, &os, &oi);
        rows[r].emit(os, oi);
    }
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Query block size: about `want` rows, fewer when there would be fewer blocks than
// threads.
inline int64_t query_block(int64_t want, int64_t n, int nt) {
    int64_t nb = std::max<int64_t>(1, want);
    if (n > 0 && ceil_div(n, nb) < nt)
        nb = std::max<int64_t>(std::min<int64_t>(nb, 16), ceil_div(n, nt));
    return nb;
}

}  // namespace topk_detail

struct TopkParams {
    int64_t query_block = 0;  // rows per block (0 = automatic)
    int64_t label_block = 0;  // labels per tile (0 = automatic)
};

// Rows of `exclude` (CSR over the n queries, sorted ids) name labels a row must not return.
struct Exclusions {
    const int64_t* indptr = nullptr;   // n + 1, or null for none
    const int64_t* indices = nullptr;  // sorted within each row
    void row(int64_t q, const int64_t** b, const int64_t** e) const {
        *b = *e = nullptr;
        if (indptr) {
            *b = indices + indptr[q];
            *e = indices + indptr[q + 1];
        }
    }
};

}  // namespace labelemb
