#pragma once
// CSVLogger: one row per epoch, in Keras' layout:
//   epoch,accuracy,loss,lr,val_accuracy,val_loss
//   0,0.5,0.6931471805599453,0.001,0.5,0.6931471805599453
// The columns are "epoch" (0-based) and the first epoch's log keys, sorted;
// a key missing in a later epoch is written "NA", a new key is an error.
// Numbers are written as Python's repr() writes them (shortest round trip).
// Lines end with "\n" (Keras' csv module writes "\r\n"). Each row is flushed
// to the file as it is written, so a crash loses no finished epoch.
// append = true continues an existing file (for resumed training): the
// header is written only when the file is empty, and must match otherwise.

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "bcnn/io/metadata.hpp"
#include "bcnn/train/callback.hpp"

namespace bcnn {
namespace train {

template <typename T>
class CSVLogger : public Callback<T> {
public:
    explicit CSVLogger(std::string path, char separator = ',', bool append = false)
        : path_(std::move(path)), separator_(separator), append_(append) {
        BCNN_CHECK(!path_.empty(), "CSVLogger: the path is empty");
    }

    void on_train_begin(TrainingState<T>&) override {
        existing_header_.clear();
        if (append_) {
            std::ifstream in(path_);
            if (in.is_open()) std::getline(in, existing_header_);
        }
        file_.close();
        file_.clear();
        file_.open(path_, append_ ? std::ios::app : std::ios::trunc);
        BCNN_CHECK(file_.is_open(), "CSVLogger: cannot open '" << path_ << "' for writing");
        keys_.clear();
        started_ = false;
    }

    void on_epoch_end(int epoch, const Logs& logs, TrainingState<T>&) override {
        BCNN_CHECK(file_.is_open(), "CSVLogger '" << path_ << "': on_epoch_end before on_train_begin");
        if (!started_) start(logs);
        for (const auto& entry : logs)
            BCNN_CHECK(std::find(keys_.begin(), keys_.end(), entry.first) != keys_.end(),
                       "CSVLogger '" << path_ << "': log key \"" << entry.first << "\" of epoch " << epoch
                                     << " is not a column of the file (" << header() << ")");
        std::string row = std::to_string(epoch);
        for (const std::string& key : keys_) {
            const auto found = logs.find(key);
            row += separator_;
            row += found == logs.end() ? "NA" : io::format_number(found->second);
        }
        write_line(row);
    }

    void on_train_end(TrainingState<T>&) override { file_.close(); }

private:
    void start(const Logs& logs) {
        started_ = true;
        for (const auto& entry : logs) keys_.push_back(entry.first);  // std::map: sorted
        if (existing_header_.empty()) {
            write_line(header());
            return;
        }
        BCNN_CHECK(existing_header_ == header(), "CSVLogger: cannot append to '" << path_ << "': its columns are \""
                                                                                 << existing_header_ << "\", the logs' \""
                                                                                 << header() << "\"");
    }

    std::string header() const {
        std::string line = "epoch";
        for (const std::string& key : keys_) line += separator_ + quoted(key);
        return line;
    }

    // A field as Python's csv module writes it (quoted when it must be).
    std::string quoted(const std::string& field) const {
        if (field.find_first_of(std::string("\"\r\n") + separator_) == std::string::npos) return field;
        std::string out = "\"";
        for (const char c : field) out += c == '"' ? std::string("\"\"") : std::string(1, c);
        return out + "\"";
    }

    void write_line(const std::string& line) {
        file_ << line << '\n';
        file_.flush();
        BCNN_CHECK(file_.good(), "CSVLogger: writing to '" << path_ << "' failed (disk full?)");
    }

    std::string path_;
    char separator_;
    bool append_;
    std::ofstream file_;
    std::string existing_header_;
    std::vector<std::string> keys_;
    bool started_ = false;
};

}  // namespace train
}  // namespace bcnn
