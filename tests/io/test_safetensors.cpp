// safetensors: byte layout, round trips, and a strict reader that rejects
// truncated, oversized, overlapping and otherwise malformed files.

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>

#include <bcnn/io/safetensors.hpp>

#include "support/random.hpp"
#include "support/temp_dir.hpp"

using namespace bcnn;
using namespace bcnn::io;

namespace {

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

// A file made by hand: 8-byte length, header, data.
std::string make_file(const std::string& header, const std::string& data) {
    std::string bytes(8, '\0');
    std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i, n >>= 8) bytes[i] = static_cast<char>(n & 0xFF);
    return bytes + header + data;
}

}  // namespace

TEST_CASE("save_safetensors writes the documented byte layout", "[io][safetensors]") {
    testing::TempDir dir;
    const std::string path = dir.file("a.safetensors");
    const auto t = Tensor<float>::from_vector(Shape{2}, {1.0f, -2.0f});
    save_safetensors(path, {named_tensor("w", t)}, {{"epoch", "3"}});

    const std::string header = R"({"__metadata__":{"epoch":"3"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
    std::string data(8, '\0');
    const float values[2] = {1.0f, -2.0f};
    std::memcpy(&data[0], values, 8);
    CHECK(read_bytes(path) == make_file(padded, data));
}

TEST_CASE("safetensors round-trips tensors of every bcnn dtype and the metadata", "[io][safetensors]") {
    testing::TempDir dir;
    const std::string path = dir.file("model.safetensors");
    const auto f = testing::random_tensor<float>(Shape{3, 3, 4, 5}, 1);
    const auto d = testing::random_tensor<double>(Shape{7}, 2);
    const auto labels = Tensor<std::int32_t>::from_vector(Shape{3}, {0, 3, -1});
    const auto pixels = Tensor<std::uint8_t>::from_vector(Shape{2, 2}, {0, 17, 200, 255});
    const Tensor<float> empty(Shape{0, 4});
    const Tensor<double> scalar(Shape{}, 2.5);
    const Tensor<float> wide(Shape{2, 6}, 1.0f);
    save_safetensors(path,
                     {named_tensor("conv/kernel", f), named_tensor("d", d), named_tensor("labels", labels),
                      named_tensor("pixels", pixels), named_tensor("empty", empty), named_tensor("scalar", scalar),
                      named_tensor("slice", wide.channels(1, 3))},
                     {{"model", "custom \"cnn\"\n"}, {"optimizer", "adam"}});

    const SafetensorsFile file = SafetensorsFile::open(path);
    CHECK(file.entries().size() == 7);
    CHECK(file.metadata().at("model") == "custom \"cnn\"\n");
    CHECK(file.metadata().at("optimizer") == "adam");
    CHECK(file.tensor<float>("conv/kernel").to_vector() == f.to_vector());
    CHECK(file.tensor<double>("d", Shape{7}).to_vector() == d.to_vector());
    CHECK(file.tensor<std::int32_t>("labels").to_vector() == labels.to_vector());
    CHECK(file.tensor<std::uint8_t>("pixels").to_vector() == pixels.to_vector());
    CHECK(file.tensor<float>("empty").shape() == Shape{0, 4});
    CHECK(file.tensor<double>("scalar").to_vector() == std::vector<double>{2.5});
    CHECK(file.tensor<float>("slice").shape() == Shape{2, 2});
}

TEST_CASE("reading checks the tensor name, dtype and shape asked for", "[io][safetensors][errors]") {
    testing::TempDir dir;
    const std::string path = dir.file("w.safetensors");
    save_safetensors(path, {named_tensor("dense/kernel", Tensor<float>(Shape{4, 3}))});
    const SafetensorsFile file = SafetensorsFile::open(path);
    CHECK_THROWS_WITH(file.tensor<float>("dense/bias"), Catch::Contains("has no tensor \"dense/bias\""));
    CHECK_THROWS_WITH(file.tensor<double>("dense/kernel"),
                      Catch::Contains("tensor \"dense/kernel\" has dtype F32, expected F64"));
    CHECK_THROWS_WITH(file.tensor<float>("dense/kernel", Shape{3, 4}),
                      Catch::Contains("tensor \"dense/kernel\" has shape (4, 3), expected (3, 4)"));
    CHECK_THROWS_WITH(SafetensorsFile::open(dir.file("missing.safetensors")),
                      Catch::Contains("cannot open safetensors file") && Catch::Contains("missing.safetensors"));
}

TEST_CASE("the reader rejects malformed files, naming the file and the fault", "[io][safetensors][errors]") {
    testing::TempDir dir;
    const std::string path = dir.file("bad.safetensors");
    const std::string good_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    const std::string eight(8, '\1');
    auto rejects = [&](const std::string& bytes, const std::string& fragment) {
        write_bytes(path, bytes);
        CHECK_THROWS_WITH(SafetensorsFile::open(path), Catch::Contains(fragment) && Catch::Contains("bad.safetensors"));
    };
    write_bytes(path, make_file(good_header, eight));
    CHECK(SafetensorsFile::open(path).entries().size() == 1);

    rejects("abc", "too short for a safetensors header");
    rejects(make_file(good_header, eight).substr(0, 40), "runs past the end");            // truncated header
    rejects(make_file(good_header, eight.substr(0, 5)), "(truncated?)");                   // truncated data
    rejects(make_file(good_header, eight + "xx"), "2 trailing bytes after the last tensor");  // oversized
    std::string huge(8, '\0');
    huge[4] = 1;  // 2^32-byte header
    rejects(huge + "{}", "exceeds the limit");
    rejects(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                      eight),
            "overlaps");
    rejects(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight), "gap of 4 bytes");
    rejects(make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight),
            "spans 8 bytes but shape (3) of F32 needs 12");
    rejects(make_file(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", eight), "unknown dtype \"F33\"");
    rejects(make_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight), "non-negative integer");
    rejects(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight), "end 0 < begin 8");
    rejects(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", eight), "unknown field \"x\"");
    rejects(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", eight), "invalid JSON");
    rejects(make_file(R"(["a"])", ""), "does not start with '{'");
    rejects(make_file(R"({"a":1,"a":2})", ""), "duplicate key \"a\"");
    rejects(make_file(R"({"__metadata__":{"k":1}})", ""), "__metadata__ value for \"k\" is not a string");
}

TEST_CASE("save_safetensors is atomic: a failed write leaves the old file whole", "[io][safetensors][errors]") {
    testing::TempDir dir;
    const std::string path = dir.file("ckpt.safetensors");
    save_safetensors(path, {named_tensor("x", Tensor<float>(Shape{3}, 1.0f))});
    const std::string before = read_bytes(path);

    CHECK_THROWS_WITH(write_file_atomically(path, [](std::ostream& out) {
                          out << "partial";
                          throw Error("simulated failure mid-write");
                      }),
                      Catch::Contains("simulated failure mid-write"));
    CHECK(read_bytes(path) == before);
    CHECK(dir.list() == std::vector<std::string>{"ckpt.safetensors"});  // no temporary left behind

    CHECK_THROWS_WITH(save_safetensors(dir.file("no/such/dir/x.safetensors"), {}),
                      Catch::Contains("cannot open") && Catch::Contains("no/such/dir/x.safetensors"));
    CHECK_THROWS_WITH(save_safetensors(dir.file("dup.safetensors"),
                                       {named_tensor("x", Tensor<float>(Shape{1})), named_tensor("x", Tensor<float>(Shape{1}))}),
                      Catch::Contains("tensor name \"x\" appears twice"));
}
