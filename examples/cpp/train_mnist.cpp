// The paper's MNIST MatNet (Gao, Guo and Wang, section 4.1) trained from C++ with LibTorch and
// matnet::MatNetLayer: 28×28 → 20×20 → 16×16 (sigmoid) → 10 (softmax on the flattened 16×16 matrix),
// 4,986 parameters. SGD with Nesterov momentum 0.9, learning rate 0.1 annealed to 0 by a cosine over
// the epochs, batches of 128: the settings of `python -m matnet_torch.train` without its ±2 pixel
// shifts, on all 60,000 training images, on one thread by default like the Python tool (on these
// small matrices a second thread costs more in synchronisation than it gains; docs/mnist_results.md).
// Prints the loss per epoch and the test accuracy.
//
//   train_mnist DATA_DIR [EPOCHS=20] [THREADS=1]
//
// DATA_DIR holds the four MNIST IDX files, raw or gzip-compressed: train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may end in .gz).
#include <matnet/matnet.h>
#include <torch/torch.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

namespace {

// An IDX file of unsigned bytes: the magic number 0x0000080D for D dimensions, D sizes, all
// big-endian 32-bit, then the bytes. gzread reads compressed and raw files alike.
torch::Tensor read_idx(const std::filesystem::path& data_dir, const std::string& name, int64_t dims) {
  std::filesystem::path path = data_dir / name;
  if (!std::filesystem::exists(path)) path += ".gz";
  std::unique_ptr<gzFile_s, decltype(&gzclose)> file(gzopen(path.c_str(), "rb"), &gzclose);
  TORCH_CHECK(file, "train_mnist: cannot open ", path, " (nor without .gz)");
  auto read_exactly = [&](void* buffer, size_t bytes) {
    TORCH_CHECK(gzread(file.get(), buffer, static_cast<unsigned>(bytes)) == static_cast<int>(bytes),
                "train_mnist: ", path, " is shorter than its header says");
  };
  auto read_big_endian = [&] {
    unsigned char bytes[4];
    read_exactly(bytes, 4);
    return int64_t(bytes[0]) << 24 | int64_t(bytes[1]) << 16 | int64_t(bytes[2]) << 8 | int64_t(bytes[3]);
  };
  const int64_t magic = read_big_endian();
  TORCH_CHECK(magic == 0x800 + dims, "train_mnist: ", path, " has magic number ", magic, ", expected ",
              0x800 + dims, " (unsigned bytes, ", dims, " dimensions)");
  std::vector<int64_t> sizes(dims);
  for (auto& size : sizes) size = read_big_endian();
  torch::Tensor data = torch::empty(sizes, torch::kUInt8);
  read_exactly(data.data_ptr<uint8_t>(), data.numel());
  return data;
}

struct Split {
  torch::Tensor images;  // (N, 28, 28) float32 in [0, 1]
  torch::Tensor labels;  // (N,) int64
};

Split load_split(const std::filesystem::path& data_dir, const std::string& prefix) {
  Split split{read_idx(data_dir, prefix + "-images-idx3-ubyte", 3).to(torch::kFloat) / 255,
              read_idx(data_dir, prefix + "-labels-idx1-ubyte", 1).to(torch::kLong)};
  TORCH_CHECK(split.images.size(0) == split.labels.size(0), "train_mnist: ", prefix, " has ",
              split.images.size(0), " images but ", split.labels.size(0), " labels");
  return split;
}

// X (N, 28, 28) → σ(U₁ X V₁ᵀ + B₁) (N, 20, 20) → σ(U₂ · V₂ᵀ + B₂) (N, 16, 16) → W vec(·) + b (N, 10).
struct PaperNetImpl : torch::nn::Module {
  PaperNetImpl()
      : hidden1(register_module("hidden1", matnet::MatNetLayer(matnet::MatNetLayerOptions({28, 28}, {20, 20})))),
        hidden2(register_module("hidden2", matnet::MatNetLayer(matnet::MatNetLayerOptions({20, 20}, {16, 16})))),
        head(register_module("head", torch::nn::Linear(16 * 16, 10))) {}

  torch::Tensor forward(const torch::Tensor& x) { return head(hidden2(hidden1(x)).flatten(1)); }

  matnet::MatNetLayer hidden1, hidden2;
  torch::nn::Linear head;
};
TORCH_MODULE(PaperNet);

double accuracy(PaperNet& model, const Split& split) {
  torch::NoGradGuard no_grad;
  return model(split.images).argmax(1).eq(split.labels).to(torch::kDouble).mean().item<double>();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4 || std::string(argv[1]) == "--help") {
    std::cerr << "usage: train_mnist DATA_DIR [EPOCHS=20] [THREADS=1]\n"
                 "Trains the paper's MNIST MatNet with matnet::MatNetLayer and prints the test accuracy.\n"
                 "DATA_DIR holds the four MNIST IDX files, raw or .gz.\n";
    return argc == 2 ? 0 : 2;
  }
  const std::filesystem::path data_dir = argv[1];
  const int64_t epochs = argc >= 3 ? std::stoll(argv[2]) : 20;
  torch::set_num_threads(argc == 4 ? std::stoi(argv[3]) : 1);
  const int64_t batch_size = 128;
  const double peak_lr = 0.1;

  torch::manual_seed(0);
  const Split train = load_split(data_dir, "train"), test = load_split(data_dir, "t10k");
  PaperNet model;
  int64_t parameters = 0;
  for (const auto& parameter : model->parameters()) parameters += parameter.numel();
  std::cout << "paper's MatNet, " << parameters << " parameters; " << train.images.size(0) << " training and "
            << test.images.size(0) << " test images; " << epochs << " epochs" << std::endl;

  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(peak_lr).momentum(0.9).nesterov(true));
  const auto start = std::chrono::steady_clock::now();
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    // Cosine annealing, stepped per epoch: lr_e = lr/2 · (1 + cos(π e / E)).
    const double lr = 0.5 * peak_lr * (1 + std::cos(M_PI * double(epoch) / double(epochs)));
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
    double loss_sum = 0;
    const torch::Tensor order = torch::randperm(train.images.size(0), torch::kLong);
    for (const torch::Tensor& batch : order.split(batch_size)) {
      const torch::Tensor loss =
          torch::nn::functional::cross_entropy(model(train.images.index_select(0, batch)), train.labels.index_select(0, batch));
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>() * double(batch.numel());
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "epoch " << epoch + 1 << ": training loss " << loss_sum / double(train.images.size(0)) << ", "
              << seconds << " s" << std::endl;
  }
  std::cout << "test accuracy " << 100 * accuracy(model, test) << " %" << std::endl;
  return 0;
}
