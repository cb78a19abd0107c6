#include "dist/als.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/loaders.hpp"
#include "core/partition.hpp"
#include "dist/sliced_cluster.hpp"
#include "tests/data_dir.hpp"

namespace shardrec::dist {
namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// ---- data ----

struct events_data {
  dataset ds; // the oracle's indices
  std::vector<raw_event> raw;
  interaction_matrix train;
  std::vector<std::uint64_t> user_keys, item_keys;
};

void finish(events_data& d) {
  d.raw = dist::raw_events_of(d.ds);
  d.train = interaction_matrix::build(d.ds.users.size(), d.ds.items.size(), d.ds.events,
                                      merge_policy::last);
  for (std::size_t u = 0; u < d.ds.users.size(); ++u)
    d.user_keys.push_back(stable_hash(d.ds.users.external(static_cast<index_t>(u))));
  for (std::size_t i = 0; i < d.ds.items.size(); ++i)
    d.item_keys.push_back(stable_hash(d.ds.items.external(static_cast<index_t>(i))));
}

const events_data& ml100k_u1() {
  static const events_data d = [] {
    events_data d;
    std::string path = test_data::path("ml-100k/u1.base");
    auto r = load_events(path, data_format::movielens, d.ds);
    if (!r) {
      ADD_FAILURE() << "cannot load " << path
                    << " (SHARDREC_DATA_DIR must hold ml-100k): " << r.err().message;
      return d;
    }
    finish(d);
    return d;
  }();
  return d;
}

// 7 users x 6 items by hand, ratings 1..5; user "u7" rates one item only and
// item "i6" has one rater, so some partitions have tiny or empty blocks.
events_data hand_data() {
  events_data d;
  const char* cells[][3] = {
      {"u1", "i1", "5"}, {"u1", "i2", "3"}, {"u1", "i4", "1"}, {"u2", "i1", "4"},
      {"u2", "i3", "2"}, {"u3", "i2", "5"}, {"u3", "i3", "4"}, {"u3", "i5", "2"},
      {"u4", "i4", "3"}, {"u4", "i5", "5"}, {"u4", "i1", "1"}, {"u5", "i2", "2"},
      {"u5", "i5", "4"}, {"u6", "i3", "5"}, {"u6", "i4", "4"}, {"u6", "i6", "3"},
      {"u7", "i1", "2"},
  };
  for (const auto& c : cells) {
    event e;
    e.user = d.ds.users.intern(c[0]);
    e.item = d.ds.items.intern(c[1]);
    e.value = std::stof(c[2]);
    d.ds.events.push_back(e);
  }
  finish(d);
  return d;
}

std::vector<partition_store> make_stores(const events_data& d, std::uint32_t parts) {
  return dist::make_stores(d.raw, parts, merge_policy::last);
}

als_globals globals_of(const std::vector<partition_store>& stores, std::mt19937_64& rng) {
  std::vector<als_census> cs;
  for (const auto& s : stores)
    cs.push_back(census(s));
  std::shuffle(cs.begin(), cs.end(), rng);
  auto g = merge_census(cs, static_cast<std::uint32_t>(stores.size()));
  EXPECT_TRUE(g.ok());
  return g.ok() ? *g : als_globals{};
}

// Bytes of one half-step holding `fixed` fixed, computed from the global
// data: every (row, partition that owns a cell's other end) pair once.
std::size_t expected_min_bytes(const events_data& d, std::uint32_t parts, als_side fixed,
                               std::size_t row_bytes) {
  std::set<std::pair<std::string, std::uint32_t>> pairs;
  for (const auto& e : d.raw) {
    bool items = fixed == als_side::items;
    const std::string& row = items ? e.item : e.user;
    pairs.emplace(row, partition_of(items ? e.user : e.item, parts));
  }
  std::size_t n = 0;
  for (const auto& pr : pairs)
    n += pr.first.size() + row_bytes;
  return n;
}

// ---- one-process simulation of the message flow in dist_als.hpp ----

struct traffic {
  std::size_t payload = 0;          // measured: payload_bytes of every block
  std::size_t minimum = 0;          // sum of min_payload_bytes over partitions
  std::size_t cross = 0;            // payload of blocks with from != to
  std::size_t duplicates = 0;       // (row, destination) pairs sent more than once
  std::size_t per_half[2] = {0, 0}; // payload of the first iteration, by fixed side
};

template <class Block>
void deliver(std::vector<Block>& pool, std::mt19937_64& rng, traffic& t, int iteration,
             als_side fixed, const std::function<status(const Block&)>& to_partition) {
  std::set<std::pair<std::string, std::uint32_t>> seen;
  for (const auto& b : pool) {
    auto bytes = payload_bytes(b);
    t.payload += bytes;
    if (b.from != b.to)
      t.cross += bytes;
    if (iteration == 0)
      t.per_half[static_cast<int>(fixed)] += bytes;
    for (const auto& id : b.ids)
      if (!seen.emplace(id, b.to).second)
        ++t.duplicates;
  }
  std::shuffle(pool.begin(), pool.end(), rng);
  for (const auto& b : pool) {
    auto st = to_partition(b);
    ASSERT_TRUE(st.ok()) << st.err().message;
  }
}

struct ials_run {
  std::vector<std::unique_ptr<ials_partition>> parts;
  std::vector<double> loss;
  traffic bytes;
};

// Group delivery (leader_of non-empty): one block per group, handed to every
// partition of the group, as shards on one node share a block.
template <class Part, class Block>
status deliver_to_group(const std::vector<std::unique_ptr<Part>>& parts,
                        const std::vector<std::uint32_t>& leader_of, const Block& b) {
  for (std::uint32_t q = 0; q < parts.size(); ++q)
    if (leader_of[q] == b.to)
      if (auto st = parts[q]->receive(b, true); !st)
        return st;
  return {};
}

ials_run simulate_ials(const std::vector<partition_store>& stores, const ials_config& cfg,
                       std::uint64_t shuffle_seed, bool with_loss,
                       const std::vector<std::uint32_t>& leader_of = {}) {
  std::mt19937_64 rng(shuffle_seed);
  const auto parts = static_cast<std::uint32_t>(stores.size());
  ials_run run;
  als_globals g = globals_of(stores, rng);
  for (const auto& s : stores)
    run.parts.push_back(std::make_unique<ials_partition>(s, cfg, g));
  for (int it = 0; it < cfg.iterations; ++it) {
    for (als_side fixed : {als_side::items, als_side::users}) {
      std::vector<ials_block> pool;
      std::vector<gram_partial> grams;
      for (auto& p : run.parts) {
        for (auto& b : leader_of.empty() ? p->make_blocks(fixed)
                                         : p->make_group_blocks(fixed, leader_of))
          pool.push_back(std::move(b));
        run.bytes.minimum += p->exchange().min_payload_bytes(fixed);
        grams.push_back(p->make_gram_partial(fixed));
      }
      std::shuffle(grams.begin(), grams.end(), rng);
      auto total = sum_gram(grams, parts);
      EXPECT_TRUE(total.ok());
      deliver<ials_block>(pool, rng, run.bytes, it, fixed, [&](const ials_block& b) {
        return leader_of.empty() ? run.parts[b.to]->receive(b)
                                 : deliver_to_group(run.parts, leader_of, b);
      });
      als_side solving = fixed == als_side::items ? als_side::users : als_side::items;
      for (auto& p : run.parts) {
        auto st = p->solve(solving, *total);
        EXPECT_TRUE(st.ok()) << st.err().message;
      }
    }
    if (with_loss) {
      std::vector<loss_partial> lp;
      for (auto& p : run.parts)
        lp.push_back(p->make_loss_partial());
      std::shuffle(lp.begin(), lp.end(), rng);
      auto l = sum_loss(lp, parts);
      EXPECT_TRUE(l.ok());
      run.loss.push_back(l.ok() ? *l : 0.0);
    }
  }
  return run;
}

struct mf_run {
  std::vector<std::unique_ptr<mf_partition>> parts;
  std::vector<double> loss;
  traffic bytes;
};

mf_run simulate_mf(const std::vector<partition_store>& stores, const mf_config& cfg,
                   std::uint64_t shuffle_seed,
                   const std::vector<std::uint32_t>& leader_of = {}) {
  std::mt19937_64 rng(shuffle_seed);
  const auto parts = static_cast<std::uint32_t>(stores.size());
  mf_run run;
  als_globals g = globals_of(stores, rng);
  for (const auto& s : stores)
    run.parts.push_back(std::make_unique<mf_partition>(s, cfg, g));
  for (int it = 0; it < cfg.iterations; ++it) {
    for (als_side fixed : {als_side::items, als_side::users}) {
      std::vector<mf_block> pool;
      for (auto& p : run.parts) {
        for (auto& b : leader_of.empty() ? p->make_blocks(fixed)
                                         : p->make_group_blocks(fixed, leader_of))
          pool.push_back(std::move(b));
        run.bytes.minimum += p->exchange().min_payload_bytes(fixed);
      }
      deliver<mf_block>(pool, rng, run.bytes, it, fixed, [&](const mf_block& b) {
        return leader_of.empty() ? run.parts[b.to]->receive(b)
                                 : deliver_to_group(run.parts, leader_of, b);
      });
      als_side solving = fixed == als_side::items ? als_side::users : als_side::items;
      for (auto& p : run.parts) {
        auto st = p->solve(solving);
        EXPECT_TRUE(st.ok()) << st.err().message;
      }
    }
    std::vector<loss_partial> lp;
    for (auto& p : run.parts)
      lp.push_back(p->make_loss_partial());
    std::shuffle(lp.begin(), lp.end(), rng);
    auto l = sum_loss(lp, parts);
    EXPECT_TRUE(l.ok());
    run.loss.push_back(l.ok() ? *l : 0.0);
  }
  return run;
}

// The Gibbs flow of dist/als.hpp: per sweep the item blocks, then (on a
// sampled sweep) every partition's stats in shuffled order to
// draw_gibbs_priors, the user solve, the user blocks, the item solve.
struct gibbs_run {
  std::vector<std::unique_ptr<mf_partition>> parts;
  std::vector<double> train_rmse; // from the stats of each sampled sweep
};

gibbs_run simulate_gibbs(const std::vector<partition_store>& stores, const mf_config& cfg,
                         std::uint64_t shuffle_seed,
                         const std::vector<std::uint32_t>& leader_of = {}) {
  std::mt19937_64 rng(shuffle_seed);
  const auto parts = static_cast<std::uint32_t>(stores.size());
  gibbs_run run;
  traffic bytes;
  als_globals g = globals_of(stores, rng);
  for (const auto& s : stores)
    run.parts.push_back(std::make_unique<mf_partition>(s, cfg, g));
  auto exchange = [&](als_side fixed, int it) {
    std::vector<mf_block> pool;
    for (auto& p : run.parts)
      for (auto& b : leader_of.empty() ? p->make_blocks(fixed)
                                       : p->make_group_blocks(fixed, leader_of))
        pool.push_back(std::move(b));
    deliver<mf_block>(pool, rng, bytes, it, fixed, [&](const mf_block& b) {
      return leader_of.empty() ? run.parts[b.to]->receive(b)
                               : deliver_to_group(run.parts, leader_of, b);
    });
  };
  for (int it = 0; it < cfg.iterations; ++it) {
    exchange(als_side::items, it);
    gibbs_priors priors;
    const bool sample = run.parts[0]->next_sweep_samples();
    if (sample) {
      std::vector<gibbs_stats> st;
      for (auto& p : run.parts) {
        auto s = p->make_gibbs_stats();
        EXPECT_TRUE(s.ok()) << s.err().message;
        if (s.ok())
          st.push_back(std::move(*s));
      }
      std::shuffle(st.begin(), st.end(), rng);
      exact_sum sse;
      std::uint64_t cells = 0;
      for (const auto& s : st) {
        sse.add(s.sse);
        cells += s.cells;
      }
      run.train_rmse.push_back(std::sqrt(sse.value() / static_cast<double>(cells)));
      auto d = draw_gibbs_priors(st, parts, cfg, it + 1);
      EXPECT_TRUE(d.ok()) << d.err().message;
      if (d.ok())
        priors = std::move(*d);
    }
    for (auto& p : run.parts) {
      auto st = p->solve(als_side::users, sample ? &priors : nullptr);
      EXPECT_TRUE(st.ok()) << st.err().message;
    }
    exchange(als_side::users, it);
    for (auto& p : run.parts) {
      auto st = p->solve(als_side::items);
      EXPECT_TRUE(st.ok()) << st.err().message;
    }
  }
  return run;
}

// Gathers owned rows from the partitions into the oracle's dense order.
template <class Mat, class Get>
Mat gather(const id_map& ids, const std::vector<partition_store>& stores, bool users,
           Eigen::Index width, Get&& owned_rows) {
  Mat out(static_cast<Eigen::Index>(ids.size()), width);
  const auto parts = static_cast<std::uint32_t>(stores.size());
  for (std::size_t r = 0; r < ids.size(); ++r) {
    const std::string& id = ids.external(static_cast<index_t>(r));
    auto p = partition_of(id, parts);
    auto local = users ? stores[p].users().find(id) : stores[p].items().find(id);
    EXPECT_TRUE(local.has_value()) << id;
    if (local)
      out.row(static_cast<Eigen::Index>(r)) =
          owned_rows(p).row(static_cast<Eigen::Index>(*local));
  }
  return out;
}

// The partitions' MF rows as core factors in the oracle's order.
mf_factors gather_mf(const events_data& d, const std::vector<partition_store>& stores,
                     const std::vector<std::unique_ptr<mf_partition>>& parts,
                     std::size_t factors) {
  const auto w = static_cast<Eigen::Index>(factors + 1);
  auto xu = gather<mf_rows>(d.ds.users, stores, true, w,
                            [&](std::uint32_t p) { return parts[p]->user_rows(); });
  auto xi = gather<mf_rows>(d.ds.items, stores, false, w,
                            [&](std::uint32_t p) { return parts[p]->item_rows(); });
  mf_factors f;
  f.mu = static_cast<float>(parts[0]->mu());
  f.user = xu.leftCols(w - 1).cast<float>();
  f.item = xi.leftCols(w - 1).cast<float>();
  f.user_bias = xu.col(w - 1).cast<float>();
  f.item_bias = xi.col(w - 1).cast<float>();
  return f;
}

template <class A, class B> double max_abs_diff(const A& a, const B& b) {
  EXPECT_EQ(a.rows(), b.rows());
  EXPECT_EQ(a.cols(), b.cols());
  return (a.template cast<double>() - b.template cast<double>()).cwiseAbs().maxCoeff();
}

// ---- keyed initialisation in the core ----

TEST(dist_als, keyed_init_depends_only_on_seed_side_and_key) {
  std::vector<std::uint64_t> keys = {11, 22, 33, 44};
  std::vector<std::uint64_t> some = {33, 11};
  ials_matrix a(4, 5), b(2, 5), c(4, 5);
  ials_init_keyed_rows(7, 0, keys.data(), 0.5f, a);
  ials_init_keyed_rows(7, 0, some.data(), 0.5f, b);
  ials_init_keyed_rows(7, 1, keys.data(), 0.5f, c);
  EXPECT_EQ(b.row(0), a.row(2));
  EXPECT_EQ(b.row(1), a.row(0));
  EXPECT_NE(a.row(0), a.row(1));
  EXPECT_NE(a.row(0), c.row(0)); // the side is part of the seed
  EXPECT_LT(a.cwiseAbs().maxCoeff(), 0.5f * 6);

  mf_config mc;
  mc.factors = 3;
  mf_rows x(4, 4), y(2, 4), z(4, 4);
  mf_init_keyed_rows(mc, 0, keys.data(), x);
  mf_init_keyed_rows(mc, 0, some.data(), y);
  mf_init_keyed_rows(mc, 1, keys.data(), z);
  EXPECT_EQ(y.row(0), x.row(2));
  EXPECT_EQ(x.col(3), Eigen::VectorXd::Zero(4)); // biases start at 0
  EXPECT_NE(x.row(0), z.row(0));
}

TEST(dist_als, core_with_keys_starts_from_keyed_rows) {
  // With 0 iterations the trained factors are the initial ones.
  events_data d = hand_data();
  ials_config cfg;
  cfg.factors = 4;
  cfg.iterations = 0;
  cfg.user_keys = &d.user_keys;
  cfg.item_keys = &d.item_keys;
  auto m = train_ials_model(d.train, cfg);
  ials_matrix expect(static_cast<Eigen::Index>(d.user_keys.size()), 4);
  ials_init_keyed_rows(cfg.seed, 0, d.user_keys.data(), ials_init_std(cfg), expect);
  EXPECT_EQ(m->user_factors(), expect);
  // Without keys: seeded by index, as before.
  cfg.user_keys = cfg.item_keys = nullptr;
  auto plain = train_ials_model(d.train, cfg);
  ials_init_rows(cfg.seed, 0, 0, ials_init_std(cfg), expect);
  EXPECT_EQ(plain->user_factors(), expect);
}

TEST(dist_als, keyed_core_does_not_depend_on_dense_indices) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  // The same ratings listed in reverse give other dense indices; with keys,
  // both trainers give every external id the same factors, bit for bit.
  const auto& d = ml100k_u1();
  ASSERT_GT(d.train.nnz(), 0u);
  events_data r;
  for (auto it = d.ds.events.rbegin(); it != d.ds.events.rend(); ++it) {
    event e = *it;
    e.user = r.ds.users.intern(d.ds.users.external(it->user));
    e.item = r.ds.items.intern(d.ds.items.external(it->item));
    r.ds.events.push_back(e);
  }
  finish(r);
  ASSERT_NE(r.ds.users.external(0), d.ds.users.external(0));
  auto ru = [&](index_t u) { return *r.ds.users.find(d.ds.users.external(u)); };
  auto ri = [&](index_t i) { return *r.ds.items.find(d.ds.items.external(i)); };

