// Private: argument checks shared by the kernels; each throws with the bad value named.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace layerbraid::resnet::detail {

// A layer dimension: an integer >= 1.
inline void require_positive(const char* who, const char* name, std::int64_t value) {
  if (value < 1) {
    throw std::invalid_argument(std::string(who) + ": " + name + "=" + std::to_string(value) +
                                " must be >= 1");
  }
}

// a * b, or std::length_error when it overflows size_t (both >= 1 here).
inline std::size_t checked_mul(const char* who, std::size_t a, std::size_t b) {
  if (b != 0 && a > std::numeric_limits<std::size_t>::max() / b) {
    throw std::length_error(std::string(who) + ": size " + std::to_string(a) + " * " +
                            std::to_string(b) + " overflows");
  }
  return a * b;
}

// A buffer that must hold exactly `expected` values; `expected_text` says where that comes from:
// a C string, or a callable returning a std::string that is called only when the check fails
// (so that a passing check, made on every step, allocates nothing).
template <class Text>
inline void require_size(const char* who, const char* name, std::size_t size,
                         std::size_t expected, const Text& expected_text) {
  if (size != expected) {
    std::string text;
    if constexpr (std::is_invocable_v<const Text&>) {
      text = expected_text();
    } else {
      text = expected_text;
    }
    throw std::invalid_argument(std::string(who) + ": " + name + " has " + std::to_string(size) +
                                " elements, expected " + text + " = " +
                                std::to_string(expected));
  }
}

// A scratch buffer of the workspace that must hold at least `needed` values.
inline void require_scratch(const char* who, const char* name, std::size_t size,
                            std::size_t needed, std::int64_t batch) {
  if (size < needed) {
    throw std::invalid_argument(std::string(who) + ": workspace." + name + " holds " +
                                std::to_string(size) + " elements, this step needs " +
                                std::to_string(needed) + " (batch=" + std::to_string(batch) +
                                "); call work.reserve(layer, batch) before stepping");
  }
}

}  // namespace layerbraid::resnet::detail
