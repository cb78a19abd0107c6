// Every atom and typed actor interface of shardrec's actors. Payloads that
// cross node boundaries are frames (actors/frame.hpp, Cap'n Proto inside).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/frame.hpp"

namespace shardrec::actors {

// Admin and routing.
using status_atom = caf::atom_constant<caf::atom("status")>;
using ingest_atom = caf::atom_constant<caf::atom("ingest")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using assign_atom = caf::atom_constant<caf::atom("assign")>;
using install_atom = caf::atom_constant<caf::atom("install")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using ok_atom = caf::atom_constant<caf::atom("ok")>;

// A shard: owns one partition's data and models (actors/shard.hpp).
using shard_actor = caf::typed_actor<
    // Stores an event batch's events of this partition; replies IngestReply.
    caf::replies_to<ingest_atom, frame>::with<frame>,
    // Replies PartitionStatus.
    caf::replies_to<stats_atom>::with<frame>>;

// Timeouts of requests between actors.
inline constexpr std::chrono::seconds admin_timeout{10};
inline constexpr std::chrono::seconds ingest_timeout{60};

} // namespace shardrec::actors
