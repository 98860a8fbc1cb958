// gemm: every transpose / alpha / beta combination, sizes around and across
// the micro-tile and cache-block edges, strided operands, the epilogue, the
// pre-packed B path, threading, and argument checks; against a double loop.

#include <catch2/catch.hpp>

#include <bcnn/kernels/cpu/gemm.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace bcnn;
using cpu::Transpose;

namespace {

// A binary built for an instruction set this CPU lacks would die of SIGILL
// somewhere in the micro-kernel; say so instead, before any test runs.
struct IsaGuard {
    IsaGuard() {
        __builtin_cpu_init();
#if defined(__AVX512F__)
        if (!__builtin_cpu_supports("avx512f")) fail("AVX-512 (avx512f)");
#elif defined(__AVX2__) && defined(__FMA__)
        if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) fail("AVX2 + FMA");
#endif
    }
    [[noreturn]] static void fail(const char* isa) {
        std::fprintf(stderr,
                     "test_gemm: built for %s (the -march flags), which this CPU lacks: the gemm micro-kernel "
                     "cannot run here; rebuild with -march for this machine\n",
                     isa);
        std::exit(2);
    }
};
const IsaGuard isa_guard;

template <typename T>
using Blocking = cpu::detail::GemmBlocking<T>;

// A shape and the scalars of one call. pad_*: extra columns beyond each stored width.
struct Case {
    Transpose trans_a = Transpose::no, trans_b = Transpose::no;
    Index m = 1, n = 1, k = 1;
    double alpha = 1, beta = 0;
    Index pad_a = 0, pad_b = 0, pad_c = 0;
    bool bias = false, relu = false;
};

const Transpose kTransposes[] = {Transpose::no, Transpose::yes};
constexpr double kSentinel = -987.25;  // C's padding columns must keep it

// Operands of one case with random values; C's padding holds kSentinel, and
// when beta == 0 its inside holds NaN (gemm must not read it).
template <typename T>
struct Operands {
    Case cs;
    Index a_rows, a_cols, lda, b_rows, b_cols, ldb, ldc;
    std::vector<T> a, b, c, bias;

    Operands(const Case& cs_, std::uint64_t seed) : cs(cs_) {
        const bool ta = cs.trans_a == Transpose::yes, tb = cs.trans_b == Transpose::yes;
        a_rows = ta ? cs.k : cs.m, a_cols = ta ? cs.m : cs.k, lda = a_cols + cs.pad_a;
        b_rows = tb ? cs.n : cs.k, b_cols = tb ? cs.k : cs.n, ldb = b_cols + cs.pad_b;
        ldc = cs.n + cs.pad_c;
        std::mt19937_64 rng(seed);
        std::uniform_real_distribution<double> uniform(-1.0, 1.0);
        auto fill = [&](std::vector<T>& v, Index size) {
            v.resize(static_cast<std::size_t>(size));
            for (T& x : v) x = static_cast<T>(uniform(rng));
        };
        fill(a, a_rows * lda);
        fill(b, b_rows * ldb);
        fill(c, cs.m * ldc);
        fill(bias, cs.n);
        for (Index i = 0; i < cs.m; ++i)
            for (Index j = 0; j < ldc; ++j)
                if (j >= cs.n)
                    c[i * ldc + j] = T(kSentinel);
                else if (cs.beta == 0)
                    c[i * ldc + j] = std::numeric_limits<T>::quiet_NaN();
    }

    T op_a(Index i, Index p) const { return cs.trans_a == Transpose::yes ? a[p * lda + i] : a[i * lda + p]; }
    T op_b(Index p, Index j) const { return cs.trans_b == Transpose::yes ? b[j * ldb + p] : b[p * ldb + j]; }
    cpu::GemmEpilogue<T> epilogue() const { return {cs.bias ? bias.data() : nullptr, cs.relu}; }

