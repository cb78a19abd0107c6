#include "actors/codec.hpp"

#include <gtest/gtest.h>

#include <random>

namespace shardrec::actors {
namespace {

event_batch sample_batch() {
  event_batch b;
  b.scale = {0.5f, 5.0f};
  dist::raw_event e;
  e.user = "alice";
  e.item = "book, \"red\"";
  e.value = 4.5f;
  e.type = core::event_type::purchase;
  e.timestamp = 1700000000;
  e.device = "mobile";
  e.location = "DE";
  b.events.push_back(e);
  e.user = "bob";
  e.device.clear();
  e.location.clear();
  e.type = core::event_type::view;
  b.events.push_back(e);
  return b;
}

TEST(Codec, EventBatchRoundTrips) {
  auto b = sample_batch();
  auto f = encode(b);
  EXPECT_EQ(f.bytes.size() % 8, 0u);
  auto d = decode_event_batch(f);
  ASSERT_TRUE(d.ok()) << d.err().message;
  ASSERT_EQ(d->events.size(), 2u);
  EXPECT_EQ(d->events[0].item, "book, \"red\"");
  EXPECT_EQ(d->events[0].type, core::event_type::purchase);
  EXPECT_EQ(d->events[0].timestamp, 1700000000);
  EXPECT_EQ(d->events[0].device, "mobile");
  EXPECT_EQ(d->events[1].device, "");
  EXPECT_FLOAT_EQ(d->scale.min, 0.5f);
}

TEST(Codec, PartitionMapAndStatusRoundTrip) {
  status_reply s;
  s.map.version = 3;
  s.map.partitions = 4;
  s.map.nodes = {{0, "127.0.0.1", 7400, "serving", true},
                 {1, "127.0.0.1", 7401, "down", false}};
  s.map.owner = {0, 1, 0, 1};
  s.partitions.push_back({2, 0, 10, 20, 30, 40, {"mf"}});
  s.missing = {3};
  auto d = decode_status_reply(encode(s));
  ASSERT_TRUE(d.ok()) << d.err().message;
  EXPECT_EQ(d->map.version, 3u);
  EXPECT_EQ(d->map.nodes[1].port, 7401);
  EXPECT_EQ(d->map.nodes[0].state, "serving");
  EXPECT_TRUE(d->map.nodes[0].controller);
  EXPECT_EQ(d->map.nodes[1].state, "down");
  EXPECT_FALSE(d->map.nodes[1].controller);
  EXPECT_EQ(d->map.owner, s.map.owner);
  EXPECT_EQ(d->partitions[0].item_events, 40u);
  EXPECT_EQ(d->partitions[0].models, std::vector<std::string>{"mf"});
  EXPECT_EQ(d->missing, std::vector<std::uint32_t>{3});
}

void expect_bad(const frame& f, const char* what) {
  auto d = decode_event_batch(f);
  ASSERT_FALSE(d.ok()) << what;
  EXPECT_EQ(d.err().code, core::errc::bad_message) << what;
  EXPECT_NE(d.err().message.find("bad frame"), std::string::npos) << d.err().message;
}

TEST(Codec, MalformedFramesAreErrorsNotCrashes) {
  expect_bad(frame{}, "empty");
  expect_bad(frame{{1, 2, 3}}, "not a multiple of 8");
  auto good = encode(sample_batch());
  // Truncated: cut at every word boundary.
  for (std::size_t n = 8; n < good.bytes.size(); n += 8) {
    frame cut{std::vector<std::uint8_t>(
        good.bytes.begin(), good.bytes.begin() + static_cast<std::ptrdiff_t>(n))};
    EXPECT_FALSE(decode_event_batch(cut).ok()) << "truncated to " << n;
  }
  // A segment table that claims far more data than the frame holds.
  frame liar{std::vector<std::uint8_t>(24, 0)};
  std::copy(good.bytes.begin(), good.bytes.begin() + 8, liar.bytes.begin());
  liar.bytes[12] = 0xff;
  liar.bytes[13] = 0xff;
  liar.bytes[14] = 0xff;
  liar.bytes[15] = 0x0f;
  expect_bad(liar, "lying segment size");
  // Random garbage never crashes the decoder (it may, rarely, decode); a
  // frame it cannot decode is bad_message, not any other error.
  std::mt19937 rng(1);
  for (int k = 0; k < 2000; ++k) {
    frame g{std::vector<std::uint8_t>(8 * (1 + rng() % 32))};
    for (auto& b : g.bytes)
      b = static_cast<std::uint8_t>(rng());
    auto events = decode_event_batch(g);
    if (!events.ok()) {
      EXPECT_EQ(events.err().code, core::errc::bad_message) << "garbage " << k;
    }
    auto status = decode_status_reply(g);
    if (!status.ok()) {
      EXPECT_EQ(status.err().code, core::errc::bad_message) << "garbage " << k;
    }
  }
  // Bit flips in a valid frame: every result is either decoded or bad_message.
  for (std::size_t k = 0; k < good.bytes.size(); ++k) {
    auto flipped = good;
    flipped.bytes[k] ^= 0x5a;
    auto d = decode_event_batch(flipped);
    if (!d.ok()) {
      EXPECT_EQ(d.err().code, core::errc::bad_message) << "flip at byte " << k;
    }
  }
}

TEST(Codec, FramesCarryTheProtocolVersion) {
  auto good = encode(sample_batch());
  ASSERT_GE(good.bytes.size(), frame_header_bytes + 8);
  EXPECT_EQ(good.bytes[0], 'S');
  EXPECT_EQ(good.bytes[1], 'R');
  EXPECT_EQ(good.bytes[2], protocol_major);
  EXPECT_EQ(good.bytes[3], protocol_minor);
  // Another minor version of the same major reads (minor versions only add
  // fields).
  auto newer_minor = good;
  newer_minor.bytes[3] = static_cast<std::uint8_t>(protocol_minor + 1);
  EXPECT_TRUE(decode_event_batch(newer_minor).ok());
  // Another major version is refused, naming both versions.
  auto other_major = good;
  other_major.bytes[2] = static_cast<std::uint8_t>(protocol_major + 1);
  auto d = decode_event_batch(other_major);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.err().code, core::errc::bad_message);
  EXPECT_NE(
      d.err().message.find("protocol version " + std::to_string(protocol_major + 1)),
      std::string::npos)
      << d.err().message;
  EXPECT_NE(d.err().message.find("this node speaks " + std::to_string(protocol_major)),
            std::string::npos)
      << d.err().message;
  // A frame of the header-less format (protocol 1) is refused as such.
  frame old{std::vector<std::uint8_t>(good.bytes.begin() + 8, good.bytes.end())};
  auto o = decode_event_batch(old);
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.err().message.find("no shardrec frame header"), std::string::npos)
      << o.err().message;
  // A header alone is no message.
  frame bare{std::vector<std::uint8_t>(good.bytes.begin(), good.bytes.begin() + 8)};
  EXPECT_FALSE(decode_event_batch(bare).ok());
}

TEST(Codec, OversizedFrameIsRejectedBeforeReading) {
  frame big{std::vector<std::uint8_t>(max_frame_bytes + 8, 0)};
  auto d = decode_event_batch(big);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.err().message.find("exceeds"), std::string::npos);
}

} // namespace
} // namespace shardrec::actors
