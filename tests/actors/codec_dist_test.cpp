#include "actors/codec_dist.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include "actors/codec.hpp"
#include "schema/query.capnp.h"
#include "schema/train.capnp.h"

namespace shardrec::actors {
namespace {

// ---- samples with non-trivial contents ----

dist::rater_rows_block sample_rows_block() {
  dist::rater_rows_block b;
  b.side = core::knn_side::item;
  b.kind = core::similarity_kind::pearson;
  b.from = 4;
  b.to = 2;
  b.round = 3;
  b.rounds = 5;
  b.ids = {"i9", "i1", "i5"};
  b.row_ptr = {0, 2, 2, 5}; // the middle row is empty
  b.entity = {0, 2, 1, 0, 2};
  b.q = {1, -(std::int64_t{1} << 45), 3, 4, std::numeric_limits<std::int64_t>::min()};
  return b;
}

dist::reverse_block sample_reverse_block() {
  dist::reverse_block b;
  b.from = 0;
  b.to = 1;
  b.ids = {"x", "y", "z"};
  b.target = {0, 2, 2};
  b.source = {1, 1, 0};
  b.similarity = {0.5f, 0.125f, 1.0f};
  return b;
}

dist::content_df_partial sample_df_partial() {
  dist::content_df_partial p;
  p.partition = 4;
  p.n_documents = 17;
  p.features = {"genre:drama", "tag:funny", "word:cat"};
  p.df = {3, 1, 9};
  return p;
}

dist::content_vocabulary sample_vocabulary() {
  dist::content_vocabulary v;
  v.n_documents = 1682;
  v.features = {"genre:action", "genre:drama", "word:dog"};
  v.df = {10, 20, 2};
  v.idf = {1.5f, 0.75f, 4.25f};
  return v;
}

dist::content_vectors_message sample_vectors() {
  dist::content_vectors_message m;
  m.from = 3;
  m.to = 0;
  m.items = {"m1", "m2", "m3"};
  m.vectors = {{{0, 4, 9}, {0.5f, 0.5f, 0.7071f}}, {{}, {}}, {{2}, {1.0f}}};
  return m;
}

dist::user_profile sample_profile() {
  dist::user_profile p;
  p.user = "alice";
  p.seen = {"m1", "m2"};
  p.seen_value = {4.0f, 1.5f};
  p.seen_content = {{{1, 3}, {0.6f, 0.8f}}, {{}, {}}};
  p.ials = {0.1f, -0.2f, 0.3f};
  p.mf_known = true;
  p.mf = {1.0f, 2.0f};
  p.mf_bias = -0.375f;
  p.content = {{0, 7, 11}, {0.1f, 0.2f, 0.3f}};
  return p;
}

dist::blend_spec sample_spec() {
  return {{"implicit-als", dist::blend_kind::implicit_als, 0.5f},
          {"itemknn", dist::blend_kind::itemknn, 0.25f},
          {"content", dist::blend_kind::content, 0.125f},
          {"popular", dist::blend_kind::popular, -1.0f},
          {"mf", dist::blend_kind::mf, 2.0f}};
}

dist::phase1_reply sample_phase1() {
  dist::phase1_reply r;
  r.partition = 6;
  r.moments = {{100, 12.5, 400.25}, {0, 0.0, 0.0}, {3, -1e300, 1e-300}};
  return r;
}

dist::blend_stats sample_stats() {
  dist::blend_stats s;
  s.mean = {0.5f, -2.0f};
  s.inv_std = {1.25f, 0.0f};
  s.missing = {1, 4};
  return s;
}

std::vector<dist::candidate> sample_candidates() {
  std::vector<dist::candidate> r;
  dist::candidate c;
  c.item = "m9";
  c.score = 1.75f;
  c.components = {{"itemknn", 3.0f, 1.5f, 0.75f}, {"popular", 50.0f, 2.0f, 1.0f}};
  c.because = {{"m1", 0.9f}, {"m2", 0.4f}};
  c.because_from = "itemknn";
  r.push_back(c);
  c.item = "m10";
  c.score = -0.5f;
  c.components.clear();
  c.because.clear();
  c.because_from.clear();
  r.push_back(c);
  return r;
}

// Both kinds: a local query's profile and a direct query's profile and
// stats are the parts that travel.
dist::node_query_batch sample_node_batch() {
  dist::node_query_batch b;
  b.partitions = {0, 3, 7};
  dist::node_query q;
  q.id = 41;
  q.kind = dist::node_query_kind::local;
  q.n = 10;
  q.profile = sample_profile();
  b.queries.push_back(q);
  q = {};
  q.id = std::numeric_limits<std::uint64_t>::max();
  q.kind = dist::node_query_kind::direct;
  q.n = 1000;
  q.profile = sample_profile();
  q.profile.user = "carol";
  q.profile.seen_content.clear();
  q.stats = sample_stats();
  b.queries.push_back(q);
  q = {};
  q.id = 43;
  q.kind = dist::node_query_kind::direct;
  q.n = 5;
  q.profile = sample_profile();
  q.profile.user = "bob";
  q.profile.seen_content.clear();
  q.profile.mf_known = false;
  q.stats = sample_stats();
  q.stats.missing.clear();
  b.queries.push_back(q);
  q = {};
  q.id = 44;
  q.kind = dist::node_query_kind::local;
  q.n = 10;
  q.profile = sample_profile();
  q.profile.seen_content.clear();
  b.queries.push_back(q);
  return b;
}

// An answer with an error, one with moments, one with candidates (with
// knn_evidence and content) and an empty one.
dist::node_query_reply sample_node_reply() {
  dist::node_query_reply r;
  dist::node_answer a;
  a.id = 41;
  a.error = "n must be 1..1000, got 0";
  a.partitions = {3};
  r.answers.push_back(a);
  a = {};
  a.id = 42;
  a.partitions = {0, 6};
  a.moments = {sample_phase1(), sample_phase1()};
  a.moments[0].partition = 0;
  a.moments[1].moments.pop_back();
  r.answers.push_back(a);
  a = {};
  a.id = 43;
  a.partitions = {0, 3, 7};
  a.candidates = sample_candidates();
  a.candidates[0].knn_evidence = {{"m1", 0.5f}, {"m4", 0.25f}};
  a.candidates[0].content = {{2, 5}, {0.6f, 0.8f}};
  a.candidates[1].content = {{9}, {1.0f}};
  r.answers.push_back(a);
  a = {};
  a.id = 44;
  r.answers.push_back(a);
  // A local answer: moments, candidates and the bound.
  a = {};
  a.id = 45;
  a.partitions = {1};
  a.moments = {sample_phase1()};
  a.moments[0].partition = 1;
  a.candidates = sample_candidates();
  a.bound.local = sample_stats();
  a.bound.local.missing.clear();
  a.bound.weights = {0.85f, 0.1f};
  a.bound.raw_min = {-1.5f, 0.0f};
  a.bound.raw_max = {2.25f, 1.0f};
  a.bound.threshold = 1.125f;
  a.bound.has_nan = true;
  r.answers.push_back(a);
  a = {};
  a.id = 46;
  a.bound.complete = true; // a node hosting nothing asked
  r.answers.push_back(a);
  return r;
}

dist::ials_block sample_ials_block() {
  dist::ials_block b;
  b.from = 1;
  b.to = 2;
  b.side = dist::als_side::users;
  b.version = 5;
  b.width = 3;
  b.ids = {"u1", "u2"};
  b.values = {0.1f, 0.2f, 0.3f, -0.4f, 0.5f, 1e-20f};
  return b;
}

dist::mf_block sample_mf_block() {
  dist::mf_block b;
  b.from = 3;
  b.to = 0;
  b.side = dist::als_side::items;
  b.version = 8;
  b.width = 2;
  b.ids = {"i1", "i2", "i3"};
  b.values = {0.1, 0.2, 0.3, -0.4, 0.5, 1.0 / 3.0};
  return b;
}

dist::gram_partial sample_gram_partial() {
  dist::gram_partial g;
  g.from = 4;
  g.side = dist::als_side::items;
  g.version = 2;
  g.k = 2;
  g.gram = {4.0, 1.0 / 7.0, 1.0 / 7.0, 9.5};
  return g;
}

dist::gibbs_stats sample_gibbs_stats() {
  dist::gibbs_stats g;
  g.from = 2;
  g.version = 7;
  g.cells = 11;
  g.sse.add(3.25);
  g.sse.add(1.0 / 3.0);
  const double rows[2][2] = {{0.5, -1.0 / 7.0}, {2.0, 1e-9}};
  for (const auto& r : rows)
    core::add_row(g.users, r, 2);
  return g;
}

dist::gibbs_priors sample_gibbs_priors() {
  dist::gibbs_priors g;
  g.sweep = 4;
  g.users.alpha = 1.0 / 3.0;
  g.users.lambda = Eigen::MatrixXd{{2.0, 0.1}, {0.1, 3.0}};
  g.users.lambda_mu = Eigen::VectorXd{{-1.0 / 7.0, 0.5}};
  g.items = g.users;
  g.items.lambda(1, 1) = 4.5;
  return g;
}

dist::gram_total sample_gram_total() {
  dist::gram_total g;
  g.side = dist::als_side::users;
  g.version = 3;
  g.k = 3;
  g.gram = {1, 2, 3, 2, 5, 6, 3, 6, 9};
  return g;
}

template <class T> T must(core::result<T> r) {
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
  if (!r.ok())
    return T{};
  return std::move(*r);
}

void expect_eq(const dist::sparse_vector& a, const dist::sparse_vector& b) {
  EXPECT_EQ(a.feature, b.feature);
  EXPECT_EQ(a.weight, b.weight);
}

void expect_eq(const std::vector<dist::sparse_vector>& a,
               const std::vector<dist::sparse_vector>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    expect_eq(a[i], b[i]);
}

void expect_eq(const dist::user_profile& a, const dist::user_profile& b) {
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.seen, b.seen);
  EXPECT_EQ(a.seen_value, b.seen_value);
  expect_eq(a.seen_content, b.seen_content);
  EXPECT_EQ(a.ials, b.ials);
  EXPECT_EQ(a.mf_known, b.mf_known);
  EXPECT_EQ(a.mf, b.mf);
  EXPECT_EQ(a.mf_bias, b.mf_bias);
  expect_eq(a.content, b.content);
}

void expect_eq(const dist::blend_stats& a, const dist::blend_stats& b) {
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.inv_std, b.inv_std);
  EXPECT_EQ(a.missing, b.missing);
}

