// Test fixture support: starts N shardrec-node processes on 127.0.0.1 with
// free ports (the first creates the cluster, the others join it), and stops
// and reaps them when destroyed, so a failing test never leaves nodes behind.
//
// Ownership: a local_cluster owns one fresh folder (the nodes' data, port
// files and logs, the CLI's log) and every process it started, each through
// a member whose destructor releases it. A constructor that throws half-way
// (a node that does not come up) therefore still kills and reaps the nodes
// it already started, then removes the folder. Nodes also die with the test
// process (PR_SET_PDEATHSIG), so even a test that crashes leaves no node
// running; only its folder stays behind then.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

namespace shardrec::testing {

// A fresh folder made by mkdtemp under `parent`; removed with everything in
// it on destruction. Throws std::runtime_error if it cannot be made.
class temp_dir {
public:
  explicit temp_dir(const std::string& parent = "/tmp");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const { return path_; }

private:
  std::string path_;
};

// Child processes started by a test. On destruction every one still running
// gets SIGCONT and SIGTERM, then SIGKILL if it has not exited within 2 s,
// and is reaped: no zombie, no orphan.
class child_processes {
public:
  child_processes() = default;
  ~child_processes();
  child_processes(const child_processes&) = delete;
  child_processes& operator=(const child_processes&) = delete;

  // Starts argv[0] (a path, not searched in PATH) with `argv`, stdout and
  // stderr appended to `log`, SIGKILLed by the kernel if the calling thread
  // exits first. Returns its index. Throws std::runtime_error if fork fails;
  // a failed exec shows as the child exiting with 127.
  std::size_t spawn(const std::vector<std::string>& argv, const std::string& log);
  // 0 once the child has been reaped.
  pid_t pid(std::size_t k) const { return pids_[k]; }
  // True (and *status set) if child k has exited; reaps it.
  bool exited(std::size_t k, int* status);
  // SIGKILLs child k and reaps it.
  void kill_now(std::size_t k);
  // Sends `sig` to child k if it has not been reaped.
  void signal(std::size_t k, int sig);

private:
  std::vector<pid_t> pids_;
};

// A free TCP port on 127.0.0.1 (bound and released; a race with another
// process is possible but harmless in tests, which fail with the log then).
int free_port();

// One etcd server (Debian's /usr/bin/etcd, or $SHARDREC_ETCD) on free
// 127.0.0.1 ports, its data folder `dir`/etcd; it is stopped and reaped on
// destruction. Throws std::runtime_error (with etcd's log) if it does not
// answer within 15 s.
class etcd_server {
public:
  explicit etcd_server(const std::string& dir);
  ~etcd_server() = default;
  etcd_server(const etcd_server&) = delete;
  etcd_server& operator=(const etcd_server&) = delete;

  // "http://127.0.0.1:PORT", what nodes get as --etcd.
  const std::string& endpoint() const { return endpoint_; }
  int client_port() const { return client_port_; }
  std::string log() const;

private:
  std::string dir_;
  std::string endpoint_;
  int client_port_ = 0;
  child_processes proc_;
};

struct local_cluster_options {
  // Start an etcd first and give every node --etcd (no --join).
  bool etcd = false;
  // The node executable; empty = the shardrec-node of this build.
  std::string node_bin;
  // Where the cluster's folder is made.
  std::string parent = "/tmp";
  // How long each node may take to write its port file.
  std::chrono::milliseconds start_timeout{10000};
  // More options for every node (also when restarted).
  std::vector<std::string> node_args;
};

class local_cluster {
public:
  // Starts `nodes` nodes with `partitions` partitions. Throws std::runtime_error
  // (with the node's log) if a node exits or does not come up within
  // options.start_timeout; the nodes already started are stopped first. With
  // etcd, returns once the map in etcd lists every node, no partition is
  // moving and each node owns one (the joins' copies are done).
  local_cluster(int nodes, int partitions, const local_cluster_options& options = {});
  ~local_cluster() = default;
  local_cluster(const local_cluster&) = delete;
  local_cluster& operator=(const local_cluster&) = delete;

  // "127.0.0.1:PORT" of node k (0 = the first node).
  std::string address(int k = 0) const;
  int port(int k) const { return ports_[static_cast<std::size_t>(k)]; }
  // Process id of node k; 0 once it has been killed and reaped.
  pid_t pid(int k) const { return nodes_.pid(proc_[static_cast<std::size_t>(k)]); }
  // The folder this cluster owns.
  const std::string& dir() const { return dir_.path(); }
  // Kills node k at once (SIGKILL), as a crash would.
  void kill_node(int k);
  // Freezes node k (SIGSTOP): it keeps its connections but never answers.
  void freeze_node(int k);
  // True (and *status set) once node k's process has exited; reaps it.
  bool exited(int k, int* status) {
    return nodes_.exited(proc_[static_cast<std::size_t>(k)], status);
  }
  // Lets a frozen node k run again (SIGCONT).
  void thaw_node(int k);
  // Starts node k again (after kill_node) with its data folder and port, as
  // an operator would after a crash; returns once it listens. Throws
  // std::runtime_error (with its log) if it exits or does not come up.
  void restart_node(int k);
  // The data folder of node k.
  std::string node_dir(int k) const;

  // The cluster's etcd (REQUIRES: options.etcd).
  const etcd_server& etcd() const { return *etcd_; }
  // Starts one more node (index nodes()) that joins through etcd
  // (REQUIRES: options.etcd); returns its index.
  int add_node();
  int nodes() const { return static_cast<int>(ports_.size()); }

private:
  // See the constructor.
  void wait_settled(int nodes, int partitions);
  bool served_by_all(std::uint64_t version,
                     std::chrono::steady_clock::time_point deadline) const;

public:
  // Runs the shardrec CLI with `args`; returns its exit code, stdout in *out.
  int cli(const std::string& args, std::string* out = nullptr) const;
  // Everything the CLI and the nodes wrote on stderr so far (for failures).
  std::string logs() const;

private:
  // Declared in this order so that the nodes are stopped before their
  // folder is removed.
  // Starts node k with `args` and waits for its port file.
  int start(int k, const std::vector<std::string>& args);

  temp_dir dir_;
  std::unique_ptr<etcd_server> etcd_; // outlives the nodes: stopped after them
  child_processes nodes_;
  std::vector<int> ports_;
  std::vector<std::size_t> proc_; // node k's current process in nodes_
  std::string bin_;
  std::chrono::milliseconds start_timeout_{10000};
  std::vector<std::string> node_args_;
};

} // namespace shardrec::testing
