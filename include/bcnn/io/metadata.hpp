#pragma once
// Numbers as text, for safetensors metadata (checkpoints, optimiser state)
// and CSV logs. format_number() writes a double as Python's repr() does:
// the shortest digits that read back to the same double ("0.001", "1e-06",
// "3.0", "nan"), so a value saved and parsed again is bit-identical.
// The parsers accept a whole string or throw bcnn::Error naming `what`.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <system_error>
#include <type_traits>

#include "bcnn/core/error.hpp"
#include "bcnn/io/safetensors.hpp"

namespace bcnn {
namespace io {

// Python's repr(float): fixed notation for decimal exponents in [-4, 16),
// scientific otherwise ("1e-05", "1.5e+16"); integral values keep ".0".
inline std::string format_number(double value) {
    if (std::isnan(value)) return "nan";
    if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
    char buffer[64];
    const std::to_chars_result written =
        std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
    const std::string text(buffer, written.ptr);  // "-d.ddde-XX": shortest round-trip digits
    const std::size_t e = text.find('e');
    std::string digits;
    for (std::size_t i = 0; i < e; ++i)
        if (text[i] >= '0' && text[i] <= '9') digits += text[i];
    const int exponent = std::atoi(text.c_str() + e + 1);
    std::string out = text[0] == '-' ? "-" : "";
    if (exponent >= -4 && exponent < 16) {
        if (exponent < 0) return out + "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
        const std::size_t integer_digits = static_cast<std::size_t>(exponent) + 1;
        if (digits.size() <= integer_digits) return out + digits + std::string(integer_digits - digits.size(), '0') + ".0";
        return out + digits.substr(0, integer_digits) + "." + digits.substr(integer_digits);
    }
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    const int magnitude = std::abs(exponent);
    return out + (exponent < 0 ? "e-" : "e+") + (magnitude < 10 ? "0" : "") + std::to_string(magnitude);
}

// A whole string as a number of type Number (double or an integer type).
template <typename Number>
Number parse_number(const std::string& text, const std::string& what) {
    Number value{};
    const char* end = text.data() + text.size();
    if constexpr (std::is_floating_point<Number>::value) {
        if (text == "nan") return static_cast<Number>(NAN);
        if (text == "inf" || text == "-inf") return static_cast<Number>(text[0] == '-' ? -INFINITY : INFINITY);
    }
    const std::from_chars_result read = std::from_chars(text.data(), end, value);
    BCNN_CHECK(!text.empty() && read.ec == std::errc() && read.ptr == end,
               what << " is \"" << text << "\", which is not a valid number");
    return value;
}

// The metadata value for `key`; throws naming the file and key when absent.
inline const std::string& metadata_text(const SafetensorsFile& file, const std::string& key) {
    const auto found = file.metadata().find(key);
    BCNN_CHECK(found != file.metadata().end(), "'" << file.path() << "' has no metadata \"" << key << "\"");
    return found->second;
}

template <typename Number>
Number metadata_number(const SafetensorsFile& file, const std::string& key) {
    return parse_number<Number>(metadata_text(file, key), "'" + file.path() + "': metadata \"" + key + "\"");
}

}  // namespace io
}  // namespace bcnn