void expect_eq(const dist::phase1_reply& a, const dist::phase1_reply& b) {
  EXPECT_EQ(a.partition, b.partition);
  ASSERT_EQ(a.moments.size(), b.moments.size());
  for (std::size_t i = 0; i < a.moments.size(); ++i) {
    EXPECT_EQ(a.moments[i].count, b.moments[i].count);
    EXPECT_EQ(a.moments[i].sum, b.moments[i].sum);
    EXPECT_EQ(a.moments[i].sum_sq, b.moments[i].sum_sq);
  }
}

void expect_eq(const std::vector<dist::evidence>& a,
               const std::vector<dist::evidence>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(a[k].item, b[k].item);
    EXPECT_EQ(a[k].weight, b[k].weight);
  }
}

void expect_eq(const std::vector<dist::candidate>& a,
               const std::vector<dist::candidate>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].item, b[i].item);
    EXPECT_EQ(a[i].score, b[i].score);
    ASSERT_EQ(a[i].components.size(), b[i].components.size());
    for (std::size_t k = 0; k < a[i].components.size(); ++k) {
      EXPECT_EQ(a[i].components[k].name, b[i].components[k].name);
      EXPECT_EQ(a[i].components[k].raw, b[i].components[k].raw);
      EXPECT_EQ(a[i].components[k].normalised, b[i].components[k].normalised);
      EXPECT_EQ(a[i].components[k].contribution, b[i].components[k].contribution);
    }
    expect_eq(a[i].because, b[i].because);
    EXPECT_EQ(a[i].because_from, b[i].because_from);
    expect_eq(a[i].knn_evidence, b[i].knn_evidence);
    expect_eq(a[i].content, b[i].content);
  }
}

