// Converts between the plain values of actors/messages.hpp and Cap'n Proto
// frames (schema/*.capnp). The only code that touches capnp readers and
// builders. Decoding never throws: a truncated, oversized or garbage frame
// gives errc::bad_message.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

#include "actors/frame.hpp"
#include "actors/messages.hpp"
#include "core/error.hpp"

namespace shardrec::actors {

// Largest frame a node accepts (bytes); larger ones are bad_message.
inline constexpr std::size_t max_frame_bytes = std::size_t{256} << 20;

// Every frame starts with one 8-byte word: 'S' 'R', the protocol's major and
// minor version, four zero bytes; the Cap'n Proto message follows. A node
// reads frames of its own major version (minor versions only add fields,
// which Cap'n Proto readers skip) and answers any other with a bad_message
// error that names both versions, so a rolling upgrade fails loudly.
// Major 1 was the header-less format of the releases before this one.
inline constexpr std::uint8_t protocol_major = 2;
// Minor 1: PartitionStatus.modelVersion.
inline constexpr std::uint8_t protocol_minor = 1;
inline constexpr std::size_t frame_header_bytes = 8;
inline constexpr std::array<std::uint8_t, frame_header_bytes> frame_header{
    'S', 'R', protocol_major, protocol_minor, 0, 0, 0, 0};

// Bytes of the Cap'n Proto message a frame carries (without the header).
inline std::size_t payload_bytes(const frame& f) {
  return f.bytes.size() - std::min(f.bytes.size(), frame_header_bytes);
}

frame encode(const event_batch& b);
core::result<event_batch> decode_event_batch(const frame& f);

frame encode(const item_batch& b);
core::result<item_batch> decode_item_batch(const frame& f);

frame encode(const ingest_result& r);
core::result<ingest_result> decode_ingest_result(const frame& f);

frame encode(const partition_map& m);
core::result<partition_map> decode_partition_map(const frame& f);

frame encode(const node_state& s);
core::result<node_state> decode_node_state(const frame& f);

frame encode(const partition_status& s);
core::result<partition_status> decode_partition_status(const frame& f);

frame encode(const status_reply& s);
core::result<status_reply> decode_status_reply(const frame& f);

frame encode(const train_request& r);
core::result<train_request> decode_train_request(const frame& f);
frame encode(const train_reply& r);
core::result<train_reply> decode_train_reply(const frame& f);

frame encode(const recommend_request& r);
core::result<recommend_request> decode_recommend_request(const frame& f);
frame encode(const recommend_reply& r);
core::result<recommend_reply> decode_recommend_reply(const frame& f);

frame encode(const similar_request& r);
core::result<similar_request> decode_similar_request(const frame& f);
frame encode(const popular_request& r);
core::result<popular_request> decode_popular_request(const frame& f);
frame encode(const popular_reply& r);
core::result<popular_reply> decode_popular_reply(const frame& f);
frame encode(const similar_reply& r);
core::result<similar_reply> decode_similar_reply(const frame& f);

} // namespace shardrec::actors
