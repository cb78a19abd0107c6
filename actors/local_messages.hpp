// Message types that never leave their node: handed between the actors of
// one node by pointer instead of as frames. CAF refuses to serialise them.
#pragma once

#include <memory>

#include <caf/allowed_unsafe_message_type.hpp>

#include "dist/als.hpp"
#include "dist/knn.hpp"
#include "dist/recommend.hpp"

namespace shardrec::actors {
// A shard's immutable query-time scorer, shared with its node's scorer
// actor (the node's query engine) after every publish.
using shared_scorer = std::shared_ptr<const dist::partition_scorer>;
// A factor block decoded once by the node's first shard and handed to the
// node's other shards.
using shared_ials_block = std::shared_ptr<const dist::ials_block>;
using shared_mf_block = std::shared_ptr<const dist::mf_block>;
// One round of item-kNN rows (every rater's cells on the round's items, and
// the node's items' columns), gathered once per node by its first shard and
// shared with the node's other shards (each adds it to its own items' lists).
using shared_raters = std::shared_ptr<const dist::gathered_raters>;
} // namespace shardrec::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardrec::actors::shared_scorer)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardrec::actors::shared_ials_block)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardrec::actors::shared_mf_block)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardrec::actors::shared_raters)
