// The bcnn side of the VGG16 comparison with Keras (run by run_keras_check.sh):
//   vgg16_vs_keras WORK_DIR
// WORK_DIR holds what compare_vgg16.py and weights/convert_keras.py wrote:
//   keras_outputs.safetensors      Keras' input batch and outputs
//   vgg16_backbone.safetensors     Keras' VGG16 weights, converted
//   vgg16_classifier.safetensors   Keras' study model 3 weights, converted
// bcnn loads the converted weights into its own models, runs them in
// inference (float32) on the same input, and compares each output y with
// Keras' k: relative error max|y - k| / max|k| must be below 1e-4. Also
// printed: the largest per-element relative error |y - k| / |k| among the
// elements with |k| at least 1% of max|k|. Exit status 0 when every
// comparison passes, 1 otherwise.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include <bcnn/io/weights.hpp>
#include <bcnn/models/vgg16.hpp>

using namespace bcnn;

namespace {

constexpr double kMaxRelativeError = 1e-4;

// Prints one comparison; returns whether it passes.
bool compare(const std::string& what, const Tensor<float>& ours, const Tensor<float>& keras) {
    BCNN_CHECK(ours.shape() == keras.shape(),
               what << ": bcnn's output has shape " << ours.shape() << ", Keras' " << keras.shape());
    const std::vector<float> a = ours.to_vector(), b = keras.to_vector();
    double max_diff = 0, max_keras = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        max_diff = std::max(max_diff, std::abs(double(a[i]) - double(b[i])));
        max_keras = std::max(max_keras, std::abs(double(b[i])));
    }
    double max_element = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::abs(double(b[i])) >= 0.01 * max_keras)
            max_element = std::max(max_element, std::abs(double(a[i]) - double(b[i])) / std::abs(double(b[i])));
    const double relative = max_keras > 0 ? max_diff / max_keras : (max_diff > 0 ? INFINITY : 0.0);
    const bool pass = max_keras > 0 && relative < kMaxRelativeError;
    std::printf("%-26s %-18s max|k| %-11.5g max|y-k| %-11.4g relative %-11.4g per-element %-11.4g %s\n", what.c_str(),
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

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int run(const std::string& dir) {
    const io::SafetensorsFile keras = io::SafetensorsFile::open(dir + "/keras_outputs.safetensors");
    const Tensor<float> pixels = keras.tensor<float>("input");
    BCNN_CHECK(pixels.rank() == 4 && pixels.dim(1) == pixels.dim(2),
               "input has shape " << pixels.shape() << ", expected (N, S, S, 3)");
    const Index image_size = pixels.dim(1);
    const Tensor<float> keras_logits = keras.tensor<float>("classifier_logits");
    const int classes = static_cast<int>(keras_logits.dim(1));
    bool pass = true;

    Tensor<float> x(pixels.shape());
    models::vgg16_preprocess(pixels, x);
    pass &= compare("preprocess_input", x, keras.tensor<float>("preprocessed"));

    auto backbone = models::make_vgg16_backbone<float>(image_size);
    io::load_weights(dir + "/vgg16_backbone.safetensors", *backbone);
    auto start = std::chrono::steady_clock::now();
    const Tensor<float> features = backbone->forward(x, nn::Context{});
    std::printf("bcnn VGG16 forward: %.2f s for %lld images of %lldx%lld\n", seconds_since(start),
                static_cast<long long>(x.dim(0)), static_cast<long long>(image_size),
                static_cast<long long>(image_size));
    pass &= compare("VGG16 backbone", features, keras.tensor<float>("backbone_output"));

    auto classifier = models::make_vgg16_classifier<float>(classes, image_size);
    io::load_weights(dir + "/vgg16_classifier.safetensors", *classifier);
    // The head alone on Keras' own VGG16 features: float32 noise of the
    // backbone (above) does not reach this comparison.
    Tensor<float> head = keras.tensor<float>("backbone_output");
    for (std::size_t i = 1; i < classifier->size(); ++i) head = classifier->at(i).forward(head, nn::Context{});
    pass &= compare("study head on Keras' VGG16", head, keras_logits);
    // The whole model. The head amplifies the backbone's float32 rounding
    // (BatchNorm brings small features to unit scale, noise included).
    const Tensor<float> logits = classifier->forward(x, nn::Context{});
    pass &= compare("VGG16 + study head logits", logits, keras_logits);
    pass &= compare("VGG16 + study head softmax", softmax(logits), keras.tensor<float>("classifier_probabilities"));

    std::printf("vgg16_vs_keras: %s (relative error limit %g)\n", pass ? "bcnn matches Keras" : "MISMATCH",
                kMaxRelativeError);
    return pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: vgg16_vs_keras WORK_DIR\n");
        return 2;
    }
    try {
        return run(argv[1]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vgg16_vs_keras: error: %s\n", e.what());
        return 1;
    }
}
