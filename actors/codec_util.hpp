// Private helpers of the codec files (actors/codec*.cpp): building a frame
// from a message builder and reading one with bounded reader options. No
// other file includes this header (it pulls in Cap'n Proto).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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
  frame f;
  f.bytes.resize(frame_header_bytes + bytes.size());
  std::copy(frame_header.begin(), frame_header.end(), f.bytes.begin());
  std::copy(bytes.begin(), bytes.end(), f.bytes.begin() + frame_header_bytes);
  return f;
}

// The header's complaint, or an empty string for a frame this build reads.
inline std::string header_problem(const std::vector<std::uint8_t>& b) {
  if (b.size() < frame_header_bytes)
    return "size " + std::to_string(b.size()) + " is shorter than the frame header";
  if (b[0] != 'S' || b[1] != 'R')
    return "no shardrec frame header (a node of a release before protocol version 2?)";
  if (b[2] != protocol_major)
    return "protocol version " + std::to_string(b[2]) + "." + std::to_string(b[3])
           + " but this node speaks " + std::to_string(protocol_major) + "."
           + std::to_string(protocol_minor)
           + ": run the same major release on every node and client";
  return {};
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
  if (auto problem = header_problem(f.bytes); !problem.empty())
    return bad_message(problem);
  const std::uint8_t* body = f.bytes.data() + frame_header_bytes;
  const std::size_t body_words = (n - frame_header_bytes) / sizeof(capnp::word);
  if (body_words == 0)
    return bad_message("no message after the frame header");
  kj::Array<capnp::word> copy;
  kj::ArrayPtr<const capnp::word> words;
  if (reinterpret_cast<std::uintptr_t>(body) % alignof(capnp::word) == 0) {
    words = kj::ArrayPtr<const capnp::word>(reinterpret_cast<const capnp::word*>(body),
                                            body_words);
  } else {
    copy = kj::heapArray<capnp::word>(body_words);
    std::memcpy(copy.begin(), body, body_words * sizeof(capnp::word));
    words = copy;
  }
  capnp::ReaderOptions opt;
  // A well-formed frame is read at most a few times over; anything that makes
  // the reader traverse far more than its own size is hostile.
  opt.traversalLimitInWords = 4 * body_words + 1024;
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

// ---- lists

// Cap'n Proto lists hold at most 2^29 - 1 elements.
constexpr std::size_t max_list = (std::size_t{1} << 29) - 1;

inline unsigned list_size(std::size_t n) {
  SHARDREC_ASSERT(n <= max_list);
  return static_cast<unsigned>(n);
}

// Copies v into a list builder initialised with v.size() elements.
template <class B, class V> void put(B list, const std::vector<V>& v) {
  for (unsigned i = 0; i < v.size(); ++i)
    list.set(i, v[i]);
}

template <class T, class R> std::vector<T> get(R list) {
  std::vector<T> v;
  v.reserve(list.size());
  for (auto x : list)
    v.push_back(x);
  return v;
}

inline std::vector<std::string> get_strings(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> v;
  v.reserve(list.size());
  for (auto x : list)
    v.push_back(text(x));
  return v;
}

// Index of the first entry not greater than its predecessor, or v.size().
template <class V> std::size_t first_unsorted(const std::vector<V>& v) {
  for (std::size_t i = 1; i < v.size(); ++i)
    if (!(v[i - 1] < v[i]))
      return i;
  return v.size();
}

// ---- the complaints every decoder makes

inline core::error misaligned(const std::string& where, const char* field, std::size_t n,
                              const char* ref, std::size_t m) {
  return bad_message(where + ": field '" + field + "' has " + std::to_string(n)
                     + " entries, '" + ref + "' has " + std::to_string(m));
}

inline core::error not_ascending(const std::string& where, const char* field,
                                 std::size_t at) {
  return bad_message(where + ": field '" + field + "' is not strictly ascending at entry "
                     + std::to_string(at));
}

inline core::error out_of_dictionary(const std::string& where, const char* field,
                                     std::size_t at, std::uint32_t value,
                                     std::size_t ids) {
  return bad_message(where + ": field '" + field + "' entry " + std::to_string(at)
                     + " is " + std::to_string(value) + ", outside the "
                     + std::to_string(ids) + " ids");
}

// CSR rows on the wire: one length per row, the entries in two aligned
// lists (`field` and `other`). An error unless they are aligned and the
// lengths add up to their size.
template <class Lengths>
std::optional<core::error>
csr_problem(Lengths length, std::size_t entries, std::size_t other_entries,
            const std::string& where, const char* field, const char* other) {
  if (other_entries != entries)
    return misaligned(where, other, other_entries, field, entries);
  std::uint64_t total = 0;
  for (auto l : length)
    total += l;
  if (total != entries)
    return bad_message(where + ": field 'length' adds up to " + std::to_string(total)
                       + ", '" + field + "' has " + std::to_string(entries) + " entries");
  return std::nullopt;
}

inline core::error unknown_enum(const std::string& where, const char* field,
                                std::uint16_t v) {
  return bad_message(where + ": field '" + field + "' has unknown value "
                     + std::to_string(v));
}

[[noreturn]] inline void unknown_enumerant() {
  SHARDREC_ASSERT(!"core enumerant without a wire mapping");
  std::abort();
}

} // namespace shardrec::actors::detail
