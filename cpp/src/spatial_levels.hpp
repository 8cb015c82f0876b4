// Private to Propagation: the image resolutions of spatial coarsening
// (SolverOptions::spatial_coarsen). Spatial index s = the image halved s times. It holds the
// layer and the state size at each s, coarsens a range of layers' kernels (and, for the
// adjoint, sigma'(z)) down to each s, and computes a coarse step at low resolution on a
// full-size state (the default kind). The transfers are resnet.hpp's restrict_image,
// refine_image and coarsen_kernel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "layerbraid/resnet_app.hpp"

namespace layerbraid::resnet::detail {

template <class T>
class SpatialLevels {
 public:
  // levels = 0: the layer alone (any kind); > 0: Conv layers whose height and width are
  // divisible by 2^levels (std::invalid_argument otherwise, naming the value).
  SpatialLevels(const Layer& layer, std::int64_t batch, int levels) : batch_(batch) {
    layers_.push_back(layer);
    sizes_.push_back(std::visit([&](const auto& l) { return l.state_size(batch); }, layer));
    if (levels == 0) return;
    const std::string what = "Propagation: spatial_coarsen=" + std::to_string(levels);
    const Conv* c = std::get_if<Conv>(&layer);
    if (c == nullptr) {
      throw std::invalid_argument(what + " needs Conv layers; Dense states have no image to "
                                  "coarsen");
    }
    const std::int64_t f = std::int64_t(1) << levels;
    if (c->height() % f != 0 || c->width() % f != 0) {
      throw std::invalid_argument(what + " halves " + std::to_string(c->height()) + " x " +
                                  std::to_string(c->width()) + " images " +
                                  std::to_string(levels) +
                                  " times; height and width must be divisible by " +
                                  std::to_string(f));
    }
    for (int s = 1; s <= levels; ++s) {
      const Conv small(c->channels(), c->height() >> s, c->width() >> s, c->kernel_size());
      layers_.emplace_back(small);
      sizes_.push_back(small.state_size(batch));
      low_.emplace_back(sizes_.back());
      low_up_.emplace_back(sizes_.back());
    }
  }

  int levels() const noexcept { return static_cast<int>(layers_.size()) - 1; }
  const Layer& layer(int s) const { return layers_[std::size_t(s)]; }
  std::size_t state_size(int s) const { return sizes_[std::size_t(s)]; }

  // to (index s + 1) <- from (index s) averaged over 2x2 blocks.
  void restrict_state(const T* from, int s, T* to) const {
    const Conv& g = conv(s);
    restrict_image<T>(CSpan<T>(from, state_size(s)), Span<T>(to, state_size(s + 1)), batch_,
                      g.height(), g.width(), g.channels());
  }
  // to (index s) += from (index s + 1), each pixel on its 2x2 block.
  void refine_add(const T* from, int s, T* to) const {
    const Conv& g = conv(s);
    refine_image<T>(CSpan<T>(from, state_size(s + 1)), Span<T>(to, state_size(s)), batch_,
                    g.height(), g.width(), g.channels());
  }

  // kernels[s - 1] <- the coarse kernels, s = 1 .. levels, of `count` layers whose fine
  // kernels are fine(i); with derivs (the adjoint), sigma'(z) averaged likewise from deriv(i).
  template <class Weight, class Deriv>
  void coarsen_layers(int levels, int count, Weight fine, std::vector<std::vector<T>>& kernels,
                      Deriv deriv, std::vector<std::vector<T>>* derivs) const {
    const std::size_t nc = static_cast<std::size_t>(count);
    kernels.resize(static_cast<std::size_t>(levels));
    if (derivs != nullptr) derivs->resize(static_cast<std::size_t>(levels));
    for (int s = 1; s <= levels; ++s) {
      const std::size_t k = static_cast<std::size_t>(s - 1);
      const Conv& g = conv(s - 1);
      const std::size_t nw = g.weight_size();
      kernels[k].resize(nc * nw);
      if (derivs != nullptr) (*derivs)[k].resize(nc * state_size(s));
      for (std::size_t i = 0; i < nc; ++i) {
        const T* from = s == 1 ? fine(i) : kernels[k - 1].data() + i * nw;
        coarsen_kernel<T>(CSpan<T>(from, nw), Span<T>(kernels[k].data() + i * nw, nw),
                          g.channels(), g.kernel_size());
        if (derivs == nullptr) continue;
        const T* d = s == 1 ? deriv(i) : (*derivs)[k - 1].data() + i * state_size(s - 1);
        restrict_state(d, s - 1, (*derivs)[k].data() + i * state_size(s));
      }
    }
  }

  // u <- u + P^sp (step(R^sp u) - R^sp u) on a full-size state u: the step's update computed on
  // the image halved sp >= 1 times (in scratch), brought back by P.
  template <class Step>
  void low_resolution_update(T* u, int sp, Step&& step) {
    const T* src = u;
    for (int s = 0; s < sp; ++s) {
      restrict_state(src, s, low_[std::size_t(s)].data());
      src = low_[std::size_t(s)].data();
    }
    const std::size_t n = state_size(sp);
    T* z = low_[std::size_t(sp - 1)].data();
    T* before = low_up_[std::size_t(sp - 1)].data();
    std::memcpy(before, z, n * sizeof(T));
    step(z);
    for (std::size_t i = 0; i < n; ++i) z[i] -= before[i];
    const T* d = z;
    for (int s = sp - 1; s >= 0; --s) {
      T* out = s == 0 ? u : low_up_[std::size_t(s - 1)].data();
      if (s > 0) std::fill(out, out + state_size(s), T(0));
      refine_add(d, s, out);
      d = out;
    }
  }

 private:
  const Conv& conv(int s) const { return std::get<Conv>(layers_[std::size_t(s)]); }

  std::int64_t batch_;
  std::vector<Layer> layers_;        // by s
  std::vector<std::size_t> sizes_;   // by s: values of one state
  // Scratch of low_resolution_update, by s - 1: states of index s.
  std::vector<std::vector<T>> low_, low_up_;
};

}  // namespace layerbraid::resnet::detail
