#include "cudnn_loader.h"

#include <dlfcn.h>

#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>

#ifdef TENSORMEM_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include "native_error.h"

namespace tensormem {
namespace cudnn {
namespace {

// Opaque cuDNN handles and descriptors are pointers to incomplete structs; void* is ABI-identical.
using Handle = void*;
using Descriptor = void*;
using Status = int;  // cudnnStatus_t; CUDNN_STATUS_SUCCESS = 0

constexpr int kTensorNchw = 0;           // cudnnTensorFormat_t CUDNN_TENSOR_NCHW
constexpr int kCrossCorrelation = 1;     // cudnnConvolutionMode_t CUDNN_CROSS_CORRELATION
// Upper bounds of the algorithm enums (CUDNN_CONVOLUTION_*_ALGO_COUNT in cuDNN 9: 8, 6, 7).
constexpr int kMaxAlgorithms = 16;

// cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t share this layout.
struct PerfStruct {
  int algo;
  Status status;
  float time;
  size_t memory;
  int determinism;
  int math_type;
  int reserved[3];
};

struct Api {
  size_t (*GetVersion)();
  const char* (*GetErrorString)(Status);
  Status (*Create)(Handle*);
  Status (*Destroy)(Handle);
  Status (*CreateTensorDescriptor)(Descriptor*);
  Status (*SetTensorNdDescriptor)(Descriptor, int data_type, int nb_dims, const int* dims, const int* strides);
  Status (*DestroyTensorDescriptor)(Descriptor);
  Status (*CreateFilterDescriptor)(Descriptor*);
  Status (*SetFilterNdDescriptor)(Descriptor, int data_type, int format, int nb_dims, const int* dims);
  Status (*DestroyFilterDescriptor)(Descriptor);
  Status (*CreateConvolutionDescriptor)(Descriptor*);
  Status (*SetConvolutionNdDescriptor)(Descriptor, int length, const int* pads, const int* strides, const int* dilations, int mode, int compute_type);
  Status (*SetConvolutionGroupCount)(Descriptor, int);
  Status (*SetConvolutionMathType)(Descriptor, int);
  Status (*DestroyConvolutionDescriptor)(Descriptor);
  Status (*GetConvolutionNdForwardOutputDim)(Descriptor conv, Descriptor x, Descriptor w, int nb_dims, int* out);
  // (handle, a, b, conv, c, requested, returned, perf): x w conv y | w dy conv dx | x dy conv dw
  Status (*GetForwardAlgorithm)(Handle, Descriptor, Descriptor, Descriptor, Descriptor, int, int*, PerfStruct*);
  Status (*GetBackwardDataAlgorithm)(Handle, Descriptor, Descriptor, Descriptor, Descriptor, int, int*, PerfStruct*);
  Status (*GetBackwardFilterAlgorithm)(Handle, Descriptor, Descriptor, Descriptor, Descriptor, int, int*, PerfStruct*);
  Status (*GetForwardWorkspaceSize)(Handle, Descriptor, Descriptor, Descriptor, Descriptor, int, size_t*);
  Status (*GetBackwardDataWorkspaceSize)(Handle, Descriptor, Descriptor, Descriptor, Descriptor, int, size_t*);
  Status (*GetBackwardFilterWorkspaceSize)(Handle, Descriptor, Descriptor, Descriptor, Descriptor, int, size_t*);
};

struct State {
  void* library = nullptr;
  Api api{};
  LoadResult result;
  std::map<int, Handle> handles;  // per CUDA device, created on first use
};

State& GlobalState() {
  static State state;
  return state;
}

// Worker threads with their own Node environments share the library and the handles.
std::mutex& GlobalMutex() {
  static std::mutex mutex;
  return mutex;
}

// cudnnGetVersion of cuDNN 8.0.0: MAJOR * 1000 + MINOR * 100 + PATCH until 8.x, MAJOR * 10000 + ... from 9.
constexpr size_t kMinimumVersion = 8000;

// "7.6.5" for 7605, "9.1.0" for 90100 (as cudnnVersionText in src/memory/cudnn-library.ts).
std::string VersionText(size_t version) {
  const bool nine = version >= 90000;
  const size_t major = nine ? version / 10000 : version / 1000;
  const size_t rest = nine ? version % 10000 : version % 1000;
  return std::to_string(major) + "." + std::to_string(rest / 100) + "." + std::to_string(rest % 100);
}

// Resolves every symbol into `api`; returns the first missing name, or empty.
std::string Resolve(void* library, Api& api) {
  std::string missing;
  auto bind = [&](auto& slot, const char* name) {
    void* symbol = dlsym(library, name);
    if (symbol == nullptr && missing.empty()) missing = name;
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(symbol);
  };
  bind(api.GetVersion, "cudnnGetVersion");
  bind(api.GetErrorString, "cudnnGetErrorString");
  bind(api.Create, "cudnnCreate");
  bind(api.Destroy, "cudnnDestroy");
  bind(api.CreateTensorDescriptor, "cudnnCreateTensorDescriptor");
  bind(api.SetTensorNdDescriptor, "cudnnSetTensorNdDescriptor");
  bind(api.DestroyTensorDescriptor, "cudnnDestroyTensorDescriptor");
  bind(api.CreateFilterDescriptor, "cudnnCreateFilterDescriptor");
  bind(api.SetFilterNdDescriptor, "cudnnSetFilterNdDescriptor");
  bind(api.DestroyFilterDescriptor, "cudnnDestroyFilterDescriptor");
  bind(api.CreateConvolutionDescriptor, "cudnnCreateConvolutionDescriptor");
  bind(api.SetConvolutionNdDescriptor, "cudnnSetConvolutionNdDescriptor");
  bind(api.SetConvolutionGroupCount, "cudnnSetConvolutionGroupCount");
  bind(api.SetConvolutionMathType, "cudnnSetConvolutionMathType");
  bind(api.DestroyConvolutionDescriptor, "cudnnDestroyConvolutionDescriptor");
  bind(api.GetConvolutionNdForwardOutputDim, "cudnnGetConvolutionNdForwardOutputDim");
  bind(api.GetForwardAlgorithm, "cudnnGetConvolutionForwardAlgorithm_v7");
  bind(api.GetBackwardDataAlgorithm, "cudnnGetConvolutionBackwardDataAlgorithm_v7");
  bind(api.GetBackwardFilterAlgorithm, "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
  bind(api.GetForwardWorkspaceSize, "cudnnGetConvolutionForwardWorkspaceSize");
  bind(api.GetBackwardDataWorkspaceSize, "cudnnGetConvolutionBackwardDataWorkspaceSize");
  bind(api.GetBackwardFilterWorkspaceSize, "cudnnGetConvolutionBackwardFilterWorkspaceSize");
  return missing;
}

const Api& LoadedApi() {
  State& state = GlobalState();
  if (!state.result.loaded) {
    const std::string why = state.result.error.empty() ? "no cuDNN library was loaded" : state.result.error;
    throw NativeError(ErrorCode::kUnsupported, "cuDNN is not loaded: " + why);
  }
  return state.api;
}

std::string StatusName(const Api& api, Status status) {
  const char* name = api.GetErrorString(status);
  return name != nullptr ? name : "cudnnStatus " + std::to_string(status);
}

void Check(const Api& api, Status status, const char* what) {
  if (status != 0) {
    const std::string name = StatusName(api, status);
    throw NativeError(ErrorCode::kCudaError, std::string(what) + ": " + name, name);
  }
}

// Descriptors destroyed on every path out of a query.
class Descriptors {
 public:
  explicit Descriptors(const Api& api) : api_(api) {}
  ~Descriptors() {
    if (x_ != nullptr) api_.DestroyTensorDescriptor(x_);
    if (y_ != nullptr) api_.DestroyTensorDescriptor(y_);
    if (w_ != nullptr) api_.DestroyFilterDescriptor(w_);
    if (conv_ != nullptr) api_.DestroyConvolutionDescriptor(conv_);
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;

  // Builds input (x), filter (w), convolution and output (y) descriptors for the query.
  void Build(const ConvolutionQuery& query) {
    const int nb_dims = static_cast<int>(query.input_dims.size());
    Check(api_, api_.CreateTensorDescriptor(&x_), "cudnnCreateTensorDescriptor");
    Check(api_, api_.SetTensorNdDescriptor(x_, query.data_type, nb_dims, query.input_dims.data(), PackedStrides(query.input_dims).data()),
          "cudnnSetTensorNdDescriptor(input)");
    Check(api_, api_.CreateFilterDescriptor(&w_), "cudnnCreateFilterDescriptor");
    Check(api_, api_.SetFilterNdDescriptor(w_, query.data_type, kTensorNchw, nb_dims, query.filter_dims.data()), "cudnnSetFilterNdDescriptor");
    Check(api_, api_.CreateConvolutionDescriptor(&conv_), "cudnnCreateConvolutionDescriptor");
    Check(api_, api_.SetConvolutionNdDescriptor(conv_, nb_dims - 2, query.pads.data(), query.strides.data(), query.dilations.data(), kCrossCorrelation, query.compute_type),
          "cudnnSetConvolutionNdDescriptor");
    Check(api_, api_.SetConvolutionGroupCount(conv_, query.group_count), "cudnnSetConvolutionGroupCount");
    Check(api_, api_.SetConvolutionMathType(conv_, query.math_type), "cudnnSetConvolutionMathType");
    std::vector<int> output(nb_dims);
    Check(api_, api_.GetConvolutionNdForwardOutputDim(conv_, x_, w_, nb_dims, output.data()), "cudnnGetConvolutionNdForwardOutputDim");
    Check(api_, api_.CreateTensorDescriptor(&y_), "cudnnCreateTensorDescriptor");
    Check(api_, api_.SetTensorNdDescriptor(y_, query.data_type, nb_dims, output.data(), PackedStrides(output).data()), "cudnnSetTensorNdDescriptor(output)");
  }

  Descriptor x() const { return x_; }
  Descriptor y() const { return y_; }
  Descriptor w() const { return w_; }
  Descriptor conv() const { return conv_; }

 private:
  // cuDNN takes int strides: the product is formed in 64 bits and refused past INT_MAX, not wrapped.
  static std::vector<int> PackedStrides(const std::vector<int>& dims) {
    std::vector<int> strides(dims.size(), 1);
    for (size_t i = dims.size() - 1; i > 0; i--) {
      const int64_t stride = static_cast<int64_t>(strides[i]) * dims[i];
      if (stride > std::numeric_limits<int>::max()) {
        throw NativeError(ErrorCode::kOutOfBounds, "a tensor of " + std::to_string(dims.size()) + " dimensions whose element count past dimension " + std::to_string(i - 1) + " (" + std::to_string(stride) + ") exceeds cuDNN's int strides (2^31 - 1)");
      }
      strides[i - 1] = static_cast<int>(stride);
    }
    return strides;
  }

  const Api& api_;
  Descriptor x_ = nullptr;
  Descriptor y_ = nullptr;
  Descriptor w_ = nullptr;
  Descriptor conv_ = nullptr;
};

// The cuDNN handle of a CUDA device, made current first; created on first use.
Handle DeviceHandle(const Api& api, int device) {
#ifdef TENSORMEM_WITH_CUDA
  const cudaError_t set = cudaSetDevice(device);
  if (set != cudaSuccess) {
    cudaGetLastError();
    const std::string name = cudaGetErrorName(set);
    throw NativeError(ErrorCode::kCudaError, "cudaSetDevice(" + std::to_string(device) + ") for cuDNN: " + name + ": " + cudaGetErrorString(set), name);
  }
  State& state = GlobalState();
  auto found = state.handles.find(device);
  if (found != state.handles.end()) return found->second;
  Handle handle = nullptr;
  Check(api, api.Create(&handle), ("cudnnCreate on device " + std::to_string(device)).c_str());
  state.handles[device] = handle;
  return handle;
#else
  (void)api;
  (void)device;
  throw NativeError(ErrorCode::kUnsupported, "cuDNN needs a CUDA device: this addon was built without CUDA");
#endif
}

}  // namespace

LoadResult Load(const std::vector<std::string>& candidates) {
  std::lock_guard<std::mutex> lock(GlobalMutex());
  State& state = GlobalState();
  if (state.result.loaded) return state.result;
  std::string tried;
  for (const std::string& candidate : candidates) {
    dlerror();
    void* library = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      const char* reason = dlerror();
      // dlerror() already starts with the name it tried.
      tried += (tried.empty() ? "" : "; ") + (reason != nullptr ? std::string(reason) : candidate + ": dlopen failed");
      continue;
    }
    Api api{};
    const std::string missing = Resolve(library, api);
    if (!missing.empty()) {
      dlclose(library);
      tried += (tried.empty() ? "" : "; ") + candidate + ": no symbol " + missing + " (cuDNN 8 or newer is needed)";
      continue;
    }
    // Every symbol is there in cuDNN 7 too (the _v7 finders came with it), but its workspace sizes and
    // enums are not what the daemon reads: refused, as the missing symbols of older ones are.
    const size_t version = api.GetVersion();
    if (version < kMinimumVersion) {
      dlclose(library);
      tried += (tried.empty() ? "" : "; ") + candidate + ": cuDNN " + VersionText(version) + " is too old (cuDNN 8 or newer is needed)";
      continue;
    }
    state.library = library;
    state.api = api;
    state.result = LoadResult{true, candidate, version, ""};
    return state.result;
  }
  state.result = LoadResult{false, "", 0, candidates.empty() ? "no candidate library names" : tried};
  return state.result;
}

std::vector<AlgorithmPerf> FindAlgorithms(int device, const ConvolutionQuery& query) {
  std::lock_guard<std::mutex> lock(GlobalMutex());
  const Api& api = LoadedApi();
  Handle handle = DeviceHandle(api, device);
  Descriptors d(api);
  d.Build(query);
  PerfStruct perf[kMaxAlgorithms] = {};
  int returned = 0;
  switch (query.direction) {
    case Direction::kForward:
      Check(api, api.GetForwardAlgorithm(handle, d.x(), d.w(), d.conv(), d.y(), kMaxAlgorithms, &returned, perf), "cudnnGetConvolutionForwardAlgorithm_v7");
      break;
    case Direction::kBackwardData:
      Check(api, api.GetBackwardDataAlgorithm(handle, d.w(), d.y(), d.conv(), d.x(), kMaxAlgorithms, &returned, perf), "cudnnGetConvolutionBackwardDataAlgorithm_v7");
      break;
    case Direction::kBackwardFilter:
      Check(api, api.GetBackwardFilterAlgorithm(handle, d.x(), d.y(), d.conv(), d.w(), kMaxAlgorithms, &returned, perf), "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
      break;
  }
  std::vector<AlgorithmPerf> result;
  for (int i = 0; i < returned && i < kMaxAlgorithms; i++) {
    result.push_back(AlgorithmPerf{perf[i].algo, perf[i].status, StatusName(api, perf[i].status), perf[i].time, static_cast<uint64_t>(perf[i].memory),
                                   perf[i].determinism, perf[i].math_type});
  }
  return result;
}

uint64_t WorkspaceSize(int device, const ConvolutionQuery& query, int algorithm) {
  std::lock_guard<std::mutex> lock(GlobalMutex());
  const Api& api = LoadedApi();
  Handle handle = DeviceHandle(api, device);
  Descriptors d(api);
  d.Build(query);
  size_t bytes = 0;
  switch (query.direction) {
    case Direction::kForward:
      Check(api, api.GetForwardWorkspaceSize(handle, d.x(), d.w(), d.conv(), d.y(), algorithm, &bytes), "cudnnGetConvolutionForwardWorkspaceSize");
      break;
    case Direction::kBackwardData:
      Check(api, api.GetBackwardDataWorkspaceSize(handle, d.w(), d.y(), d.conv(), d.x(), algorithm, &bytes), "cudnnGetConvolutionBackwardDataWorkspaceSize");
      break;
    case Direction::kBackwardFilter:
      Check(api, api.GetBackwardFilterWorkspaceSize(handle, d.x(), d.y(), d.conv(), d.w(), algorithm, &bytes), "cudnnGetConvolutionBackwardFilterWorkspaceSize");
      break;
  }
  return static_cast<uint64_t>(bytes);
}

void ReleaseHandles() noexcept {
  std::lock_guard<std::mutex> lock(GlobalMutex());
  State& state = GlobalState();
  if (!state.result.loaded) return;
  for (auto& [device, handle] : state.handles) state.api.Destroy(handle);
  state.handles.clear();
}

}  // namespace cudnn
}  // namespace tensormem
