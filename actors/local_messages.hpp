// Message types that never leave their node: handed between the actors of
// one node by pointer instead of as frames. CAF refuses to serialise them.
#pragma once

#include <memory>

#include <caf/allowed_unsafe_message_type.hpp>

#include "core/dist_recommend.hpp"

namespace shardrec::actors {
// A shard's immutable query-time scorer, shared with its node's control
// actor (the node's query engine) after every publish.
using shared_scorer = std::shared_ptr<const core::partition_scorer>;
} // namespace shardrec::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shardrec::actors::shared_scorer)