    std::vector<T> run_plain() const {
        std::vector<T> out = c;
        cpu::gemm(cs.trans_a, cs.trans_b, cs.m, cs.n, cs.k, T(cs.alpha), a.data(), lda, b.data(), ldb, T(cs.beta),
                  out.data(), ldc, epilogue());
        return out;
    }

    std::vector<T> run_packed() const {
        const cpu::PackedB<T> packed = cpu::pack_b(cs.trans_b, cs.k, cs.n, b.data(), ldb);
        std::vector<T> out = c;
        cpu::gemm(cs.trans_a, cs.m, a.data(), lda, packed, T(cs.alpha), T(cs.beta), out.data(), ldc, epilogue());
        return out;
    }

    // Checks `got` against the double reference, element by element, within
    // (k + 4) unit roundoffs of T times the magnitude of the terms (the
    // worst-case rounding error of any summation order); the padding exactly.
    void check(const std::vector<T>& got, double slack = 1.0) const {
        const double unit = std::numeric_limits<T>::epsilon() / 2;
        for (Index i = 0; i < cs.m; ++i)
            for (Index j = 0; j < ldc; ++j) {
                const double value = got[i * ldc + j];
                if (j >= cs.n) {
                    if (value != kSentinel) FAIL("padding column " << j << " of row " << i << " changed: " << value);
                    continue;
                }
                double sum = 0, magnitude = 0;
                for (Index p = 0; p < cs.k; ++p) {
                    sum += double(op_a(i, p)) * double(op_b(p, j));
                    magnitude += std::abs(double(op_a(i, p)) * double(op_b(p, j)));
                }
                double expected = cs.alpha * sum;
                magnitude *= std::abs(cs.alpha);
                if (cs.beta != 0) {
                    expected += cs.beta * double(c[i * ldc + j]);
                    magnitude += std::abs(cs.beta * double(c[i * ldc + j]));
                }
                if (cs.bias) {
                    expected += double(bias[j]);
                    magnitude += std::abs(double(bias[j]));
                }
                if (cs.relu) expected = std::max(expected, 0.0);
                const double tolerance = slack * double(cs.k + 4) * unit * magnitude;
                if (!(std::abs(value - expected) <= tolerance))
                    FAIL("C(" << i << ", " << j << ") = " << value << ", expected " << expected << " +- " << tolerance
                              << " (m " << cs.m << " n " << cs.n << " k " << cs.k << " trans_a "
                              << (cs.trans_a == Transpose::yes) << " trans_b " << (cs.trans_b == Transpose::yes)
                              << " alpha " << cs.alpha << " beta " << cs.beta << ")");
            }
    }
};

// Bitwise equality (NaN-safe, empty-safe).
template <typename T>
bool same_bits(const std::vector<T>& x, const std::vector<T>& y) {
    return x.size() == y.size() && (x.empty() || std::memcmp(x.data(), y.data(), x.size() * sizeof(T)) == 0);
}

template <typename T>
void check_case(const Case& cs, std::uint64_t seed) {
    const Operands<T> ops(cs, seed);
    const std::vector<T> plain = ops.run_plain();
    ops.check(plain);
    // The pre-packed path runs the same blocks through the same kernel: bit-identical;
    // unless plain gemm reads both operands in place (another kernel): then
    // both are checked against the reference.
    const std::vector<T> packed = ops.run_packed();
    if (cpu::detail::gemm_reads_both_in_place<T>(cs.trans_a, cs.trans_b, cs.m, cs.n))
        ops.check(packed);
    else
        CHECK(same_bits(plain, packed));
}

// Rows, columns and depths around the micro-tile and block edges of T.
template <typename T>
std::vector<Index> edge_rows() {
    const Index mr = Blocking<T>::mr;
    return {1, 2, mr - 1, mr, mr + 1, 2 * mr + 1, 17, 33};
}
template <typename T>
std::vector<Index> edge_cols() {
    const Index nr = Blocking<T>::nr;
    return {1, 2, nr - 1, nr, nr + 1, 2 * nr + 3, 33};
}
template <typename T>
std::vector<Index> edge_depths() {
    const Index kc = Blocking<T>::kc;
    return {1, 2, 3, 17, kc - 1, kc, kc + 1, 2 * kc + 3};
}

}  // namespace

