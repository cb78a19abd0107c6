// The shard actor: owns one partition (dist::partition_store) and the models
// trained on it, and runs its share of every distributed computation. Spawned,
// linked and monitored by its node's control actor. Every handler decodes a
// frame, calls core, encodes the reply; a bad frame gets an error reply and
// the shard keeps running.
//
// Messages:
//   (ingest_atom, frame EventBatch)              -> frame IngestReply
//   (stats_atom)                                 -> frame PartitionStatus
//   (train_atom, vector<actor> shards)           -> ok_atom   every shard by partition
//   (train_atom, string step, frame arg)         -> frame     one training step (below)
//   (block_atom, string kind, frame block)       -> ok_atom   a block from another shard
//   (profile_atom, vector<string> users)         -> vector<frame>, vector<string>:
//                                                   per user a frame user_profile (with
//                                                   the seen items' content vectors),
//                                                   a frame cached blend_stats or
//                                                   empty, and an error text (empty:
//                                                   fine)
//   (cache_atom, string user, frame blend_stats) -> (nothing) keep a user's statistics
//   (similar_atom, string item, u32 n)           -> frame SimilarReply
// A training step that produces blocks for other shards replies only after
// every block has been acknowledged, so when the trainer has every reply of
// a step, every block of that step has arrived (the barrier the next step
// relies on). Steps, in the order the trainer (actors/trainer.hpp) runs them:
//   build:<last|sum>  -> als_census      freeze the matrices
//   popular           -> empty
//   content_df        -> content_df_partial
//   content_vec (content_vocabulary) -> empty, sends content_vectors_message
//   content_users     -> empty
//   knn_scale         -> scale_partial
//   knn_rows (scale_partial with the global scale) -> empty, sends its users'
//                        quantised rows (rater_rows_block) once per node, to
//                        the node's first shard
//   knn_gather        -> empty; the node's first shard builds the matrix of
//                        every user from the P blocks and hands it to the
//                        node's shards as (block_atom, shared_raters)
//   knn_final         -> empty, computes its items' lists, sends reverse blocks
//   knn_reverse       -> empty
//   ials_init (als_globals) / mf_init (als_globals) -> empty
//   ials_send:<users|items> -> gram_partial, sends ials_group blocks
//   ials_solve:<users|items>[+send|+loss] (gram_total) -> empty;
//                        +send: then as ials_send of the solved side;
//                        +loss (items only): loss_partial
//   mf_send:<users|items> -> empty, sends mf_group blocks
//   mf_solve:<users|items>[+send|+loss] -> as ials_solve
// Factor blocks go once per node, to its first shard (the group leader),
// which decodes them once and hands the decoded block to the node's other
// shards as (block_atom, shared_ptr<const block>), a local-only message.
//   publish (blend_spec) -> empty        build the query-time scorer and send it
//                                        to the node's control actor as
//                                        (scorer_atom, u32 partition, shared_scorer)
#pragma once

#include <caf/fwd.hpp>

#include "actors/interfaces.hpp"

namespace shardrec::actors {

shard_actor spawn_shard(caf::actor_system& sys, std::uint32_t partition,
                        std::uint32_t partitions, std::uint32_t node_id, caf::actor node);

} // namespace shardrec::actors
