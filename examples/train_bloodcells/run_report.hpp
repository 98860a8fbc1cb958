#pragma once
// RUN/report.md: what was run, on what data, how training went, and the
// test results with their caveats.

#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include <bcnn/io/atomic_file.hpp>
#include <bcnn/report/markdown.hpp>
#include <bcnn/train/evaluate.hpp>
#include <bcnn/train/fit.hpp>

#include "data_sets.hpp"

namespace bloodcells {

struct TestResult {
    const Part* part;
    bcnn::train::Evaluation evaluation;
    double seconds;
    std::string picture;  // file name of its confusion-matrix PNG
};

struct RunRecord {
    const Options* options = nullptr;
    const DataSets* data = nullptr;
    std::vector<std::string> model_notes;  // weights (file, hash), what trains, preprocessing, feature cache
    std::string warning;                   // shown first and before the results, e.g. a random backbone
    std::string model_summary;
    bcnn::train::History history;
    double train_seconds = 0, total_seconds = 0;
    std::vector<TestResult> tests;
    // With --recalibrate-bn: each test's scores before the BatchNorm re-estimation, and its batches.
    std::vector<bcnn::train::Evaluation> tests_as_trained;
    bcnn::Index recalibration_batches = 0;
    std::vector<std::string> callback_messages;
};

namespace detail {

inline std::string command_text(const Options& options) {
    std::string out;
    for (const auto& arg : options.command_line) out += (out.empty() ? "" : " ") + arg;
    return out;
}

inline std::string now_utc() {
    const std::time_t t = std::time(nullptr);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
    return text;
}

inline std::string fixed(double value, int decimals) {
    std::ostringstream out;
    out.setf(std::ios::fixed);
    out.precision(decimals);
    out << value;
    return out.str();
}

}  // namespace detail

// Images per second of training over the whole run.
inline double training_throughput(const RunRecord& run) {
    return run.train_seconds > 0 ? static_cast<double>(run.data->train.indices.size()) * run.history.size() / run.train_seconds
                                 : 0;
}

inline std::string report_markdown(const RunRecord& run) {
    using bcnn::report::format_duration;
    using bcnn::report::format_percent;
    const Options& o = *run.options;
    std::ostringstream md;
    const std::string warning =
        run.warning.empty() ? "" : "> **WARNING: " + run.warning + "**\n\n";
    md << "# train_bloodcells: " << o.model << " model, " << (o.protocol == Protocol::pooled ? "pooled" : "held-out") << " protocol\n\n" << warning;
    md << "- Command: `" << detail::command_text(o) << "`\n";
    md << "- Finished: " << detail::now_utc() << "; threads: " << bcnn::num_threads() << "\n";
    md << "- Epochs " << o.epochs << ", batch " << o.batch << ", Adam lr " << o.learning_rate
       << (o.warmup_epochs > 0 ? " (linear warm-up over " + detail::fixed(o.warmup_epochs, 2) + " epochs)" : "")
       << ", seed " << o.seed
       << ", images " << o.image_size << "x" << o.image_size << ", augmentation " << (o.augment ? "on" : "off") << "\n";
    md << "- Wall time: " << format_duration(run.total_seconds) << " in all, training " << format_duration(run.train_seconds)
       << " (" << detail::fixed(training_throughput(run), 1) << " images/s, validation included)\n\n";

    md << "## Data\n\n";
    for (const auto& note : run.data->notes) md << "- " << note << "\n";
    const std::vector<const Part*> parts = [&] {
        std::vector<const Part*> all{&run.data->train, &run.data->validation};
        for (const auto& t : run.data->tests) all.push_back(&t);
        return all;
    }();
    for (const Part* part : parts)
        md << "- " << part->name << ": " << part->indices.size() << " images"
           << (part->caveat.empty() ? "" : " — " + part->caveat) << "\n";

    md << "\n## Model\n\n";
    for (const auto& note : run.model_notes) md << "- " << note << "\n";
    md << (run.model_notes.empty() ? "" : "\n") << bcnn::report::markdown_code_block(run.model_summary) << "\n";

    md << "## Training\n\n";
    std::vector<std::vector<std::string>> rows;
    for (std::size_t e = 0; e < run.history.size(); ++e) {
        const auto& logs = run.history[e];
        auto get = [&](const char* key, int decimals) {
            const auto it = logs.find(key);
            return it == logs.end() ? std::string("") : detail::fixed(it->second, decimals);
        };
        rows.push_back({std::to_string(e + 1), get("loss", 4), get("accuracy", 4), get("val_loss", 4),
                        get("val_accuracy", 4), get("lr", 6), get("seconds", 1)});
    }
    md << bcnn::report::markdown_table({"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}, rows)
       << "\n";
    for (const auto& message : run.callback_messages) md << "- " << message << "\n";
    md << "\n![training curves](curves.png)\n\n";
    md << "The model evaluated below is the one after the last epoch (as in the original study); the checkpoint with "
          "the best validation accuracy is best.safetensors.\n\n";
    if (o.recalibrate_bn)
        md << "With --recalibrate-bn, BatchNorm's moving statistics were then re-estimated over "
           << run.recalibration_batches
           << " training batches (not Keras' behaviour; weights in recalibrated.safetensors). Each test gives the "
              "scores as trained (Keras' moving statistics) first; its report and confusion matrix are after the "
              "re-estimation.\n\n";

    md << "## Test results\n\n" << warning;
    for (std::size_t i = 0; i < run.tests.size(); ++i) {
        const TestResult& t = run.tests[i];
        const auto& m = t.evaluation.confusion;
        md << "### " << t.part->name << "\n\n";
        if (!t.part->caveat.empty()) md << "*" << t.part->caveat << ".*\n\n";
        if (i < run.tests_as_trained.size())
            md << "- As trained: accuracy " << format_percent(run.tests_as_trained[i].accuracy) << ", macro F1 "
               << detail::fixed(run.tests_as_trained[i].confusion.macro_average().f1, 4) << "; after re-estimating "
               << "BatchNorm statistics:\n";
        md << "- Accuracy " << format_percent(m.accuracy()) << ", macro F1 " << detail::fixed(m.macro_average().f1, 4)
           << ", loss " << detail::fixed(t.evaluation.loss, 4) << ", " << m.total() << " images, evaluated in "
           << format_duration(t.seconds) << "\n\n";
        md << bcnn::report::markdown_code_block(m.report(class_names(), 4)) << "\n";
        md << bcnn::report::markdown_confusion_table(m, class_names()) << "\n";
        md << "![confusion matrix](" << t.picture << ")\n\n";
    }
    return md.str();
}

inline void write_report(const std::string& path, const RunRecord& run) {
    const std::string text = report_markdown(run);
    bcnn::io::write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

}  // namespace bloodcells
