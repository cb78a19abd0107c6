// Multi-process tests: real shardrec-node processes on 127.0.0.1, driven by
// the shardrec CLI and by a raw CAF peer. Each test starts its own cluster and
// stops it when it ends.
#include <fstream>
#include <gtest/gtest.h>
#include <optional>
#include <sys/wait.h>
#include <thread>
#include <tuple>

#include <chrono>
#include <cmath>
#include <set>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include "actors/codec.hpp"
#include "actors/interfaces.hpp"
#include "core/algorithms.hpp"
#include "core/interactions.hpp"
#include "core/knn.hpp"
#include "core/loaders.hpp"
#include "core/partition.hpp"
#include "etcd/client.hpp"
#include "tests/cluster/cluster_support.hpp"
#include "tests/cluster/local_cluster.hpp"
#include "tests/data_dir.hpp"

namespace shardrec::testing {
namespace {

class ClusterShapes : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(ClusterShapes, LoadsEveryEventAtItsUserAndItemPartition) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  auto [nodes, partitions] = GetParam();
  local_cluster c(nodes, partitions);
  std::string out;
  ASSERT_EQ(c.cli("--cluster " + c.address(nodes - 1) + " load " + data
                      + "/ml-100k/u1.base --format movielens --quiet",
                  &out),
            0)
      << out;
  EXPECT_NE(out.find("80000 accepted, 0 rejected"), std::string::npos) << out;
  for (int k = 0; k < nodes; ++k) {
    auto s = status_of(c, k);
    EXPECT_EQ(s["nodes"].size(), static_cast<std::size_t>(nodes));
    EXPECT_EQ(s["partitions"], partitions);
    EXPECT_EQ(s["users"], 943);
    EXPECT_EQ(s["items"], 1650);
    EXPECT_EQ(s["events"], 80000);
    EXPECT_TRUE(s["missing_partitions"].empty());
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ClusterShapes,
                         ::testing::Values(std::make_pair(1, 1), std::make_pair(2, 7),
                                           std::make_pair(3, 64)));

TEST(Cluster, MalformedFramesGetErrorsAndTheNodeKeepsAnswering) {
  local_cluster c(2, 7);
  peer p(c.port(1));
  EXPECT_NE(p.ingest(actors::frame{}), "");
  EXPECT_NE(p.ingest(actors::frame{{1, 2, 3, 4, 5}}), "");
  actors::event_batch b;
  dist::raw_event e;
  e.user = "u";
  e.item = "i";
  b.events.assign(50, e);
  auto good = actors::encode(b);
  actors::frame cut{
      std::vector<std::uint8_t>(good.bytes.begin(), good.bytes.begin() + 64)};
  EXPECT_NE(p.ingest(cut), "");
  actors::frame garbage{std::vector<std::uint8_t>(4096)};
  for (std::size_t k = 0; k < garbage.bytes.size(); ++k)
    garbage.bytes[k] = static_cast<std::uint8_t>(k * 131 + 7);
  EXPECT_NE(p.ingest(garbage), "");
  // A valid header, then a segment table that claims far more data than
  // the frame holds.
  actors::frame liar{std::vector<std::uint8_t>(24, 0)};
  std::copy(good.bytes.begin(), good.bytes.begin() + 8, liar.bytes.begin());
  liar.bytes[12] = 0xff;
  liar.bytes[13] = 0xff;
  liar.bytes[14] = 0xff;
  liar.bytes[15] = 0x0f;
  EXPECT_NE(p.ingest(liar), "");
  // A frame of another protocol major version.
  auto future = good;
  future.bytes[2] = static_cast<std::uint8_t>(actors::protocol_major + 1);
  auto refused = p.ingest(future);
  EXPECT_NE(refused.find("protocol version"), std::string::npos) << refused;
  // The node still answers and still accepts a valid batch.
  EXPECT_EQ(p.ingest(good), "");
  auto s = status_of(c, 0);
  EXPECT_EQ(s["events"], 50);
  EXPECT_EQ(s["nodes"].size(), 2u);
}

TEST(Cluster, RejectsInvalidEventsButStoresTheRest) {
  local_cluster c(1, 3);
  peer p(c.port(0));
  actors::event_batch b;
  dist::raw_event e;
  e.user = "u1";
  e.item = "i1";
  b.events.push_back(e);
  e.user = "";
  b.events.push_back(e);
  e.user = "u2";
  e.value = std::numeric_limits<float>::infinity();
  b.events.push_back(e);
  EXPECT_EQ(p.ingest(actors::encode(b)), "");
  auto s = status_of(c, 0);
  EXPECT_EQ(s["events"], 1);
}

} // namespace
} // namespace shardrec::testing