// ---- round trips ----

TEST(CodecDist, ScalePartialRoundTrips) {
  auto s = must(decode_scale_partial(encode(dist::scale_partial{9, 4.75, 943, 80000})));
  EXPECT_EQ(s.partition, 9u);
  EXPECT_EQ(s.max_abs, 4.75);
  EXPECT_EQ(s.raters, 943u);
  EXPECT_EQ(s.cells, 80000u);
}

TEST(CodecDist, RaterRowsBlockRoundTrips) {
  auto in = sample_rows_block();
  auto out = must(decode_rater_rows_block(encode(in)));
  EXPECT_EQ(out.side, in.side);
  EXPECT_EQ(out.kind, in.kind);
  EXPECT_EQ(out.from, in.from);
  EXPECT_EQ(out.to, in.to);
  EXPECT_EQ(out.round, 3u);
  EXPECT_EQ(out.rounds, 5u);
  EXPECT_FALSE(out.own);
  EXPECT_EQ(out.ids, in.ids);
  EXPECT_EQ(out.row_ptr, in.row_ptr);
  EXPECT_EQ(out.entity, in.entity);
  EXPECT_EQ(out.q, in.q);
  dist::rater_rows_block empty;
  auto e = must(decode_rater_rows_block(encode(empty)));
  EXPECT_EQ(e.row_ptr, std::vector<std::uint64_t>{0});
  EXPECT_TRUE(e.entity.empty());
}

TEST(CodecDist, ReverseBlockRoundTrips) {
  auto r = sample_reverse_block();
  auto dr = must(decode_reverse_block(encode(r)));
  EXPECT_EQ(dr.from, r.from);
  EXPECT_EQ(dr.to, r.to);
  EXPECT_EQ(dr.ids, r.ids);
  EXPECT_EQ(dr.target, r.target);
  EXPECT_EQ(dr.source, r.source);
  EXPECT_EQ(dr.similarity, r.similarity);
}

TEST(CodecDist, ContentMessagesRoundTrip) {
  auto p = sample_df_partial();
  auto dp = must(decode_content_df_partial(encode(p)));
  EXPECT_EQ(dp.partition, p.partition);
  EXPECT_EQ(dp.n_documents, p.n_documents);
  EXPECT_EQ(dp.features, p.features);
  EXPECT_EQ(dp.df, p.df);
  auto v = sample_vocabulary();
  auto dv = must(decode_content_vocabulary(encode(v)));
  EXPECT_EQ(dv.n_documents, v.n_documents);
  EXPECT_EQ(dv.features, v.features);
  EXPECT_EQ(dv.df, v.df);
  EXPECT_EQ(dv.idf, v.idf);
  auto m = sample_vectors();
  auto dm = must(decode_content_vectors_message(encode(m)));
  EXPECT_EQ(dm.from, m.from);
  EXPECT_EQ(dm.to, m.to);
  EXPECT_EQ(dm.items, m.items);
  expect_eq(dm.vectors, m.vectors);
}

TEST(CodecDist, QueryMessagesRoundTrip) {
  auto spec = sample_spec();
  auto ds = must(decode_blend_spec(encode(spec)));
  ASSERT_EQ(ds.size(), spec.size());
  for (std::size_t i = 0; i < ds.size(); ++i) {
    EXPECT_EQ(ds[i].name, spec[i].name);
    EXPECT_EQ(ds[i].kind, spec[i].kind);
    EXPECT_EQ(ds[i].weight, spec[i].weight);
  }

  auto p = sample_profile();
  expect_eq(must(decode_user_profile(encode(p))), p);
  // A cold profile: everything empty.
  dist::user_profile cold;
  cold.user = "nobody";
  auto dc = must(decode_user_profile(encode(cold)));
  EXPECT_EQ(dc.user, "nobody");
  EXPECT_TRUE(dc.seen.empty() && dc.seen_content.empty() && dc.ials.empty());
  EXPECT_FALSE(dc.mf_known);
  EXPECT_TRUE(dc.content.empty());

  auto st = sample_stats();
  expect_eq(must(decode_blend_stats(encode(st))), st);
}

