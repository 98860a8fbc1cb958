#pragma once
// Files written whole or not at all: write a temporary file beside the
// target, flush and close it, then rename it over the target (atomic on
// POSIX file systems). A reader never sees a half-written checkpoint.

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include <unistd.h>

#include "bcnn/core/error.hpp"

namespace bcnn {
namespace io {

// Calls write(stream) on a temporary file, then renames it to `path`.
// On any failure the temporary file is removed, `path` is left as it was,
// and bcnn::Error names the file.
inline void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
    const std::string temporary = path + ".tmp." + std::to_string(::getpid());
    try {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        BCNN_CHECK(out.is_open(), "cannot open '" << temporary << "' for writing (writing '" << path << "')");
        write(out);
        out.flush();
        BCNN_CHECK(out.good(), "write to '" << temporary << "' failed (disk full?) while writing '" << path << "'");
        out.close();
        BCNN_CHECK(!out.fail(), "closing '" << temporary << "' failed while writing '" << path << "'");
        BCNN_CHECK(std::rename(temporary.c_str(), path.c_str()) == 0,
                   "cannot rename '" << temporary << "' to '" << path << "'");
    } catch (...) {
        std::remove(temporary.c_str());
        throw;
    }
}

}  // namespace io
}  // namespace bcnn
