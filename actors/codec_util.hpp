// Private helpers of the codec files (actors/codec*.cpp): building a frame
// from a message builder and reading one with bounded reader options. No
// other file includes this header (it pulls in Cap'n Proto).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include "actors/codec.hpp"
#include "actors/frame.hpp"
#include "core/error.hpp"

namespace shardrec::actors::detail {

inline core::error bad_message(std::string what) {
  return core::make_error(core::errc::bad_message, "bad frame: " + std::move(what));
}

inline frame to_frame(capnp::MessageBuilder& mb) {
  auto words = capnp::messageToFlatArray(mb);
  auto bytes = words.asBytes();
  return frame{std::vector<std::uint8_t>(bytes.begin(), bytes.end())};
}

// Runs fn(root reader) on the frame's message with bounded reader options,
// turning every Cap'n Proto fault into errc::bad_message. fn returns T or
// core::result<T>.
template <class Root, class T, class F>
core::result<T> read_frame(const frame& f, F&& fn) {
  const auto n = f.bytes.size();
  if (n == 0)
    return bad_message("empty");
  if (n % sizeof(capnp::word) != 0)
    return bad_message("size " + std::to_string(n) + " is not a multiple of 8 bytes");
  if (n > max_frame_bytes)
    return bad_message("size " + std::to_string(n) + " exceeds the limit of "
                       + std::to_string(max_frame_bytes) + " bytes");
  kj::Array<capnp::word> copy;
  kj::ArrayPtr<const capnp::word> words;
  if (reinterpret_cast<std::uintptr_t>(f.bytes.data()) % alignof(capnp::word) == 0) {
    words = kj::ArrayPtr<const capnp::word>(
        reinterpret_cast<const capnp::word*>(f.bytes.data()), n / sizeof(capnp::word));
  } else {
    copy = kj::heapArray<capnp::word>(n / sizeof(capnp::word));
    std::memcpy(copy.begin(), f.bytes.data(), n);
    words = copy;
  }
  capnp::ReaderOptions opt;
  // A well-formed frame is read at most a few times over; anything that makes
  // the reader traverse far more than its own size is hostile.
  opt.traversalLimitInWords = 4 * (n / sizeof(capnp::word)) + 1024;
  opt.nestingLimit = 16;
  try {
    capnp::FlatArrayMessageReader reader(words, opt);
    return fn(reader.getRoot<Root>());
  } catch (const kj::Exception& e) {
    return bad_message(e.getDescription().cStr());
  }
}

inline std::string text(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

} // namespace shardrec::actors::detail
