#pragma once
// A small, strict JSON reader and string escaper: enough for safetensors
// headers and bcnn's own metadata. Numbers are kept as their text so that
// 64-bit offsets are read exactly; objects keep their keys in file order.

#include <cctype>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bcnn/core/error.hpp"

namespace bcnn {
namespace io {

struct JsonValue {
    enum class Kind { null, boolean, number, string, array, object };
    Kind kind = Kind::null;
    bool boolean = false;
    std::string text;  // a string's value, or a number's literal text
    std::vector<JsonValue> items;
    std::vector<std::pair<std::string, JsonValue>> members;

    const JsonValue* find(const std::string& key) const {
        for (const auto& member : members)
            if (member.first == key) return &member.second;
        return nullptr;
    }
};

namespace detail {

class JsonParser {
public:
    JsonParser(const std::string& text, std::string context) : text_(text), context_(std::move(context)) {}

    JsonValue parse_document() {
        JsonValue value = parse_value(0);
        skip_space();
        if (pos_ != text_.size()) fail("unexpected text after the JSON value");
        return value;
    }

private:
    static constexpr int kMaxDepth = 64;

    [[noreturn]] void fail(const std::string& what) const {
        throw Error(context_ + ": invalid JSON at byte " + std::to_string(pos_) + ": " + what);
    }

    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
            ++pos_;
    }

    char peek() {
        skip_space();
        if (pos_ >= text_.size()) fail("unexpected end");
        return text_[pos_];
    }

    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++pos_;
    }

    bool consume_literal(const char* literal) {
        const std::string word(literal);
        if (text_.compare(pos_, word.size(), word) != 0) return false;
        pos_ += word.size();
        return true;
    }

    JsonValue parse_value(int depth) {
        if (depth > kMaxDepth) fail("nesting deeper than 64");
        JsonValue value;
        const char c = peek();
        if (c == '{') {
            value.kind = JsonValue::Kind::object;
            ++pos_;
            if (peek() == '}') return ++pos_, value;
            for (;;) {
                if (peek() != '"') fail("expected a string key");
                std::string key = parse_string();
                if (value.find(key)) fail("duplicate key \"" + key + "\"");
                expect(':');
                value.members.emplace_back(std::move(key), parse_value(depth + 1));
                if (peek() == ',') {
                    ++pos_;
                    continue;
                }
                expect('}');
                return value;
            }
        }
        if (c == '[') {
            value.kind = JsonValue::Kind::array;
            ++pos_;
            if (peek() == ']') return ++pos_, value;
            for (;;) {
                value.items.push_back(parse_value(depth + 1));
                if (peek() == ',') {
                    ++pos_;
                    continue;
                }
                expect(']');
                return value;
            }
        }
        if (c == '"') {
            value.kind = JsonValue::Kind::string;
            value.text = parse_string();
            return value;
        }
        if (consume_literal("true")) return value.kind = JsonValue::Kind::boolean, value.boolean = true, value;
        if (consume_literal("false")) return value.kind = JsonValue::Kind::boolean, value;
        if (consume_literal("null")) return value;
        value.kind = JsonValue::Kind::number;
        value.text = parse_number();
        return value;
    }

    std::string parse_number() {
        const std::size_t start = pos_;
        if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
        const std::size_t digits = pos_;
        while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
        if (pos_ == digits) fail("expected a value");
        if (pos_ < text_.size() && text_[pos_] == '.') {
            ++pos_;
            while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
        }
        if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
            ++pos_;
            if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
            while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
        }
        return text_.substr(start, pos_ - start);
    }

    std::string parse_string() {
        expect('"');
        std::string out;
        while (pos_ < text_.size()) {
            const char c = text_[pos_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= text_.size()) break;
            const char e = text_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': append_utf8(out, parse_code_point()); break;
                default: fail(std::string("bad escape \\") + e);
            }
        }
        fail("unterminated string");
    }

    std::uint32_t parse_hex4() {
        if (pos_ + 4 > text_.size()) fail("short \\u escape");
        std::uint32_t code = 0;
        for (int i = 0; i < 4; ++i) {
            const char h = text_[pos_++];
            code <<= 4;
            if (h >= '0' && h <= '9') code |= static_cast<std::uint32_t>(h - '0');
            else if (h >= 'a' && h <= 'f') code |= static_cast<std::uint32_t>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') code |= static_cast<std::uint32_t>(h - 'A' + 10);
            else fail("bad hex digit in \\u escape");
        }
        return code;
    }

    // A \u escape, joining a UTF-16 surrogate pair into one code point.
    std::uint32_t parse_code_point() {
        const std::uint32_t first = parse_hex4();
        if (first < 0xD800 || first > 0xDFFF) return first;
        if (first > 0xDBFF || text_.compare(pos_, 2, "\\u") != 0) fail("unpaired UTF-16 surrogate");
        pos_ += 2;
        const std::uint32_t second = parse_hex4();
        if (second < 0xDC00 || second > 0xDFFF) fail("unpaired UTF-16 surrogate");
        return 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
    }

    static void append_utf8(std::string& out, std::uint32_t code) {
        if (code < 0x80) {
            out += static_cast<char>(code);
        } else if (code < 0x800) {
            out += static_cast<char>(0xC0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3F));
        } else if (code < 0x10000) {
            out += static_cast<char>(0xE0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (code >> 18));
            out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
        }
    }

    const std::string& text_;
    std::string context_;
    std::size_t pos_ = 0;
};

}  // namespace detail

// Parses a whole JSON document; errors name `context` (e.g. the file) and the byte offset.
inline JsonValue parse_json(const std::string& text, const std::string& context) {
    return detail::JsonParser(text, context).parse_document();
}

// `text` as a JSON string literal, quotes included.
inline std::string json_quote(const std::string& text) {
    std::string out = "\"";
    for (const char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    static const char hex[] = "0123456789abcdef";
                    out += "\\u00";
                    out += hex[(c >> 4) & 0xF];
                    out += hex[c & 0xF];
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

}  // namespace io
}  // namespace bcnn