namespace shardrec::testing {
namespace {

// `shardrec eval --local` on the same data with the cluster's settings (the
// hybrid blend, MF by ALS), computed once.
// `shardrec eval --local` on ML-100K u1 with `extra` arguments, as JSON.
nlohmann::json eval_local_u1(const std::string& extra) {
  std::string cmd = std::string(SHARDREC_CLI_BIN) + " eval --local --train " + data
                    + "/ml-100k/u1.base --test " + data + "/ml-100k/u1.test " + extra
                    + " --json 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    out.append(buf, n);
  pclose(p);
  return nlohmann::json::parse(out);
}

const nlohmann::json& local_reference() {
  static nlohmann::json ref = eval_local_u1("--algo hybrid");
  return ref;
}

// `shardrec eval --json` of the cluster against `eval --local`'s figures.
void expect_eval_like_core(const nlohmann::json& got) {
  const auto& ref = local_reference();
  for (const char* key :
       {"rmse", "mae", "precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k"}) {
    ASSERT_TRUE(got.contains(key)) << key << " missing: " << got.dump();
    EXPECT_NEAR(got[key].get<double>(), ref[key].get<double>(), 1e-3) << key;
  }
  EXPECT_EQ(got["ranking_users"], ref["ranking_users"]);
  EXPECT_EQ(got["partial_answers"], 0);
}

// The core's item-item neighbour lists for the cluster's ranking kNN
// (cosine on the binarized matrix, 40 neighbours), by external id.
struct core_neighbors {
  core::dataset ds;
  core::neighbor_lists lists;
};

const core_neighbors& core_reference_neighbors() {
  static core_neighbors ref = [] {
    core_neighbors r;
    auto rep =
        core::load_events(data + "/ml-100k/u1.base", core::data_format::movielens, r.ds);
    if (!rep)
      throw std::runtime_error(rep.err().message);
    auto m = core::interaction_matrix::build(r.ds.users.size(), r.ds.items.size(),
                                             r.ds.events, core::merge_policy::last)
                 .binarized();
    core::knn_config cfg;
    cfg.similarity = core::similarity_kind::cosine;
    r.lists = core::item_neighbors(m, cfg);
    return r;
  }();
  return ref;
}

// Compares `shardrec similar` with the core list: the same similarities rank
// by rank, and the same items wherever no tie makes the order arbitrary.
void expect_same_neighbors(const local_cluster& c, const std::string& item) {
  const auto& ref = core_reference_neighbors();
  auto idx = ref.ds.items.find(item);
  ASSERT_TRUE(idx.has_value());
  const auto& want = ref.lists[*idx];
  auto got =
      run_json(c, "--cluster " + c.address(0) + " similar " + item + " -n 40 --json");
  const auto& list = got["neighbors"];
  ASSERT_EQ(list.size(), want.size()) << item;
  for (std::size_t r = 0; r < want.size(); ++r) {
    auto sim = list[r]["similarity"].get<float>();
    EXPECT_NEAR(sim, want[r].similarity, 1e-6) << item << " rank " << r;
    bool tied = (r > 0 && want[r - 1].similarity == want[r].similarity)
                || (r + 1 < want.size() && want[r + 1].similarity == want[r].similarity);
    if (!tied) {
      EXPECT_EQ(list[r]["item"].get<std::string>(), ref.ds.items.external(want[r].id))
          << item << " rank " << r;
    }
  }
}

class ClusterEquality : public ::testing::TestWithParam<std::pair<int, int>> {};

// The cluster's trained hybrid answers like the single-process core: the
// same RMSE and top-10 metrics on ML-100K u1 as `shardrec eval --local`.
TEST_P(ClusterEquality, EvalMatchesTheLocalCore) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u1.test", "ml-100k/u.item");
  auto [nodes, partitions] = GetParam();
  local_cluster c(nodes, partitions);
  auto where = "--cluster " + c.address(nodes - 1) + " ";
  ASSERT_EQ(c.cli(where + "load " + data + "/ml-100k/u1.base --items " + data
                  + "/ml-100k/u.item --quiet"),
            0);
  // The cluster tunes the blend as `eval --local` does, on the same events:
  // the same choice and the same validation figures.
  auto trained = run_json(c, where + "train --json");
  ASSERT_TRUE(trained.contains("tuning")) << trained.dump();
  const auto& want_tuning = local_reference()["tuning"];
  const auto& got_tuning = trained["tuning"];
  for (const char* key : {"weights", "validation", "default_weights"})
    EXPECT_EQ(got_tuning[key], want_tuning[key]) << key;
  for (const char* key : {"sample_users", "validation_users", "items", "blends_tried"})
    EXPECT_EQ(got_tuning[key], want_tuning[key]) << key;
  for (const char* key : {"ials_alpha", "ials_reg", "ease_lambda", "knn_neighbors"})
    EXPECT_EQ(got_tuning[key].get<double>(), want_tuning[key].get<double>()) << key;
  for (const char* part : {"defaults", "chosen"})
    EXPECT_NEAR(got_tuning[part]["ndcg_at_k"].get<double>(),
                want_tuning[part]["ndcg_at_k"].get<double>(), 1e-9)
        << part;
  ASSERT_EQ(got_tuning["variants"].size(), want_tuning["variants"].size());
  double variant_seconds = 0.0;
  for (std::size_t v = 0; v < want_tuning["variants"].size(); ++v) {
    EXPECT_NEAR(got_tuning["variants"][v]["ndcg_at_k"].get<double>(),
                want_tuning["variants"][v]["ndcg_at_k"].get<double>(), 1e-9)
        << want_tuning["variants"][v]["what"];
    // Each variant's time crosses the wire: positive, within the whole.
    EXPECT_GT(got_tuning["variants"][v]["seconds"].get<double>(), 0.0);
    variant_seconds += got_tuning["variants"][v]["seconds"].get<double>();
  }
  EXPECT_LE(variant_seconds, got_tuning["seconds"].get<double>());
  EXPECT_EQ(trained["blend"], want_tuning["weights"]);
  // A repeat query takes the one-round path (cached blend statistics) and
  // answers exactly as the first query (local round, certified) did.
  // Explanations come from the coordinator: content ones (made there from
  // the user's evidence) as well as item-kNN ones (from the partitions).
  std::set<std::string> sources;
  for (const char* user : {"1", "13", "405"}) {
    auto first =
        run_json(c, "--cluster " + c.address(0) + " recommend " + user + " --json");
    auto again = run_json(c, "--cluster " + c.address(nodes - 1) + " recommend " + user
                                 + " --json");
    EXPECT_EQ(first.dump(), again.dump()) << user;
    for (const auto& item : first["items"]) {
      const auto from = item["because_from"].get<std::string>();
      EXPECT_EQ(item["because"].empty(), from.empty()) << item.dump();
      if (!from.empty())
        sources.insert(from);
    }
  }
  EXPECT_EQ(sources, (std::set<std::string>{"content", "itemknn"}));
  auto got = run_json(c, "--cluster " + c.address(0) + " eval --test " + data
                             + "/ml-100k/u1.test --json");
  expect_eval_like_core(got);
  // MF predictions (the Gibbs sampler's posterior means, the local default)
  // within 1e-4 of the core's, pair by pair.
  {
    const auto& ref_ds = core_reference_neighbors().ds;
    static const std::shared_ptr<const core::model> mf = [&] {
      core::algo_options opt;
      opt.algo = "mf";
      auto m = core::interaction_matrix::build(ref_ds.users.size(), ref_ds.items.size(),
                                               ref_ds.events, core::merge_policy::last);
      return *core::train_algorithm(opt, ref_ds, m);
    }();
    std::vector<std::string> users, items;
    for (int k = 0; k < 300; ++k) {
      users.push_back(std::to_string(1 + (k * 37) % 943));
      items.push_back(std::to_string(1 + (k * 101) % 1682));
    }
    peer p(c.port(0));
    caf::scoped_actor self{*p.sys};
    std::vector<float> preds;
    self->request(p.coordinator, std::chrono::seconds(10), actors::predict_atom::value,
                  users, items)
        .receive([&](const std::vector<float>& v) { preds = v; },
                 [&](caf::error& e) { FAIL() << p.sys->render(e); });
    ASSERT_EQ(preds.size(), users.size());
    for (std::size_t k = 0; k < users.size(); ++k) {
      auto u = ref_ds.users.find(users[k]);
      auto i = ref_ds.items.find(items[k]);
      auto want = mf->predict(u ? *u : core::index_t(ref_ds.users.size()),
                              i ? *i : core::index_t(ref_ds.items.size()));
      EXPECT_NEAR(preds[k], want, 1e-4) << users[k] << " " << items[k];
    }
  }
  // Top-k neighbour lists equal the core's.
  for (int item = 1; item <= 1600; item += 80)
    expect_same_neighbors(c, std::to_string(item));
}

// EASE in the blend (trained E1..E5 across the partitions) answers as the
// core's hybrid with the same weights: the same top-10 metrics, and
// explanations from EASE (the user's items with the largest weights).
TEST_P(ClusterEquality, EaseInTheBlendMatchesTheLocalCore) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u1.test", "ml-100k/u.item");
  auto [nodes, partitions] = GetParam();
  local_cluster c(nodes, partitions);
  const std::string weights = "ease=0.6,implicit-als=0.3,itemknn=0.1";
  auto where = "--cluster " + c.address(nodes - 1) + " ";
  ASSERT_EQ(c.cli(where + "load " + data + "/ml-100k/u1.base --items " + data
                  + "/ml-100k/u.item --quiet"),
            0);
  auto trained = run_json(c, where + "train --weights " + weights + " --json");
  EXPECT_EQ(trained["blend"], weights) << trained.dump();
  EXPECT_FALSE(trained.contains("tuning"));
  EXPECT_TRUE(trained["phases"].contains("ease")) << trained.dump();
  std::set<std::string> sources;
  for (const char* user : {"1", "13", "405", "600"}) {
    auto got =
        run_json(c, "--cluster " + c.address(0) + " recommend " + user + " --json");
    for (const auto& item : got["items"])
      sources.insert(item["because_from"].get<std::string>());
  }
  EXPECT_TRUE(sources.count("ease")) << "no EASE explanation";
  static const nlohmann::json ref = eval_local_u1("--weights " + weights);
  auto got = run_json(c, "--cluster " + c.address(0) + " eval --test " + data
                             + "/ml-100k/u1.test --json");
  for (const char* key : {"precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k"})
    EXPECT_NEAR(got[key].get<double>(), ref[key].get<double>(), 1e-3) << key;
  EXPECT_EQ(got["ranking_users"], ref["ranking_users"]);
  EXPECT_EQ(got["partial_answers"], 0);
}

