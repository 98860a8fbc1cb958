#pragma once
// bcnn::Error: the one exception type of the library. Its message names the
// offending shape, file, tensor or value. The library never prints or exits.

#include <sstream>
#include <stdexcept>
#include <string>

namespace bcnn {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace bcnn

// BCNN_CHECK(condition, stream-expression): throws bcnn::Error with the
// streamed message when the condition is false, e.g.
//   BCNN_CHECK(x.rank() == 4, "conv2d: input must be NHWC, got " << x.shape());
#define BCNN_CHECK(condition, message)                 \
    do {                                               \
        if (!(condition)) {                            \
            std::ostringstream bcnn_check_stream_;     \
            bcnn_check_stream_ << message;             \
            throw ::bcnn::Error(bcnn_check_stream_.str()); \
        }                                              \
    } while (false)
