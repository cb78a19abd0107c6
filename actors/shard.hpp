// The shard actor: owns one partition (core::partition_store) and the models
// trained on it. Messages: see shard_actor in actors/interfaces.hpp. Spawned
// and monitored by its node's control actor. Handlers decode a frame, call
// core, encode the reply; a bad frame is answered with an error, never a
// crash.
#pragma once

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"

namespace shardrec::actors {

shard_actor spawn_shard(caf::actor_system& sys, std::uint32_t partition,
                        std::uint32_t partitions, std::uint32_t node_id);

} // namespace shardrec::actors
