#pragma once
// A temporary directory for a test, removed with everything in it at the end.

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <bcnn/core/error.hpp>

namespace bcnn {
namespace testing {

class TempDir {
public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "bcnn-test-XXXXXX").string();
        BCNN_CHECK(::mkdtemp(pattern.data()) != nullptr, "TempDir: mkdtemp failed for " << pattern);
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

    // Names of the entries directly inside, sorted.
    std::vector<std::string> list() const {
        std::vector<std::string> names;
        for (const auto& entry : std::filesystem::directory_iterator(path_)) names.push_back(entry.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }

private:
    std::filesystem::path path_;
};

}  // namespace testing
}  // namespace bcnn
