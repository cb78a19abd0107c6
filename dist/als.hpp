// Distributed alternating least squares, blocked like Spark ML's ALS: each
// partition owns the factors of its users and of its items (core::partition_of
// on the external ids) and, per half-step, receives exactly the other side's
// rows its ratings touch. Two models share the exchange:
//   - ials_partition: implicit ALS (core/ials.hpp), the cluster's default CF;
//   - mf_partition: explicit biased MF (core/mf.hpp), the cluster's rating
//     model, by ALS or by the Gibbs sampler (the core's default; below).
// Both give, by external id, the factors of the single-process trainer run
// with keys (ials_config / mf_config user_keys, item_keys = stable_hash(
// external id)): the same initial factors, and every row's cells summed in
// the same (key) order, so the factors agree bit for bit unless the double
// Gram sums, added in a different order, round to a different float (rare;
// then they differ by float rounding), or two ids' hashes collide.
//
// MESSAGE FLOW. P partitions (one per shard; partition p holds
// partition_store p) and a coordinator. Every struct below is plain data.
//
// Setup, once per run:
//   S1 partition p -> coordinator: als_census (census(store)).
//   S2 coordinator: merge_census(all P) -> als_globals -> every partition.
//   S3 partition p: constructs its *_partition(store, cfg, globals). This
//      builds the routing tables from p's own complete rows and columns (no
//      messages) and the initial factors of the rows p owns.
// Iteration t = 0 .. cfg.iterations - 1, two half-steps:
//   User half-step (item factors fixed):
//   U1 partition q -> partition p, for every p (p == q and empty blocks
//      included, so a receiver counts exactly P): make_blocks(items)[p], the
//      rows of q's items that p's users rated.
//   U2 (iALS) partition q -> coordinator: make_gram_partial(items).
//   U3 (iALS) coordinator: sum_gram(all P) -> gram_total -> every partition.
//   U4 partition p: receive(block) for each of the P blocks, in any order;
//      once all P blocks (and, for iALS, the gram_total) are in:
//      solve(users, ...).
//   Item half-step (user factors fixed): the same with the sides swapped
//   (make_blocks(users), make_gram_partial(users), solve(items, ...)).
//   L  (optional) partition p, right after solve(items) and before its next
//      make_blocks(items): loss_partial() -> coordinator; sum_loss(all P) is
//      the training objective after iteration t (the core's loss_trace[t]).
// Synchronisation: for iALS the Gram sums are the only global barriers (a
// Gram needs every partition's freshly solved rows). MF needs none: a
// partition may solve as soon as its P blocks are in. Blocks of the next
// half-step cannot overtake (they are made from rows solved with this one's),
// and every block carries the version of its rows, which receive() checks.
// Merges are order-independent: sum_gram, sum_loss and merge_census sum in
// partition order whatever order their inputs arrive in.
//
// Traffic per half-step: every needed (row, destination) pair is sent
// exactly once; min_payload_bytes() is that minimum and payload_bytes() of
// the blocks made equals it. The iALS Gram adds 2 P k^2 doubles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/ials.hpp"
#include "core/mf.hpp"
#include "dist/partition_store.hpp"
#include "dist/recommend.hpp"