// Issue 13: the cluster's MF is the local default (the Gibbs sampler) and
// its EASE the core's, at every shape: `train --algo mf` and `--algo ease`
// give `eval --local`'s figures (the factors are equal bit for bit:
// dist.als; here through the shards, the trainer and the wire).
class ClusterAlgorithms : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(ClusterAlgorithms, GibbsMfAndEaseEqualTheLocalCore) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u1.test");
  auto [nodes, partitions] = GetParam();
  local_cluster c(nodes, partitions);
  auto where = "--cluster " + c.address(nodes - 1) + " ";
  ASSERT_EQ(c.cli(where + "load " + data + "/ml-100k/u1.base --quiet"), 0);
  const auto eval = where + "eval --test " + data + "/ml-100k/u1.test --json";
  // 30 sweeps, 20 of them burn-in: the sampler's path at a third of the
  // default's cost.
  auto mf = run_json(c, where + "train --algo mf --iterations 30 --json");
  EXPECT_TRUE(mf["phases"].contains("mf")) << mf.dump();
  auto got = run_json(c, eval);
  static const nlohmann::json want_mf = eval_local_u1("--algo mf --iterations 30");
  for (const char* key : {"rmse", "mae"})
    EXPECT_NEAR(got[key].get<double>(), want_mf[key].get<double>(), 1e-9) << key;
  EXPECT_LT(got["rmse"].get<double>(), 0.93);
  auto ease = run_json(c, where + "train --algo ease --json");
  EXPECT_TRUE(ease["phases"].contains("ease")) << ease.dump();
  got = run_json(c, eval);
  static const nlohmann::json want_ease = eval_local_u1("--algo ease");
  for (const char* key : {"precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k"})
    EXPECT_NEAR(got[key].get<double>(), want_ease[key].get<double>(), 1e-9) << key;
  EXPECT_EQ(got["ranking_users"], want_ease["ranking_users"]);
  EXPECT_EQ(got["partial_answers"], 0);
}