TEST(CodecDist, NodeQueryBatchRoundTrips) {
  auto in = sample_node_batch();
  auto out = must(decode_node_query_batch(encode(in)));
  EXPECT_EQ(out.partitions, in.partitions);
  ASSERT_EQ(out.queries.size(), in.queries.size());
  for (std::size_t i = 0; i < in.queries.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(out.queries[i].id, in.queries[i].id);
    EXPECT_EQ(out.queries[i].kind, in.queries[i].kind);
    EXPECT_EQ(out.queries[i].n, in.queries[i].n);
    expect_eq(out.queries[i].profile, in.queries[i].profile);
    expect_eq(out.queries[i].stats, in.queries[i].stats);
  }
  EXPECT_EQ(out.queries[0].kind, dist::node_query_kind::local);
  EXPECT_EQ(out.queries[1].kind, dist::node_query_kind::direct);
  EXPECT_EQ(out.queries[2].kind, dist::node_query_kind::direct);
  EXPECT_EQ(out.queries[3].kind, dist::node_query_kind::local);

  // Only the parts a kind uses travel: no stats for local.
  auto extra = in;
  extra.queries[0].stats = sample_stats();
  extra.queries[3].stats = sample_stats();
  auto d = must(decode_node_query_batch(encode(extra)));
  ASSERT_EQ(d.queries.size(), 4u);
  EXPECT_TRUE(d.queries[0].stats.mean.empty() && d.queries[0].stats.missing.empty());
  EXPECT_TRUE(d.queries[3].stats.mean.empty() && d.queries[3].stats.missing.empty());
  EXPECT_EQ(encode(extra).bytes, encode(in).bytes);

  auto empty = must(decode_node_query_batch(encode(dist::node_query_batch{})));
  EXPECT_TRUE(empty.partitions.empty() && empty.queries.empty());
}

TEST(CodecDist, NodeQueryReplyRoundTrips) {
  auto in = sample_node_reply();
  auto out = must(decode_node_query_reply(encode(in)));
  ASSERT_EQ(out.answers.size(), in.answers.size());
  for (std::size_t i = 0; i < in.answers.size(); ++i) {
    SCOPED_TRACE(i);
    const auto& a = out.answers[i];
    const auto& b = in.answers[i];
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.error, b.error);
    EXPECT_EQ(a.partitions, b.partitions);
    ASSERT_EQ(a.moments.size(), b.moments.size());
    for (std::size_t k = 0; k < a.moments.size(); ++k)
      expect_eq(a.moments[k], b.moments[k]);
    expect_eq(a.candidates, b.candidates);
    expect_eq(a.bound.local, b.bound.local);
    EXPECT_EQ(a.bound.weights, b.bound.weights);
    EXPECT_EQ(a.bound.raw_min, b.bound.raw_min);
    EXPECT_EQ(a.bound.raw_max, b.bound.raw_max);
    EXPECT_EQ(a.bound.threshold, b.bound.threshold);
    EXPECT_EQ(a.bound.complete, b.bound.complete);
    EXPECT_EQ(a.bound.has_nan, b.bound.has_nan);
  }
  EXPECT_EQ(out.answers[0].error, "n must be 1..1000, got 0");
  EXPECT_EQ(out.answers[2].candidates[0].knn_evidence.size(), 2u);
  EXPECT_FALSE(out.answers[2].candidates[1].content.empty());

  EXPECT_TRUE(
      must(decode_node_query_reply(encode(dist::node_query_reply{}))).answers.empty());
}

TEST(CodecDist, AlsMessagesRoundTrip) {
  auto c =
      must(decode_als_census(encode(dist::als_census{2, 943, 1682, 80000, 283000.5})));
  EXPECT_EQ(c.from, 2u);
  EXPECT_EQ(c.users, 943u);
  EXPECT_EQ(c.items, 1682u);
  EXPECT_EQ(c.ratings, 80000u);
  EXPECT_EQ(c.rating_sum, 283000.5);
  auto g = must(decode_als_globals(encode(dist::als_globals{4, 943, 1682, 3.52986})));
  EXPECT_EQ(g.partitions, 4u);
  EXPECT_EQ(g.n_users, 943u);
  EXPECT_EQ(g.n_items, 1682u);
  EXPECT_EQ(g.mu, 3.52986);
  auto ib = sample_ials_block();
  auto di = must(decode_ials_block(encode(ib)));
  EXPECT_EQ(di.from, ib.from);
  EXPECT_EQ(di.to, ib.to);
  EXPECT_EQ(di.side, ib.side);
  EXPECT_EQ(di.version, ib.version);
  EXPECT_EQ(di.width, ib.width);
  EXPECT_EQ(di.ids, ib.ids);
  EXPECT_EQ(di.values, ib.values);
  auto mb = sample_mf_block();
  auto dm = must(decode_mf_block(encode(mb)));
  EXPECT_EQ(dm.from, mb.from);
  EXPECT_EQ(dm.to, mb.to);
  EXPECT_EQ(dm.side, mb.side);
  EXPECT_EQ(dm.version, mb.version);
  EXPECT_EQ(dm.width, mb.width);
  EXPECT_EQ(dm.ids, mb.ids);
  EXPECT_EQ(dm.values, mb.values); // doubles exactly, not rounded to float
  auto gp = sample_gram_partial();
  auto dgp = must(decode_gram_partial(encode(gp)));
  EXPECT_EQ(dgp.from, gp.from);
  EXPECT_EQ(dgp.side, gp.side);
  EXPECT_EQ(dgp.version, gp.version);
  EXPECT_EQ(dgp.k, gp.k);
  EXPECT_EQ(dgp.gram, gp.gram);
  auto gt = sample_gram_total();
  auto dgt = must(decode_gram_total(encode(gt)));
  EXPECT_EQ(dgt.side, gt.side);
  EXPECT_EQ(dgt.version, gt.version);
  EXPECT_EQ(dgt.k, gt.k);
  EXPECT_EQ(dgt.gram, gt.gram);
  auto l = must(decode_loss_partial(encode(dist::loss_partial{3, 9, 1234.0625})));
  EXPECT_EQ(l.from, 3u);
  EXPECT_EQ(l.version, 9u);
  EXPECT_EQ(l.loss, 1234.0625);

  auto gs = sample_gibbs_stats();
  auto dgs = must(decode_gibbs_stats(encode(gs)));
  EXPECT_EQ(dgs.from, gs.from);
  EXPECT_EQ(dgs.version, gs.version);
  EXPECT_EQ(dgs.cells, gs.cells);
  EXPECT_TRUE(dgs.sse == gs.sse); // all 128 bits
  EXPECT_EQ(dgs.users.n, 2u);
  ASSERT_EQ(dgs.users.outer.size(), 4u);
  for (std::size_t j = 0; j < 4; ++j)
    EXPECT_TRUE(dgs.users.outer[j] == gs.users.outer[j]);
  EXPECT_EQ(dgs.items.n, 0u);
  EXPECT_TRUE(dgs.items.sum.empty());
  auto gpr = sample_gibbs_priors();
  auto dgpr = must(decode_gibbs_priors(encode(gpr)));
  EXPECT_EQ(dgpr.sweep, 4u);
  EXPECT_EQ(dgpr.users.alpha, gpr.users.alpha);
  EXPECT_EQ(dgpr.users.lambda, gpr.users.lambda);
  EXPECT_EQ(dgpr.users.lambda_mu, gpr.users.lambda_mu);
  EXPECT_EQ(dgpr.items.lambda, gpr.items.lambda);
}