namespace shardrec::dist {

// dist/ is written in core's vocabulary (dataset, result, errc, the models).
using namespace shardrec::core;

enum class als_side : std::uint8_t { users = 0, items = 1 };

// S1: what one partition contributes to the global counts.
struct als_census {
  std::uint32_t from = 0;
  std::uint64_t users = 0;   // owned users
  std::uint64_t items = 0;   // owned items
  std::uint64_t ratings = 0; // cells of the owned users' rows
  double rating_sum = 0.0;   // sum of those cells' values
};

// S2: global facts every partition needs. n_users / n_items enter the iALS
// regulariser; mu is the MF global mean.
struct als_globals {
  std::uint32_t partitions = 0;
  std::uint64_t n_users = 0;
  std::uint64_t n_items = 0;
  double mu = 0.0; // mean of all training cells; 0 if there are none
};

// REQUIRES: store.built()
als_census census(const partition_store& store);

// Merges exactly one census per partition 0..partitions-1, in any order.
// Fails with errc::bad_message on a missing, duplicate or out-of-range one.
result<als_globals> merge_census(const std::vector<als_census>& parts,
                                 std::uint32_t partitions);

// U1: rows of one side owned by `from`, for `to`. T = float (iALS, k values
// per row) or double (MF, k factors then the bias: the MF trainer's state is
// double, so shipping it unrounded keeps the cluster on the core's numbers).
template <class T> struct factor_block {
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  als_side side = als_side::items; // whose rows these are
  std::uint32_t version = 0;       // half-steps this side had solved when sent
  std::uint32_t width = 0;         // values per row
  std::vector<std::string> ids;    // external ids
  std::vector<T> values;           // ids.size() x width, row-major
};
using ials_block = factor_block<float>;
using mf_block = factor_block<double>;

// Payload of a block: its ids' bytes plus its values' bytes (the headers and
// framing are not counted).
template <class T> std::size_t payload_bytes(const factor_block<T>& b);

// U2: F^T F over the rows of `side` owned by `from`, in double.
struct gram_partial {
  std::uint32_t from = 0;
  als_side side = als_side::items;
  std::uint32_t version = 0;
  std::uint32_t k = 0;
  std::vector<double> gram; // k x k, row-major (symmetric)
};

// U3: the Gram of a whole side; each partition rounds it to float for its
// row solves exactly as the core rounds its double sum.
struct gram_total {
  als_side side = als_side::items;
  std::uint32_t version = 0;
  std::uint32_t k = 0;
  std::vector<double> gram; // k x k, row-major
};

// Sums exactly one partial per partition, in partition order. Fails with
// errc::bad_message on a missing or duplicate partition or mismatched
// side / version / k.
result<gram_total> sum_gram(const std::vector<gram_partial>& parts,
                            std::uint32_t partitions);

// L: one partition's share of the training objective.
struct loss_partial {
  std::uint32_t from = 0;
  std::uint32_t version = 0; // iterations completed
  double loss = 0.0;
};

// Sums exactly one partial per partition, in partition order.
result<double> sum_loss(const std::vector<loss_partial>& parts, std::uint32_t partitions);

// The exchange state shared by both models: routing tables (built once from
// the store) and the rows received for the current half-step. T is the value
// type of the blocks. Not thread-safe; one owner (the shard).
template <class T> class als_exchange {
public:
  using rows_t = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  // REQUIRES: store.built(); the store outlives this object and is not
  // rebuilt while it lives.
  als_exchange(const partition_store& store, std::uint32_t width);

  const partition_store& store() const { return store_; }
  std::uint32_t width() const { return width_; }

  // Owned rows of `side` (local indices, ascending) that partition `to`
  // needs: those with a cell whose other end partition `to` owns.
  const std::vector<index_t>& rows_for(als_side side, std::uint32_t to) const {
    return send_[static_cast<int>(side)][to];
  }

  // The least payload one half-step with `side` fixed can send from this
  // partition: every needed (row, destination) pair once, id bytes plus
  // width values.
  std::size_t min_payload_bytes(als_side side) const;

  // The P blocks of `owned` (rows of `side` in store order, width columns),
  // block[p] for partition p.
  std::vector<factor_block<T>> make_blocks(als_side side, std::uint32_t version,
                                           const rows_t& owned) const;

  // One block per group of partitions instead of one per partition, for
  // partitions that share a process: leader_of[p] names the first partition
  // of p's group (leader_of[leader] == leader). The block addressed to a
  // leader holds every owned row that any partition of its group needs, once;
  // the leader hands the same decoded block to the group's other partitions,
  // each of which takes the rows it needs (receive with group = true). Rows
  // cross between processes once per group rather than once per partition.
  std::vector<factor_block<T>>
  make_group_blocks(als_side side, std::uint32_t version, const rows_t& owned,
                    const std::vector<std::uint32_t>& leader_of) const;

  // Stores a block's rows in received(block.side). Fails with
  // errc::bad_message if the block is not for this partition (group: not
  // for a partition of the cluster), has the wrong width or version
  // (expected: see version_expected), comes twice from one partition, or
  // names a row that is unknown here (group: skipped instead), owned by
  // another partition, or already received.
  status receive(const factor_block<T>& b, std::uint32_t version_expected,
                 bool group = false);

  // True once every partition's block of `side` is in. Then every ref row
  // (item_refs for items, user_refs for users) has been received, except
  // rows of edges the owner's copy of the store did not have yet (events
  // that arrived while the partitions copied their stores for the run):
  // those rows are zero, so their cells weigh nothing in this run.
  bool complete(als_side side) const;
  // Ref rows received in the last complete half-step of `side` (for tests).
  std::size_t rows_received(als_side side) const {
    return rows_in_[static_cast<int>(side)];
  }
  // The received rows of `side`: refs (item_refs for items, user_refs for
  // users) in ascending key order, the index space of row().
  const rows_t& received(als_side side) const {
    return received_[static_cast<int>(side)];
  }

  // Owned row r of `side` (store order: users() / items()) with its cells'
  // other ends as positions in received(other side), ascending, so a row's
  // cells are visited in the key order the keyed core uses.
  interaction_matrix::span row(als_side side, index_t r) const {
    const int s = static_cast<int>(side);
    auto b = ptr_[s][r], e = ptr_[s][r + 1];
    return {cell_[s].data() + b, value_[s].data() + b, static_cast<std::size_t>(e - b)};
  }
  std::size_t rows(als_side side) const {
    return ptr_[static_cast<int>(side)].size() - 1;
  }
  // Marks `side`'s blocks consumed, so the next half-step's can arrive.
  void reset(als_side side);
  // The row of received(side) each ref (item_refs for items, user_refs for
  // users) lands in, indexed by ref.
  const std::vector<index_t>& ref_positions(als_side side) const {
    return ref_pos_[static_cast<int>(side)];
  }

private:
  const partition_store& store_;
  std::uint32_t width_;
  std::vector<std::vector<index_t>> send_[2]; // [side][to]
  std::vector<std::uint32_t> ref_owner_[2];   // [side][ref] partition
  std::vector<index_t> ref_pos_[2];           // [side][ref] row in received_
  // [side]: owned rows as CSR over key-ordered ref positions.
  std::vector<std::uint64_t> ptr_[2];
  std::vector<index_t> cell_[2];
  std::vector<float> value_[2];
  rows_t received_[2];                        // [side]: refs x width
  std::vector<char> filled_[2], got_from_[2]; // [side][pos], [side][from]
  // The ids of the last block accepted from each sender and where its rows
  // went: routing is fixed for a run, so every later block from that sender
  // names the same ids, and one comparison replaces a lookup per row.
  std::vector<std::vector<std::string>> last_ids_[2]; // [side][from]
  std::vector<std::vector<index_t>> last_at_[2];      // [side][from]
  std::size_t rows_in_[2] = {0, 0}, blocks_in_[2] = {0, 0};
};

// One partition's implicit-ALS state.
class ials_partition {
public:
  // REQUIRES: validate(cfg).ok(); store.built(); globals from merge_census
  // with globals.partitions == store.partitions(). cfg.user_keys / item_keys
  // are ignored: owned rows are seeded by stable_hash(external id).
  ials_partition(const partition_store& store, const ials_config& cfg,
                 const als_globals& globals);

