// Spatial coarsening of conv states and kernels by 2 (resnet.hpp: restrict_image,
// refine_image, coarsen_kernel), for MGRIT levels that work on coarser images.
#include <string>

#include "check.hpp"
#include "layerbraid/resnet.hpp"

namespace layerbraid::resnet {

using detail::checked_mul;
using detail::require_positive;
using detail::require_size;

namespace {

// The fine image's size, checked: every dimension >= 1, height and width even.
std::size_t fine_size(const char* who, std::int64_t batch, std::int64_t height,
                      std::int64_t width, std::int64_t channels) {
  require_positive(who, "batch", batch);
  require_positive(who, "height", height);
  require_positive(who, "width", width);
  require_positive(who, "channels", channels);
  if (height % 2 != 0 || width % 2 != 0) {
    throw std::invalid_argument(std::string(who) + ": height=" + std::to_string(height) +
                                " and width=" + std::to_string(width) +
                                " must be even to halve the image");
  }
  return checked_mul(who, checked_mul(who, std::size_t(batch), std::size_t(height)),
                     checked_mul(who, std::size_t(width), std::size_t(channels)));
}

}  // namespace

template <class T>
void restrict_image(CSpan<T> fine, Span<T> coarse, std::int64_t batch, std::int64_t height,
                    std::int64_t width, std::int64_t channels) {
  constexpr const char* who = "restrict_image";
  const std::size_t n = fine_size(who, batch, height, width, channels);
  require_size(who, "fine", fine.size(), n, "batch*height*width*channels");
  require_size(who, "coarse", coarse.size(), n / 4, "the fine size / 4");
  const std::size_t h = std::size_t(height), w = std::size_t(width), c = std::size_t(channels);
  const std::size_t row = w * c;  // one fine image row
  T* out = coarse.data();
  for (std::size_t b = 0; b < std::size_t(batch); ++b)
    for (std::size_t y = 0; y < h; y += 2) {
      const T* top = fine.data() + (b * h + y) * row;
      const T* bottom = top + row;
      for (std::size_t x = 0; x < w; x += 2)
        for (std::size_t k = 0; k < c; ++k) {
          const std::size_t i = x * c + k;
          *out++ = T(0.25) * ((top[i] + top[i + c]) + (bottom[i] + bottom[i + c]));
        }
    }
}

template <class T>
void refine_image(CSpan<T> coarse, Span<T> fine, std::int64_t batch, std::int64_t height,
                  std::int64_t width, std::int64_t channels) {
  constexpr const char* who = "refine_image";
  const std::size_t n = fine_size(who, batch, height, width, channels);
  require_size(who, "fine", fine.size(), n, "batch*height*width*channels");
  require_size(who, "coarse", coarse.size(), n / 4, "the fine size / 4");
  const std::size_t h = std::size_t(height), w = std::size_t(width), c = std::size_t(channels);
  const std::size_t row = w * c;
  const T* in = coarse.data();
  for (std::size_t b = 0; b < std::size_t(batch); ++b)
    for (std::size_t y = 0; y < h; y += 2) {
      T* top = fine.data() + (b * h + y) * row;
      T* bottom = top + row;
      for (std::size_t x = 0; x < w; x += 2)
        for (std::size_t k = 0; k < c; ++k) {
          const std::size_t i = x * c + k;
          const T v = *in++;
          top[i] += v;
          top[i + c] += v;
          bottom[i] += v;
          bottom[i + c] += v;
        }
    }
}

template <class T>
void coarsen_kernel(CSpan<T> fine, Span<T> coarse, std::int64_t channels, std::int64_t kernel) {
  constexpr const char* who = "coarsen_kernel";
  require_positive(who, "channels", channels);
  require_positive(who, "kernel", kernel);
  if (kernel % 2 == 0) {
    throw std::invalid_argument(std::string(who) + ": kernel=" + std::to_string(kernel) +
                                " must be odd");
  }
  const std::size_t k = std::size_t(kernel), c = std::size_t(channels);
  const std::size_t n = checked_mul(who, c * c, k * k);
  require_size(who, "fine", fine.size(), n, "channels*channels*kernel*kernel");
  require_size(who, "coarse", coarse.size(), n, "channels*channels*kernel*kernel");
  // share[d][e]: the part of fine tap d (offset d - p) that lands on coarse tap e.
  const std::int64_t p = kernel / 2;
  std::vector<T> share(k * k, T(0));
  for (std::int64_t d = -p; d <= p; ++d) {
    const std::size_t row = std::size_t(d + p) * k;
    if (d % 2 == 0) {
      share[row + std::size_t(d / 2 + p)] = T(1);
    } else {
      // (d - 1) / 2 and (d + 1) / 2 are exact for odd d of either sign.
      share[row + std::size_t((d - 1) / 2 + p)] = T(0.5);
      share[row + std::size_t((d + 1) / 2 + p)] = T(0.5);
    }
  }
  for (std::size_t oi = 0; oi < c * c; ++oi) {
    const T* f = fine.data() + oi * k * k;
    T* out = coarse.data() + oi * k * k;
    for (std::size_t e = 0; e < k * k; ++e) out[e] = T(0);
    for (std::size_t dy = 0; dy < k; ++dy)
      for (std::size_t dx = 0; dx < k; ++dx) {
        const T v = f[dy * k + dx];
        if (v == T(0)) continue;
        for (std::size_t ey = 0; ey < k; ++ey) {
          const T sy = share[dy * k + ey];
          if (sy == T(0)) continue;
          for (std::size_t ex = 0; ex < k; ++ex) out[ey * k + ex] += sy * share[dx * k + ex] * v;
        }
      }
  }
}

#define LAYERBRAID_SPATIAL_INSTANTIATE(T)                                                    \
  template void restrict_image<T>(CSpan<T>, Span<T>, std::int64_t, std::int64_t,             \
                                  std::int64_t, std::int64_t);                               \
  template void refine_image<T>(CSpan<T>, Span<T>, std::int64_t, std::int64_t, std::int64_t, \
                                std::int64_t);                                               \
  template void coarsen_kernel<T>(CSpan<T>, Span<T>, std::int64_t, std::int64_t);

LAYERBRAID_SPATIAL_INSTANTIATE(double)
LAYERBRAID_SPATIAL_INSTANTIATE(float)

}  // namespace layerbraid::resnet
