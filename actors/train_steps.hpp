// The typed training protocol between the trainer and the shards, and
// between shards: which step to run and which kind of block a frame holds.
// Both cross node boundaries (CAF serialises the enums by their underlying
// type); a receiver checks them with valid() before use, so a garbled value
// gets an error reply, never undefined behaviour.
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace shardrec::actors {

// Steps in the order the trainer (actors/trainer.cpp) runs them; what each
// does is in actors/shard.hpp.
enum class step_kind : std::uint8_t {
  build,
  popular,
  content_df,
  content_vectors,
  content_users,
  knn_scale,
  knn_rows,
  knn_gather,
  knn_lists,
  knn_done,
  als_init,
  als_send,
  als_solve,
  publish,
  abort,        // the run failed: the partition leaves it
  als_keep,     // after the last iteration's item factors were sent: keep them
                // (and the item Gram, the step's argument) for fold-in
  ease_items,   // E1: the owned items with a cell
  ease_rows,    // E3: the catalogue (argument); the owned users' rows
  ease_columns, // E5: columns of B for some owned items (argument)
  tune_sample,  // before build, joining the run as build does: the
                // partition's share of the tuning sample (core/tuning.hpp)
  als_stats,    // MF by Gibbs, G1 of dist/als.hpp: the partition's squared
                // error and row moments, before a sampled sweep
};
inline constexpr auto last_step_kind = step_kind::als_stats;

enum class als_model : std::uint8_t { ials, mf };
enum class als_half : std::uint8_t { users, items };
// What a solve step does after solving: nothing, send the solved rows (one
// barrier per half-step), or report the objective's partial sum.
enum class after_solve : std::uint8_t { nothing, send, loss };
// build: how repeated (user, item) events merge (ratings: the last one).
// How a build merges a pair's events (core::merge_policy): last for
// ratings, confidence for implicit feedback; sum is kept for the wire.
enum class build_merge : std::uint8_t { last, sum, confidence };

struct train_step {
  // The training run (unique per run, never 0): a partition takes part in
  // one run at a time, from build to publish or abort, and refuses the
  // steps of any other.
  std::uint64_t run = 0;
  // publish: the version of the model it swaps in (one more than the
  // highest any partition served).
  std::uint64_t version = 0;
  step_kind kind = step_kind::build;
  als_model model = als_model::ials;       // als_* steps
  als_half side = als_half::users;         // als_send, als_solve
  after_solve then = after_solve::nothing; // als_solve
  build_merge merge = build_merge::last;   // build
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, train_step& x) {
  return f(caf::meta::type_name("shardrec_train_step"), x.run, x.version, x.kind, x.model,
           x.side, x.then, x.merge);
}

inline bool valid(const train_step& s) {
  return s.run != 0 && s.kind <= last_step_kind && s.model <= als_model::mf
         && s.side <= als_half::items && s.then <= after_solve::loss
         && s.merge <= build_merge::confidence;
}

// The phase a step's time counts towards in the train reply.
inline std::string phase_of(const train_step& s) {
  switch (s.kind) {
    case step_kind::build: return "build";
    case step_kind::popular: return "popular";
    case step_kind::content_df:
    case step_kind::content_vectors:
    case step_kind::content_users: return "content";
    case step_kind::knn_scale:
    case step_kind::knn_rows:
    case step_kind::knn_gather:
    case step_kind::knn_lists:
    case step_kind::knn_done: return "knn";
    case step_kind::als_init:
    case step_kind::als_send:
    case step_kind::als_solve:
    case step_kind::als_keep: return s.model == als_model::ials ? "ials" : "mf";
    case step_kind::als_stats: return "mf";
    case step_kind::ease_items:
    case step_kind::ease_rows:
    case step_kind::ease_columns: return "ease";
    case step_kind::tune_sample: return "tune";
    case step_kind::publish:
    case step_kind::abort: return "publish";
  }
  return "unknown";
}

// A human name for error messages ("als_solve mf items").
std::string to_string(const train_step& s);

// Blocks one shard sends another during training.
enum class block_kind : std::uint8_t {
  content_vectors, // content_vectors_message, to the partition of a rater
  rater_rows,      // rater_rows_block, to each node's first partition
  reverse,         // reverse_block, to the partition of the listed items
  ials_group,      // ials_block, to the first partition of a node
  mf_group,        // mf_block, likewise
};
inline bool valid(block_kind k) {
  return k <= block_kind::mf_group;
}
std::string to_string(block_kind k);

} // namespace shardrec::actors