INSTANTIATE_TEST_SUITE_P(NodesAndPartitions, ClusterAlgorithms,
                         ::testing::Combine(::testing::Values(1, 2, 3),
                                            ::testing::Values(1, 7, 64)),
                         [](const auto& info) {
                           return std::to_string(std::get<0>(info.param)) + "nodes_"
                                  + std::to_string(std::get<1>(info.param))
                                  + "partitions";
                         });

// A cluster grown by a join that moved partitions holding data (etcd:
// 2 nodes loaded, a third joins and takes its share) trains and answers as
// the single-process core: the same tuning choice, metrics and neighbours.
TEST(ClusterMoves, EvalMatchesTheLocalCoreAfterAJoinMovedPartitions) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base", "ml-100k/u1.test", "ml-100k/u.item");
  local_cluster_options opt;
  opt.etcd = true;
  local_cluster c(2, 7, opt);
  ASSERT_EQ(c.cli("--cluster " + c.address(0) + " load " + data
                  + "/ml-100k/u1.base --items " + data + "/ml-100k/u.item --quiet"),
            0);
  const int joined = c.add_node();
  // Wait until the joined node owns its share (7 over 3: 3, 2, 2) and
  // every node serves the flipped map.
  // (Training uses the entry node's view: every node must serve the
  // flipped map before it starts, see README on moves.)
  auto etcd = etcd::client(*etcd::parse_endpoints(c.etcd().endpoint()));
  bool moved = false;
  for (int attempt = 0; attempt < 300 && !moved; ++attempt) {
    auto kv = etcd.get("/shardrec/map");
    nlohmann::json map;
    if (kv.ok() && kv->has_value())
      map = nlohmann::json::parse((*kv)->value);
    moved = map.is_object() && map["moving"].empty();
    for (int via = 0; via <= joined; ++via) {
      auto s = status_of(c, via);
      int owned = 0;
      for (const auto& n : s["nodes"])
        if (n["id"] == joined)
          owned = n["partitions"].get<int>();
      moved = moved && owned == 2 && s["missing_partitions"].empty()
              && s["map_version"] == map["version"];
    }
    if (!moved)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(moved) << c.logs();
  const auto where = "--cluster " + c.address(joined) + " ";
  auto trained = run_json(c, where + "train --json");
  const auto& ref = local_reference();
  EXPECT_EQ(trained["blend"], ref["tuning"]["weights"]);
  EXPECT_EQ(trained["tuning"]["validation"], ref["tuning"]["validation"]);
  auto got = run_json(c, where + "eval --test " + data + "/ml-100k/u1.test --json");
  expect_eval_like_core(got);
  for (int item = 1; item <= 1600; item += 160)
    expect_same_neighbors(c, std::to_string(item));
}