  // U1 / U2 for a half-step holding `fixed` fixed.
  std::vector<ials_block> make_blocks(als_side fixed) const;
  gram_partial make_gram_partial(als_side fixed) const;
  // U4. Errors as als_exchange::receive.
  status receive(const ials_block& b, bool group = false);
  // U3 by group (see als_exchange::make_group_blocks).
  std::vector<ials_block>
  make_group_blocks(als_side fixed, const std::vector<std::uint32_t>& leader_of) const;
  // U4: solves every owned row of `solving` (threads: cfg.threads). Fails
  // with errc::bad_message (nothing changed) if a block of the other side is
  // missing or `gram` is not that side's current Gram.
  status solve(als_side solving, const gram_total& gram);
  // L. REQUIRES: called right after solve(items), before the next blocks.
  loss_partial make_loss_partial() const;
  // After the last solve(items), make_blocks(items) and receiving every
  // partition's block: the final item factors this partition's users
  // touched, with the item Gram (item_gram: sum_gram of those blocks'
  // partials), for fold-in between trainings. bad_message (naming what)
  // if a block is missing or the Gram is not of the final item factors.
  result<ials_fold_in_data> fold_in_data(const gram_total& item_gram) const;

  // Owned factors: store.users().size() x k and store.items().size() x k,
  // rows in the order of store.users() / store.items().
  const ials_matrix& user_factors() const { return own_[0]; }
  const ials_matrix& item_factors() const { return own_[1]; }
  const als_exchange<float>& exchange() const { return ex_; }
  std::uint32_t version(als_side side) const { return version_[static_cast<int>(side)]; }

private:
  ials_config cfg_;
  als_globals globals_;
  als_exchange<float> ex_;
  ials_matrix own_[2];
  Eigen::MatrixXd last_gram_users_; // Gram of the users used by the last item solve
  std::uint32_t version_[2] = {0, 0};
};

// Fails with errc::invalid_argument unless validate(cfg).ok().
status validate_dist(const mf_config& cfg);

// ---- Explicit MF by the Gibbs sampler (mf_solver::gibbs, the core's
// default): the MF flow above, plus one barrier per sampled sweep for the
// global draws. Sweep s = 1 .. cfg.iterations (version = s - 1 on both
// sides before it):
//   s <= cfg.warm_start: an ALS sweep (solve without priors).
//   else:
//   G1 once every partition holds the item blocks of the user half-step:
//      partition p -> coordinator: make_gibbs_stats(): the squared error of
//      its users' cells and the moments of its users' and items' rows (the
//      state after sweep s - 1), as exact sums.
//   G2 coordinator: draw_gibbs_priors(all P): alpha, then the users' and the
//      items' (mu, Lambda), from core::mf_sweep_stream(seed, s) in the
//      core's order -> every partition.
//   G3 solve(users, &priors), the user blocks, solve(items, &priors).
// Every row draws its noise from the stream of (seed, s, side,
// stable_hash(id)); rows are visited in key order; the exact sums make G2's
// inputs independent of the partitioning. So the factors equal the keyed
// core's (train_mf_factors with user_keys / item_keys) bit for bit. After
// the last sweep's item solve the owned rows are replaced by the posterior
// means (the average of the samples after burn-in), before the final item
// blocks are sent for fold-in.

struct gibbs_stats {
  std::uint32_t from = 0;
  std::uint32_t version = 0; // sweeps completed (s - 1)
  std::uint64_t cells = 0;   // cells of the owned users' rows
  exact_sum sse;             // their squared residuals
  mf_row_moments users;      // owned users with a cell
  mf_row_moments items;      // owned items with a cell
};

struct gibbs_priors {
  std::uint32_t sweep = 0; // s, 1-based
  mf_gibbs_prior users;    // alpha, Lambda, Lambda mu of the user rows' prior
  mf_gibbs_prior items;
};

// G2: sums exactly one stats message per partition (any order; exact) and
// draws sweep `sweep`'s priors. Fails with errc::bad_message on a missing,
// duplicate or out-of-range partition, a version other than sweep - 1, or
// moments of another width than cfg.factors + 1.
result<gibbs_priors> draw_gibbs_priors(const std::vector<gibbs_stats>& parts,
                                       std::uint32_t partitions, const mf_config& cfg,
                                       int sweep);

// One partition's explicit-MF state (ALS, or Gibbs as above). Factor rows
// are k + 1 doubles: the k factors, then the bias.
class mf_partition {
public:
  // REQUIRES: validate_dist(cfg).ok(); store.built(); globals from
  // merge_census. cfg.user_keys / item_keys are ignored (see ials_partition).
  mf_partition(const partition_store& store, const mf_config& cfg,
               const als_globals& globals);

