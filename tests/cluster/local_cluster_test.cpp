// local_cluster's own promises: whatever happens in a test, every node it
// started is killed and reaped and its folder removed.
#include "tests/cluster/local_cluster.hpp"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace shardrec::testing {
namespace {

// True if no process `pid` exists any more: killed and reaped, not a zombie.
bool gone(pid_t pid) {
  return ::kill(pid, 0) == -1 && errno == ESRCH;
}

TEST(LocalCluster, FailedStartStopsTheStartedNodesAndRemovesItsFolder) {
  temp_dir parent(::testing::TempDir());
  local_cluster_options opt;
  opt.node_bin = SHARDREC_FAKE_NODE;
  opt.parent = parent.path();
  opt.start_timeout = std::chrono::milliseconds(1000);
  // Node 0 comes up, node 1 never does: the constructor throws.
  EXPECT_THROW(local_cluster(3, 1, opt), std::runtime_error);
  std::vector<pid_t> pids;
  std::ifstream in(parent.path() + "/pids");
  for (pid_t pid; in >> pid;)
    pids.push_back(pid);
  ASSERT_EQ(pids.size(), 2u) << "node 2 must never have been started";
  for (pid_t pid : pids)
    EXPECT_TRUE(gone(pid)) << "node process " << pid << " left running";
  for (const auto& entry : std::filesystem::directory_iterator(parent.path()))
    EXPECT_EQ(entry.path().filename(), "pids") << entry.path() << " left behind";
}

TEST(LocalCluster, NodesAreReapedAndTheFolderRemovedWhenATestFails) {
  static pid_t running = 0, frozen = 0;
  static std::string dir;
  EXPECT_FATAL_FAILURE(
      {
        local_cluster c(2, 1);
        running = c.pid(0);
        frozen = c.pid(1);
        dir = c.dir();
        c.freeze_node(1);
        FAIL() << "the test fails here";
      },
      "the test fails here");
  ASSERT_GT(running, 0);
  ASSERT_GT(frozen, 0);
  EXPECT_TRUE(gone(running));
  EXPECT_TRUE(gone(frozen));
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
}

} // namespace
} // namespace shardrec::testing