TEMPLATE_TEST_CASE("gemm: every transpose, alpha and beta", "[kernels][gemm]", float, double) {
    const Index mr = Blocking<TestType>::mr, nr = Blocking<TestType>::nr;
    const Index shapes[][3] = {{1, 1, 1}, {mr - 1, nr + 1, 17}, {mr + 1, nr - 1, 33}, {17, 33, 2}, {33, 17, 257}};
    std::uint64_t seed = 1;
    for (Transpose ta : kTransposes)
        for (Transpose tb : kTransposes)
            for (double alpha : {0.0, 1.0, -0.7})
                for (double beta : {0.0, 1.0, 0.5})
                    for (const auto& s : shapes) {
                        Case cs;
                        cs.trans_a = ta, cs.trans_b = tb, cs.m = s[0], cs.n = s[1], cs.k = s[2];
                        cs.alpha = alpha, cs.beta = beta, cs.pad_a = 1, cs.pad_b = 2, cs.pad_c = 3;
                        check_case<TestType>(cs, seed++);
                    }
}

TEMPLATE_TEST_CASE("gemm: sizes around the micro-tile edges", "[kernels][gemm]", float, double) {
    std::uint64_t seed = 100;
    int variant = 0;
    for (Index m : edge_rows<TestType>())
        for (Index n : edge_cols<TestType>()) {
            Case cs;
            cs.trans_a = kTransposes[variant % 2], cs.trans_b = kTransposes[(variant / 2) % 2];
            ++variant;
            cs.m = m, cs.n = n, cs.k = 5, cs.alpha = 1.3, cs.beta = 0.5, cs.pad_c = 1;
            check_case<TestType>(cs, seed++);
        }
}

TEMPLATE_TEST_CASE("gemm: depths across the depth blocks", "[kernels][gemm]", float, double) {
    const Index mr = Blocking<TestType>::mr, nr = Blocking<TestType>::nr;
    std::uint64_t seed = 200;
    for (Index k : edge_depths<TestType>())
        for (Transpose ta : kTransposes)
            for (Transpose tb : kTransposes) {
                Case cs;
                cs.trans_a = ta, cs.trans_b = tb, cs.m = mr + 1, cs.n = nr + 1, cs.k = k;
                cs.alpha = -1.1, cs.beta = 1.0, cs.pad_a = 3, cs.pad_b = 1;
                check_case<TestType>(cs, seed++);
            }
}

TEMPLATE_TEST_CASE("gemm: rows and columns across the cache blocks", "[kernels][gemm]", float, double) {
    const Index mr = Blocking<TestType>::mr, nr = Blocking<TestType>::nr;
    const Index mc = Blocking<TestType>::mc, nc = Blocking<TestType>::nc, kc = Blocking<TestType>::kc;
    Case rows;  // more rows than one MC block, two depth blocks
    rows.trans_a = Transpose::yes, rows.m = mc + mr + 1, rows.n = nr + 3, rows.k = kc + 1, rows.beta = 0.5;
    check_case<TestType>(rows, 300);
    Case cols;  // more columns than one NC block
    cols.trans_b = Transpose::yes, cols.m = 3, cols.n = nc + nr + 3, cols.k = 2, cols.pad_b = 5, cols.pad_c = 2;
    check_case<TestType>(cols, 301);
}

