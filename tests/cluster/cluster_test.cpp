// Multi-process tests: real shardrec-node processes on 127.0.0.1, driven by
// the shardrec CLI and by a raw CAF peer. Each test starts its own cluster and
// stops it when it ends.
#include <gtest/gtest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/codec.hpp"
#include "actors/control.hpp"
#include "actors/interfaces.hpp"
#include "tests/cluster/local_cluster.hpp"

namespace shardrec::testing {
namespace {

const std::string data = SHARDREC_DATA_DIR;

nlohmann::json status_of(const local_cluster& c, int node) {
  std::string out;
  EXPECT_EQ(c.cli("--cluster " + c.address(node) + " status --json", &out), 0);
  return nlohmann::json::parse(out);
}

class ClusterShapes : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(ClusterShapes, LoadsEveryEventAtItsUserAndItemPartition) {
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

// A raw peer that speaks to a node's control actor directly.
struct peer {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor control;
  explicit peer(int port) {
    cfg.load<caf::io::middleman>();
    actors::add_message_types(cfg);
    cfg.set("logger.verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    auto h = sys->middleman().remote_actor("127.0.0.1", static_cast<std::uint16_t>(port));
    if (!h)
      throw std::runtime_error("cannot reach node: " + sys->render(h.error()));
    control = *h;
  }
  // Sends an ingest frame; returns "" on success or the error text.
  std::string ingest(const actors::frame& f) {
    caf::scoped_actor self{*sys};
    std::string err = "no reply";
    self->request(control, std::chrono::seconds(10), actors::ingest_atom::value, f)
        .receive([&](const actors::frame&) { err.clear(); },
                 [&](caf::error& e) { err = sys->render(e); });
    return err;
  }
};

TEST(Cluster, MalformedFramesGetErrorsAndTheNodeKeepsAnswering) {
  local_cluster c(2, 7);
  peer p(c.port(1));
  EXPECT_NE(p.ingest(actors::frame{}), "");
  EXPECT_NE(p.ingest(actors::frame{{1, 2, 3, 4, 5}}), "");
  actors::event_batch b;
  core::raw_event e;
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
  actors::frame liar{std::vector<std::uint8_t>(16, 0)};
  liar.bytes[4] = 0xff;
  liar.bytes[5] = 0xff;
  liar.bytes[6] = 0xff;
  liar.bytes[7] = 0x0f;
  EXPECT_NE(p.ingest(liar), "");
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
  core::raw_event e;
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
