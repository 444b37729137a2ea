// Registers the cuDNN functions (cudnn_addon.cc) on the module's exports.
#pragma once

#include <napi.h>

namespace tensormem {

void RegisterCudnn(Napi::Env env, Napi::Object exports);

}  // namespace tensormem