TEMPLATE_TEST_CASE("gemm: op(A) read in place across its row, column and depth blocks", "[kernels][gemm]", float,
                   double) {
    // gemm_blocked_in_place_a: more rows than one of its row blocks and more
    // columns than one of its column blocks (both at most 256 here), three
    // depth blocks, partial micro-panels of A and B, strided A and C; then
    // both sides of the widest op(B) that it takes.
    const Index mr = Blocking<TestType>::mr, kc = Blocking<TestType>::kc;
    const Index widest = cpu::detail::kGemmInPlaceAMaxColumns;
    REQUIRE(cpu::detail::gemm_reads_a_in_place<TestType>(Transpose::no, 300, 300) ==
            cpu::detail::GemmInPlaceAKernel<TestType>::available);
    CHECK_FALSE(cpu::detail::gemm_reads_a_in_place<TestType>(Transpose::yes, 300, 300));
    CHECK_FALSE(cpu::detail::gemm_reads_a_in_place<TestType>(Transpose::no, 299, 300));  // fewer rows than columns
    CHECK_FALSE(cpu::detail::gemm_reads_a_in_place<TestType>(Transpose::no, widest + 1, widest + 1));
    std::uint64_t seed = 350;
    for (Transpose tb : kTransposes) {
        Case blocks;
        blocks.trans_b = tb, blocks.m = 300 + mr + 1, blocks.n = 300, blocks.k = 2 * kc + 3;
        blocks.alpha = 0.7, blocks.beta = 0.5, blocks.pad_a = 5, blocks.pad_b = 2, blocks.pad_c = 3;
        blocks.bias = true, blocks.relu = tb == Transpose::yes;  // whole tiles take the epilogue in registers
        check_case<TestType>(blocks, seed++);
    }
    for (Index n : {widest, widest + 1}) {
        Case edge;
        edge.m = widest + 2 * mr - 1, edge.n = n, edge.k = 7, edge.alpha = -1.5, edge.beta = 1.0, edge.pad_a = 1;
        edge.pad_c = 1, edge.relu = true;
        CHECK(cpu::detail::gemm_reads_a_in_place<TestType>(Transpose::no, edge.m, n) ==
              (n == widest && cpu::detail::GemmInPlaceAKernel<TestType>::available));
        check_case<TestType>(edge, seed++);
    }
    Case narrow;  // fewer rows than one micro-panel (and columns): only the packed edge panel
    narrow.m = mr - 1, narrow.n = mr - 1, narrow.k = kc + 1, narrow.beta = -0.5, narrow.bias = true;
    CHECK(cpu::detail::gemm_reads_a_in_place<TestType>(Transpose::no, narrow.m, narrow.n) ==
          cpu::detail::GemmInPlaceAKernel<TestType>::available);
    check_case<TestType>(narrow, seed++);
}

TEMPLATE_TEST_CASE("gemm: both operands read in place in a weights gradient's layout", "[kernels][gemm]", float,
                   double) {
    // gemm_blocked_outer: op(A) transposed and op(B) not, whole column panels,
    // at most kGemmOuterMaxRows x kGemmOuterMaxColumns; rows around the
    // micro-panel (the kernel reads only a partial panel's own rows), one to
    // three depth blocks, strided operands, every scalar and the epilogue.
    using cpu::detail::GemmOuterKernel;
    const Index mr = Blocking<TestType>::mr, nr = Blocking<TestType>::nr, kc = Blocking<TestType>::kc;
    const Index rows = cpu::detail::kGemmOuterMaxRows, cols = cpu::detail::kGemmOuterMaxColumns;
    const auto reads_both = [](Transpose ta, Transpose tb, Index m, Index n) {
        return cpu::detail::gemm_reads_both_in_place<TestType>(ta, tb, m, n);
    };
    REQUIRE(reads_both(Transpose::yes, Transpose::no, rows, cols) == GemmOuterKernel<TestType>::available);
    CHECK_FALSE(reads_both(Transpose::no, Transpose::no, rows, cols));
    CHECK_FALSE(reads_both(Transpose::yes, Transpose::yes, rows, cols));
    CHECK_FALSE(reads_both(Transpose::yes, Transpose::no, rows + 1, cols));
    CHECK_FALSE(reads_both(Transpose::yes, Transpose::no, rows, cols + nr));
    CHECK_FALSE(reads_both(Transpose::yes, Transpose::no, rows, nr + 1));
    std::uint64_t seed = 370;
    for (const Index m : {Index(1), mr - 1, mr, mr + 1, 2 * mr + 3, rows})
        for (const Index n : {nr, 2 * nr, cols})
            for (const Index k : {Index(1), kc + 5, 3 * kc}) {
                Case cs;
                cs.trans_a = Transpose::yes, cs.m = m, cs.n = n, cs.k = k;
                cs.alpha = seed % 2 ? 0.75 : 1.0, cs.beta = seed % 3 == 0 ? 0.0 : -0.5;
                cs.pad_a = seed % 2 ? 3 : 0, cs.pad_b = 1, cs.pad_c = 2;
                cs.bias = seed % 2 == 0, cs.relu = seed % 4 < 2;
                check_case<TestType>(cs, seed++);
            }
    // Cut into chunks of rows shared by 2 threads: the same bits as 1 thread.
    Case threaded;
    threaded.trans_a = Transpose::yes, threaded.m = rows, threaded.n = 2 * nr, threaded.k = 3001, threaded.beta = 0.5;
    const Operands<TestType> ops(threaded, seed);
    const int saved_threads = num_threads();
    set_num_threads(1);
    const std::vector<TestType> one = ops.run_plain();
    set_num_threads(2);
    const std::vector<TestType> two = ops.run_plain();
    set_num_threads(saved_threads);
    ops.check(one);
    CHECK(same_bits(one, two));
}

