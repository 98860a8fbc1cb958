#pragma once
// Row-major GEMM on strided matrices, bcnn's own (BLIS-style) implementation:
//   C (m x n, ldc) = epilogue(alpha * op(A) * op(B) + beta * C)
// op(A) is m x k (A stored m x k with lda, or k x m when transposed);
// op(B) is k x n (B stored k x n with ldb, or n x k when transposed).
// The epilogue (GemmEpilogue) adds a bias to every row and/or applies ReLU to
// each block of C while it is still in cache; the default does nothing.
// When beta == 0, C is only written (it may hold NaN or garbage); when k == 0
// or alpha == 0, A and B are not read. C must not overlap A or B.
//
// Blocking (Goto / BLIS): for each block of NC columns, for each block of KC
// depth, op(B) is packed into NR-column micro-panels (kept in L3, one micro-panel
// in L1); for each block of MC rows, op(A) is packed into MR-row micro-panels
// (kept in L2); the micro-kernel (gemm_microkernel.hpp, chosen at compile time
// from -march) computes MR x NR blocks of C. Transposes are absorbed by the
// packing; edge blocks go through a small buffered tile.
// Narrow C (n <= kGemmInPlaceAMaxColumns, e.g. a pointwise convolution's 128
// filters) with op(A) stored by rows: A is not packed but read in place by
// GemmInPlaceAKernel, each A micro-panel staying in L1 while it meets every
// column panel of op(B) (packed whole, held in L2); see
// gemm_blocked_in_place_a. op(A) transposed and op(B) not, with small m and
// n (a weights gradient's x^T dy): both are read in place by
// GemmOuterKernel; see gemm_blocked_outer.
//
// PackedB (pack_b) holds a whole op(B) packed once, for operands multiplied
// many times (a convolution's weights, one GEMM per pixel tile).
//
// Threads: outside an OpenMP parallel region a large enough problem is cut
// into chunks of rows (or columns, if there are more column micro-panels), at
// micro-tile boundaries, which bcnn::num_threads() threads share (gemm_run);
// inside one, gemm runs serially. The depth k is never split, and every
// element of C accumulates its products in the same order whatever the
// chunks and threads, so results are bit-identical for any number of threads.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>

#include "bcnn/core/parallel.hpp"
#include "bcnn/kernels/cpu/gemm_microkernel.hpp"
#include "bcnn/kernels/cpu/simd.hpp"

