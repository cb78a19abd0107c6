// Membership and the partition map in etcd (shardrec-node --etcd): nodes
// register on leases, one is the controller, the map is a key in etcd; a
// killed or frozen node shows as down, the controller role moves, and a
// node that comes back serves its partitions again with every event.
#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "etcd/client.hpp"
#include "tests/cluster/cluster_support.hpp"

namespace shardrec::testing {
namespace {

local_cluster_options with_etcd() {
  local_cluster_options o;
  o.etcd = true;
  o.node_args = {"--etcd-lease", "2"};
  return o;
}

etcd::client etcd_of(const local_cluster& c) {
  return etcd::client(*etcd::parse_endpoints(c.etcd().endpoint()));
}

nlohmann::json nodes_of(const local_cluster& c, int via) {
  return run_json(c, "--cluster " + c.address(via) + " nodes --json")["nodes"];
}

std::string state_of(const nlohmann::json& nodes, int id) {
  for (const auto& n : nodes)
    if (n["id"] == id)
      return n["state"].get<std::string>();
  return "absent";
}

int controller_of(const nlohmann::json& nodes) {
  int found = -1;
  for (const auto& n : nodes)
    if (n["controller"].get<bool>()) {
      EXPECT_EQ(found, -1) << "two controllers: " << nodes.dump();
      found = n["id"].get<int>();
    }
  return found;
}

// Polls `nodes --json` through node `via` until pred holds (or 15 s pass).
template <class Pred>
nlohmann::json wait_nodes(const local_cluster& c, int via, Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  nlohmann::json nodes;
  while (std::chrono::steady_clock::now() < deadline) {
    nodes = nodes_of(c, via);
    if (pred(nodes))
      return nodes;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ADD_FAILURE() << "the nodes never got there: " << nodes.dump() << "\n" << c.logs();
  return nodes;
}

std::vector<std::string> top_items(const local_cluster& c, int via,
                                   const std::string& user, bool* partial) {
  auto r = run_json(c, "--cluster " + c.address(via) + " recommend " + user + " --json");
  *partial = r.value("partial", false);
  std::vector<std::string> items;
  for (const auto& i : r["items"])
    items.push_back(i["item"].get<std::string>());
  return items;
}

TEST(Etcd, NodesRegisterTheControllerAdmitsJoinsAndTheMapIsInEtcd) {
  local_cluster c(3, 8, with_etcd());
  for (int via = 0; via < 3; ++via) {
    // Each node reads etcd every 200 ms: the last node's "serving" reaches
    // the others within a tick or two.
    auto nodes = wait_nodes(c, via, [](const nlohmann::json& n) {
      return std::all_of(n.begin(), n.end(),
                         [](const nlohmann::json& x) { return x["state"] == "serving"; });
    });
    ASSERT_EQ(nodes.size(), 3u) << nodes.dump();
    std::set<int> ids;
    std::vector<int> owned;
    for (const auto& n : nodes) {
      EXPECT_EQ(n["state"], "serving") << n.dump();
      ids.insert(n["id"].get<int>());
      owned.push_back(n["partitions"].get<int>());
    }
    EXPECT_EQ(ids, (std::set<int>{0, 1, 2}));
    EXPECT_EQ(owned, (std::vector<int>{3, 3, 2}));
    // The first node to register made the cluster and is the controller.
    EXPECT_EQ(controller_of(nodes), 0);
  }
  // The map lives in etcd: three admissions (versions 1..3), every
  // partition on a node of the map, as the nodes serve it.
  auto e = etcd_of(c);
  auto map = e.get("/shardrec/map");
  ASSERT_TRUE(map.ok() && map->has_value());
  auto m = nlohmann::json::parse((*map)->value);
  EXPECT_EQ(m["version"], 3);
  EXPECT_EQ(m["partitions"], 8);
  EXPECT_EQ(m["owner"], (nlohmann::json{0, 1, 2, 0, 1, 2, 0, 1}));
  EXPECT_EQ((*map)->version, 3); // written three times, each by a guarded put
  auto status = status_of(c, 2);
  EXPECT_EQ(status["map_version"], 3);
  EXPECT_TRUE(status["missing_partitions"].empty());
  // Each node is registered on a lease of its own.
  auto regs = e.list("/shardrec/nodes/");
  ASSERT_TRUE(regs.ok());
  ASSERT_EQ(regs->size(), 3u);
  std::set<std::int64_t> leases;
  for (const auto& r : *regs)
    leases.insert(r.lease);
  EXPECT_EQ(leases.size(), 3u);
  EXPECT_EQ(leases.count(0), 0u);
}

TEST(Etcd, AKilledControllerIsReplacedItsNodeRejoinsAndNoEventIsLost) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  local_cluster c(3, 8, with_etcd());
  load_u1_and_train(c, "--algo implicit-als");
  const auto before = status_of(c, 1);
  ASSERT_EQ(before["events"], 80000);
  bool partial = true;
  const auto want = top_items(c, 1, "1", &partial);
  ASSERT_FALSE(partial);

  // A join now would lose data: refused, with the reason, and nothing changes.
  EXPECT_THROW(
      {
        try {
          c.add_node();
        } catch (const std::runtime_error& e) {
          EXPECT_NE(
              std::string(e.what()).find("refused the join: the cluster holds data"),
              std::string::npos)
              << e.what();
          throw;
        }
      },
      std::runtime_error);

  const auto killed = std::chrono::steady_clock::now();
  c.kill_node(0);
  auto nodes = wait_nodes(c, 1, [](const nlohmann::json& n) {
    return state_of(n, 0) == "down" && controller_of(n) == 1;
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  EXPECT_LT(seconds, 5.0) << "lease 2 s";
  EXPECT_EQ(state_of(nodes, 1), "serving");
  EXPECT_EQ(state_of(nodes, 2), "serving");
  // Node 0's partitions are unreachable: answers say so.
  top_items(c, 2, "1", &partial);
  EXPECT_TRUE(partial);

  c.restart_node(0);
  nodes = wait_nodes(c, 2, [](const nlohmann::json& n) {
    return state_of(n, 0) == "serving" && controller_of(n) == 1;
  });
  // Every node knows the restarted node's partitions again: complete
  // answers, the same as before, and every event is there.
  for (int via = 0; via < 3; ++via) {
    auto s = status_of(c, via);
    EXPECT_TRUE(s["missing_partitions"].empty()) << via << ": " << s.dump();
    EXPECT_EQ(s["events"], 80000) << via;
    EXPECT_EQ(top_items(c, via, "1", &partial), want) << via;
    EXPECT_FALSE(partial) << via;
  }
}

TEST(Etcd, AFrozenNodeShowsDownAndServesAgainWhenItRuns) {
  SHARDREC_SKIP_WITHOUT_DATA("ml-100k/u1.base");
  local_cluster c(3, 8, with_etcd());
  load_u1_and_train(c, "--algo popular");
  c.freeze_node(2);
  wait_nodes(c, 0, [](const nlohmann::json& n) {
    return state_of(n, 2) == "down" && controller_of(n) == 0;
  });
  c.thaw_node(2);
  // Its lease expired while frozen: it registers again and the others take
  // its handles anew.
  wait_nodes(c, 0, [](const nlohmann::json& n) { return state_of(n, 2) == "serving"; });
  bool complete = false;
  for (int attempt = 0; attempt < 50 && !complete; ++attempt) {
    auto s = status_of(c, 0);
    complete = s["missing_partitions"].empty() && s["events"] == 80000;
    if (!complete)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(complete) << c.logs();
  EXPECT_EQ(status_of(c, 2)["events"], 80000);
}

} // namespace
} // namespace shardrec::testing