TEST_CASE("gemm: which kernels can read op(A) in place", "[kernels][gemm]") {
    // The vector registers hold the accumulators, a row of B and a broadcast
    // for AVX-512 (32 registers: float 14 x 32 in 31, double 4 x 8), AVX2
    // (16: float 6 x 16, double 4 x 8) and SSE2 float (4 x 8); not for SSE2
    // double (4 x 8 in 16 accumulators).
#if defined(__AVX__)  // AVX2 and AVX-512
    const bool in_place_float = true, in_place_double = true;
#else
    const bool in_place_float = true, in_place_double = false;
#endif
    CHECK(cpu::detail::GemmInPlaceAKernel<float>::available == in_place_float);
    CHECK(cpu::detail::GemmInPlaceAKernel<double>::available == in_place_double);
}

TEMPLATE_TEST_CASE("gemm: k = 0 scales C, m = 0 or n = 0 touches nothing", "[kernels][gemm]", float, double) {
    for (double beta : {0.0, 1.0, -2.0})
        for (bool relu : {false, true}) {
            Case cs;
            cs.m = 7, cs.n = 19, cs.k = 0, cs.alpha = 1.5, cs.beta = beta, cs.pad_c = 2, cs.bias = true, cs.relu = relu;
            check_case<TestType>(cs, 400);
            // k == 0: A and B are never read, so they may be null.
            Operands<TestType> ops(cs, 401);
            std::vector<TestType> out = ops.c;
            cpu::gemm(Transpose::no, Transpose::no, cs.m, cs.n, Index(0), TestType(1.5),
                      static_cast<TestType*>(nullptr), Index(0), static_cast<TestType*>(nullptr), cs.n, TestType(beta),
                      out.data(), ops.ldc, ops.epilogue());
            ops.check(out);
        }
    for (auto [m, n] : {std::pair<Index, Index>{0, 5}, {5, 0}, {0, 0}}) {
        Case cs;
        cs.m = m, cs.n = n, cs.k = 4, cs.beta = 0.5, cs.pad_c = 3, cs.bias = true, cs.relu = true;
        check_case<TestType>(cs, 402);
    }
}

TEMPLATE_TEST_CASE("gemm: wide leading dimensions leave the padding untouched", "[kernels][gemm]", float, double) {
    std::uint64_t seed = 500;
    for (Transpose ta : kTransposes)
        for (Transpose tb : kTransposes)
            for (double beta : {0.0, 0.5}) {
                Case cs;
                cs.trans_a = ta, cs.trans_b = tb, cs.m = 23, cs.n = 37, cs.k = 29, cs.beta = beta;
                cs.pad_a = 11, cs.pad_b = 40, cs.pad_c = 17;
                check_case<TestType>(cs, seed++);
            }
}

