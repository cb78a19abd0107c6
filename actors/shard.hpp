// The shard actor: owns one partition (dist::partition_store) and the
// models trained on it, and runs its share of every distributed computation.
// Spawned, linked and monitored by its node's host actor (actors/node_host.hpp),
// to which it sends its scorer after every publish. Every handler decodes a
// frame, calls dist/, encodes the reply; a bad frame or an out-of-range
// value gets an error reply and the shard keeps running. State:
// actors/shard_state.hpp.
//
// Messages:
//   (ingest_atom, frame EventBatch)              -> frame IngestReply, once the batch
//                                                   is in the partition's log as
//                                                   durably as --sync asks and every
//                                                   follower confirmed it; a batch
//                                                   whose id it stored lately is
//                                                   answered as then, not stored
//                                                   again; errc::moved on a shard
//                                                   that is not the primary
// Replication (actors/replica.cpp):
//   (role_atom, u64 epoch, bool primary, vector<actor> followers, vector<u32> nodes)
//                                                -> (nothing) from its membership,
//                                                   with each map installed (etcd)
//   (replicate_atom, u64 epoch, u64 first, u64 prev_epoch, vector<u32> kinds,
//    vector<frame> records)                      -> u64 its last record and u64 that
//                                                   record's epoch, once durable: a
//                                                   primary's records from `first`
//                                                   (record first - 1 is of prev_epoch
//                                                   there; a log that differs stores
//                                                   nothing); errc::fenced for an
//                                                   older epoch, errc::moved before
//                                                   its role of that epoch arrived
//   (model_atom, u64 epoch, u64 seq, frame snapshot) -> (nothing) a follower takes
//                                                   its primary's model once its log
//                                                   reaches record seq
//   (replicate_atom)                             -> (nothing) to itself: the tick
//   (items_atom, frame ItemBatch)                -> frame IngestReply, likewise
//   (sync_atom)                                  -> (nothing) to itself: sync the log,
//                                                   send the waiting replies
//   (stats_atom)                                 -> frame PartitionStatus
//   (export_atom)                                -> u64 last log record: the partition
//                                                   moves to another node; from now on
//                                                   writes get errc::moved, queries are
//                                                   answered; its folder (a snapshot of
//                                                   everything, the log) is complete
//   (profile_atom, vector<string> users)         -> vector<frame>, vector<string>:
//                                                   per user a frame user_profile (with
//                                                   the seen items' content vectors),
//                                                   a frame cached blend_stats or
//                                                   empty, and an error text (empty:
//                                                   fine)
//   (cache_atom, string user, frame blend_stats) -> (nothing) keep a user's statistics,
//                                                   if the user's profile is still the
//                                                   one it was computed from
//   (similar_atom, string item, u32 n)           -> frame SimilarReply
//   (rows_atom, vector<string> users)            -> u32 k, vector<float> MF rows
//   (mrows_atom, u64 version, vector<string> users)
//                                   -> u64 model version, vector<u32> known (1: the
//                                      model has the user's rows), u32 k iALS,
//                                      vector<float> iALS rows, u32 k MF,
//                                      vector<float> MF rows (k + 1: the bias last):
//                                      the served model's trained rows (not folded),
//                                      for another partition's new items' fold-in
//   (peers_atom, vector<actor> shards)           -> (nothing) every partition's shard,
//                                                   from the node host after each view
//   (popular_atom, frame PopularRequest)         -> frame PopularReply, this
//                                                   partition's top n
//   (live_atom)                                  -> (nothing) to itself: send the
//                                                   scorer with the live item side
//   (predict_atom, vector<string> items, vector<float> user rows) -> vector<float>
// Training (actors/shard_train.cpp; actors/train_steps.hpp has the types):
//   (train_atom, u64 run, vector<actor> shards)  -> ok_atom   every shard by partition
//                                                   (ignored while another run is active)
//   (train_atom, train_step, frame arg)          -> frame     one step (below); an
//                                                   empty frame when it has no result
// One training run at a time: a step carries its run's token; build joins a
// run unless another is active (its last step within train_timeout and its
// trainer alive: the shard monitors it); other steps must be of the shard's
// run; publish and abort (sent by a failed trainer) end it.
//   (block_atom, block_kind, frame block)        -> ok_atom   a block from another shard
//   (block_atom, shared_ptr<const block>)        -> ok_atom   node-local hand-over
// A step that sends blocks replies only after every block was acknowledged,
// so when the trainer has every reply of a step, every block of that step
// has arrived (the barrier the next step relies on). Steps, in the order the
// trainer (actors/trainer.hpp) runs them:
//   build (merge last|sum, TrainRequest) -> als_census   freeze the matrices
//   popular           -> empty
//   content_df        -> content_df_partial
//   content_vectors (content_vocabulary) -> empty, sends content_vectors blocks
//   content_users     -> empty
//   knn_scale         -> scale_partial
//   then per round (knn_round: the global scale, round, rounds):
//   knn_rows (knn_round) -> empty, sends its users' cells on the round's items
//                        (rater_rows) once per node, to its first shard; with
//                        round 0 also each node's cells on the node's items
//   knn_gather (knn_round) -> empty; the node's first shard builds the round
//                        from the P blocks (round 0: and the node's items'
//                        columns) and hands it to the node's shards as
//                        (block_atom, shared_raters)
//   knn_lists (knn_round) -> empty, adds the round to its items' lists; after
//                        the last round sends reverse blocks
//   knn_done          -> empty
//   als_init (model ials|mf, als_globals) -> empty
//   als_send (model, side) -> ials: gram_partial; sends ials_group/mf_group blocks
//   als_solve (model, side, then nothing|send|loss; ials: gram_total) -> empty;
//                        send: then as als_send of the solved side;
//                        loss (items only): loss_partial
// Factor blocks go once per node, to its first shard (the group leader),
// which decodes them once and hands the decoded block to the node's other
// shards as (block_atom, shared_ptr<const block>), a local-only message.
//   abort             -> empty           leave the run (a failed trainer sends it)
//   publish (blend_spec) -> empty        build the query-time scorer and send it
//                                        to the node host as
//                                        (scorer_atom, u32 partition, shared_scorer)
#pragma once

#include <caf/fwd.hpp>

#include <memory>

#include "actors/durable.hpp"
#include "actors/interfaces.hpp"

namespace shardrec::actors {

// `recovered`: the partition's state from its data folder (recover_partition,
// actors/durable.hpp); null: an empty partition. With dur.data_dir set, every
// batch goes to the recovered log before it is acknowledged.
shard_actor spawn_shard(caf::actor_system& sys, std::uint32_t partition,
                        std::uint32_t partitions, std::uint32_t node_id, caf::actor host,
                        durability dur = {},
                        std::shared_ptr<recovered_partition> recovered = nullptr);

} // namespace shardrec::actors