TEST(CodecDist, FloatBitsSurvive) {
  // NaN (scores core skips), -0 and denormals travel bit for bit.
  dist::blend_stats s;
  s.mean = {std::numeric_limits<float>::quiet_NaN(), -0.0f,
            std::numeric_limits<float>::denorm_min(),
            std::numeric_limits<float>::infinity()};
  s.inv_std = s.mean;
  auto d = must(decode_blend_stats(encode(s)));
  ASSERT_EQ(d.mean.size(), s.mean.size());
  EXPECT_EQ(std::memcmp(d.mean.data(), s.mean.data(), s.mean.size() * sizeof(float)), 0);
}

// ---- malformed frames ----

template <class T> using decoder = core::result<T> (*)(const frame&);

template <class T>
void expect_bad(decoder<T> dec, const frame& f, const std::string& what) {
  auto d = dec(f);
  ASSERT_FALSE(d.ok()) << what;
  EXPECT_EQ(d.err().code, core::errc::bad_message) << what;
  EXPECT_NE(d.err().message.find("bad frame"), std::string::npos) << d.err().message;
}

template <class T>
void expect_bad(decoder<T> dec, const frame& f, const std::string& what,
                const std::string& field) {
  auto d = dec(f);
  ASSERT_FALSE(d.ok()) << what;
  EXPECT_EQ(d.err().code, core::errc::bad_message) << what;
  EXPECT_NE(d.err().message.find(field), std::string::npos)
      << what << ": " << d.err().message;
}

// Frames of every other message type, so each decoder can be fed all of them.
std::vector<frame> all_frames() {
  event_batch events;
  events.events.push_back({});
  events.events.back().user = "u";
  return {encode(dist::scale_partial{1, 2.0, 3}),
          encode(sample_rows_block()),
          encode(sample_reverse_block()),
          encode(sample_df_partial()),
          encode(sample_vocabulary()),
          encode(sample_vectors()),
          encode(sample_spec()),
          encode(sample_profile()),
          encode(sample_stats()),
          encode(sample_node_batch()),
          encode(sample_node_reply()),
          encode(dist::als_census{1, 2, 3, 4, 5.0}),
          encode(dist::als_globals{1, 2, 3, 4.0}),
          encode(sample_ials_block()),
          encode(sample_mf_block()),
          encode(sample_gram_partial()),
          encode(sample_gram_total()),
          encode(dist::loss_partial{1, 2, 3.0}),
          encode(sample_gibbs_stats()),
          encode(sample_gibbs_priors()),
          encode(events)};
}

// Empty, truncated, garbage, bit-flipped and other-type frames: errors or
// (garbage / bit flips only) a decoded value, never a crash.
template <class T> void check_malformed(decoder<T> dec, const frame& good) {
  ASSERT_TRUE(dec(good).ok());
  expect_bad(dec, frame{}, "empty");
  expect_bad(dec, frame{{1, 2, 3, 4, 5}}, "not a multiple of 8");
  for (std::size_t n = 8; n < good.bytes.size(); n += 8) {
    frame cut{std::vector<std::uint8_t>(
        good.bytes.begin(), good.bytes.begin() + static_cast<std::ptrdiff_t>(n))};
    expect_bad(dec, cut, "truncated to " + std::to_string(n));
  }
  int others = 0;
  for (const auto& f : all_frames()) {
    if (f.bytes == good.bytes)
      continue;
    ++others;
    auto d = dec(f);
    // Only a frame of the same message type with other contents may decode.
    if (d.ok())
      --others;
    else
      EXPECT_EQ(d.err().code, core::errc::bad_message);
  }
  EXPECT_GE(others, 18); // 21 samples, at most 2 of the decoder's own type
  std::mt19937 rng(7);
  for (int k = 0; k < 300; ++k) {
    frame g{std::vector<std::uint8_t>(8 * (1 + rng() % 24))};
    for (auto& b : g.bytes)
      b = static_cast<std::uint8_t>(rng());
    auto d = dec(g);
    if (!d.ok()) {
      EXPECT_EQ(d.err().code, core::errc::bad_message);
    }
  }
  for (std::size_t k = 0; k < good.bytes.size(); ++k) {
    auto flipped = good;
    flipped.bytes[k] ^= 0xa5;
    auto d = dec(flipped);
    if (!d.ok()) {
      EXPECT_EQ(d.err().code, core::errc::bad_message);
    }
  }
}