TEMPLATE_TEST_CASE("gemm: bias and relu epilogue", "[kernels][gemm]", float, double) {
    std::uint64_t seed = 600;
    for (bool bias : {false, true})
        for (bool relu : {false, true})
            for (double beta : {0.0, 1.0}) {
                Case cs;
                cs.trans_b = Transpose::yes, cs.m = 41, cs.n = 35, cs.k = Blocking<TestType>::kc + 7;
                cs.alpha = 0.8, cs.beta = beta, cs.pad_c = 4, cs.bias = bias, cs.relu = relu;
                const Operands<TestType> ops(cs, seed++);
                const std::vector<TestType> out = ops.run_plain();
                ops.check(out);
                if (!relu) continue;
                Index zeros = 0;  // the relu had something to do
                for (Index i = 0; i < cs.m * ops.ldc; ++i) zeros += out[i] == TestType(0);
                CHECK(zeros > cs.m * cs.n / 4);
            }
}

TEST_CASE("gemm: the micro-kernel follows the compile flags", "[kernels][gemm]") {
#if defined(__AVX512F__)
    const Index mr = 14, nr = 32;
#elif defined(__AVX2__) && defined(__FMA__)
    const Index mr = 6, nr = 16;
#else
    const Index mr = 4, nr = 8;
#endif
    CHECK(Blocking<float>::mr == mr);
    CHECK(Blocking<float>::nr == nr);
    CHECK(Blocking<double>::mr == 4);
    CHECK(Blocking<double>::nr == 8);
}

TEMPLATE_TEST_CASE("gemm: same bits with 1 or 2 threads, inside or outside a parallel region", "[kernels][gemm]", float,
                   double) {
    const int saved_threads = num_threads();
    // Large enough to be split across 2 threads, with edge tiles on both sides;
    // 301 x 300 and 301 x 611 values of op(B): packed by both threads
    // (kGemmParallelPackValues), whole for the in-place loops (n = 300) and by
    // PackedB. op(A) read in place in 16 chunks (n = 45, 300; where the
    // kernel has an in-place variant), packed in 2 (611).
    for (auto [m, n] : {std::pair<Index, Index>{203, 45}, {13, 611}, {301, 300}}) {
        Case cs;
        cs.trans_b = Transpose::yes, cs.m = m, cs.n = n, cs.k = 301, cs.alpha = 0.9, cs.beta = 0.25;
        cs.pad_c = 3, cs.bias = true, cs.relu = true;
        const Operands<TestType> ops(cs, 700);
        set_num_threads(1);
        const std::vector<TestType> one = ops.run_plain(), one_packed = ops.run_packed();
        set_num_threads(2);
        REQUIRE(cpu::detail::gemm_part_count(cs.m, cs.n, cs.k, 1000, num_threads()) == 2);  // big enough to be split
        const bool in_place = cpu::detail::gemm_reads_a_in_place<TestType>(Transpose::no, m, n);
        CHECK(in_place == (n <= 300 && m >= n && cpu::detail::GemmInPlaceAKernel<TestType>::available));
        CHECK(cpu::detail::gemm_max_parts<TestType>(m, n, Transpose::no, true) == (in_place ? 16 : 2));
        CHECK(cpu::detail::gemm_max_parts<TestType>(m, n, Transpose::no, false) == 2);
        const std::vector<TestType> two = ops.run_plain(), two_packed = ops.run_packed();
        std::vector<TestType> inside[2], inside_packed[2];
#ifdef _OPENMP
#pragma omp parallel num_threads(2)
        {
            const int t = omp_get_thread_num();
            inside[t] = ops.run_plain();
            inside_packed[t] = ops.run_packed();
        }
#else
        inside[0] = inside[1] = ops.run_plain();
        inside_packed[0] = inside_packed[1] = ops.run_packed();
#endif
        set_num_threads(saved_threads);
        ops.check(one);
        using Result = const std::vector<TestType>*;
        for (Result other : {Result(&one_packed), Result(&two), Result(&two_packed), Result(&inside[0]),
                             Result(&inside[1]), Result(&inside_packed[0]), Result(&inside_packed[1])})
            CHECK(same_bits(*other, one));
    }
}

