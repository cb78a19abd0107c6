// The one payload type that crosses node boundaries: an encoded Cap'n Proto
// message (flat array of 64-bit words, as bytes). CAF carries it opaquely;
// only actors/codec.cpp builds or reads its contents.
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
