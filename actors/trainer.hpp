// The trainer: a short-lived actor that the coordinator spawns for one
// `train` request. It drives the shards through the steps of each algorithm
// (actors/shard.hpp lists them), computes the global reductions between
// steps (census, content vocabulary, similarity scale, Gram matrices,
// losses) with dist/'s merge functions, and replies one TrainReply. It
// computes nothing else. Any failed or timed-out step ends the run with an
// error naming the step.
#pragma once

#include <vector>

#include <caf/fwd.hpp>

#include "actors/frame.hpp"

namespace shardrec::actors {

// Spawns a trainer for `request` (a TrainRequest frame) over `shards` (every
// partition's shard, by partition); the reply (TrainReply frame or error)
// goes to `rp`.
void spawn_trainer(caf::actor_system& sys, std::vector<caf::actor> shards, frame request,
                   caf::response_promise rp);

} // namespace shardrec::actors