  std::vector<mf_block> make_blocks(als_side fixed) const;
  std::vector<mf_block>
  make_group_blocks(als_side fixed, const std::vector<std::uint32_t>& leader_of) const;
  status receive(const mf_block& b, bool group = false);
  // Solves every owned row of `solving`. A sampled Gibbs sweep needs the
  // sweep's priors at the user solve (G3); the item solve takes the ones
  // the user solve was given (priors may be null there). Fails with
  // errc::bad_message (nothing changed) if a block is missing, or priors are
  // missing, of another sweep or of the wrong width.
  status solve(als_side solving, const gibbs_priors* priors = nullptr);
  // Whether the next sweep samples (Gibbs, past the warm start) and so
  // needs G1 / G2 before its user solve.
  bool next_sweep_samples() const;
  // G1. bad_message unless every item block of the next user half-step is
  // in.
  result<gibbs_stats> make_gibbs_stats() const;
  // L: the ALS objective of mf.hpp. REQUIRES: right after solve(items).
  loss_partial make_loss_partial() const;
  // After the last solve(items), make_blocks(items) and receiving every
  // partition's block: the final item rows this partition's users touched,
  // for fold-in. bad_message if a block is missing.
  result<mf_fold_in_data> fold_in_data() const;

  // Owned rows, k + 1 wide, in the order of store.users() / store.items()
  // (Gibbs: the posterior means once the last sweep is solved).
  const mf_rows& user_rows() const { return own_[0]; }
  const mf_rows& item_rows() const { return own_[1]; }
  const als_exchange<double>& exchange() const { return ex_; }
  double mu() const { return globals_.mu; }

private:
  mf_config cfg_;
  als_globals globals_;
  als_exchange<double> ex_;
  mf_rows own_[2];
  std::vector<std::uint64_t> keys_[2]; // stable_hash of the owned ids
  std::uint32_t version_[2] = {0, 0};
  // Gibbs: this sweep's priors (from the user solve), the sums of the
  // samples after burn-in and how many there are.
  gibbs_priors priors_;
  mf_rows sum_[2];
  int kept_ = 0;
};

} // namespace shardrec::dist