TEST_CASE("gemm: bad arguments are rejected", "[kernels][gemm]") {
    std::vector<float> a(64, 1.0f), b(64, 1.0f), c(64, 0.0f);
    const auto call = [&](Transpose ta, Transpose tb, Index m, Index n, Index k, Index lda, Index ldb, Index ldc) {
        cpu::gemm(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), ldc);
    };
    const Transpose no = Transpose::no, yes = Transpose::yes;
    CHECK_THROWS_WITH(call(no, no, -1, 2, 2, 2, 2, 2), Catch::Contains("gemm: m = -1 is negative"));
    CHECK_THROWS_WITH(call(no, no, 2, -3, 2, 2, 2, 2), Catch::Contains("gemm: n = -3 is negative"));
    CHECK_THROWS_WITH(call(no, no, 2, 2, -4, 2, 2, 2), Catch::Contains("gemm: k = -4 is negative"));
    CHECK_THROWS_WITH(call(no, no, 3, 4, 5, 4, 4, 4),
                      Catch::Contains("gemm: lda = 4 is smaller than the width 5 of A (stored 3 x 5)"));
    CHECK_THROWS_WITH(call(yes, no, 3, 4, 5, 2, 4, 4),
                      Catch::Contains("gemm: lda = 2 is smaller than the width 3 of A (stored 5 x 3)"));
    CHECK_THROWS_WITH(call(no, no, 3, 4, 5, 5, 3, 4),
                      Catch::Contains("gemm: ldb = 3 is smaller than the width 4 of B (stored 5 x 4)"));
    CHECK_THROWS_WITH(call(no, yes, 3, 4, 5, 5, 4, 4),
                      Catch::Contains("gemm: ldb = 4 is smaller than the width 5 of B (stored 4 x 5)"));
    CHECK_THROWS_WITH(call(no, no, 3, 4, 5, 5, 4, 3),
                      Catch::Contains("gemm: ldc = 3 is smaller than the width 4 of C (stored 3 x 4)"));
    CHECK_THROWS_WITH(cpu::gemm(no, no, Index(2), Index(2), Index(2), 1.0f, static_cast<const float*>(nullptr),
                                Index(2), b.data(), Index(2), 0.0f, c.data(), Index(2)),
                      Catch::Contains("gemm: A is null but stores 2 x 2 values"));
    CHECK_THROWS_WITH(cpu::pack_b(no, Index(3), Index(4), b.data(), Index(2)),
                      Catch::Contains("pack_b: ldb = 2 is smaller than the width 4 of B (stored 3 x 4)"));
    CHECK_THROWS_WITH(cpu::pack_b(no, Index(-1), Index(4), b.data(), Index(4)),
                      Catch::Contains("pack_b: k = -1 is negative"));
    const cpu::PackedB<float> packed = cpu::pack_b(no, Index(5), Index(4), b.data(), Index(4));
    CHECK_THROWS_WITH(cpu::gemm(yes, Index(3), a.data(), Index(2), packed, 1.0f, 0.0f, c.data(), Index(4)),
                      Catch::Contains("gemm: lda = 2 is smaller than the width 3 of A (stored 5 x 3)"));
    CHECK_THROWS_WITH(cpu::gemm(no, Index(-2), a.data(), Index(5), packed, 1.0f, 0.0f, c.data(), Index(4)),
                      Catch::Contains("gemm: m = -2 is negative"));
    CHECK_THROWS_WITH(cpu::gemm(no, Index(3), a.data(), Index(5), packed, 1.0f, 0.0f, c.data(), Index(3)),
                      Catch::Contains("gemm: ldc = 3 is smaller than the width 4 of C (stored 3 x 4)"));
}