  ials_config ic;
  ic.factors = 8;
  ic.iterations = 3;
  ic.user_keys = &d.user_keys;
  ic.item_keys = &d.item_keys;
  auto a = train_ials_model(d.train, ic);
  ic.user_keys = &r.user_keys;
  ic.item_keys = &r.item_keys;
  auto b = train_ials_model(r.train, ic);
  mf_config mc;
  mc.solver = mf_solver::als;
  mc.iterations = 3;
  mc.user_keys = &d.user_keys;
  mc.item_keys = &d.item_keys;
  auto fa = train_mf_factors(d.train, mc);
  mc.user_keys = &r.user_keys;
  mc.item_keys = &r.item_keys;
  auto fb = train_mf_factors(r.train, mc);
  for (index_t u = 0; u < d.ds.users.size(); ++u) {
    ASSERT_EQ(a->user_factors().row(u), b->user_factors().row(ru(u))) << u;
    ASSERT_EQ(fa.user.row(u), fb.user.row(ru(u))) << u;
    ASSERT_EQ(fa.user_bias[u], fb.user_bias[ru(u)]) << u;
  }
  for (index_t i = 0; i < d.ds.items.size(); ++i) {
    ASSERT_EQ(a->item_factors().row(i), b->item_factors().row(ri(i))) << i;
    ASSERT_EQ(a->popularity()[i], b->popularity()[ri(i)]) << i;
    ASSERT_EQ(fa.item.row(i), fb.item.row(ri(i))) << i;
    ASSERT_EQ(fa.item_bias[i], fb.item_bias[ri(i)]) << i;
  }
  // Unkeyed, the index order shows in the rounding (why the keys order cells).
  ic.user_keys = ic.item_keys = nullptr;
  auto ua = train_ials_model(d.train, ic);
  auto ub = train_ials_model(r.train, ic);
  EXPECT_NE(ua->item_factors().row(0), ub->item_factors().row(ri(0)));
}

