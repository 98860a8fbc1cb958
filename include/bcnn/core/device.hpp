#pragma once
// Device: where a tensor's memory lives. Ops dispatch on it in backend/.

#include <ostream>

namespace bcnn {

enum class Device { cpu, cuda };

inline const char* device_name(Device device) { return device == Device::cpu ? "cpu" : "cuda"; }
inline std::ostream& operator<<(std::ostream& out, Device device) { return out << device_name(device); }

}  // namespace bcnn
