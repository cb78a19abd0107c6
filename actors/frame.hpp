// The payload of most messages that cross node boundaries: the protocol
// version header (actors/codec.hpp) and an encoded Cap'n Proto message
// (flat array of 64-bit words, as bytes). CAF carries it opaquely; only the
// codecs (actors/codec*.cpp, codec_util.hpp) build or read its contents. An
// empty frame means "no result" (a training step with nothing to report).
// The typed training protocol (actors/train_steps.hpp) and plain vectors of
// ids, floats and handles also cross nodes, as CAF serialises them.
#pragma once

#include <cstdint>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace shardrec::actors {

struct frame {
  std::vector<std::uint8_t> bytes;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, frame& x) {
  return f(caf::meta::type_name("shardrec_frame"), x.bytes);
}

} // namespace shardrec::actors
