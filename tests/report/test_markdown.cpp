// Markdown helpers: exact table text (padding, alignment, escaping), the
// confusion matrix with totals, fences that survive backticks, durations
// and percentages.

#include <catch2/catch.hpp>

#include <bcnn/report/markdown.hpp>

using namespace bcnn;
using report::Justify;

TEST_CASE("markdown_table pads, aligns and escapes", "[report][markdown]") {
    const std::string expected =
        "| name    | value | mid |\n"
        "|:--------|------:|:---:|\n"
        "| a\\|b    |     1 |  x  |\n"
        "| longest |    22 | yy  |\n";
    CHECK(report::markdown_table({"name", "value", "mid"}, {{"a|b", "1", "x"}, {"longest", "22", "yy"}},
                                 {Justify::left, Justify::right, Justify::center}) == expected);
    CHECK(report::markdown_table({"a"}, {{"two\nlines"}}) ==
          "| a         |\n"
          "|:----------|\n"
          "| two lines |\n");
    CHECK_THROWS_WITH(report::markdown_table({"a", "b"}, {{"1"}}), Catch::Contains("row 0 has 1 cells, expected 2"));
    CHECK_THROWS_WITH(report::markdown_table({"a", "b"}, {}, {Justify::left}),
                      Catch::Contains("1 alignments for 2 columns"));
}

TEST_CASE("markdown_confusion_table: true rows, predicted columns, totals", "[report][markdown]") {
    const int rows[4][4] = {{286, 0, 0, 52}, {1, 307, 0, 0}, {0, 0, 290, 3}, {18, 0, 0, 287}};
    ConfusionMatrix m(4);
    for (int t = 0; t < 4; ++t)
        for (int p = 0; p < 4; ++p)
            for (int i = 0; i < rows[t][p]; ++i) m.add(t, p);
    const std::string expected =
        "| true \\ predicted | EOS | LYM | MON | NEU | total |\n"
        "|:-----------------|----:|----:|----:|----:|------:|\n"
        "| EOS              | 286 |   0 |   0 |  52 |   338 |\n"
        "| LYM              |   1 | 307 |   0 |   0 |   308 |\n"
        "| MON              |   0 |   0 | 290 |   3 |   293 |\n"
        "| NEU              |  18 |   0 |   0 | 287 |   305 |\n"
        "| total            | 305 | 307 | 290 | 342 |  1244 |\n";
    CHECK(report::markdown_confusion_table(m, {"EOS", "LYM", "MON", "NEU"}) == expected);
    CHECK_THROWS_WITH(report::markdown_confusion_table(m, {"EOS"}), Catch::Contains("1 class names for 4 classes"));
}

TEST_CASE("markdown_code_block fences text, longer than backtick runs inside", "[report][markdown]") {
    CHECK(report::markdown_code_block("a\nb\n") == "```\na\nb\n```\n");
    CHECK(report::markdown_code_block("no newline", "text") == "```text\nno newline\n```\n");
    CHECK(report::markdown_code_block("x ```` y") == "`````\nx ```` y\n`````\n");
    CHECK(report::markdown_code_block("") == "```\n```\n");
}

TEST_CASE("durations and percentages", "[report][markdown]") {
    CHECK(report::format_duration(0) == "0.0 s");
    CHECK(report::format_duration(12.34) == "12.3 s");
    CHECK(report::format_duration(59.94) == "59.9 s");
    CHECK(report::format_duration(59.96) == "1 min 00 s");
    CHECK(report::format_duration(125.4) == "2 min 05 s");
    CHECK(report::format_duration(3723) == "1 h 02 min 03 s");
    CHECK(report::format_duration(36000 + 59.6) == "10 h 01 min 00 s");
    CHECK_THROWS_WITH(report::format_duration(-1), Catch::Contains("-1 s is not a duration"));
    CHECK_THROWS_WITH(report::format_duration(std::nan("")), Catch::Contains("nan s is not a duration"));
    CHECK(report::format_percent(0.9405) == "94.05%");
    CHECK(report::format_percent(1.0, 1) == "100.0%");
    CHECK(report::format_percent(0.123456, 0) == "12%");
}