INSTANTIATE_TEST_SUITE_P(NodesAndPartitions, ClusterEquality,
                         ::testing::Values(std::make_pair(1, 1), std::make_pair(1, 7),
                                           std::make_pair(2, 7), std::make_pair(3, 7),
                                           std::make_pair(2, 64), std::make_pair(3, 64)),
                         [](const auto& info) {
                           return std::to_string(info.param.first) + "nodes_"
                                  + std::to_string(info.param.second) + "partitions";
                         });

// A query to a cluster with a dead or frozen node ends, flagged partial,
// naming the partitions it could not reach.
TEST(Cluster, QueriesSurviveADeadAndAFrozenNode) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  local_cluster c(3, 7);
  auto where = "--cluster " + c.address(0) + " ";
  ASSERT_EQ(c.cli(where + "load " + data + "/ml-100k/u1.base --quiet"), 0);
  ASSERT_EQ(c.cli(where + "train --algo implicit-als --iterations 3"), 0);
  auto status = run_json(c, where + "partitions --json");
  std::vector<int> on_node(7);
  for (const auto& p : status["partition_status"])
    on_node[p["partition"].get<int>()] = p["node"].get<int>();
  // A user whose partition lives on node 0.
  std::string user;
  for (int u = 1; u <= 943 && user.empty(); ++u)
    if (on_node[core::partition_of(std::to_string(u), 7)] == 0)
      user = std::to_string(u);
  ASSERT_FALSE(user.empty());
  auto full = run_json(c, where + "recommend " + user + " --json");
  EXPECT_FALSE(full["partial"].get<bool>());
  ASSERT_EQ(full["items"].size(), 10u);

  for (int round = 0; round < 2; ++round) {
    int victim = round == 0 ? 2 : 1;
    if (round == 0)
      c.kill_node(victim);
    else
      c.freeze_node(victim);
    // How soon it ends is not asserted (a loaded machine would make that
    // flaky; timings live in bench/): a hang runs into this scenario's
    // ctest TIMEOUT.
    auto r = run_json(c, where + "recommend " + user + " --json");
    EXPECT_TRUE(r["partial"].get<bool>()) << r.dump();
    std::vector<int> expected;
    for (int p = 0; p < 7; ++p)
      if (on_node[p] == 2 || (round == 1 && on_node[p] == 1))
        expected.push_back(p);
    EXPECT_EQ(r["missing_partitions"].get<std::vector<int>>(), expected) << r.dump();
    EXPECT_FALSE(r["items"].empty()); // the partitions still alive answered
  }
}

