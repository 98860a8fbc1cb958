// The bcnn side of the comparisons with Keras and torchvision (run by
// run_keras_check.sh):
//   bcnn_vs_keras MODEL WORK_DIR [keras|torch]    MODEL: vgg16 or densenet201
// WORK_DIR holds what compare_keras.py and weights/convert_keras.py wrote
// (keras, the default):
//   keras_outputs.safetensors         Keras' input batch and outputs
//   MODEL_backbone.safetensors        Keras' backbone weights, converted
//   MODEL_classifier.safetensors      Keras' study model (3 or 4) weights, converted
// or what compare_torch.py and weights/convert_torchvision.py wrote (torch):
//   torch_outputs.safetensors         torchvision's input batch and outputs (NHWC)
//   MODEL_backbone.safetensors        torchvision's state dict, converted
// (torchvision has no study model: the backbone alone is compared). The input
// preprocessing is the one the converted backbone's metadata names, as a
// program reads it: "bcnn.preprocessing" = "torch" means torch mode for either
// model (densenet_preprocess), no such key the model's Keras mode.
// bcnn loads the converted weights into its own models (checking first that
// the converter wrote them in the models' named_parameters() order), runs
// them in inference (float32) on the same input, and compares each output y
// with the reference's k, twice: with im2col + GEMM only (relative error
// max|y - k| / max|k| below 1e-4) and with the automatic choice, where Winograd
// layers add float error (below 5e-4, see kMaxRelativeErrorAutomatic). Also
// printed: the largest per-element relative error |y - k| / |k| among the
// elements with |k| at least 1% of max|k|, and the forward times. Exit
// status 0 when every comparison passes, 1 otherwise.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <bcnn/io/weights.hpp>
#include <bcnn/models/densenet.hpp>
#include <bcnn/models/vgg16.hpp>
#include <bcnn/models/weights_preprocessing.hpp>

using namespace bcnn;

namespace {

// Limits per convolution algorithm. gemm_only: float32 rounding of the same
// sums in another order. automatic: Winograd F(4x4, 3x3) layers carry up to
// ~1.2e-5 of their output's scale each (tests/kernels/test_winograd.cpp);
// measured on DenseNet201 (98 such layers): 5.2e-5 on the backbone, 1.2e-4 on
// the logits after the study head's BatchNorm amplifies it; 5e-4 leaves 4x.
constexpr double kMaxRelativeErrorGemmOnly = 1e-4;
constexpr double kMaxRelativeErrorAutomatic = 5e-4;

double relative_error_limit(cpu::ConvAlgorithm algorithm) {
    return algorithm == cpu::ConvAlgorithm::gemm_only ? kMaxRelativeErrorGemmOnly : kMaxRelativeErrorAutomatic;
}

// What differs between the compared models.
struct ModelUnderTest {
    std::function<void(const Tensor<float>&, Tensor<float>&)> preprocess;  // Keras' preprocess_input
    std::function<std::unique_ptr<nn::Sequential<float>>(Index image_size)> backbone;
    std::function<std::unique_ptr<nn::Sequential<float>>(int classes, Index image_size)> classifier;
};

const std::map<std::string, ModelUnderTest>& models_under_test() {
    static const std::map<std::string, ModelUnderTest> models = {
        {"vgg16",
         {[](const Tensor<float>& x, Tensor<float>& y) { models::vgg16_preprocess(x, y); },
          [](Index size) { return models::make_vgg16_backbone<float>(size); },
          [](int classes, Index size) { return models::make_vgg16_classifier<float>(classes, size); }}},
        {"densenet201",
         {[](const Tensor<float>& x, Tensor<float>& y) { models::densenet_preprocess(x, y); },
          [](Index size) { return models::make_densenet_backbone<float>(201, size); },
          [](int classes, Index size) { return models::make_densenet201_classifier<float>(classes, size); }}},
    };
    return models;
}

// The preprocessing that the converted weights in `path` expect (see the top).
std::function<void(const Tensor<float>&, Tensor<float>&)> preprocessing_of(const std::string& path,
                                                                         const ModelUnderTest& m) {
    if (models::preprocessing_of_weights(path) == models::InputPreprocessing::model_default) return m.preprocess;
    return [](const Tensor<float>& x, Tensor<float>& y) { models::densenet_preprocess(x, y); };
}

// max(a, b), but NaN when either is: a NaN output must fail the comparison
// (std::max(0.0, NAN) is 0).
double max_or_nan(double a, double b) { return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b); }

