#pragma once
// safetensors files (the Hugging Face format, readable by PyTorch tools):
//   8 bytes   little-endian u64 N, the header length
//   N bytes   JSON: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//                    "__metadata__": {"key": "value"}}  (optionally padded with spaces)
//   rest      the data buffer; offsets are relative to its start.
// The reader is strict: header length within bounds, every entry well formed,
// byte sizes equal to shape x dtype, and the tensors tiling the buffer exactly
// (no gaps, no overlap, no trailing bytes). Anything else is a bcnn::Error
// naming the file and, where there is one, the tensor.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bcnn/backend/transfer.hpp"
#include "bcnn/core/tensor.hpp"
#include "bcnn/io/atomic_file.hpp"
#include "bcnn/io/dtype.hpp"
#include "bcnn/io/json.hpp"

namespace bcnn {
namespace io {

// Header length limit, as in the reference implementation (100 MB).
constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;

struct SafetensorsEntry {
    std::string name;
    DType dtype = DType::F32;
    Shape shape;
    std::uint64_t begin = 0, end = 0;  // byte offsets into the data buffer
};

class SafetensorsFile {
public:
    // Reads and validates the whole file.
    static SafetensorsFile open(const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        BCNN_CHECK(in.is_open(), "cannot open safetensors file '" << path << "'");
        SafetensorsFile file;
        file.path_ = path;
        in.seekg(0, std::ios::end);
        const std::streamoff size = in.tellg();
        BCNN_CHECK(size >= 0, "cannot read the size of '" << path << "'");
        in.seekg(0, std::ios::beg);
        file.bytes_.resize(static_cast<std::size_t>(size));
        in.read(file.bytes_.data(), size);
        BCNN_CHECK(in.gcount() == size, "read error on '" << path << "': got " << in.gcount() << " of " << size << " bytes");
        file.parse();
        return file;
    }

    const std::string& path() const { return path_; }
    const std::vector<SafetensorsEntry>& entries() const { return entries_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

    const SafetensorsEntry* find(const std::string& name) const {
        for (const auto& entry : entries_)
            if (entry.name == name) return &entry;
        return nullptr;
    }

    const SafetensorsEntry& entry(const std::string& name) const {
        const SafetensorsEntry* found = find(name);
        BCNN_CHECK(found, "'" << path_ << "' has no tensor \"" << name << "\"");
        return *found;
    }

    // A copy of tensor `name` as Tensor<T>; its dtype must be T's exactly.
    template <typename T>
    Tensor<T> tensor(const std::string& name) const {
        const SafetensorsEntry& e = entry(name);
        BCNN_CHECK(e.dtype == dtype_of<T>(), "'" << path_ << "': tensor \"" << name << "\" has dtype " << dtype_name(e.dtype)
                                                 << ", expected " << dtype_name(dtype_of<T>()));
        Tensor<T> t = Tensor<T>::uninitialized(e.shape);
        if (e.end > e.begin) std::memcpy(t.data(), bytes_.data() + data_start_ + e.begin, e.end - e.begin);
        return t;
    }

    // As above, and its shape must be `expected`.
    template <typename T>
    Tensor<T> tensor(const std::string& name, const Shape& expected) const {
        const SafetensorsEntry& e = entry(name);
        BCNN_CHECK(e.shape == expected, "'" << path_ << "': tensor \"" << name << "\" has shape " << e.shape
                                            << ", expected " << expected);
        return tensor<T>(name);
    }

private:
    [[noreturn]] void fail(const std::string& what) const { throw Error("'" + path_ + "': " + what); }

    static std::uint64_t read_u64_le(const char* bytes) {
        std::uint64_t value = 0;
        for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
        return value;
    }

    // A non-negative JSON integer that fits in 64 bits.
    std::uint64_t to_u64(const JsonValue& v, const std::string& what) const {
        if (v.kind != JsonValue::Kind::number || v.text.empty() ||
            v.text.find_first_not_of("0123456789") != std::string::npos)
            fail(what + " must be a non-negative integer");
        std::uint64_t value = 0;
        for (const char c : v.text) {
            const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
            if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) fail(what + " overflows 64 bits");
            value = value * 10 + digit;
        }
        return value;
    }