TEST(CodecDist, EveryDecoderRejectsMalformedFrames) {
  check_malformed(&decode_scale_partial, encode(dist::scale_partial{1, 2.0, 3}));
  check_malformed(&decode_rater_rows_block, encode(sample_rows_block()));
  check_malformed(&decode_reverse_block, encode(sample_reverse_block()));
  check_malformed(&decode_content_df_partial, encode(sample_df_partial()));
  check_malformed(&decode_content_vocabulary, encode(sample_vocabulary()));
  check_malformed(&decode_content_vectors_message, encode(sample_vectors()));
  check_malformed(&decode_als_census, encode(dist::als_census{1, 2, 3, 4, 5.0}));
  check_malformed(&decode_als_globals, encode(dist::als_globals{1, 2, 3, 4.0}));
  check_malformed(&decode_ials_block, encode(sample_ials_block()));
  check_malformed(&decode_mf_block, encode(sample_mf_block()));
  check_malformed(&decode_gram_partial, encode(sample_gram_partial()));
  check_malformed(&decode_gram_total, encode(sample_gram_total()));
  check_malformed(&decode_loss_partial, encode(dist::loss_partial{1, 2, 3.0}));
  check_malformed(&decode_gibbs_stats, encode(sample_gibbs_stats()));
  check_malformed(&decode_gibbs_priors, encode(sample_gibbs_priors()));
  check_malformed(&decode_blend_spec, encode(sample_spec()));
  check_malformed(&decode_user_profile, encode(sample_profile()));
  check_malformed(&decode_blend_stats, encode(sample_stats()));
  check_malformed(&decode_node_query_batch, encode(sample_node_batch()));
  check_malformed(&decode_node_query_reply, encode(sample_node_reply()));
}

TEST(CodecDist, NodeFramesTruncatedOrOfAnotherKindAreRejected) {
  auto batch = encode(sample_node_batch());
  auto reply = encode(sample_node_reply());
  for (const frame* f : {&batch, &reply}) {
    frame cut{std::vector<std::uint8_t>(f->bytes.begin(), f->bytes.end() - 8)};
    expect_bad(&decode_node_query_batch, cut, "truncated");
    expect_bad(&decode_node_query_reply, cut, "truncated");
  }
  expect_bad(&decode_node_query_batch, reply, "reply as batch", "node_query_batch");
  expect_bad(&decode_node_query_batch, reply, "reply as batch", "tag");
  expect_bad(&decode_node_query_reply, batch, "batch as reply", "node_query_reply");
  expect_bad(&decode_node_query_reply, batch, "batch as reply", "tag");
  expect_bad(&decode_node_query_batch, encode(sample_stats()), "stats as batch", "tag");
  expect_bad(&decode_node_query_reply, encode(dist::scale_partial{1, 2.0, 3}),
             "train frame as reply", "magic");
}

TEST(CodecDist, KnnRoundRoundTripsAndARoundPastTheLastIsRefused) {
  auto k = must(decode_knn_round(encode(dist::knn_round{1024.0, 6, 7})));
  EXPECT_EQ(k.scale, 1024.0);
  EXPECT_EQ(k.round, 6u);
  EXPECT_EQ(k.rounds, 7u);
  expect_bad(&decode_knn_round, encode(dist::knn_round{1.0, 7, 7}), "round 7 of 7",
             "'round'");
  expect_bad(&decode_knn_round, encode(dist::knn_round{1.0, 0, 0}), "no rounds",
             "'rounds'");
  expect_bad(&decode_knn_round, encode(dist::scale_partial{1, 2.0, 3}), "scale as round",
             "knn_round");
}

TEST(CodecDist, OtherTypeIsNamedInTheError) {
  auto d = decode_rater_rows_block(encode(dist::scale_partial{1, 2.0, 3}));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.err().message.find("rater_rows_block"), std::string::npos)
      << d.err().message;
  EXPECT_NE(d.err().message.find("tag"), std::string::npos) << d.err().message;
  // A query frame read as a training frame, and an event batch: wrong magic.
  auto q = decode_scale_partial(encode(sample_stats()));
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.err().message.find("magic"), std::string::npos) << q.err().message;
  event_batch events;
  auto e = decode_blend_stats(encode(events));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.err().message.find("magic"), std::string::npos) << e.err().message;
}

