// Frames for the plain message structs of the distributed algorithms
// (dist/knn.hpp, dist/recommend.hpp, dist/als.hpp, dist/node_query.hpp), so
// actors can ship them between nodes. Training-time messages use
// schema/train.capnp (root TrainFrame), query-time ones schema/query.capnp
// (root QueryFrame).
//
// Every decode_<name> returns errc::bad_message (message "bad frame: ...",
// naming the struct and field) for an empty, truncated, oversized or garbage
// frame, a frame holding another message type, an unknown enumerant, or
// arrays that break the struct's documented shape (aligned arrays of
// different lengths, CSR rows that do not add up, dictionary indexes out of
// range, lists that must be strictly ascending and are not). It never throws
// or aborts. It does not check what only the receiver knows (the addressee,
// which ids it owns): the dist/ receive / add functions do that.
//
// Every encode REQUIRES a frame under max_frame_bytes and asserts the
// internal shape it needs to build the wire form (rater_rows_block row_ptr;
// sparse_vector weight aligned with feature). A decoded rater_rows_block
// always has row_ptr starting at 0 with one more entry than it has rows.
#pragma once

#include "actors/frame.hpp"
#include "core/error.hpp"
#include "core/tuning.hpp"
#include "dist/als.hpp"
#include "dist/knn.hpp"
#include "dist/node_query.hpp"
#include "dist/recommend.hpp"

namespace shardrec::actors {

// ---- training: dist_knn (item-kNN by row exchange in rounds: scale, round,
// rows, reverse)

frame encode(const dist::scale_partial& s);
core::result<dist::scale_partial> decode_scale_partial(const frame& f);

// round < rounds (else bad_message).
frame encode(const dist::knn_round& k);
core::result<dist::knn_round> decode_knn_round(const frame& f);

// round < rounds, own only with round 0; a block with rounds 0 (the
// one-round exchange of an older version) is refused with a message that
// says so.
frame encode(const dist::rater_rows_block& b);
core::result<dist::rater_rows_block> decode_rater_rows_block(const frame& f);

// ---- training: EASE (dist/ease.hpp): E1 items / E3 catalogue, E3 rows, E5
// columns.
frame encode_ease_items(const std::vector<std::string>& items);
core::result<std::vector<std::string>> decode_ease_items(const frame& f);
frame encode(const dist::ease_rows& rows);
core::result<dist::ease_rows> decode_ease_rows(const frame& f);
// Columns of B for some owned items: items.size() x n weights.
struct ease_columns_chunk {
  std::vector<std::string> items;
  std::vector<float> weights;
};
frame encode(const ease_columns_chunk& c);
core::result<ease_columns_chunk> decode_ease_columns(const frame& f);

// ---- training: the tuning sample (core/tuning.hpp)
frame encode(const core::tuning_sample_part& t);
core::result<core::tuning_sample_part> decode_tuning_sample(const frame& f);
// The tune_sample step's argument: users in the data, the sample's limit.
frame encode_tuning_request(std::uint64_t n_users, std::uint64_t max_users);
core::result<std::pair<std::uint64_t, std::uint64_t>>
decode_tuning_request(const frame& f);

frame encode(const dist::reverse_block& b);
core::result<dist::reverse_block> decode_reverse_block(const frame& f);

// ---- training: dist_recommend phase A (content) ----

frame encode(const dist::content_df_partial& p);
core::result<dist::content_df_partial> decode_content_df_partial(const frame& f);

frame encode(const dist::content_vocabulary& v);
core::result<dist::content_vocabulary> decode_content_vocabulary(const frame& f);

frame encode(const dist::content_vectors_message& m);
core::result<dist::content_vectors_message>
decode_content_vectors_message(const frame& f);

// ---- training: dist_als ----

frame encode(const dist::als_census& c);
core::result<dist::als_census> decode_als_census(const frame& f);

frame encode(const dist::als_globals& g);
core::result<dist::als_globals> decode_als_globals(const frame& f);

// values.size() must equal ids.size() * width (else bad_message).
frame encode(const dist::ials_block& b);
core::result<dist::ials_block> decode_ials_block(const frame& f);

frame encode(const dist::mf_block& b);
core::result<dist::mf_block> decode_mf_block(const frame& f);

// gram.size() must equal k * k (else bad_message).
frame encode(const dist::gram_partial& g);
core::result<dist::gram_partial> decode_gram_partial(const frame& f);

frame encode(const dist::gram_total& g);
core::result<dist::gram_total> decode_gram_total(const frame& f);

frame encode(const dist::loss_partial& l);
core::result<dist::loss_partial> decode_loss_partial(const frame& f);

// Moments must be empty (n = 0) or D and D x D wide for one D (else
// bad_message); the receiver checks D against its settings.
frame encode(const dist::gibbs_stats& g);
core::result<dist::gibbs_stats> decode_gibbs_stats(const frame& f);

// Each prior's lambda must be D x D for the D of its lambda_mu.
frame encode(const dist::gibbs_priors& g);
core::result<dist::gibbs_priors> decode_gibbs_priors(const frame& f);

// ---- query time ----

frame encode(const dist::blend_spec& s);
core::result<dist::blend_spec> decode_blend_spec(const frame& f);

frame encode(const dist::user_profile& p);
core::result<dist::user_profile> decode_user_profile(const frame& f);

frame encode(const dist::blend_stats& s);
core::result<dist::blend_stats> decode_blend_stats(const frame& f);

// ---- query time: one node's share of phase C, batched (dist/node_query.hpp)

// A query's profile and n always travel, its stats only for kind direct (a
// decoded local query has them empty). The removed kinds score and select
// (wire values 0 and 1) are rejected as unknown. Partitions must be
// strictly ascending.
frame encode(const dist::node_query_batch& b);
core::result<dist::node_query_batch> decode_node_query_batch(const frame& f);

// An answer's partitions must be strictly ascending and its moments either
// absent or one per partition.
frame encode(const dist::node_query_reply& r);
core::result<dist::node_query_reply> decode_node_query_reply(const frame& f);

} // namespace shardrec::actors