    void parse() {
        const std::uint64_t size = bytes_.size();
        if (size < 8) fail("file is " + std::to_string(size) + " bytes, too short for a safetensors header");
        const std::uint64_t header_size = read_u64_le(bytes_.data());
        if (header_size > kMaxSafetensorsHeader)
            fail("header length " + std::to_string(header_size) + " exceeds the limit of " +
                 std::to_string(kMaxSafetensorsHeader) + " bytes");
        if (header_size > size - 8)
            fail("header length " + std::to_string(header_size) + " runs past the end of the " + std::to_string(size) +
                 "-byte file (truncated?)");
        const std::string header(bytes_.data() + 8, static_cast<std::size_t>(header_size));
        if (header.empty() || header[0] != '{') fail("header does not start with '{'");
        const JsonValue root = parse_json(header, "'" + path_ + "' header");
        if (root.kind != JsonValue::Kind::object) fail("header is not a JSON object");
        data_start_ = 8 + header_size;
        const std::uint64_t buffer_size = size - data_start_;

        for (const auto& [name, value] : root.members) {
            if (name == "__metadata__") {
                parse_metadata(value);
                continue;
            }
            entries_.push_back(parse_entry(name, value));
        }
        check_tiling(buffer_size);
    }

    void parse_metadata(const JsonValue& value) {
        if (value.kind != JsonValue::Kind::object) fail("__metadata__ must be an object of strings");
        for (const auto& [key, item] : value.members) {
            if (item.kind != JsonValue::Kind::string) fail("__metadata__ value for \"" + key + "\" is not a string");
            metadata_[key] = item.text;
        }
    }

    SafetensorsEntry parse_entry(const std::string& name, const JsonValue& value) const {
        const std::string where = "tensor \"" + name + "\"";
        if (value.kind != JsonValue::Kind::object) fail(where + " is not an object");
        for (const auto& member : value.members)
            if (member.first != "dtype" && member.first != "shape" && member.first != "data_offsets")
                fail(where + " has an unknown field \"" + member.first + "\"");
        const JsonValue* dtype = value.find("dtype");
        const JsonValue* shape = value.find("shape");
        const JsonValue* offsets = value.find("data_offsets");
        if (!dtype || dtype->kind != JsonValue::Kind::string) fail(where + " has no dtype string");
        if (!shape || shape->kind != JsonValue::Kind::array) fail(where + " has no shape array");
        if (!offsets || offsets->kind != JsonValue::Kind::array || offsets->items.size() != 2)
            fail(where + " needs data_offsets [begin, end]");

        SafetensorsEntry e;
        e.name = name;
        e.dtype = dtype_from_name(dtype->text, "'" + path_ + "': " + where);
        if (shape->items.size() > static_cast<std::size_t>(Shape::kMaxRank))
            fail(where + " has rank " + std::to_string(shape->items.size()) + ", more than bcnn supports");
        std::uint64_t bytes = dtype_size(e.dtype);
        for (const JsonValue& extent : shape->items) {
            const std::uint64_t n = to_u64(extent, where + " shape extent");
            if (n > static_cast<std::uint64_t>(std::numeric_limits<Index>::max()) ||
                (n != 0 && bytes > std::numeric_limits<std::uint64_t>::max() / n))
                fail(where + " shape is too large");
            bytes *= n;
            e.shape.push_back(static_cast<Index>(n));
        }
        e.begin = to_u64(offsets->items[0], where + " data_offsets begin");
        e.end = to_u64(offsets->items[1], where + " data_offsets end");
        if (e.end < e.begin) fail(where + " data_offsets end " + std::to_string(e.end) + " < begin " + std::to_string(e.begin));
        if (e.end - e.begin != bytes)
            fail(where + " spans " + std::to_string(e.end - e.begin) + " bytes but shape " + e.shape.str() + " of " +
                 dtype_name(e.dtype) + " needs " + std::to_string(bytes));
        return e;
    }