TEST(CodecDist, InconsistentArraysAreRejected) {
  auto rows = sample_rows_block();
  rows.entity[1] = 3; // dictionary has 3 ids
  expect_bad(&decode_rater_rows_block, encode(rows), "rows entity", "'entity'");

  auto reply = sample_node_reply();
  reply.answers[4].bound.raw_max.pop_back();
  expect_bad(&decode_node_query_reply, encode(reply), "bound raw_max", "'raw_max'");
  reply = sample_node_reply();
  reply.answers[4].bound.local.inv_std.pop_back();
  expect_bad(&decode_node_query_reply, encode(reply), "bound stats", "'inv_std'");

  auto rb = sample_reverse_block();
  rb.source.pop_back();
  expect_bad(&decode_reverse_block, encode(rb), "reverse source", "'source'");
  rb = sample_reverse_block();
  rb.similarity.push_back(0.0f);
  expect_bad(&decode_reverse_block, encode(rb), "reverse similarity", "'similarity'");
  rb = sample_reverse_block();
  rb.target[1] = 3;
  expect_bad(&decode_reverse_block, encode(rb), "reverse target", "'target'");
  rb = sample_reverse_block();
  rb.source[0] = 3;
  expect_bad(&decode_reverse_block, encode(rb), "reverse source range", "'source'");

  auto dfp = sample_df_partial();
  dfp.df.pop_back();
  expect_bad(&decode_content_df_partial, encode(dfp), "df", "'df'");
  dfp = sample_df_partial();
  std::swap(dfp.features[0], dfp.features[1]);
  expect_bad(&decode_content_df_partial, encode(dfp), "df order", "'features'");

  auto voc = sample_vocabulary();
  voc.idf.pop_back();
  expect_bad(&decode_content_vocabulary, encode(voc), "idf", "'idf'");
  voc = sample_vocabulary();
  voc.features[2] = voc.features[1]; // duplicate
  expect_bad(&decode_content_vocabulary, encode(voc), "vocabulary dup", "'features'");

  auto cv = sample_vectors();
  cv.items.pop_back();
  expect_bad(&decode_content_vectors_message, encode(cv), "vectors/items", "'vectors'");
  cv = sample_vectors();
  cv.vectors[0].feature = {4, 0, 9};
  expect_bad(&decode_content_vectors_message, encode(cv), "unsorted vector", "'feature'");

  auto prof = sample_profile();
  prof.seen_value.pop_back();
  expect_bad(&decode_user_profile, encode(prof), "seen_value", "'seen_value'");
  prof = sample_profile();
  prof.seen_content.pop_back();
  expect_bad(&decode_user_profile, encode(prof), "seen_content", "'seen_content'");
  prof = sample_profile();
  prof.content.feature = {3, 3, 5};
  expect_bad(&decode_user_profile, encode(prof), "profile content", "content");

  auto ib = sample_ials_block();
  ib.values.pop_back();
  expect_bad(&decode_ials_block, encode(ib), "ials values", "'values'");
  ib = sample_ials_block();
  ib.width = 2;
  expect_bad(&decode_ials_block, encode(ib), "ials width", "'width'");
  auto mb = sample_mf_block();
  mb.ids.pop_back();
  expect_bad(&decode_mf_block, encode(mb), "mf ids", "'values'");
  auto gp = sample_gram_partial();
  gp.k = 3;
  expect_bad(&decode_gram_partial, encode(gp), "gram k", "'gram'");
  auto gt = sample_gram_total();
  gt.gram.pop_back();
  expect_bad(&decode_gram_total, encode(gt), "gram size", "'gram'");
  // k * k must not wrap around in 32 bits.
  gt.k = 65536;
  gt.gram.clear();
  expect_bad(&decode_gram_total, encode(gt), "gram k overflow", "'gram'");

  auto gs = sample_gibbs_stats();
  gs.users.outer.pop_back();
  expect_bad(&decode_gibbs_stats, encode(gs), "gibbs outer", "'outer'");
  gs = sample_gibbs_stats();
  gs.items.n = 3; // rows without sums
  expect_bad(&decode_gibbs_stats, encode(gs), "gibbs n", "'sum'");
  auto gpr = sample_gibbs_priors();
  gpr.items.lambda_mu = Eigen::VectorXd{{1.0, 2.0, 3.0}};
  expect_bad(&decode_gibbs_priors, encode(gpr), "gibbs lambda", "'lambda'");

  auto st = sample_stats();
  st.inv_std.pop_back();
  expect_bad(&decode_blend_stats, encode(st), "inv_std", "'inv_std'");

  auto nb = sample_node_batch();
  nb.partitions = {0, 7, 3};
  expect_bad(&decode_node_query_batch, encode(nb), "batch partitions",
             "node_query_batch: field 'partitions' is not strictly ascending at entry 2");
  nb = sample_node_batch();
  nb.queries[2].profile.seen_value.pop_back();
  expect_bad(&decode_node_query_batch, encode(nb), "batch profile",
             "node_query_batch queries[2] profile: field 'seen_value'");
  nb = sample_node_batch();
  nb.queries[0].profile.seen_content.pop_back();
  expect_bad(&decode_node_query_batch, encode(nb), "batch seen_content",
             "queries[0] profile: field 'seen_content'");
  nb = sample_node_batch();
  nb.queries[1].stats.inv_std.pop_back();
  expect_bad(&decode_node_query_batch, encode(nb), "batch stats",
             "node_query_batch queries[1] stats: field 'inv_std'");

  auto nr = sample_node_reply();
  nr.answers[2].partitions = {0, 3, 3};
  expect_bad(&decode_node_query_reply, encode(nr), "answer partitions",
             "node_query_reply answers[2]: field 'partitions'");
  nr = sample_node_reply();
  nr.answers[1].moments.pop_back();
  expect_bad(&decode_node_query_reply, encode(nr), "answer moments",
             "node_query_reply answers[1]: field 'moments' has 1 entries, 'partitions' "
             "has 2");
  nr = sample_node_reply();
  nr.answers[2].candidates[1].content.feature = {9, 9};
  nr.answers[2].candidates[1].content.weight = {1.0f, 1.0f};
  expect_bad(&decode_node_query_reply, encode(nr), "candidate content",
             "node_query_reply answers[2] candidates[1] content: field 'feature'");
}

// Wire forms the encoders never produce: built with the raw schema, behind
// this build's frame header (actors/codec.hpp).
frame raw_frame(capnp::MessageBuilder& mb) {
  auto words = capnp::messageToFlatArray(mb);
  auto bytes = words.asBytes();
  frame f;
  f.bytes.resize(frame_header_bytes + bytes.size());
  std::copy(frame_header.begin(), frame_header.end(), f.bytes.begin());
  std::copy(bytes.begin(), bytes.end(), f.bytes.begin() + frame_header_bytes);
  return f;
}

TEST(CodecDist, RaterRowsOfTheOneRoundExchangeAreRefusedAsAnOlderVersion) {
  // An older node's block: the fields before round, rounds and own.
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<wire::TrainFrame>();
  root.setMagic(wire::TRAIN_FRAME_MAGIC);
  auto b = root.initRaterRowsBlock();
  b.initIds(1).set(0, "i1");
  b.initRowLength(1).set(0, 1);
  b.initEntity(1).set(0, 0);
  b.initQ(1).set(0, 5);
  expect_bad(&decode_rater_rows_block, raw_frame(mb), "old block", "older version");
  auto own = sample_rows_block();
  own.own = true;
  expect_bad(&decode_rater_rows_block, encode(own), "own cells of round 3",
             "own cells travel with round 0");
}