namespace bcnn {
namespace cpu {

enum class Transpose { no, yes };

// Applied to C after alpha * op(A) * op(B) + beta * C: first the bias, then ReLU.
template <typename T>
struct GemmEpilogue {
    const T* bias = nullptr;  // n values, bias[j] added to column j of every row; nullptr: none
    bool relu = false;        // C = max(C, 0)
    bool empty() const { return bias == nullptr && !relu; }
};

namespace detail {

// Cache sizes the blocking targets: AMD Zen 3 (32 KiB L1d and 512 KiB L2 per
// core, 32 MiB L3 shared by 8 cores); Intel server cores have as much L1d and
// at least as much L2.
constexpr Index kGemmL1Bytes = 32 * 1024;
constexpr Index kGemmL2Bytes = 512 * 1024;
constexpr Index kGemmL3BytesPerCore = 4 * 1024 * 1024;
// Packed buffers are aligned to a cache line (and a zmm register).
constexpr std::size_t kGemmAlignment = 64;
constexpr Index kGemmCacheLine = 64;
// Below this many multiply-adds per thread (~25 us on one core) forking
// threads costs more than it saves.
constexpr double kGemmMinWorkPerThread = 1 << 19;

template <typename T>
struct GemmBlocking {
    using Kernel = MicroKernel<T>;
    static constexpr Index mr = Kernel::mr, nr = Kernel::nr;
    // KC: a B micro-panel (KC x NR) fills half of L1, leaving room for the A
    // micro-panel streamed past it (float: 6 x 16 kernel KC = 256, 14 x 32
    // kernel KC = 128; 16 KiB).
    static constexpr Index kc = std::min<Index>(512, std::max<Index>(64, kGemmL1Bytes / 2 / (nr * Index(sizeof(T)))));
    // MC: the packed A block (MC x KC) fills a quarter of L2, leaving the rest
    // to the B micro-panels and C tiles passing through (float, 6 x 16: 126
    // rows, 126 KiB; measured on Zen 3, 1/8 to 1/2 of L2 differ by < 5%).
    static constexpr Index mc = std::max<Index>(mr, kGemmL2Bytes / 4 / (kc * Index(sizeof(T))) / mr * mr);
    // NC: the packed B block (KC x NC) fits in this core's share of L3 (float: 4096 columns, 4 MiB).
    static constexpr Index nc = std::max<Index>(nr, kGemmL3BytesPerCore / (kc * Index(sizeof(T))) / nr * nr);
};

// The depth block actually used for a depth k: at most KC, and the blocks
// as even as possible (k = 257 gives 129 + 128, not 256 + 1). Depends only on
// k, so a PackedB and the driver agree.
template <typename T>
Index gemm_depth_step(Index k) {
    const Index blocks = std::max<Index>(1, (k + GemmBlocking<T>::kc - 1) / GemmBlocking<T>::kc);
    return (k + blocks - 1) / blocks;
}

inline Index gemm_round_up(Index value, Index multiple) { return (value + multiple - 1) / multiple * multiple; }

// An uninitialised, 64-byte aligned array that only grows.
template <typename T>
class GemmAlignedArray {
public:
    T* data() const { return data_.get(); }
    void reserve(Index size) {
        if (size <= capacity_) return;
        void* memory = ::operator new(static_cast<std::size_t>(size) * sizeof(T), std::align_val_t(kGemmAlignment));
        data_.reset(static_cast<T*>(memory));
        capacity_ = size;
    }

private:
    struct Free {
        void operator()(T* p) const { ::operator delete(p, std::align_val_t(kGemmAlignment)); }
    };
    std::unique_ptr<T, Free> data_;
    Index capacity_ = 0;
};

// This thread's packing buffer number `slot` (0: A, 1: B), at least `size`
// elements; kept between calls.
template <typename T, int slot>
T* gemm_thread_buffer(Index size) {
    static thread_local GemmAlignedArray<T> buffer;
    buffer.reserve(size);
    return buffer.data();
}

// Packing. Both operands are packed into micro-panels of `width` lines (MR
// rows of op(A), NR columns of op(B)): panel s holds lines x0 + s*width ...,
// element (line x, depth p) at out[s*width*kc + p*width + (x - x0) % width],
// lines past the extent zero. Which of the two loops below runs depends on
// how the source is stored; both read it in address order, which the
// hardware prefetcher follows.

// Source element (line x, depth p) at src[x * ld + p]: each line is contiguous
// in depth (op(A) not transposed, op(B) transposed). The lines of the panel
// after next are requested ahead.
template <typename T, Index width>
void gemm_pack_lines(const T* src, Index ld, Index x0, Index extent, Index p0, Index kc, T* out) {
    constexpr Index line_step = kGemmCacheLine / Index(sizeof(T));
    for (Index s = 0; s < extent; s += width, out += width * kc) {
        const T* panel = src + (x0 + s) * ld + p0;
        const Index lines = std::min(width, extent - s);
        for (Index x = 2 * width; x < std::min(3 * width, extent - s); ++x)
            for (Index p = 0; p < kc; p += line_step) __builtin_prefetch(panel + x * ld + p);
        if constexpr (width == MicroKernel<T>::mr && MicroKernel<T>::has_pack_a8) {
            // A full micro-panel of A: the kernel's register transpose, 8 depth steps at a time.
            if (lines == width) {
                Index p = 0;
                for (; p + 8 <= kc; p += 8) MicroKernel<T>::pack_a8(panel + p, ld, out + p * width);
                for (; p < kc; ++p)
                    for (Index x = 0; x < width; ++x) out[p * width + x] = panel[x * ld + p];
                continue;
            }
        }
        if constexpr (width == MicroKernel<T>::nr && width % 8 == 0 && MicroKernel<T>::has_pack_b8) {
            // A full micro-panel of op(B): 8 x 8 register transposes, 8 depth steps at a time.
            if (lines == width) {
                Index p = 0;
                for (; p + 8 <= kc; p += 8)
                    for (Index x = 0; x < width; x += 8)
                        MicroKernel<T>::pack_b8(panel + x * ld + p, ld, out + p * width + x);
                for (; p < kc; ++p)
                    for (Index x = 0; x < width; ++x) out[p * width + x] = panel[x * ld + p];
                continue;
            }
        }
        for (Index x = 0; x < lines; ++x)
            for (Index p = 0; p < kc; ++p) out[p * width + x] = panel[x * ld + p];
        for (Index x = lines; x < width; ++x)
            for (Index p = 0; p < kc; ++p) out[p * width + x] = T(0);
    }
}

// Source element (line x, depth p) at src[p * ld + x]: each depth step is a
// contiguous row across the lines (op(A) transposed, op(B) not transposed).
template <typename T, Index width>
void gemm_pack_rows(const T* src, Index ld, Index x0, Index extent, Index p0, Index kc, T* out) {
    const Index panels = (extent + width - 1) / width;
    for (Index p = 0; p < kc; ++p) {
        const T* row = src + (p0 + p) * ld + x0;
        for (Index s = 0; s < panels; ++s) {
            T* dst = out + s * width * kc + p * width;
            const Index lines = std::min(width, extent - s * width);
            if (lines == width) {  // a constant size: a few vector moves, not a loop or a call
                std::memcpy(dst, row + s * width, sizeof(T) * width);
                continue;
            }
            std::copy_n(row + s * width, lines, dst);
            std::fill(dst + lines, dst + width, T(0));
        }
    }
}

// Rows [i0, i0 + mc) x depth [p0, p0 + kc) of op(A) in MR-row micro-panels.
template <typename T>
void gemm_pack_a(Transpose trans_a, const T* a, Index lda, Index i0, Index mc, Index p0, Index kc, T* out) {
    constexpr Index mr = GemmBlocking<T>::mr;
    if (trans_a == Transpose::no)
        gemm_pack_lines<T, mr>(a, lda, i0, mc, p0, kc, out);
    else
        gemm_pack_rows<T, mr>(a, lda, i0, mc, p0, kc, out);
}

// Depth [p0, p0 + kc) x columns [j0, j0 + nc) of op(B) in NR-column micro-panels.
template <typename T>
void gemm_pack_b(Transpose trans_b, const T* b, Index ldb, Index p0, Index kc, Index j0, Index nc, T* out) {
    constexpr Index nr = GemmBlocking<T>::nr;
    if (trans_b == Transpose::no)
        gemm_pack_rows<T, nr>(b, ldb, j0, nc, p0, kc, out);
    else
        gemm_pack_lines<T, nr>(b, ldb, j0, nc, p0, kc, out);
}

// Bias and ReLU on rows x cols of C at c; bias already offset to C's first column.
template <typename T>
void gemm_apply_epilogue(const GemmEpilogue<T>& epilogue, const T* bias, Index rows, Index cols, T* c, Index ldc) {
    for (Index i = 0; i < rows; ++i) {
        T* row = c + i * ldc;
        if (bias)
            for (Index j = 0; j < cols; ++j) row[j] += bias[j];
        if (epilogue.relu)
            for (Index j = 0; j < cols; ++j) row[j] = row[j] < T(0) ? T(0) : row[j];
    }
}

// One micro-tile of C: rows x cols (at most MR x NR) at c_tile. compute(beta,
// c, ldc) writes a whole MR x NR block = alpha * A-panel * B-panel + beta * c
// (the micro-kernel contract): straight into C when the tile is whole, else
// into a buffer whose used part is then copied. Then the epilogue (nullptr:
// none; bias already offset to the tile's first column).
template <typename T, typename Compute>
void gemm_tile(Index rows, Index cols, T beta, T* c_tile, Index ldc, const GemmEpilogue<T>* epilogue, const T* bias,
               const Compute& compute) {
    constexpr Index mr = MicroKernel<T>::mr, nr = MicroKernel<T>::nr;
    if (rows == mr && cols == nr) {
        compute(beta, c_tile, ldc);
    } else {
        alignas(kGemmAlignment) T tile[mr * nr];
        compute(T(0), tile, nr);
        for (Index i = 0; i < rows; ++i) {
            T* row = c_tile + i * ldc;
            const T* src = tile + i * nr;
            if (beta == T(0))
                std::copy(src, src + cols, row);
            else
                for (Index j = 0; j < cols; ++j) row[j] = src[j] + beta * row[j];
        }
    }
    if (epilogue) gemm_apply_epilogue(*epilogue, bias, rows, cols, c_tile, ldc);
}

// C (mc x nc at c) = alpha * packed A block * packed B block + beta * C, micro-tile
// by micro-tile, then the epilogue on each tile (epilogue == nullptr: none;
// bias indexed from C's first column).
template <typename T>
void gemm_macro_kernel(Index mc, Index nc, Index kc, T alpha, const T* a_packed, const T* b_packed, T beta, T* c,
                       Index ldc, const GemmEpilogue<T>* epilogue, const T* bias) {
    using Kernel = MicroKernel<T>;
    constexpr Index mr = Kernel::mr, nr = Kernel::nr;
    for (Index jr = 0; jr < nc; jr += nr) {
        const Index cols = std::min(nr, nc - jr);
        const T* b_panel = b_packed + jr * kc;
        for (Index ir = 0; ir < mc; ir += mr) {
            const Index rows = std::min(mr, mc - ir);
            T* c_tile = c + ir * ldc + jr;
            // The next tile of C is requested while this one is computed.
            for (Index i = mr; i < std::min(2 * mr, mc - ir); ++i) __builtin_prefetch(c_tile + i * ldc);
            const T* a_panel = a_packed + ir * kc;
            gemm_tile(rows, cols, beta, c_tile, ldc, epilogue, bias ? bias + jr : nullptr,
                      [&](T tile_beta, T* tile_c, Index tile_ldc) {
                          Kernel::run(kc, a_panel, b_panel, alpha, tile_beta, tile_c, tile_ldc);
                      });
        }
    }
}

// C rows [0, Rows) x Vectors vectors at c = alpha * acc + beta * C (C not
// read when beta == 0), then + bias (Vectors vectors, or nullptr), then ReLU
// if relu (keeping NaN, as gemm_apply_epilogue): the end of the kernels below.
template <typename T, int Rows, int Vectors>
inline void gemm_store_accumulators(const simd::Vec<T> (&acc)[Rows][Vectors], T alpha, T beta, T* c, Index ldc,
                                    const T* bias, bool relu) {
    using V = simd::Vec<T>;
    constexpr Index width = simd::width<T>;
    const V alpha_v = simd::broadcast(alpha), beta_v = simd::broadcast(beta), zero = {};
    V bias_v[Vectors] = {};
    if (bias)
#pragma GCC unroll 4
        for (int v = 0; v < Vectors; ++v) bias_v[v] = simd::load(bias + v * width);
#pragma GCC unroll 16
    for (int i = 0; i < Rows; ++i) {
        T* row = c + i * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < Vectors; ++v) {
            V value = alpha_v * acc[i][v];
            if (beta != T(0)) value += beta_v * simd::load(row + v * width);
            if (bias) value += bias_v[v];
            if (relu) value = value < zero ? zero : value;
            simd::store(row + v * width, value);
        }
    }
}

// The micro-kernel for op(A) read in place instead of packed: A stored by rows
// (row i of the micro-panel at a + i * lda, its depth steps contiguous), B a
// packed micro-panel as for MicroKernel<T>, whose MR x NR block and contract
// it keeps (simd.hpp vectors, so one source for every -march), then adds
// `bias` (NR values, or nullptr) and applies ReLU if `relu` while the tile is
// in registers (the epilogue's pass over the tile was a fifth of a pointwise
// convolution's forward with 16-32 input channels). Usable (`available`)
// when NR is whole vectors and the MR x NR accumulators, one row of B and a
// broadcast fit in the vector registers (simd::kVectorRegisters): AVX-512
// float 14 x 32 (31 of 32), AVX2 float 6 x 16 and double 4 x 8, SSE2 float
// 4 x 8.
template <typename T>
struct GemmInPlaceAKernel {
    static constexpr Index mr = MicroKernel<T>::mr, nr = MicroKernel<T>::nr;
    static constexpr Index width = simd::width<T>, vectors = nr / width;
    static constexpr bool available = nr % width == 0 && mr * vectors + vectors + 1 <= simd::kVectorRegisters;