// ---- routing and messages ----

TEST(dist_als, routing_sends_each_needed_row_once_on_hand_data) {
  events_data d = hand_data();
  for (std::uint32_t parts : {1u, 2u, 3u, 7u}) {
    auto stores = make_stores(d, parts);
    for (std::uint32_t q = 0; q < parts; ++q) {
      als_exchange<float> ex(stores[q], 2);
      // Brute force over the events: item i (owned by q) goes to p iff a
      // user of p rated it; likewise users.
      for (std::uint32_t p = 0; p < parts; ++p) {
        std::set<std::string> want_items, want_users, got_items, got_users;
        for (const auto& e : d.raw) {
          if (partition_of(e.item, parts) == q && partition_of(e.user, parts) == p)
            want_items.insert(e.item);
          if (partition_of(e.user, parts) == q && partition_of(e.item, parts) == p)
            want_users.insert(e.user);
        }
        for (index_t r : ex.rows_for(als_side::items, p))
          EXPECT_TRUE(got_items.insert(stores[q].items().external(r)).second);
        for (index_t r : ex.rows_for(als_side::users, p))
          EXPECT_TRUE(got_users.insert(stores[q].users().external(r)).second);
        EXPECT_EQ(got_items, want_items) << "P=" << parts << " q=" << q << " p=" << p;
        EXPECT_EQ(got_users, want_users) << "P=" << parts << " q=" << q << " p=" << p;
      }
    }
    std::size_t min_items = 0;
    for (const auto& s : stores)
      min_items += als_exchange<float>(s, 2).min_payload_bytes(als_side::items);
    EXPECT_EQ(min_items,
              expected_min_bytes(d, parts, als_side::items, 2 * sizeof(float)));
  }
}