// Joining moves no data yet: a node that tries to join a cluster holding
// data is refused with a message that says why and what to do, exits, and
// the cluster keeps every event and answers as before.
TEST(Cluster, JoinToAClusterHoldingDataIsRefusedAndTheDataKept) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  local_cluster c(2, 8);
  auto where = "--cluster " + c.address(0) + " ";
  std::string out;
  ASSERT_EQ(c.cli(where + "load " + data + "/ml-100k/u1.base --quiet", &out), 0) << out;
  ASSERT_EQ(c.cli(where + "train --algo popular"), 0) << c.logs();
  auto before = run_json(c, where + "recommend 1 --json");
  ASSERT_EQ(before["items"].size(), 10u);

  child_processes joiner;
  const std::string log = c.dir() + "/joiner.log";
  joiner.spawn({SHARDREC_NODE_BIN, "--host", "127.0.0.1", "--port", "0", "--join",
                c.address(0), "--data-dir", c.dir() + "/joiner"},
               log);
  int status = 0;
  for (int k = 0; k < 1000 && !joiner.exited(0, &status); ++k)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(joiner.pid(0), 0) << "the joining node did not exit";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("refused"), std::string::npos) << text;
  EXPECT_NE(text.find("the cluster holds data (80000 events"), std::string::npos) << text;
  EXPECT_NE(text.find("Start every node before loading"), std::string::npos) << text;

  for (int node = 0; node < 2; ++node) {
    auto s = status_of(c, node);
    EXPECT_EQ(s["nodes"].size(), 2u);
    EXPECT_EQ(s["events"], 80000);
    EXPECT_EQ(s["users"], 943);
    EXPECT_TRUE(s["missing_partitions"].empty());
  }
  auto after = run_json(c, where + "recommend 1 --json");
  EXPECT_FALSE(after["partial"].get<bool>());
  EXPECT_EQ(after["items"], before["items"]);
}