TEST(CodecDist, HandBuiltInconsistentWireFormsAreRejected) {
  {
    // CSR row lengths that overrun the feature array.
    capnp::MallocMessageBuilder mb;
    auto root = mb.initRoot<wire::TrainFrame>();
    root.setMagic(wire::TRAIN_FRAME_MAGIC);
    auto m = root.initContentVectors();
    m.initItems(1).set(0, "m1");
    auto rows = m.initVectors();
    rows.initLength(1).set(0, 5);
    rows.initFeature(2);
    rows.initWeight(2);
    expect_bad(&decode_content_vectors_message, raw_frame(mb), "csr", "'length'");
  }
  {
    // Sparse vector weights not aligned with features.
    capnp::MallocMessageBuilder mb;
    auto root = mb.initRoot<wire::QueryFrame>();
    root.setMagic(wire::QUERY_FRAME_MAGIC);
    auto c = root.initUserProfile().initContent();
    c.initFeature(3);
    c.initWeight(2);
    expect_bad(&decode_user_profile, raw_frame(mb), "weights", "'weight'");
  }
  {
    // Row lengths that do not add up to the cells.
    capnp::MallocMessageBuilder mb;
    auto root = mb.initRoot<wire::TrainFrame>();
    root.setMagic(wire::TRAIN_FRAME_MAGIC);
    auto b = root.initRaterRowsBlock();
    b.setRounds(1);
    b.initIds(1).set(0, "i1");
    b.initRowLength(1).set(0, 3);
    b.initEntity(2);
    b.initQ(2);
    expect_bad(&decode_rater_rows_block, raw_frame(mb), "row_length", "'row_length'");
  }
  {
    // Unknown enumerants (a newer sender).
    capnp::MallocMessageBuilder mb;
    auto root = mb.initRoot<wire::TrainFrame>();
    root.setMagic(wire::TRAIN_FRAME_MAGIC);
    root.initRaterRowsBlock().setKind(static_cast<wire::SimilarityKind>(77));
    expect_bad(&decode_rater_rows_block, raw_frame(mb), "kind", "'kind'");
  }
  {
    capnp::MallocMessageBuilder mb;
    auto root = mb.initRoot<wire::QueryFrame>();
    root.setMagic(wire::QUERY_FRAME_MAGIC);
    root.initBlendSpec().initComponents(1)[0].setKind(static_cast<wire::BlendKind>(9));
    expect_bad(&decode_blend_spec, raw_frame(mb), "blend kind", "'kind'");
  }
  {
    capnp::MallocMessageBuilder mb;
    auto root = mb.initRoot<wire::TrainFrame>();
    root.setMagic(wire::TRAIN_FRAME_MAGIC);
    root.initRaterRowsBlock().setSide(static_cast<wire::KnnSide>(2));
    expect_bad(&decode_rater_rows_block, raw_frame(mb), "knn side", "'side'");
  }
  {
    capnp::MallocMessageBuilder mb;
    auto root = mb.initRoot<wire::TrainFrame>();
    root.setMagic(wire::TRAIN_FRAME_MAGIC);
    root.initIalsBlock().setSide(static_cast<wire::AlsSide>(5));
    expect_bad(&decode_ials_block, raw_frame(mb), "als side", "'side'");
  }
  {
    // A node query kind out of range, at the fourth query.
    capnp::MallocMessageBuilder mb;
    auto root = mb.initRoot<wire::QueryFrame>();
    root.setMagic(wire::QUERY_FRAME_MAGIC);
    auto queries = root.initNodeQueryBatch().initQueries(4);
    for (unsigned i = 0; i < 3; ++i) {
      queries[i].setKind(wire::NodeQueryKind::DIRECT);
      queries[i].initProfile();
      queries[i].initStats();
    }
    queries[3].setKind(static_cast<wire::NodeQueryKind>(4));
    expect_bad(&decode_node_query_batch, raw_frame(mb), "node query kind",
               "node_query_batch queries[3]: field 'kind' has unknown value 4");
    // The removed two-round kinds (score 0, select 1) are unknown too.
    queries[3].initProfile();
    queries[3].initStats();
    for (auto kind :
         {wire::NodeQueryKind::REMOVED_SCORE, wire::NodeQueryKind::REMOVED_SELECT}) {
      queries[3].setKind(kind);
      const auto value = std::to_string(static_cast<unsigned>(kind));
      expect_bad(&decode_node_query_batch, raw_frame(mb), "removed kind " + value,
                 "node_query_batch queries[3]: field 'kind' has unknown value " + value);
    }
  }
  {
    // A query without its profile, a direct query without its stats.
    capnp::MallocMessageBuilder mb;
    auto root = mb.initRoot<wire::QueryFrame>();
    root.setMagic(wire::QUERY_FRAME_MAGIC);
    auto queries = root.initNodeQueryBatch().initQueries(2);
    queries[0].setKind(wire::NodeQueryKind::LOCAL);
    queries[1].setKind(wire::NodeQueryKind::LOCAL);
    queries[1].initProfile();
    expect_bad(&decode_node_query_batch, raw_frame(mb), "local, no profile",
               "queries[0]: field 'profile' is missing");
    queries[0].setKind(wire::NodeQueryKind::DIRECT);
    queries[0].initStats();
    expect_bad(&decode_node_query_batch, raw_frame(mb), "direct, no profile",
               "queries[0]: field 'profile' is missing");
    queries[0].initProfile();
    EXPECT_TRUE(decode_node_query_batch(raw_frame(mb)).ok());
    queries[1].setKind(wire::NodeQueryKind::DIRECT);
    expect_bad(&decode_node_query_batch, raw_frame(mb), "direct, no stats",
               "queries[1]: field 'stats' is missing");
  }
}

} // namespace
} // namespace shardrec::actors