TEST(dist_als, receive_and_merges_reject_bad_deliveries) {
  events_data d = hand_data();
  auto stores = make_stores(d, 3);
  std::mt19937_64 rng(1);
  als_globals g = globals_of(stores, rng);
  EXPECT_EQ(g.n_users, 7u);
  EXPECT_EQ(g.n_items, 6u);
  EXPECT_DOUBLE_EQ(g.mu, 55.0 / 17.0);
  ials_config cfg;
  cfg.factors = 3;
  std::vector<std::unique_ptr<ials_partition>> parts;
  for (const auto& s : stores)
    parts.push_back(std::make_unique<ials_partition>(s, cfg, g));

  std::vector<ials_block> pool;
  for (auto& p : parts)
    for (auto& b : p->make_blocks(als_side::items))
      pool.push_back(std::move(b));
  ASSERT_EQ(pool.size(), 9u);
  // Find a non-empty block for partition 0 and abuse it.
  auto it = std::find_if(pool.begin(), pool.end(),
                         [](const ials_block& b) { return b.to == 0 && !b.ids.empty(); });
  ASSERT_NE(it, pool.end());
  ials_block wrong_to = *it;
  wrong_to.to = 1;
  EXPECT_EQ(parts[0]->receive(wrong_to).err().code, errc::bad_message);
  ials_block stale = *it;
  stale.version = 1;
  EXPECT_FALSE(parts[0]->receive(stale).ok());
  ials_block short_values = *it;
  short_values.values.pop_back();
  EXPECT_FALSE(parts[0]->receive(short_values).ok());
  ials_block forged = *it;
  forged.from = (forged.from + 1) % 3; // rows not owned by the claimed sender
  EXPECT_FALSE(parts[0]->receive(forged).ok());

  // A solve before every block is in fails and changes nothing.
  std::vector<gram_partial> grams;
  for (auto& p : parts)
    grams.push_back(p->make_gram_partial(als_side::items));
  auto total = sum_gram(grams, 3);
  ASSERT_TRUE(total.ok());
  ials_matrix before = parts[0]->user_factors();
  ASSERT_TRUE(parts[0]->receive(*it).ok());
  EXPECT_FALSE(parts[0]->receive(*it).ok()); // the same block twice
  EXPECT_EQ(parts[0]->solve(als_side::users, *total).err().code, errc::bad_message);
  EXPECT_EQ(parts[0]->user_factors(), before);
  for (const auto& b : pool)
    if (b.to == 0 && &b != &*it) {
      ASSERT_TRUE(parts[0]->receive(b).ok());
    }
  gram_total wrong_side = *total;
  wrong_side.side = als_side::users;
  EXPECT_FALSE(parts[0]->solve(als_side::users, wrong_side).ok());
  EXPECT_TRUE(parts[0]->solve(als_side::users, *total).ok());

  // Merges want exactly one input per partition.
  std::vector<gram_partial> two = {grams[0], grams[1]};
  EXPECT_EQ(sum_gram(two, 3).err().code, errc::bad_message);
  std::vector<gram_partial> dup = {grams[0], grams[1], grams[1]};
  EXPECT_FALSE(sum_gram(dup, 3).ok());
  std::vector<als_census> cs = {census(stores[0]), census(stores[2])};
  EXPECT_FALSE(merge_census(cs, 3).ok());
  std::vector<loss_partial> lp = {{0, 1, 1.0}, {1, 1, 2.0}, {5, 1, 3.0}};
  EXPECT_FALSE(sum_loss(lp, 3).ok());

  mf_config mc;
  EXPECT_TRUE(validate_dist(mc).ok()); // gibbs, the default
  mc.solver = mf_solver::als;
  EXPECT_TRUE(validate_dist(mc).ok());
  mc.solver = mf_solver::gibbs;
  mc.burn_in = mc.iterations;
  EXPECT_EQ(validate_dist(mc).err().code, errc::invalid_argument);
}

