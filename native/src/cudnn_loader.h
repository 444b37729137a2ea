// cuDNN, loaded at run time with dlopen (never linked): the few legacy convolution calls that size a
// workspace. cuDNN is optional; when no library can be opened, or a symbol is missing, the loader
// says why and everything else keeps working.
//
// The types and enum values below are declared here from cuDNN's public headers (cudnn_graph.h,
// cudnn_ops.h, cudnn_cnn.h, v8 and v9 agree on every value used), so no cuDNN header is needed to build.
// cuDNN 9 splits the library (libcudnn_graph, _ops, _cnn, ...); libcudnn.so.9 is a small dispatcher
// that opens the others from its own directory, so opening it is enough.
//
// Threading: every call takes one process-wide lock (worker threads share the library and handles).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tensormem {
namespace cudnn {

// cudnnDataType_t values (cudnn_graph.h).
enum DataType : int { kFloat = 0, kDouble = 1, kHalf = 2, kInt8 = 3, kInt32 = 4, kUint8 = 6, kBfloat16 = 9, kInt64 = 10 };
// cudnnMathType_t.
enum MathType : int { kDefaultMath = 0, kTensorOpMath = 1, kTensorOpMathAllowConversion = 2, kFmaMath = 3 };

enum class Direction { kForward = 0, kBackwardData = 1, kBackwardFilter = 2 };

// A convolution as the TypeScript layer normalised it (src/memory/cudnn-convolution.ts): cross-correlation
// (what DL4J and every framework use), NCHW (or NCDHW) packed tensors, a KCRS (KCTRS) filter.
struct ConvolutionQuery {
  Direction direction = Direction::kForward;
  std::vector<int> input_dims;   // N, C, spatial... (4 or 5 entries)
  std::vector<int> filter_dims;  // K, C/groups, spatial...
  std::vector<int> pads;         // one per spatial dimension
  std::vector<int> strides;
  std::vector<int> dilations;
  int data_type = kFloat;
  int compute_type = kFloat;
  int math_type = kDefaultMath;
  int group_count = 1;
};

struct AlgorithmPerf {
  int algorithm = 0;
  int status = 0;            // cudnnStatus_t of this algorithm (0 = usable)
  std::string status_name;   // cudnnGetErrorString
  float time_ms = -1;        // as cuDNN reports it (heuristics report an estimate or -1)
  uint64_t memory_bytes = 0;
  int determinism = 0;       // cudnnDeterminism_t: 0 non-deterministic, 1 deterministic
  int math_type = 0;
};

struct LoadResult {
  bool loaded = false;
  std::string path;      // the candidate that opened
  size_t version = 0;    // cudnnGetVersion()
  std::string error;     // why not, naming every candidate tried
};

// Tries `candidates` in order (paths or sonames, as dlopen takes them) until one opens and has every
// symbol. Once a library is loaded, later calls return it without trying anything.
LoadResult Load(const std::vector<std::string>& candidates);

// cuDNN's algorithm heuristics for the query on a CUDA device (cudnnGetConvolution*Algorithm_v7):
// every algorithm cuDNN knows for the direction, in cuDNN's order (fastest expected first), each with
// the workspace it needs. Throws NativeError: UNSUPPORTED when cuDNN is not loaded or the addon has
// no CUDA, CUDA_ERROR (cudaError = the cudnnStatus_t name) when cuDNN refuses.
std::vector<AlgorithmPerf> FindAlgorithms(int device, const ConvolutionQuery& query);

// cudnnGetConvolution*WorkspaceSize for one algorithm (USER_SPECIFIED). Same errors.
uint64_t WorkspaceSize(int device, const ConvolutionQuery& query, int algorithm);

// Destroys the per-device handles (environment teardown). The library stays mapped.
void ReleaseHandles() noexcept;

}  // namespace cudnn
}  // namespace tensormem
