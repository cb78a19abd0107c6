// Loading data into a running cluster. Events go straight to the shards that
// own their users and items (split by dist::route_events, so a client and a
// node's coordinator route alike), with a bounded number of batches in
// flight; item side information goes through the entry node's coordinator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "actors/messages.hpp"
#include "client/connection.hpp"
#include "core/dataset.hpp"
#include "core/loaders.hpp"

namespace shardrec::client {

struct load_options {
  std::size_t batch = 20000; // events (or items) per message; REQUIRES >= 1
  std::size_t window = 4;    // batches in flight per partition; REQUIRES >= 1
};

struct load_figures {
  // Valid events acknowledged by every partition they went to (durable
  // there, per the nodes' --sync). Events of a chunk with a failed batch
  // are not counted: some of them may be stored.
  std::uint64_t accepted = 0;
  std::uint64_t unconfirmed = 0; // valid events sent whose chunk was not acknowledged
  std::uint64_t rejected = 0;    // lines the file's loader skipped + invalid events
  // The first dist::max_problems texts: the file loader's, then those of the
  // events in the order they were found here or by the shards.
  std::vector<std::string> problems;
  double seconds = 0; // from the first request to the last reply
  // Non-empty when a batch was not stored ("a batch was not stored: ...");
  // loading stopped after the batches already sent.
  std::string failure;
};

// Told of the progress as loading goes (each member may be empty).
struct load_observer {
  // After each batch: events sent so far, of `total`, seconds since the start.
  std::function<void(std::size_t sent, std::size_t total, double seconds)> progress;
  // Once, when the first batch is not stored (the text of figures.failure).
  std::function<void(const std::string& failure)> failed;
};

// Sends the events of `ds` to the shards owning them. `read` is the report
// of reading ds from its file (its skipped lines and problems come first).
// Call connect_every_node first so that no batch goes out while CAF hands a
// connection over. Errors (nothing loaded): the entry node cannot list its
// shards, or a partition has no shard.
core::result<load_figures> load_events(connection& c, const core::dataset& ds,
                                       const core::load_report& read,
                                       const load_options& opt,
                                       const load_observer& observer = {});

struct item_load_figures {
  std::uint64_t stored = 0; // items whose attributes an owner stored
  // Non-empty when a batch was not stored ("item attributes not stored: ...").
  std::string failure;
};

// Sends the item attributes of `side` (side.item_meta by item index) in
// batches of opt.batch items.
item_load_figures load_items(connection& c, const core::dataset& side,
                             const load_options& opt);

// Sends `events` through the entry node's coordinator (which routes each to
// its user's and item's partitions) and returns once every partition
// involved acknowledged them (after its log sync, per the nodes' --sync).
// The reply counts accepted and rejected events; an error when a partition
// did not store its share (some events may be stored then: send again and
// they count twice).
// scale: the data set's rating scale; none keeps each partition's.
core::result<actors::ingest_result>
send_events(connection& c, std::vector<dist::raw_event> events,
            std::optional<core::rating_scale> scale = std::nullopt);

} // namespace shardrec::client