// ---- agreement with the core ----

TEST(dist_als, ials_exact_matches_core_on_hand_data) {
  events_data d = hand_data();
  ials_config cfg;
  cfg.factors = 3;
  cfg.iterations = 6;
  cfg.exact_solve = true;
  cfg.binary = false;
  cfg.user_keys = &d.user_keys;
  cfg.item_keys = &d.item_keys;
  std::vector<double> trace;
  auto oracle = train_ials_model(d.train, cfg, &trace);
  for (std::uint32_t parts : {1u, 2u, 3u, 7u}) {
    auto stores = make_stores(d, parts);
    auto run = simulate_ials(stores, cfg, parts, true);
    auto x = gather<ials_matrix>(d.ds.users, stores, true, 3, [&](std::uint32_t p) {
      return run.parts[p]->user_factors();
    });
    auto y = gather<ials_matrix>(d.ds.items, stores, false, 3, [&](std::uint32_t p) {
      return run.parts[p]->item_factors();
    });
    EXPECT_LT(max_abs_diff(x, oracle->user_factors()), 1e-6) << "P=" << parts;
    EXPECT_LT(max_abs_diff(y, oracle->item_factors()), 1e-6) << "P=" << parts;
    ASSERT_EQ(run.loss.size(), trace.size());
    for (std::size_t t = 0; t < trace.size(); ++t)
      EXPECT_NEAR(run.loss[t], trace[t], 1e-9 * trace[t]) << "P=" << parts << " t=" << t;
    EXPECT_EQ(run.bytes.duplicates, 0u);
    EXPECT_EQ(run.bytes.payload, run.bytes.minimum);
  }
}

