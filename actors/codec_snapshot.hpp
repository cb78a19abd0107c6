// One partition's complete state as bytes and back (schema/snapshot.capnp,
// root PartitionSnapshot): the store as plain values (dist::store_image) and
// the model the partition serves, if any. The bytes are a plain Cap'n Proto
// flat array; the file layer (atomic write, checksum, log replay) wraps them.
//
// A decoded snapshot gives back exactly what was encoded: ids, events, item
// information, counters and every float bit for bit, so that
// dist::partition_store::from_image(s.store) and make_served(*s.model) give
// a store and a scorer indistinguishable from the originals.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dataset.hpp"
#include "core/error.hpp"
#include "dist/knn.hpp"
#include "dist/partition_store.hpp"
#include "dist/recommend.hpp"
#include "dist/training.hpp"

namespace shardrec::actors {

// A served model as plain values: what dist::served_models holds, before the
// scorer's indexes are built.
struct served_model_image {
  dist::partition_item_models items;
  dist::blend_spec spec;
  dist::partition_user_models users;
  std::optional<std::vector<dist::entity_neighbors>> neighbors; // none: no item-kNN
};

struct partition_snapshot {
  std::uint64_t log_seq = 0;       // the last log record the snapshot covers
  std::uint64_t model_version = 0; // 0 = no model
  bool ratings_only = true;
  core::rating_scale scale;
  dist::store_image store;
  std::optional<served_model_image> model;
  // The log's epoch history (actors/durable.hpp epoch_history): epoch k
  // starts at record epoch_starts[k]; both increasing.
  std::vector<std::uint64_t> epochs, epoch_starts;
};

// REQUIRES: every list under 2^29 entries (events of a side, ids, floats of
// one array); sparse vectors with weights aligned with features.
std::string encode_snapshot(const partition_snapshot& s);

// errc::bad_message ("bad frame: snapshot ...", naming the field) for an
// empty, truncated, misaligned-length or garbage buffer, a buffer with bytes
// after the message, a message of another kind (magic), an unknown
// enumerant, or arrays that break the documented shape (aligned columns of
// different lengths, CSR lengths that do not add up, dictionary indices out
// of range, unsorted sparse features, content features beyond
// contentFeatures). Never throws or aborts. What only the store or the
// scorer can check (id ownership, event indices, model sizes) is left to
// dist::partition_store::from_image and make_served, which return errors
// too. `data` need not be aligned (it is copied if it is not).
core::result<partition_snapshot> decode_snapshot(const void* data, std::size_t size);

// What a shard serves from a model image: partition_scorer::make(items, spec)
// (its errors), the user models, the neighbour lists (null when absent).
core::result<dist::served_models> make_served(const served_model_image& m);
core::result<dist::served_models> make_served(served_model_image&& m);

// The reverse. REQUIRES: m.scorer
served_model_image image_of(const dist::served_models& m);

} // namespace shardrec::actors
