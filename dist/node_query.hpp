// One node's share of the distributed hybrid query (recommend.hpp, phase
// C), for many queries at once. A coordinator gathers the queries that arrive
// together and sends each node ONE batch for all of them; the node decodes
// each user profile once, scores every partition it hosts and answers with
// its top n over all its partitions (the global top n is within the union of
// the nodes' top n, because the order is total). The results equal the
// per-partition steps of recommend.hpp: the moments are per partition,
// and the node's top n is the merge of its partitions' top n.
//
// Query kinds, per query of a batch (C1 + C2 in one round):
//   direct  for a user whose blend statistics are known: profile,
//           blend_stats, n -> top n over the answered partitions.
//   local   for a user whose statistics are not known yet: profile, n ->
//           the moments of every answered partition AND the top n under the
//           node's OWN blend statistics (those of its partitions), with a
//           local_bound. The coordinator computes the global statistics
//           from all moments, rescores the candidates under them (rescore)
//           and checks with certifies() that no item a node left out can
//           reach the global top n; a node that fails the check (rare: its
//           local statistics are far from the global ones, or an item
//           scored NaN) is asked again with direct. The answer is the same
//           as the per-partition steps C1, C2 of recommend.hpp.
// A partition is answered when the node holds a scorer for it (it is trained
// and hosted here); the others are the coordinator's "missing".
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dist/recommend.hpp"

namespace shardrec::dist {

// dist/ is written in core's vocabulary (dataset, result, errc, the models).
using namespace shardrec::core;

// The values are those of the wire (schema/query.capnp NodeQueryKind); 0 and
// 1 were the two-round kinds score and select, removed.
enum class node_query_kind : std::uint8_t { direct = 2, local = 3 };

struct node_query {
  std::uint64_t id = 0; // the coordinator's query id
  node_query_kind kind = node_query_kind::local;
  std::uint32_t n = 0;  // 1..node_query_engine::max_n
  user_profile profile; // without seen_content
  blend_stats stats;    // direct
};

struct node_query_batch {
  // The partitions the coordinator believes this node hosts, ascending.
  std::vector<std::uint32_t> partitions;
  std::vector<node_query> queries;
};

// What a local answer adds to its candidates: enough to bound the global
// score of every unseen item the node did not return.
struct local_bound {
  blend_stats local;                   // the node's statistics (no missing)
  std::vector<float> weights;          // the blend weights, component order
  std::vector<float> raw_min, raw_max; // per component, over the unseen items
  float threshold = 0.0f;              // local score of the last candidate
  bool complete = false; // the candidates are every unseen item with a score
  bool has_nan = false;  // an unseen item has a NaN raw score: no bound
};

struct node_answer {
  std::uint64_t id = 0;
  // Non-empty: the query failed on this node (bad profile, n out of range,
  // statistics of the wrong size); its partitions count as missing.
  std::string error;
  // The partitions this answer covers, ascending.
  std::vector<std::uint32_t> partitions;
  std::vector<phase1_reply> moments; // local: one per covered partition
  std::vector<candidate> candidates; // rank order, at most n
  local_bound bound;                 // local
};

struct node_query_reply {
  std::vector<node_answer> answers; // aligned with the batch's queries
};

// Sets each candidate's score and components to what a selection under
// `global` computes for it (bit for bit: the same float expression), from
// its raw component scores. False, and nothing changed, when the weights,
// the statistics and every candidate's components do not have one size.
bool rescore(std::vector<candidate>& cs, const blend_stats& global,
             const std::vector<float>& weights);

// True when no unseen item a local answer left out can rank among the global
// top n: its global score is at most the bound's threshold plus the largest
// change the switch from local to global statistics can make over
// [raw_min, raw_max], and that is (with a margin for float rounding) below
// `nth`, the n-th global score among all the returned candidates (none:
// fewer than n were returned).
bool certifies(const local_bound& b, const blend_stats& global, std::optional<float> nth);

// How many candidates a local round asks each node for, for a top n: a few
// more than n when n is small, so that the n-th global score clears the
// nodes' thresholds (with n = 1 and exactly one candidate per node, 3 nodes
// on ML-100K certified only 59 % of the answers; with 10, 98 %).
inline std::uint32_t local_n(std::uint32_t n) {
  return n < 10 ? 10 : n;
}

// The coordinator's step after a local round, once the global statistics
// are known (combine_moments over every answer's moments): rescores every
// answer's candidates under `global` and returns, per answer, 1 when it is
// certified (its candidates are that node's exact share of the top n) and 0
// when the node must be asked again with direct.
std::vector<std::uint8_t> certify_local_answers(std::vector<node_answer>& answers,
                                                const blend_stats& global, std::size_t n);

// The per-partition replies a node answer stands for, appended to phase-2
// replies: the candidates credited to its first covered partition, an empty
// reply for each other one (so merge_candidates sees every covered partition
// exactly once).
void append_phase2(const node_answer& a, std::vector<phase2_reply>& out);

// The query-time state of one node: the immutable scorers of the partitions
// it hosts (shared with their shards). Not thread-safe; one actor owns it.
class node_query_engine {
public:
  // The largest n of a selection (as a recommend request's -n).
  static constexpr std::uint32_t max_n = 1000;

  // Installs (or, with nullptr, removes) the scorer of a partition.
  void set_scorer(std::uint32_t partition, std::shared_ptr<const partition_scorer> s);
  bool has_scorer(std::uint32_t partition) const;

  node_query_reply answer(const node_query_batch& batch, std::size_t max_because);

private:
  // One query's scores over the held partitions.
  struct scored {
    std::vector<std::uint32_t> partitions;
    std::vector<std::shared_ptr<const partition_scorer>> scorers;
    std::vector<partition_scores> scores;
  };
  static bool stats_fit(const scored& k, const blend_stats& stats);
  // The local kind's moments, candidates and bound from the scores k.
  static void answer_local(const scored& k, const node_query& q, std::size_t max_because,
                           node_answer& a);
  static std::vector<candidate> select_scored(const scored& k,
                                              const user_profile& profile,
                                              const blend_stats& stats, std::size_t n,
                                              std::size_t max_because);

  // Every id the held scorers know, with its slot in each of them: a
  // profile's ids are looked up once per node, not once per partition.
  // Open addressing by stable_hash (at most half full); ids are views into
  // the held scorers, rebuilt before use whenever a scorer changed.
  struct dict_entry {
    std::uint64_t hash = 0;
    std::string_view id;
    std::uint32_t begin = 0, end = 0; // range of dict_slots_
  };
  struct part_slot {
    std::uint32_t partition = 0;
    partition_scorer::id_slot slot;
  };
  void rebuild_dict();
  const dict_entry* find(std::string_view id, std::uint64_t hash) const;
  std::vector<dict_entry> dict_;
  std::uint64_t dict_mask_ = 0;
  std::vector<part_slot> dict_slots_;
  bool dict_dirty_ = true;

  std::map<std::uint32_t, std::shared_ptr<const partition_scorer>> scorers_;
};

// The top n (rank order) over several partitions' scores of one profile,
// with knn_evidence and content filled as select_candidates does; equal to
// merging each partition's select_candidates. scorers[i] made scores[i].
std::vector<candidate> select_over(const std::vector<const partition_scorer*>& scorers,
                                   const std::vector<const partition_scores*>& scores,
                                   const user_profile& profile, const blend_stats& stats,
                                   std::size_t n, std::size_t max_because);

} // namespace shardrec::dist