// Blocks by group (the partitions of one node) instead of by partition: the
// same factors bit for bit, each row sent once per group, so fewer bytes.
TEST(dist_als, group_blocks_give_the_same_factors_with_fewer_bytes) {
  events_data d = hand_data();
  ials_config cfg;
  cfg.factors = 3;
  cfg.iterations = 4;
  cfg.binary = false;
  cfg.user_keys = &d.user_keys;
  cfg.item_keys = &d.item_keys;
  mf_config mcfg;
  mcfg.solver = mf_solver::als;
  mcfg.factors = 3;
  mcfg.iterations = 4;
  mcfg.user_keys = &d.user_keys;
  mcfg.item_keys = &d.item_keys;
  const std::uint32_t parts = 7;
  auto stores = make_stores(d, parts);
  // Three "nodes": partitions p with the same p % 3, led by p % 3.
  std::vector<std::uint32_t> leader_of(parts);
  for (std::uint32_t p = 0; p < parts; ++p)
    leader_of[p] = p % 3;
  auto by_part = simulate_ials(stores, cfg, 1, true);
  auto by_group = simulate_ials(stores, cfg, 2, true, leader_of);
  auto mf_by_part = simulate_mf(stores, mcfg, 1);
  auto mf_by_group = simulate_mf(stores, mcfg, 2, leader_of);
  for (std::uint32_t p = 0; p < parts; ++p) {
    EXPECT_EQ(by_part.parts[p]->user_factors(), by_group.parts[p]->user_factors());
    EXPECT_EQ(by_part.parts[p]->item_factors(), by_group.parts[p]->item_factors());
    EXPECT_EQ(mf_by_part.parts[p]->user_rows(), mf_by_group.parts[p]->user_rows());
    EXPECT_EQ(mf_by_part.parts[p]->item_rows(), mf_by_group.parts[p]->item_rows());
  }
  EXPECT_EQ(by_part.loss, by_group.loss);
  EXPECT_LT(by_group.bytes.payload, by_part.bytes.payload);
  EXPECT_LT(mf_by_group.bytes.payload, mf_by_part.bytes.payload);
}

TEST(dist_als, ials_matches_core_on_ml100k_u1) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  const auto& d = ml100k_u1();
  ASSERT_GT(d.train.nnz(), 0u);
  ials_config cfg;
  cfg.factors = 64; // the fixed-size CG kernel of the default
  cfg.iterations = 5;
  cfg.user_keys = &d.user_keys;
  cfg.item_keys = &d.item_keys;
  std::vector<double> trace;
  auto t0 = clock_type::now();
  auto oracle = train_ials_model(d.train, cfg, &trace);
  double core_s = seconds_since(t0);
  const auto& ox = oracle->user_factors();
  const auto& oy = oracle->item_factors();
  Eigen::MatrixXf oracle_scores = ox * oy.transpose();
  std::printf("ials oracle: %zu users x %zu items, k=%zu, %d it: %.3f s (with loss), "
              "max |x| %.3f max |y| %.3f\n",
              d.train.n_users(), d.train.n_items(), cfg.factors, cfg.iterations, core_s,
              ox.cwiseAbs().maxCoeff(), oy.cwiseAbs().maxCoeff());

  for (std::uint32_t parts : {1u, 3u, 7u}) {
    auto stores = make_stores(d, parts);
    t0 = clock_type::now();
    auto run = simulate_ials(stores, cfg, 100 + parts, true);
    double sim_s = seconds_since(t0);
    auto x = gather<ials_matrix>(d.ds.users, stores, true, 64, [&](std::uint32_t p) {
      return run.parts[p]->user_factors();
    });
    auto y = gather<ials_matrix>(d.ds.items, stores, false, 64, [&](std::uint32_t p) {
      return run.parts[p]->item_factors();
    });
    double dx = max_abs_diff(x, ox), dy = max_abs_diff(y, oy);
    Eigen::MatrixXf scores = x * y.transpose();
    double ds = max_abs_diff(scores, oracle_scores);
    // Absolute differences. The brief asks for 1e-4; the keyed order makes
    // the partitions bit-identical to the core (only a double Gram sum that
    // rounds differently could break that), so 1e-6 also catches a drift in
    // the order of a row's cells, which shows as ~1e-4.
    EXPECT_LT(dx, 1e-6) << "P=" << parts;
    EXPECT_LT(dy, 1e-6) << "P=" << parts;
    EXPECT_LT(ds, 1e-6) << "P=" << parts;
    ASSERT_EQ(run.loss.size(), trace.size());
    for (std::size_t t = 0; t < trace.size(); ++t)
      EXPECT_NEAR(run.loss[t], trace[t], 1e-6 * trace[t]) << "P=" << parts << " t=" << t;

    EXPECT_EQ(run.bytes.duplicates, 0u);
    EXPECT_EQ(run.bytes.payload, run.bytes.minimum);
    std::size_t row = cfg.factors * sizeof(float);
    std::size_t want = expected_min_bytes(d, parts, als_side::items, row)
                       + expected_min_bytes(d, parts, als_side::users, row);
    EXPECT_EQ(run.bytes.per_half[0] + run.bytes.per_half[1], want);
    EXPECT_EQ(run.bytes.payload, want * static_cast<std::size_t>(cfg.iterations));
    std::printf("ials P=%u: sim %.3f s (core %.3f s); max |dx| %.2e |dy| %.2e |dscore| "
                "%.2e; bytes/iteration %zu (items %zu + users %zu; cross-partition %zu; "
                "minimum %zu) + gram %zu\n",
                parts, sim_s, core_s, dx, dy, ds,
                run.bytes.per_half[0] + run.bytes.per_half[1], run.bytes.per_half[1],
                run.bytes.per_half[0], run.bytes.cross / cfg.iterations, want,
                static_cast<std::size_t>(4 * parts * cfg.factors * cfg.factors * 8));
  }
}