    static void run(Index kc, const T* a, Index lda, const T* b, T alpha, T beta, T* c, Index ldc, const T* bias,
                    bool relu) {
        using V = simd::Vec<T>;
        const T* rows[mr];
        for (Index i = 0; i < mr; ++i) rows[i] = a + i * lda;
        V acc[mr][vectors];
#pragma GCC unroll 16
        for (Index i = 0; i < mr; ++i)
#pragma GCC unroll 4
            for (Index v = 0; v < vectors; ++v) acc[i][v] = V{};
#pragma GCC unroll 4
        for (Index p = 0; p < kc; ++p, b += nr) {
            V b_row[vectors];
#pragma GCC unroll 4
            for (Index v = 0; v < vectors; ++v) b_row[v] = simd::load(b + v * width);
#pragma GCC unroll 16
            for (Index i = 0; i < mr; ++i) {
                const V a_i = simd::broadcast(rows[i][p]);
#pragma GCC unroll 4
                for (Index v = 0; v < vectors; ++v) acc[i][v] += a_i * b_row[v];
            }
        }
        gemm_store_accumulators<T, mr, vectors>(acc, alpha, beta, c, ldc, bias, relu);
    }
};

// The kernel for both operands read in place in the outer-product layout of
// a weights gradient (x^T dy summed over pixels): op(A) transposed, A stored
// k x m (depth step p of this tile's rows at a + p * lda), op(B) not, B
// stored k x n (depth step p at b + p * ldb). Rows (<= MR) x NR block of C,
// reading only its Rows values of each step of A; epilogue and contract as
// GemmInPlaceAKernel's. Packing both operands took 40% of a pointwise
// convolution's weights gradient (perf: 32 -> 32 channels, 75 x 75, batch 32),
// where each packed value is used by only n or m products.
template <typename T>
struct GemmOuterKernel {
    static constexpr Index mr = MicroKernel<T>::mr, nr = MicroKernel<T>::nr;
    static constexpr Index width = simd::width<T>, vectors = nr / width;
    static constexpr bool available = GemmInPlaceAKernel<T>::available;

