#pragma once
// Element types as safetensors names them, and their sizes.

#include <cstdint>
#include <string>

#include "bcnn/core/error.hpp"

namespace bcnn {
namespace io {

enum class DType { BOOL, U8, I8, U16, I16, F16, BF16, U32, I32, F32, F64, U64, I64 };

struct DTypeInfo {
    DType dtype;
    const char* name;
    std::size_t size;
};

inline const DTypeInfo* dtype_table(std::size_t* count) {
    static const DTypeInfo table[] = {
        {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},   {DType::I8, "I8", 1},     {DType::U16, "U16", 2},
        {DType::I16, "I16", 2},   {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2}, {DType::U32, "U32", 4},
        {DType::I32, "I32", 4},   {DType::F32, "F32", 4}, {DType::F64, "F64", 8},   {DType::U64, "U64", 8},
        {DType::I64, "I64", 8},
    };
    *count = sizeof(table) / sizeof(table[0]);
    return table;
}

inline const DTypeInfo& dtype_info(DType dtype) {
    std::size_t count = 0;
    const DTypeInfo* table = dtype_table(&count);
    for (std::size_t i = 0; i < count; ++i)
        if (table[i].dtype == dtype) return table[i];
    throw Error("dtype_info: unknown dtype");
}

inline const char* dtype_name(DType dtype) { return dtype_info(dtype).name; }
inline std::size_t dtype_size(DType dtype) { return dtype_info(dtype).size; }

// Looks a safetensors dtype name up; `context` names the file and tensor in errors.
inline DType dtype_from_name(const std::string& name, const std::string& context) {
    std::size_t count = 0;
    const DTypeInfo* table = dtype_table(&count);
    for (std::size_t i = 0; i < count; ++i)
        if (name == table[i].name) return table[i].dtype;
    throw Error(context + ": unknown dtype \"" + name + "\"");
}

// The dtype that stores a C++ element type T.
template <typename T>
DType dtype_of();
template <>
inline DType dtype_of<float>() { return DType::F32; }
template <>
inline DType dtype_of<double>() { return DType::F64; }
template <>
inline DType dtype_of<std::int32_t>() { return DType::I32; }
template <>
inline DType dtype_of<std::int64_t>() { return DType::I64; }
template <>
inline DType dtype_of<std::uint8_t>() { return DType::U8; }
template <>
inline DType dtype_of<std::uint64_t>() { return DType::U64; }

}  // namespace io
}  // namespace bcnn