TEST(dist_als, mf_als_matches_core_on_ml100k_u1) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u1.test");
  const auto& d = ml100k_u1();
  ASSERT_GT(d.train.nnz(), 0u);
  mf_config cfg;
  cfg.solver = mf_solver::als;
  cfg.factors = 10;
  cfg.iterations = 5;
  cfg.reg = 0.1f;
  cfg.user_keys = &d.user_keys;
  cfg.item_keys = &d.item_keys;
  std::vector<double> trace;
  auto t0 = clock_type::now();
  mf_factors oracle = train_mf_factors(d.train, cfg, &trace);
  double core_s = seconds_since(t0);
  mf_model oracle_model(oracle, cfg.min_rating, cfg.max_rating);

  // u1.test pairs, by the oracle's indices (unknown ids: cold).
  dataset test_ds;
  auto r =
      load_events(test_data::path("ml-100k/u1.test"), data_format::movielens, test_ds);
  ASSERT_TRUE(r.ok()) << r.err().message;
  std::vector<std::pair<index_t, index_t>> pairs;
  for (const auto& e : test_ds.events) {
    auto u = d.ds.users.find(test_ds.users.external(e.user));
    auto i = d.ds.items.find(test_ds.items.external(e.item));
    pairs.emplace_back(u ? *u : static_cast<index_t>(d.ds.users.size()),
                       i ? *i : static_cast<index_t>(d.ds.items.size()));
  }
  ASSERT_EQ(pairs.size(), 20000u);

  for (std::uint32_t parts : {1u, 3u, 7u}) {
    auto stores = make_stores(d, parts);
    t0 = clock_type::now();
    auto run = simulate_mf(stores, cfg, 200 + parts);
    double sim_s = seconds_since(t0);
    mf_factors f = gather_mf(d, stores, run.parts, cfg.factors);
    EXPECT_EQ(f.mu, oracle.mu);
    double dfac =
        std::max(max_abs_diff(f.user, oracle.user), max_abs_diff(f.item, oracle.item));
    double dbias = std::max(max_abs_diff(f.user_bias, oracle.user_bias),
                            max_abs_diff(f.item_bias, oracle.item_bias));
    mf_model m(f, cfg.min_rating, cfg.max_rating);
    double dpred = 0, se = 0;
    for (std::size_t j = 0; j < pairs.size(); ++j) {
      float p = m.predict(pairs[j].first, pairs[j].second);
      dpred = std::max(dpred,
                       static_cast<double>(std::abs(
                           p - oracle_model.predict(pairs[j].first, pairs[j].second))));
      double e = p - test_ds.events[j].value;
      se += e * e;
    }
    EXPECT_LT(dfac, 1e-6) << "P=" << parts; // absolute; see the iALS test
    EXPECT_LT(dbias, 1e-6) << "P=" << parts;
    EXPECT_LT(dpred, 1e-6) << "P=" << parts;
    ASSERT_EQ(run.loss.size(), trace.size());
    for (std::size_t t = 0; t < trace.size(); ++t)
      EXPECT_NEAR(run.loss[t], trace[t], 1e-9 * trace[t]) << "P=" << parts << " t=" << t;

    EXPECT_EQ(run.bytes.duplicates, 0u);
    EXPECT_EQ(run.bytes.payload, run.bytes.minimum);
    std::size_t row = (cfg.factors + 1) * sizeof(double);
    std::size_t want = expected_min_bytes(d, parts, als_side::items, row)
                       + expected_min_bytes(d, parts, als_side::users, row);
    EXPECT_EQ(run.bytes.payload, want * static_cast<std::size_t>(cfg.iterations));
    std::printf(
        "mf-als P=%u: sim %.3f s (core %.3f s); max |dfactor| %.2e |dbias| %.2e "
        "|dpred| %.2e; test RMSE %.4f; bytes/iteration %zu (cross-partition %zu)\n",
        parts, sim_s, core_s, dfac, dbias, dpred,
        std::sqrt(se / static_cast<double>(pairs.size())), want,
        run.bytes.cross / cfg.iterations);
  }
}

} // namespace
} // namespace shardrec::dist

namespace shardrec::dist {
namespace {

// Issue 13: the cluster trains the local default MF. The distributed Gibbs
// sampler (warm start included) equals the keyed core bit for bit at
// P = 1, 7, 64, by partition and by node group.
TEST(dist_als, mf_gibbs_equals_core_bit_for_bit_on_ml100k_u1) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u1.test");
  const auto& d = ml100k_u1();
  ASSERT_GT(d.train.nnz(), 0u);
  mf_config cfg; // the default: Gibbs, 10 factors
  cfg.iterations = 12;
  cfg.burn_in = 6;
  cfg.warm_start = 2;
  cfg.threads = 2;
  cfg.user_keys = &d.user_keys;
  cfg.item_keys = &d.item_keys;
  std::vector<double> trace;
  mf_factors oracle = train_mf_factors(d.train, cfg, &trace);
  mf_model oracle_model(oracle, cfg.min_rating, cfg.max_rating);
  dataset test_ds;
  auto r =
      load_events(test_data::path("ml-100k/u1.test"), data_format::movielens, test_ds);
  ASSERT_TRUE(r.ok()) << r.err().message;
  auto rmse_of = [&](const mf_model& m) {
    double se = 0;
    for (const auto& e : test_ds.events) {
      auto u = d.ds.users.find(test_ds.users.external(e.user));
      auto i = d.ds.items.find(test_ds.items.external(e.item));
      float p = m.predict(u ? *u : static_cast<index_t>(d.ds.users.size()),
                          i ? *i : static_cast<index_t>(d.ds.items.size()));
      se += (p - e.value) * (p - e.value);
    }
    return std::sqrt(se / static_cast<double>(test_ds.events.size()));
  };
  const double oracle_rmse = rmse_of(oracle_model);
  EXPECT_LT(oracle_rmse, 0.95);