// Users and items that arrive after training have no model rows yet: rating
// predictions for them use what exists (the mean and the known side's bias)
// and never read past the trained rows.
TEST(Cluster, PredictionsForEntitiesNewerThanTheModelStayInBounds) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  local_cluster c(1, 3);
  auto where = "--cluster " + c.address(0) + " ";
  ASSERT_NO_FATAL_FAILURE(load_u1_and_train(c, "--algo mf --iterations 2"));
  const std::string extra = c.dir() + "/extra.data";
  std::ofstream(extra) << "5000\t1\t4\t1\n1\t5000\t3\t1\n5001\t5001\t5\t1\n";
  ASSERT_EQ(c.cli(where + "load " + extra + " --format movielens --quiet"), 0)
      << c.logs();
  auto s = status_of(c, 0);
  EXPECT_EQ(s["events"], 80003);
  std::string out;
  ASSERT_EQ(c.cli(where + "eval --test " + extra + " --format movielens --json", &out), 0)
      << out << c.logs();
  auto r = nlohmann::json::parse(out.substr(out.find('{')));
  ASSERT_TRUE(r.contains("rmse")) << out;
  EXPECT_TRUE(std::isfinite(r["rmse"].get<double>())) << out;
  // The node is still there and answers.
  EXPECT_EQ(status_of(c, 0)["events"], 80003);
}

// The scenario of the live-partitions issue: after training, events with new
// users and a new item arrive; every user's recommendations still work (new
// users are cold for the models, the others keep theirs).
TEST(Cluster, EventsAfterTrainingNeverBreakRecommendations) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  local_cluster c(2, 8);
  auto where = "--cluster " + c.address(0) + " ";
  ASSERT_NO_FATAL_FAILURE(load_u1_and_train(c, ""));
  peer p(c.port(1));
  std::string err;
  auto before = p.recommend("1", &err);
  ASSERT_TRUE(before) << err;
  // Six new users, one of them on a new item, and a known user on it too.
  const std::string extra = c.dir() + "/extra.data";
  {
    std::ofstream out(extra);
    for (int u = 0; u < 6; ++u)
      out << "new" << u << "\t" << (u == 0 ? "new-item" : std::to_string(u + 1))
          << "\t4\t1\n";
    out << "1\tnew-item\t5\t1\n";
  }
  ASSERT_EQ(c.cli(where + "load " + extra + " --format movielens --quiet"), 0)
      << c.logs();
  EXPECT_EQ(status_of(c, 0)["events"], 80007);
  std::vector<std::string> users;
  for (int u = 1; u <= 943; ++u)
    users.push_back(std::to_string(u));
  for (int u = 0; u < 6; ++u)
    users.push_back("new" + std::to_string(u));
  std::size_t answered = 0;
  for (const auto& user : users) {
    auto r = p.recommend(user, &err);
    ASSERT_TRUE(r) << user << ": " << err;
    EXPECT_FALSE(r->partial) << user;
    EXPECT_EQ(r->items.size(), 10u) << user;
    answered += r->items.size() == 10;
  }
  EXPECT_EQ(answered, users.size());
  // User 1 keeps the model's answer: the only item it touched since is one
  // no scorer knows until the next training.
  auto after = p.recommend("1", &err);
  ASSERT_TRUE(after) << err;
  ASSERT_EQ(after->items.size(), before->items.size());
  for (std::size_t k = 0; k < after->items.size(); ++k)
    EXPECT_EQ(after->items[k].item, before->items[k].item);
}

