// Every atom of shardrec's actors and the registration of the types their
// messages carry. Payloads that cross node boundaries are frames
// (actors/frame.hpp, Cap'n Proto inside) or the typed training protocol
// (actors/train_steps.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include "actors/frame.hpp"

namespace shardrec::actors {

// Admin and routing.
using status_atom = caf::atom_constant<caf::atom("status")>;
using ingest_atom = caf::atom_constant<caf::atom("ingest")>;
using items_atom = caf::atom_constant<caf::atom("items")>;
using shards_atom = caf::atom_constant<caf::atom("shards")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using start_atom = caf::atom_constant<caf::atom("start")>;
using view_atom = caf::atom_constant<caf::atom("view")>;
using host_atom = caf::atom_constant<caf::atom("host")>;
using membership_atom = caf::atom_constant<caf::atom("membership")>;
using assign_atom = caf::atom_constant<caf::atom("assign")>;
using install_atom = caf::atom_constant<caf::atom("install")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using ok_atom = caf::atom_constant<caf::atom("ok")>;
using sync_atom = caf::atom_constant<caf::atom("sync")>;
using hello_atom = caf::atom_constant<caf::atom("hello")>;
using nodes_atom = caf::atom_constant<caf::atom("nodes")>;
using retrain_atom = caf::atom_constant<caf::atom("retrain")>;

// Training and queries.
using train_atom = caf::atom_constant<caf::atom("train")>;
using block_atom = caf::atom_constant<caf::atom("block")>;
using profile_atom = caf::atom_constant<caf::atom("profile")>;
using cache_atom = caf::atom_constant<caf::atom("cache")>;
using scorer_atom = caf::atom_constant<caf::atom("scorer")>;
using nquery_atom = caf::atom_constant<caf::atom("nquery")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using similar_atom = caf::atom_constant<caf::atom("similar")>;
using recommend_atom = caf::atom_constant<caf::atom("recommend")>;
using predict_atom = caf::atom_constant<caf::atom("predict")>;
using rows_atom = caf::atom_constant<caf::atom("rows")>;
using mrows_atom = caf::atom_constant<caf::atom("mrows")>;
using live_atom = caf::atom_constant<caf::atom("live")>;
using peers_atom = caf::atom_constant<caf::atom("peers")>;
using popular_atom = caf::atom_constant<caf::atom("popular")>;
using seen_atom = caf::atom_constant<caf::atom("seen")>;
using export_atom = caf::atom_constant<caf::atom("export")>;
using fetch_atom = caf::atom_constant<caf::atom("fetch")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using role_atom = caf::atom_constant<caf::atom("role")>;
using replicate_atom = caf::atom_constant<caf::atom("replicate")>;
using model_atom = caf::atom_constant<caf::atom("model")>;
using lagging_atom = caf::atom_constant<caf::atom("lagging")>;

// A shard (actors/shard.hpp) owns one partition's data and models; the
// messages it handles are listed in actors/shard.hpp.
using shard_actor = caf::actor;

// A fresh batch id (event_batch::id): random, never 0.
std::uint64_t new_batch_id();

// Registers shardrec's message types with a CAF configuration (every
// process that talks to a node calls it).
void add_message_types(caf::actor_system_config& cfg);

// Timeouts of requests between actors.
inline constexpr std::chrono::seconds admin_timeout{10};
inline constexpr std::chrono::seconds ingest_timeout{60};
// One partition's part of a write (coordinator or bulk loader to a shard):
// after it the part is sent again (with its batch id: stored once).
inline constexpr std::chrono::seconds part_timeout{10};
inline constexpr std::chrono::seconds train_timeout{600};
// A query's whole budget; a partition that has not answered by then is
// reported missing and the answer flagged partial.
inline constexpr std::chrono::milliseconds query_timeout{2000};

// Items of the user named per recommendation as its explanation.
inline constexpr std::size_t max_because = 3;

} // namespace shardrec::actors