  for (std::uint32_t parts : {1u, 7u, 64u}) {
    auto stores = make_stores(d, parts);
    std::vector<std::uint32_t> groups(parts);
    for (std::uint32_t p = 0; p < parts; ++p)
      groups[p] = p - p % 3; // three partitions a node
    for (bool grouped : {false, true}) {
      auto run = simulate_gibbs(stores, cfg, 300 + parts,
                                grouped ? groups : std::vector<std::uint32_t>{});
      mf_factors f = gather_mf(d, stores, run.parts, cfg.factors);
      EXPECT_EQ(f.mu, oracle.mu);
      EXPECT_EQ(f.user, oracle.user) << "P=" << parts << " grouped=" << grouped;
      EXPECT_EQ(f.item, oracle.item) << "P=" << parts << " grouped=" << grouped;
      EXPECT_EQ(f.user_bias, oracle.user_bias) << "P=" << parts;
      EXPECT_EQ(f.item_bias, oracle.item_bias) << "P=" << parts;
      mf_model m(f, cfg.min_rating, cfg.max_rating);
      EXPECT_EQ(rmse_of(m), oracle_rmse) << "P=" << parts;
      // The stats' training RMSE is the core's trace of the sweep before
      // (sampled sweeps 3..12 read the state after sweeps 2..11).
      ASSERT_EQ(run.train_rmse.size(), 10u);
      for (std::size_t t = 0; t < run.train_rmse.size(); ++t)
        EXPECT_EQ(run.train_rmse[t], trace[t + 1]) << "P=" << parts << " t=" << t;
      std::printf("mf-gibbs P=%u grouped=%d: test RMSE %.6f (core %.6f)\n", parts,
                  grouped ? 1 : 0, rmse_of(m), oracle_rmse);
    }
  }
}

TEST(dist_als, mf_gibbs_refuses_missing_or_stale_priors_and_stats) {
  auto d = hand_data();
  auto stores = make_stores(d, 3);
  std::mt19937_64 rng(1);
  als_globals g = globals_of(stores, rng);
  mf_config cfg;
  cfg.factors = 2;
  cfg.iterations = 4;
  cfg.burn_in = 1;
  std::vector<std::unique_ptr<mf_partition>> parts;
  for (const auto& s : stores)
    parts.push_back(std::make_unique<mf_partition>(s, cfg, g));
  // Stats before the item blocks are in.
  EXPECT_EQ(parts[0]->make_gibbs_stats().err().code, errc::bad_message);
  for (auto& p : parts)
    for (auto& b : p->make_blocks(als_side::items))
      ASSERT_TRUE(parts[b.to]->receive(b).ok());
  std::vector<gibbs_stats> st;
  for (auto& p : parts)
    st.push_back(*p->make_gibbs_stats());
  // A missing partition, a duplicate, a stale version, a wrong width.
  EXPECT_FALSE(draw_gibbs_priors({st[0], st[1]}, 3, cfg, 1).ok());
  EXPECT_FALSE(draw_gibbs_priors({st[0], st[1], st[1]}, 3, cfg, 1).ok());
  EXPECT_EQ(draw_gibbs_priors(st, 3, cfg, 2).err().code, errc::bad_message);
  auto narrow = st;
  narrow[1].users.sum.pop_back();
  EXPECT_EQ(draw_gibbs_priors(narrow, 3, cfg, 1).err().code, errc::bad_message);
  auto priors = draw_gibbs_priors(st, 3, cfg, 1);
  ASSERT_TRUE(priors.ok()) << priors.err().message;
  EXPECT_GT(priors->users.alpha, 0.0);
  // A sampled sweep's user solve without priors, or with another sweep's.
  EXPECT_EQ(parts[0]->solve(als_side::users).err().code, errc::bad_message);
  auto stale = *priors;
  stale.sweep = 2;
  EXPECT_EQ(parts[0]->solve(als_side::users, &stale).err().code, errc::bad_message);
  // Priors of the right width but values no row solve can take (a node
  // must refuse them, never abort): alpha <= 0, Lambda not positive definite.
  auto bad_alpha = *priors;
  bad_alpha.items.alpha = -1.0;
  EXPECT_EQ(parts[0]->solve(als_side::users, &bad_alpha).err().code, errc::bad_message);
  auto bad_lambda = *priors;
  bad_lambda.users.lambda(0, 0) = -5.0;
  EXPECT_EQ(parts[0]->solve(als_side::users, &bad_lambda).err().code, errc::bad_message);
  // A stats message with a negative squared error (garbled) is refused.
  auto garbled = st;
  garbled[2].sse = exact_sum{};
  garbled[2].sse.add(-1e6);
  EXPECT_EQ(draw_gibbs_priors(garbled, 3, cfg, 1).err().code, errc::bad_message);
  // Nothing changed: the right priors still solve.
  EXPECT_TRUE(parts[0]->solve(als_side::users, &*priors).ok());
}

} // namespace
} // namespace shardrec::dist