    // The tensors, in offset order, must cover [0, buffer_size) with no gap or overlap.
    void check_tiling(std::uint64_t buffer_size) const {
        std::vector<const SafetensorsEntry*> order;
        for (const auto& e : entries_) order.push_back(&e);
        std::sort(order.begin(), order.end(), [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
            return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
        });
        std::uint64_t expected = 0;
        for (const SafetensorsEntry* e : order) {
            if (e->begin < expected) fail("tensor \"" + e->name + "\" overlaps the tensor before it");
            if (e->begin > expected)
                fail("gap of " + std::to_string(e->begin - expected) + " bytes before tensor \"" + e->name + "\"");
            expected = e->end;
        }
        if (expected > buffer_size)
            fail("tensors need " + std::to_string(expected) + " data bytes but the file holds " +
                 std::to_string(buffer_size) + " (truncated?)");
        if (expected < buffer_size)
            fail(std::to_string(buffer_size - expected) + " trailing bytes after the last tensor");
    }

    std::string path_;
    std::vector<char> bytes_;
    std::uint64_t data_start_ = 0;
    std::vector<SafetensorsEntry> entries_;
    std::map<std::string, std::string> metadata_;
};

// A tensor to save: its name, dtype, shape and contiguous host bytes (a
// device tensor is copied to the host first).
struct NamedTensor {
    std::string name;
    DType dtype;
    Shape shape;
    std::vector<char> bytes;
};

template <typename T>
NamedTensor named_tensor(const std::string& name, const Tensor<T>& t) {
    const Tensor<T> host = to_device(t, Device::cpu);
    const Tensor<T> contiguous = host.is_contiguous() ? host : host.clone();
    NamedTensor out{name, dtype_of<T>(), t.shape(), std::vector<char>(sizeof(T) * static_cast<std::size_t>(t.numel()))};
    if (!out.bytes.empty()) std::memcpy(out.bytes.data(), contiguous.data(), out.bytes.size());
    return out;
}

// Writes a safetensors file atomically (temporary file, then rename).
// The header is padded with spaces to a multiple of 8 bytes.
inline void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
    for (std::size_t i = 0; i < tensors.size(); ++i)
        for (std::size_t j = i + 1; j < tensors.size(); ++j)
            BCNN_CHECK(tensors[i].name != tensors[j].name,
                       "save_safetensors: tensor name \"" << tensors[i].name << "\" appears twice ('" << path << "')");
    std::ostringstream header;
    header << '{';
    bool first = true;
    if (!metadata.empty()) {
        header << "\"__metadata__\":{";
        for (auto it = metadata.begin(); it != metadata.end(); ++it)
            header << (it == metadata.begin() ? "" : ",") << json_quote(it->first) << ':' << json_quote(it->second);
        header << '}';
        first = false;
    }
    std::uint64_t offset = 0;
    for (const NamedTensor& t : tensors) {
        BCNN_CHECK(t.name != "__metadata__", "save_safetensors: \"__metadata__\" is reserved ('" << path << "')");
        BCNN_CHECK(t.bytes.size() == static_cast<std::size_t>(t.shape.numel()) * dtype_size(t.dtype),
                   "save_safetensors: tensor \"" << t.name << "\" has " << t.bytes.size() << " bytes for shape " << t.shape);
        header << (first ? "" : ",") << json_quote(t.name) << ":{\"dtype\":\"" << dtype_name(t.dtype) << "\",\"shape\":[";
        for (int axis = 0; axis < t.shape.rank(); ++axis) header << (axis ? "," : "") << t.shape[axis];
        header << "],\"data_offsets\":[" << offset << ',' << offset + t.bytes.size() << "]}";
        offset += t.bytes.size();
        first = false;
    }
    header << '}';
    std::string text = header.str();
    text.append((8 - text.size() % 8) % 8, ' ');

    write_file_atomically(path, [&](std::ostream& out) {
        char length[8];
        std::uint64_t n = text.size();
        for (int i = 0; i < 8; ++i, n >>= 8) length[i] = static_cast<char>(n & 0xFF);
        out.write(length, 8);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        for (const NamedTensor& t : tensors) out.write(t.bytes.data(), static_cast<std::streamsize>(t.bytes.size()));
    });
}

}  // namespace io
}  // namespace bcnn
