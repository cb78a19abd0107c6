// Test fixture support: starts N shardrec-node processes on 127.0.0.1 with
// free ports (the first creates the cluster, the others join it), and stops
// and reaps them when destroyed, so a failing test never leaves nodes behind.
#pragma once

#include <string>
#include <vector>

#include <sys/types.h>

namespace shardrec::testing {

class local_cluster {
public:
  // Starts `nodes` nodes with `partitions` partitions. Throws std::runtime_error
  // (with the node's log) if a node does not come up within a few seconds.
  local_cluster(int nodes, int partitions);
  ~local_cluster();
  local_cluster(const local_cluster&) = delete;
  local_cluster& operator=(const local_cluster&) = delete;

  // "127.0.0.1:PORT" of node k (0 = the first node).
  std::string address(int k = 0) const;
  int port(int k) const { return ports_[static_cast<std::size_t>(k)]; }
  // Kills node k at once (SIGKILL), as a crash would.
  void kill_node(int k);
  // Freezes node k (SIGSTOP): it keeps its connections but never answers.
  void freeze_node(int k);

  // Runs the shardrec CLI with `args`; returns its exit code, stdout in *out.
  int cli(const std::string& args, std::string* out = nullptr) const;
  // Everything the CLI and the nodes wrote on stderr so far (for failures).
  std::string logs() const;

private:
  std::string dir_;
  std::vector<pid_t> pids_;
  std::vector<int> ports_;
};

} // namespace shardrec::testing
