// Which partitions a batch of events or item attributes goes to: the one
// split every sender shares (the CLI's loader sending straight to the shards,
// a node's coordinator forwarding a batch it was given). Pure functions of
// the batch and the partition count; no actors.
//
// Every valid event goes to its user's partition and, when that differs, to
// its item's partition: exactly once to each owner, in input order within a
// partition. Invalid events (dist::validate) go nowhere and are counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/dataset.hpp"
#include "dist/partition_store.hpp"

namespace shardrec::dist {

// At most this many problem texts are kept per batch (and by the senders
// over a whole load); the counts stay exact.
inline constexpr std::size_t max_problems = 10;

struct routed_events {
  std::vector<std::vector<raw_event>> per_partition; // size partitions
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
  // "event K: <what is wrong>" for the first max_problems rejected events,
  // K = first_index + the event's position in the batch.
  std::vector<std::string> problems;
};

// Splits `events` by owner partition. first_index numbers the events in the
// problem texts (the batch's offset in a larger stream, 0 for a lone batch).
// REQUIRES: partitions >= 1
routed_events route_events(std::vector<raw_event> events, std::uint32_t partitions,
                           std::size_t first_index = 0);

// Item side information, external id -> attributes.
using item_entry = std::pair<std::string, item_info>;

// Splits `items` by the partition owning each item, in input order.
// REQUIRES: partitions >= 1
std::vector<std::vector<item_entry>> route_items(std::vector<item_entry> items,
                                                 std::uint32_t partitions);

} // namespace shardrec::dist
