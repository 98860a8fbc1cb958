// ImageFolder: classes, extensions, order, skipped files, and the errors for a
// missing or empty class folder, on temporary folders; and the real TRAIN split.

#include <catch2/catch.hpp>

#include <filesystem>

#include <bcnn/data/image_folder.hpp>

#include "data/data_support.hpp"
#include "support/temp_dir.hpp"

using namespace bcnn;
using namespace bcnn::data;
namespace fs = std::filesystem;

namespace {

void touch(const fs::path& path) { testing::write_bytes(path.string(), "x"); }

}  // namespace

TEST_CASE("scan_image_folder lists images by class, sorted, and skips other files", "[data][image_folder]") {
    testing::TempDir dir;
    const fs::path root = dir.path();
    fs::create_directories(root / "MON");
    fs::create_directories(root / "EOS" / "sub");
    touch(root / "EOS" / "b.jpeg");
    touch(root / "EOS" / "a.JPG");
    touch(root / "EOS" / "c.Png");
    touch(root / "EOS" / "readme.txt");
    touch(root / "MON" / "z.jpg");
    touch(root / "MON" / "noext");
    touch(root / "loose.png");  // not in a class folder: ignored

    const ImageFolder folder = scan_image_folder(root.string());
    CHECK(folder.class_names == std::vector<std::string>{"EOS", "MON"});
    const std::string eos = (root / "EOS").string(), mon = (root / "MON").string();
    CHECK(folder.paths == std::vector<std::string>{eos + "/a.JPG", eos + "/b.jpeg", eos + "/c.Png", mon + "/z.jpg"});
    CHECK(folder.labels == std::vector<std::int32_t>{0, 0, 0, 1});
    CHECK(folder.skipped == std::vector<std::string>{eos + "/readme.txt", eos + "/sub/", mon + "/noext"});
    CHECK(folder.skipped_summary() ==
          "skipped 3 non-image files: " + eos + "/readme.txt, " + eos + "/sub/, " + mon + "/noext");
    CHECK(folder.skipped_summary(1) == "skipped 3 non-image files: " + eos + "/readme.txt, ...");

    // Classes given in another order: labels follow it.
    const ImageFolder reordered = scan_image_folder(root.string(), {"MON", "EOS"});
    CHECK(reordered.paths.front() == mon + "/z.jpg");
    CHECK(reordered.labels == std::vector<std::int32_t>{0, 1, 1, 1});

    const ImageFolder subset = spread_per_class(folder, 2);
    CHECK(subset.paths == std::vector<std::string>{eos + "/a.JPG", eos + "/b.jpeg", mon + "/z.jpg"});
    CHECK(subset.labels == std::vector<std::int32_t>{0, 0, 1});
}

TEST_CASE("spread_per_class takes evenly spaced files of each class", "[data][image_folder]") {
    ImageFolder folder;
    folder.class_names = {"A", "B"};
    for (int i = 0; i < 10; ++i) {
        folder.paths.push_back("A/" + std::to_string(i));
        folder.labels.push_back(0);
    }
    folder.paths.push_back("B/0");
    folder.labels.push_back(1);
    const ImageFolder subset = spread_per_class(folder, 4);  // of 10: files 0, 2, 5, 7; B has only one
    CHECK(subset.paths == std::vector<std::string>{"A/0", "A/2", "A/5", "A/7", "B/0"});
    CHECK(subset.labels == std::vector<std::int32_t>{0, 0, 0, 0, 1});
    CHECK(spread_per_class(folder, 20).paths == folder.paths);
}

TEST_CASE("scan_image_folder says which folder is missing or empty", "[data][image_folder]") {
    testing::TempDir dir;
    const fs::path root = dir.path();
    fs::create_directories(root / "EOS");
    fs::create_directories(root / "LYM");
    touch(root / "EOS" / "a.jpeg");
    touch(root / "LYM" / "readme.txt");

    CHECK_THROWS_WITH(scan_image_folder(root.string()),
                      "class folder '" + (root / "LYM").string() + "' holds no images (.jpg, .jpeg, .png)");
    CHECK_THROWS_WITH(scan_image_folder(root.string(), {"EOS", "NEU"}),
                      "class folder '" + (root / "NEU").string() + "' does not exist or is not a folder");
    CHECK_THROWS_WITH(scan_image_folder((root / "nowhere").string()),
                      "image folder '" + (root / "nowhere").string() + "' does not exist or is not a folder");
    CHECK_THROWS_WITH(scan_image_folder((root / "EOS").string()),
                      "image folder '" + (root / "EOS").string() + "' has no class sub-folders");
}

TEST_CASE("scan_image_folder finds the real TRAIN split's 9,957 images in four classes", "[data][image_folder]") {
    const ImageFolder train = scan_image_folder(testing::blood_cells_split("TRAIN"));
    CHECK(train.class_names == std::vector<std::string>{"EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL"});
    CHECK(train.size() == 9957);
    CHECK(train.skipped.empty());
    std::vector<int> per_class(4, 0);
    for (std::int32_t label : train.labels) ++per_class[static_cast<std::size_t>(label)];
    CHECK(per_class == std::vector<int>{2497, 2483, 2478, 2499});
    CHECK(std::is_sorted(train.paths.begin(), train.paths.end()));
}