    template <int Rows>
    static void run(Index kc, const T* a, Index lda, const T* b, Index ldb, T alpha, T beta, T* c, Index ldc,
                    const T* bias, bool relu) {
        using V = simd::Vec<T>;
        V acc[Rows][vectors];
#pragma GCC unroll 16
        for (int i = 0; i < Rows; ++i)
#pragma GCC unroll 4
            for (Index v = 0; v < vectors; ++v) acc[i][v] = V{};
#pragma GCC unroll 4
        for (Index p = 0; p < kc; ++p, a += lda, b += ldb) {
            V b_row[vectors];
#pragma GCC unroll 4
            for (Index v = 0; v < vectors; ++v) b_row[v] = simd::load(b + v * width);
#pragma GCC unroll 16
            for (int i = 0; i < Rows; ++i) {
                const V a_i = simd::broadcast(a[i]);
#pragma GCC unroll 4
                for (Index v = 0; v < vectors; ++v) acc[i][v] += a_i * b_row[v];
            }
        }
        gemm_store_accumulators<T, Rows, vectors>(acc, alpha, beta, c, ldc, bias, relu);
    }

    // run<rows> for a runtime rows in [1, MR].
    template <int Rows = static_cast<int>(mr)>
    static void run_rows(Index rows, Index kc, const T* a, Index lda, const T* b, Index ldb, T alpha, T beta, T* c,
                         Index ldc, const T* bias, bool relu) {
        if constexpr (Rows > 1)
            if (rows < Rows) return run_rows<Rows - 1>(rows, kc, a, lda, b, ldb, alpha, beta, c, ldc, bias, relu);
        run<Rows>(kc, a, lda, b, ldb, alpha, beta, c, ldc, bias, relu);
    }
};

// Everything of one GEMM except where the packed blocks of op(B) come from.
template <typename T>
struct GemmProblem {
    Index m = 0, n = 0, k = 0;
    Transpose trans_a = Transpose::no;
    const T* a = nullptr;
    Index lda = 0;
    T alpha = T(1), beta = T(0);
    T* c = nullptr;
    Index ldc = 0;
    const GemmEpilogue<T>* epilogue = nullptr;  // nullptr: none
};

// The blocked loops over rows [row_begin, row_end) and columns
// [col_begin, col_end) of C (both starting at micro-tile boundaries), on this
// thread, with op(A) packed. block_of_b(pc, kc, jc, nc) returns the packed
// block of op(B) for depth [pc, pc + kc) and columns [jc, jc + nc).
template <typename T, typename BlockOfB>
void gemm_blocked_packed_a(const GemmProblem<T>& g, Index row_begin, Index row_end, Index col_begin, Index col_end,
                           const BlockOfB& block_of_b) {
    using Blocking = GemmBlocking<T>;
    const Index depth_step = gemm_depth_step<T>(g.k);
    const Index mc_max = std::min(Blocking::mc, gemm_round_up(row_end - row_begin, Blocking::mr));
    T* a_packed = gemm_thread_buffer<T, 0>(mc_max * depth_step);
    for (Index jc = col_begin; jc < col_end; jc += Blocking::nc) {
        const Index nc = std::min(Blocking::nc, col_end - jc);
        for (Index pc = 0; pc < g.k; pc += depth_step) {
            const Index kc = std::min(depth_step, g.k - pc);
            const T* b_packed = block_of_b(pc, kc, jc, nc);
            const T beta = pc == 0 ? g.beta : T(1);
            const GemmEpilogue<T>* epilogue = pc + kc == g.k ? g.epilogue : nullptr;
            const T* bias = epilogue && epilogue->bias ? epilogue->bias + jc : nullptr;
            for (Index ic = row_begin; ic < row_end; ic += Blocking::mc) {
                const Index mc = std::min(Blocking::mc, row_end - ic);
                gemm_pack_a(g.trans_a, g.a, g.lda, ic, mc, pc, kc, a_packed);
                gemm_macro_kernel(mc, nc, kc, g.alpha, a_packed, b_packed, beta, g.c + ic * g.ldc + jc, g.ldc, epilogue,
                                  bias);
            }
        }
    }
}

// Widest op(B) for which gemm reads op(A) in place. Packing A costs about as
// much as one pass of the micro-kernel over it, and is repaid once per
// NR-column panel of B; with few panels (a pointwise convolution's K = 128
// filters: 8 panels of 16 floats) the packing took 18-39% of the forward's
// time (perf, Zen 3; DenseNet201 1x1 shapes, c1x1_128_32_18), and the
// in-place kernel reads each A micro-panel from L1 for all the panels.
constexpr Index kGemmInPlaceAMaxColumns = 512;

// Whether gemm reads op(A) in place (gemm_blocked_in_place_a) rather than
// packing it: op(A) stored by rows, narrow C with at least as many rows as
// columns, and a kernel for it. The in-place loops read op(B) packed whole;
// with fewer rows (a dense layer's batch of 32 against 512 columns) packing A
// is cheap and packing the whole of B, written out and read back, is not:
// the dense forwards ran at 0.28-0.36x oneDNN's speed that way, against
// 0.45-0.61x packing both by blocks (AVX-512, 2 threads).
template <typename T>
bool gemm_reads_a_in_place(Transpose trans_a, Index m, Index n) {
    return GemmInPlaceAKernel<T>::available && trans_a == Transpose::no && n <= kGemmInPlaceAMaxColumns && m >= n;
}

// As gemm_blocked_packed_a, with op(A) read in place (gemm_reads_a_in_place),
// the loops turned around so that each A micro-panel (MR rows x one depth
// block, e.g. 6 x 224 floats = 5 KiB) stays in L1 while it meets every
// column panel of a depth block of B held in L2: for each block of NC
// columns (a depth block of B in half of L2), each block of MC rows (their C
// in a quarter of L2), each depth block, each micro-panel of A, each column
// panel. A micro-panel with fewer than MR rows (the last) is packed with
// zeros and goes through MicroKernel. block_of_b's blocks must stay valid
// while the loops run (a whole packed op(B)).
template <typename T, typename BlockOfB>
void gemm_blocked_in_place_a(const GemmProblem<T>& g, Index row_begin, Index row_end, Index col_begin,
                             Index col_end, const BlockOfB& block_of_b) {
    using Kernel = GemmInPlaceAKernel<T>;
    constexpr Index mr = Kernel::mr, nr = Kernel::nr;
    constexpr Index line_step = kGemmCacheLine / Index(sizeof(T));
    const Index depth_step = gemm_depth_step<T>(g.k);
    const Index nc_max = std::max(nr, kGemmL2Bytes / 2 / (depth_step * Index(sizeof(T))) / nr * nr);
    const Index mc_max = std::max(mr, kGemmL2Bytes / 4 / (std::min(nc_max, g.n) * Index(sizeof(T))) / mr * mr);
    T* edge_panel = gemm_thread_buffer<T, 0>(mr * depth_step);
    for (Index jc = col_begin; jc < col_end; jc += nc_max) {
        const Index nc = std::min(nc_max, col_end - jc);
        for (Index ic = row_begin; ic < row_end; ic += mc_max) {
            const Index mc_end = std::min(row_end, ic + mc_max);
            for (Index pc = 0; pc < g.k; pc += depth_step) {
                const Index kc = std::min(depth_step, g.k - pc);
                const T* b_packed = block_of_b(pc, kc, jc, nc);
                const T beta = pc == 0 ? g.beta : T(1);
                const GemmEpilogue<T>* epilogue = pc + kc == g.k ? g.epilogue : nullptr;
                const T* bias = epilogue && epilogue->bias ? epilogue->bias + jc : nullptr;
                for (Index ir = ic; ir < mc_end; ir += mr) {
                    const Index rows = std::min(mr, mc_end - ir);
                    const T* a_panel = g.a + ir * g.lda + pc;
                    if (rows < mr) gemm_pack_a(Transpose::no, g.a, g.lda, ir, rows, pc, kc, edge_panel);
                    // The next micro-panel of A is requested while this one is used.
                    for (Index i = mr; i < std::min(2 * mr, row_end - ir); ++i)
                        for (Index p = 0; p < kc; p += line_step) __builtin_prefetch(a_panel + i * g.lda + p);
                    for (Index jr = 0; jr < nc; jr += nr) {
                        const T* b_panel = b_packed + jr * kc;
                        const Index cols = std::min(nr, nc - jr);
                        T* c_tile = g.c + ir * g.ldc + jc + jr;
                        const T* tile_bias = bias ? bias + jr : nullptr;
                        if (rows == mr && cols == nr) {  // a whole tile: the epilogue in registers
                            Kernel::run(kc, a_panel, g.lda, b_panel, g.alpha, beta, c_tile, g.ldc, tile_bias,
                                        epilogue && epilogue->relu);
                            continue;
                        }
                        gemm_tile(rows, cols, beta, c_tile, g.ldc, epilogue, tile_bias,
                                  [&](T tile_beta, T* tile_c, Index tile_ldc) {
                                      if (rows == mr)
                                          Kernel::run(kc, a_panel, g.lda, b_panel, g.alpha, tile_beta, tile_c,
                                                      tile_ldc, nullptr, false);
                                      else
                                          MicroKernel<T>::run(kc, edge_panel, b_panel, g.alpha, tile_beta, tile_c,
                                                              tile_ldc);
                                  });
                    }
                }
            }
        }
    }
}

// Widest op(A) and op(B) for which gemm reads both in place
// (gemm_blocked_outer): a depth block of each (KC steps of m or n values)
// stays in L2 while every tile meets it.
constexpr Index kGemmOuterMaxRows = 64;
constexpr Index kGemmOuterMaxColumns = 128;

// Whether gemm reads both operands in place in the outer-product layout:
// op(A) transposed, op(B) not, whole column panels, small enough, and a kernel.
template <typename T>
bool gemm_reads_both_in_place(Transpose trans_a, Transpose trans_b, Index m, Index n) {
    return GemmOuterKernel<T>::available && trans_a == Transpose::yes && trans_b == Transpose::no &&
           n % GemmOuterKernel<T>::nr == 0 && m <= kGemmOuterMaxRows && n <= kGemmOuterMaxColumns;
}

// The loops over rows [row_begin, row_end) and columns [col_begin, col_end)
// of C (at micro-tile boundaries) with both operands read in place (B stored
// k x n with ldb): for each depth block, each column panel (its depth block
// of B, KC x NR, in L1), each row panel of MR (or fewer) rows.
template <typename T>
void gemm_blocked_outer(const GemmProblem<T>& g, const T* b, Index ldb, Index row_begin, Index row_end,
                        Index col_begin, Index col_end) {
    using Kernel = GemmOuterKernel<T>;
    const Index depth_step = gemm_depth_step<T>(g.k);
    for (Index pc = 0; pc < g.k; pc += depth_step) {
        const Index kc = std::min(depth_step, g.k - pc);
        const T beta = pc == 0 ? g.beta : T(1);
        const GemmEpilogue<T>* epilogue = pc + kc == g.k ? g.epilogue : nullptr;
        for (Index jr = col_begin; jr < col_end; jr += Kernel::nr) {
            const T* bias = epilogue && epilogue->bias ? epilogue->bias + jr : nullptr;
            for (Index ir = row_begin; ir < row_end; ir += Kernel::mr)
                Kernel::run_rows(std::min(Kernel::mr, row_end - ir), kc, g.a + pc * g.lda + ir, g.lda,
                                 b + pc * ldb + jr, ldb, g.alpha, beta, g.c + ir * g.ldc + jr, g.ldc, bias,
                                 epilogue && epilogue->relu);
        }
    }
}

// The blocked loops on this thread, A packed or read in place.
template <typename T, typename BlockOfB>
void gemm_blocked(const GemmProblem<T>& g, Index row_begin, Index row_end, Index col_begin, Index col_end,
                  const BlockOfB& block_of_b) {
    if (gemm_reads_a_in_place<T>(g.trans_a, g.m, g.n))
        gemm_blocked_in_place_a(g, row_begin, row_end, col_begin, col_end, block_of_b);
    else
        gemm_blocked_packed_a(g, row_begin, row_end, col_begin, col_end, block_of_b);
}

// C = epilogue(beta * C), for k == 0 or alpha == 0 (C not read when beta == 0).
template <typename T>
void gemm_scale_only(const GemmProblem<T>& g) {
    for (Index i = 0; i < g.m; ++i) {
        T* row = g.c + i * g.ldc;
        if (g.beta == T(0))
            std::fill(row, row + g.n, T(0));
        else if (g.beta != T(1))
            for (Index j = 0; j < g.n; ++j) row[j] *= g.beta;
    }
    if (g.epilogue) gemm_apply_epilogue(*g.epilogue, g.epilogue->bias, g.m, g.n, g.c, g.ldc);
}

// Chunks to cut one GEMM into, at most max_parts: 1 inside a parallel region
// or for small problems.
inline int gemm_part_count(Index m, Index n, Index k, Index units, int max_parts) {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
#endif
    const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    const double by_work = std::max(1.0, work / kGemmMinWorkPerThread);
    return static_cast<int>(
        std::min<double>({static_cast<double>(max_parts), by_work, static_cast<double>(units)}));
}

// The most chunks gemm_run cuts C into (before the work limit): several per
// thread (chunks_per_team()) when op(A) is read in place from an op(B) packed
// whole (b_whole), so that chunks pack nothing; otherwise one per thread, as
// each chunk packs its blocks of op(A) and op(B). (Chunks of at least MC rows
// reading one op(B) packed whole by all threads ran 1024^3 at 140-159
// GFLOP/s against 155-172 with a copy of each block per thread, 2 threads.)
template <typename T>
int gemm_max_parts(Index m, Index n, Transpose trans_a, bool b_whole) {
    return b_whole && gemm_reads_a_in_place<T>(trans_a, m, n) ? chunks_per_team() : num_threads();
}

// Runs the problem, cut by rows or by columns at micro-tile boundaries (the
// same tiles whatever the cut) into at most max_parts chunks that the
// threads share: blocked(row_begin, row_end, col_begin, col_end) runs the
// loops over one chunk.
template <typename T, typename Blocked>
void gemm_run(const GemmProblem<T>& g, int max_parts, const Blocked& blocked) {
    if (g.m == 0 || g.n == 0) return;
    if (g.k == 0 || g.alpha == T(0)) {
        gemm_scale_only(g);
        return;
    }
    constexpr Index mr = GemmBlocking<T>::mr, nr = GemmBlocking<T>::nr;
    const Index row_units = (g.m + mr - 1) / mr, col_units = (g.n + nr - 1) / nr;
    const bool by_rows = row_units >= col_units;
    const int parts = gemm_part_count(g.m, g.n, g.k, by_rows ? row_units : col_units, max_parts);
    if (parts <= 1) {
        blocked(Index(0), g.m, Index(0), g.n);
        return;
    }
    parallel_chunks(by_rows ? row_units : col_units, parts, [&](int, Index first, Index last) {
        if (by_rows)
            blocked(first * mr, std::min(g.m, last * mr), Index(0), g.n);
        else
            blocked(Index(0), g.m, first * nr, std::min(g.n, last * nr));
    });
}

// Checks a size argument.
inline void gemm_check_size(const char* op, const char* name, Index value) {
    BCNN_CHECK(value >= 0, op << ": " << name << " = " << value << " is negative");
}

// Checks a stored operand: rows x cols with leading dimension ld (>= cols), not null unless empty.
template <typename T>
void gemm_check_operand(const char* op, const char* name, const char* ld_name, const T* data, Index rows, Index cols,
                        Index ld) {
    BCNN_CHECK(ld >= cols, op << ": " << ld_name << " = " << ld << " is smaller than the width " << cols << " of "
                              << name << " (stored " << rows << " x " << cols << ")");
    BCNN_CHECK(data != nullptr || rows == 0 || cols == 0,
               op << ": " << name << " is null but stores " << rows << " x " << cols << " values");
}

// The whole of op(B) (k x n) packed: depth block after depth block (gemm's
// depth steps), each NR-column micro-panels of round_up(n, NR) columns; the
// block for depth [pc, pc + kc) from column jc (a multiple of NR) on is at
// gemm_whole_b_block(out, round_up(n, NR), pc, kc, jc).
// The depth blocks are packed in parallel (outside a parallel region) when
// op(B) has at least kGemmParallelPackValues values: a dense layer's 4096 x
// 512 weights, packed by one thread while the other waited, took half of its
// forward (batch 32).
constexpr Index kGemmParallelPackValues = Index(1) << 16;

template <typename T>
void gemm_pack_b_whole(Transpose trans_b, const T* b, Index ldb, Index k, Index n, T* out) {
    if (k == 0) return;
    const Index padded_n = gemm_round_up(n, GemmBlocking<T>::nr);
    const Index depth_step = gemm_depth_step<T>(k), blocks = (k + depth_step - 1) / depth_step;
    const auto pack_block = [&](Index block) {
        const Index pc = block * depth_step;
        gemm_pack_b(trans_b, b, ldb, pc, std::min(depth_step, k - pc), Index(0), n, out + pc * padded_n);
    };
    if (k * n >= kGemmParallelPackValues)
        parallel_for(0, blocks, pack_block);
    else
        for (Index block = 0; block < blocks; ++block) pack_block(block);
}

template <typename T>
const T* gemm_whole_b_block(const T* packed, Index padded_n, Index pc, Index kc, Index jc) {
    return packed + pc * padded_n + jc * kc;
}

}  // namespace detail

// op(B) (k x n) packed once in gemm's layout, for many products with it.
// Immutable after construction: any number of threads may use it at once.
template <typename T>
class PackedB {
public:
    PackedB() = default;
    // Packs op(B): B stored k x n with ldb, or n x k (trans_b == yes).
    PackedB(Transpose trans_b, Index k, Index n, const T* b, Index ldb) : k_(k), n_(n) {
        const char* op = "pack_b";
        detail::gemm_check_size(op, "k", k);
        detail::gemm_check_size(op, "n", n);
        const bool trans = trans_b == Transpose::yes;
        detail::gemm_check_operand(op, "B", "ldb", b, trans ? n : k, trans ? k : n, ldb);
        padded_n_ = detail::gemm_round_up(n, detail::GemmBlocking<T>::nr);
        data_.reserve(std::max<Index>(1, k * padded_n_));
        detail::gemm_pack_b_whole(trans_b, b, ldb, k, n, data_.data());
    }