// Prints one comparison; returns whether it passes.
bool compare(const std::string& what, const Tensor<float>& ours, const Tensor<float>& keras, double limit) {
    BCNN_CHECK(ours.shape() == keras.shape(),
               what << ": bcnn's output has shape " << ours.shape() << ", the reference's " << keras.shape());
    const std::vector<float> a = ours.to_vector(), b = keras.to_vector();
    double max_diff = 0, max_keras = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        max_diff = max_or_nan(max_diff, std::abs(double(a[i]) - double(b[i])));
        max_keras = max_or_nan(max_keras, std::abs(double(b[i])));
    }
    double max_element = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::abs(double(b[i])) >= 0.01 * max_keras)
            max_element = max_or_nan(max_element, std::abs(double(a[i]) - double(b[i])) / std::abs(double(b[i])));
    const double relative = max_keras > 0 ? max_diff / max_keras : (max_diff > 0 ? INFINITY : 0.0);
    const bool pass = max_keras > 0 && relative < limit;
    std::printf("%-32s %-18s max|k| %-11.5g max|y-k| %-11.4g relative %-11.4g per-element %-11.4g %s\n", what.c_str(),
                ours.shape().str().c_str(), max_keras, max_diff, relative, max_element, pass ? "ok" : "FAILED");
    return pass;
}

// softmax over the last axis of (N, classes) logits.
Tensor<float> softmax(const Tensor<float>& logits) {
    Tensor<float> out(logits.shape());
    for (Index n = 0; n < logits.dim(0); ++n) {
        double top = logits(n, 0), sum = 0;
        for (Index k = 1; k < logits.dim(1); ++k) top = std::max(top, double(logits(n, k)));
        for (Index k = 0; k < logits.dim(1); ++k) sum += std::exp(double(logits(n, k)) - top);
        for (Index k = 0; k < logits.dim(1); ++k)
            out(n, k) = static_cast<float>(std::exp(double(logits(n, k)) - top) / sum);
    }
    return out;
}

// Loads `path` into `model` after checking that its tensors are in the
// model's named_parameters() order (the converter's tables list them so).
void load_in_order(const std::string& path, nn::Module<float>& model) {
    const io::SafetensorsFile file = io::SafetensorsFile::open(path);
    std::vector<const io::SafetensorsEntry*> entries;
    for (const io::SafetensorsEntry& entry : file.entries()) entries.push_back(&entry);
    std::sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
    const auto params = model.named_parameters();
    for (std::size_t i = 0; i < std::min(entries.size(), params.size()); ++i)
        BCNN_CHECK(entries[i]->name == params[i].name, "'" << path << "': tensor " << i << " is '" << entries[i]->name
                                                           << "', the model's parameter " << i << " is '"
                                                           << params[i].name << "'");
    io::load_weights(path, model);
}

// Runs model.forward(x) in inference and prints its time.
Tensor<float> timed_forward(const std::string& what, nn::Module<float>& model, const Tensor<float>& x) {
    const auto start = std::chrono::steady_clock::now();
    Tensor<float> y = model.forward(x, nn::Context{});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("bcnn %s forward: %.2f s for %lld images of %lldx%lld\n", what.c_str(), seconds,
                static_cast<long long>(x.dim(0)), static_cast<long long>(x.dim(1)), static_cast<long long>(x.dim(2)));
    return y;
}