// One training run at a time: a second `train` while one runs is refused
// with a clear message (or both are, when their steps interleave), nothing
// is left locked, and every run that succeeds publishes the next model
// version, which `status --json` reports as `model_version`.
TEST(Cluster, OneTrainingRunAtATimeAndModelVersionsGrow) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  local_cluster c(2, 7);
  auto where = "--cluster " + c.address(0) + " ";
  ASSERT_EQ(c.cli(where + "load " + data + "/ml-100k/u1.base --quiet"), 0) << c.logs();
  EXPECT_EQ(status_of(c, 0)["model_version"], 0);
  ASSERT_EQ(c.cli(where + "train --algo popular"), 0) << c.logs();
  EXPECT_EQ(status_of(c, 1)["model_version"], 1);

  peer p(c.port(1));
  auto [a, b] = p.train_twice("all");
  const int succeeded = (a.empty() ? 1 : 0) + (b.empty() ? 1 : 0);
  std::printf("[two runs at once] first: %s; second: %s\n",
              a.empty() ? "trained" : a.c_str(), b.empty() ? "trained" : b.c_str());
  EXPECT_LE(succeeded, 1) << "two training runs at once both succeeded";
  for (const auto& err : {a, b}) {
    if (err.empty())
      continue;
    EXPECT_TRUE(err.find("training run is in progress") != std::string::npos
                || err.find("of a training run this partition is not in")
                       != std::string::npos)
        << err;
  }
  // Nothing stays locked: the next run succeeds and publishes the next version.
  std::string out;
  ASSERT_EQ(c.cli(where + "train --algo popular", &out), 0) << out << c.logs();
  for (int node = 0; node < 2; ++node)
    EXPECT_EQ(status_of(c, node)["model_version"], 2 + succeeded);
  auto r = run_json(c, where + "recommend 1 --json");
  EXPECT_EQ(r["items"].size(), 10u);
}

// An event counts at once: the item a user just touched is no longer
// recommended to that user, before any new training (and it is item-kNN
// evidence from then on); other users' answers do not change.
TEST(Cluster, AnEventRemovesTheItemFromThatUsersRecommendationsAtOnce) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  local_cluster c(2, 7);
  auto where = "--cluster " + c.address(0) + " ";
  ASSERT_NO_FATAL_FAILURE(load_u1_and_train(c, ""));
  peer p(c.port(0));
  std::string err;
  auto before = p.recommend("1", &err);
  ASSERT_TRUE(before && !before->items.empty()) << err;
  ASSERT_FALSE(before->partial);
  auto other_before = p.recommend("2", &err);
  ASSERT_TRUE(other_before) << err;
  ASSERT_FALSE(other_before->partial);
  const std::string top = before->items.front().item;
  const std::string extra = c.dir() + "/event.data";
  std::ofstream(extra) << "1\t" << top << "\t5\t1\n";
  ASSERT_EQ(c.cli(where + "load " + extra + " --format movielens --quiet"), 0)
      << c.logs();
  auto after = p.recommend("1", &err);
  ASSERT_TRUE(after) << err;
  EXPECT_EQ(after->items.size(), before->items.size());
  for (const auto& r : after->items)
    EXPECT_NE(r.item, top) << "the item user 1 just rated is still recommended";
  EXPECT_FALSE(after->partial);
  auto other_after = p.recommend("2", &err);
  ASSERT_TRUE(other_after) << err;
  ASSERT_EQ(other_after->items.size(), other_before->items.size());
  for (std::size_t k = 0; k < other_after->items.size(); ++k)
    EXPECT_EQ(other_after->items[k].item, other_before->items[k].item);
}

} // namespace
} // namespace shardrec::testing