    Index k() const { return k_; }
    Index n() const { return n_; }

    // The packed block for depth [pc, pc + kc) (one of gemm's depth blocks)
    // from column jc (a multiple of NR) on.
    const T* block(Index pc, Index kc, Index jc) const {
        return detail::gemm_whole_b_block(data_.data(), padded_n_, pc, kc, jc);
    }

private:
    Index k_ = 0, n_ = 0, padded_n_ = 0;
    detail::GemmAlignedArray<T> data_;
};

// op(B) (k x n) packed for gemm(trans_a, m, a, lda, packed, ...).
template <typename T>
PackedB<T> pack_b(Transpose trans_b, Index k, Index n, const T* b, Index ldb) {
    return PackedB<T>(trans_b, k, n, b, ldb);
}

// C (m x n, ldc) = epilogue(alpha * op(A) * op(B) + beta * C); see the top of the file.
template <typename T>
void gemm(Transpose trans_a, Transpose trans_b, Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b,
          Index ldb, T beta, T* c, Index ldc, const GemmEpilogue<T>& epilogue = {}) {
    const char* op = "gemm";
    detail::gemm_check_size(op, "m", m);
    detail::gemm_check_size(op, "n", n);
    detail::gemm_check_size(op, "k", k);
    const bool ta = trans_a == Transpose::yes, tb = trans_b == Transpose::yes;
    detail::gemm_check_operand(op, "A", "lda", a, ta ? k : m, ta ? m : k, lda);
    detail::gemm_check_operand(op, "B", "ldb", b, tb ? n : k, tb ? k : n, ldb);
    detail::gemm_check_operand<T>(op, "C", "ldc", c, m, n, ldc);
    const detail::GemmProblem<T> g{
        m, n, k, trans_a, a, lda, alpha, beta, c, ldc, epilogue.empty() ? nullptr : &epilogue};
    const bool computes = m > 0 && n > 0 && k > 0 && alpha != T(0);
    if (computes && detail::gemm_reads_both_in_place<T>(trans_a, trans_b, m, n)) {
        detail::gemm_run(g, chunks_per_team(), [&](Index r0, Index r1, Index c0, Index c1) {
            detail::gemm_blocked_outer(g, b, ldb, r0, r1, c0, c1);
        });
        return;
    }
    if (computes && detail::gemm_reads_a_in_place<T>(trans_a, m, n)) {
        // The in-place loops visit each depth block of op(B) once per block of
        // rows: op(B) is packed whole, once, for every chunk and thread.
        const Index padded_n = detail::gemm_round_up(n, detail::GemmBlocking<T>::nr);
        T* packed = detail::gemm_thread_buffer<T, 1>(k * padded_n);
        detail::gemm_pack_b_whole(trans_b, b, ldb, k, n, packed);
        const auto whole_block = [&](Index pc, Index kc, Index jc, Index) {
            return detail::gemm_whole_b_block(static_cast<const T*>(packed), padded_n, pc, kc, jc);
        };
        const int parts = detail::gemm_max_parts<T>(m, n, trans_a, true);
        detail::gemm_run(g, parts, [&](Index r0, Index r1, Index c0, Index c1) {
            detail::gemm_blocked(g, r0, r1, c0, c1, whole_block);
        });
        return;
    }
    const auto packed_block = [&](Index pc, Index kc, Index jc, Index nc) {
        T* packed = detail::gemm_thread_buffer<T, 1>(kc * detail::gemm_round_up(nc, detail::GemmBlocking<T>::nr));
        detail::gemm_pack_b(trans_b, b, ldb, pc, kc, jc, nc, packed);
        return static_cast<const T*>(packed);
    };
    detail::gemm_run(g, num_threads(), [&](Index r0, Index r1, Index c0, Index c1) {
        detail::gemm_blocked(g, r0, r1, c0, c1, packed_block);
    });
}

// C (m x n, ldc) = epilogue(alpha * op(A) * op(B) + beta * C) with op(B) pre-packed (k x n).
template <typename T>
void gemm(Transpose trans_a, Index m, const T* a, Index lda, const PackedB<T>& b, T alpha, T beta, T* c, Index ldc,
          const GemmEpilogue<T>& epilogue = {}) {
    const char* op = "gemm";
    const Index n = b.n(), k = b.k();
    detail::gemm_check_size(op, "m", m);
    const bool ta = trans_a == Transpose::yes;
    detail::gemm_check_operand(op, "A", "lda", a, ta ? k : m, ta ? m : k, lda);
    detail::gemm_check_operand<T>(op, "C", "ldc", c, m, n, ldc);
    const detail::GemmProblem<T> g{
        m, n, k, trans_a, a, lda, alpha, beta, c, ldc, epilogue.empty() ? nullptr : &epilogue};
    const auto block = [&](Index pc, Index kc, Index jc, Index) { return b.block(pc, kc, jc); };
    detail::gemm_run(g, detail::gemm_max_parts<T>(m, n, trans_a, true), [&](Index r0, Index r1, Index c0, Index c1) {
        detail::gemm_blocked(g, r0, r1, c0, c1, block);
    });
}

}  // namespace cpu
}  // namespace bcnn