// The study's model on the backbone (Keras references only): its head alone
// on Keras' backbone features, then the whole model on the preprocessed x.
bool compare_study_model(const std::string& name, const std::string& dir, const ModelUnderTest& m,
                         const io::SafetensorsFile& keras, const Tensor<float>& x, const std::string& backbone,
                         double limit) {
    const Tensor<float> keras_logits = keras.tensor<float>("classifier_logits");
    const int classes = static_cast<int>(keras_logits.dim(1));
    auto classifier = m.classifier(classes, x.dim(1));
    load_in_order(dir + "/" + name + "_classifier.safetensors", *classifier);
    // The head alone on Keras' own backbone features: float32 noise of the
    // backbone does not reach this comparison.
    Tensor<float> head = keras.tensor<float>("backbone_output");
    for (std::size_t i = 1; i < classifier->size(); ++i) head = classifier->at(i).forward(head, nn::Context{});
    bool pass = compare("study head on Keras' " + backbone, head, keras_logits, limit);
    // The whole model. The head amplifies the backbone's float32 rounding
    // (BatchNorm brings small features to unit scale, noise included).
    const Tensor<float> logits = timed_forward("classifier", *classifier, x);
    pass &= compare(backbone + " + study head logits", logits, keras_logits, limit);
    pass &= compare(backbone + " + study head softmax", softmax(logits),
                    keras.tensor<float>("classifier_probabilities"), limit);
    return pass;
}

int run(const std::string& name, const std::string& dir, const std::string& reference) {
    const auto found = models_under_test().find(name);
    BCNN_CHECK(found != models_under_test().end(), "unknown model '" << name << "' (vgg16 or densenet201)");
    BCNN_CHECK(reference == "keras" || reference == "torch",
               "unknown reference '" << reference << "' (keras or torch)");
    const ModelUnderTest& m = found->second;
    const io::SafetensorsFile expected = io::SafetensorsFile::open(dir + "/" + reference + "_outputs.safetensors");
    const Tensor<float> pixels = expected.tensor<float>("input");
    BCNN_CHECK(pixels.rank() == 4 && pixels.dim(1) == pixels.dim(2),
               "input has shape " << pixels.shape() << ", expected (N, S, S, 3)");
    const std::string backbone_file = dir + "/" + name + "_backbone.safetensors";
    bool pass = true;

    Tensor<float> x(pixels.shape());
    preprocessing_of(backbone_file, m)(pixels, x);
    pass &= compare("preprocess_input", x, expected.tensor<float>("preprocessed"), kMaxRelativeErrorGemmOnly);

    auto backbone = m.backbone(pixels.dim(1));
    load_in_order(backbone_file, *backbone);
    for (const cpu::ConvAlgorithm algorithm : {cpu::ConvAlgorithm::gemm_only, cpu::ConvAlgorithm::automatic}) {
        cpu::set_conv_algorithm(algorithm);
        const double limit = relative_error_limit(algorithm);
        std::printf("convolution algorithms: %s (relative error limit %g)\n", cpu::conv_algorithm_name(algorithm),
                    limit);
        const Tensor<float> features = timed_forward(backbone->name(), *backbone, x);
        pass &= compare(backbone->name() + " backbone", features, expected.tensor<float>("backbone_output"), limit);
        if (reference == "keras") pass &= compare_study_model(name, dir, m, expected, x, backbone->name(), limit);
    }

    std::printf("bcnn_vs_keras %s: %s\n", name.c_str(),
                !pass ? "MISMATCH" : reference == "keras" ? "bcnn matches Keras" : "bcnn matches torchvision");
    return pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4) {
        std::fprintf(stderr, "usage: bcnn_vs_keras vgg16|densenet201 WORK_DIR [keras|torch]\n");
        return 2;
    }
    try {
        return run(argv[1], argv[2], argc == 4 ? argv[3] : "keras");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bcnn_vs_keras: error: %s\n", e.what());
        return 1;
    }
}
