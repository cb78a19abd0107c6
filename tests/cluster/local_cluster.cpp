#include "tests/cluster/local_cluster.hpp"

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace shardrec::testing {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace

local_cluster::local_cluster(int nodes, int partitions) {
  char tmpl[] = "/tmp/shardrec-test-XXXXXX";
  if (!mkdtemp(tmpl))
    throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  for (int k = 0; k < nodes; ++k) {
    auto node_dir = dir_ + "/node" + std::to_string(k);
    std::system(("mkdir -p " + node_dir).c_str());
    auto port_file = node_dir + "/port";
    auto log = node_dir + "/log";
    std::vector<std::string> args{SHARDREC_NODE_BIN,
                                  "--port",
                                  "0",
                                  "--port-file",
                                  port_file,
                                  "--data-dir",
                                  node_dir,
                                  "--partitions",
                                  std::to_string(partitions),
                                  "--threads",
                                  "1"};
    if (k > 0) {
      args.push_back("--join");
      args.push_back(address(0));
    }
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
      throw std::runtime_error(std::string("cannot start ") + SHARDREC_NODE_BIN);
    pids_.push_back(pid);
    int port = 0;
    for (int wait = 0; wait < 200 && port == 0; ++wait) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      auto text = read_file(port_file);
      if (!text.empty() && text.back() == '\n')
        port = std::atoi(text.c_str());
    }
    if (port == 0)
      throw std::runtime_error("node " + std::to_string(k) + " did not start:\n"
                               + read_file(log));
    ports_.push_back(port);
  }
}

local_cluster::~local_cluster() {
  for (auto pid : pids_)
    if (pid > 0) {
      ::kill(pid, SIGCONT);
      ::kill(pid, SIGTERM);
    }
  for (auto& pid : pids_) {
    if (pid <= 0)
      continue;
    int status = 0;
    for (int wait = 0; wait < 100; ++wait) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
  }
  std::system(("rm -rf " + dir_).c_str());
}

std::string local_cluster::address(int k) const {
  return "127.0.0.1:" + std::to_string(ports_[static_cast<std::size_t>(k)]);
}

void local_cluster::kill_node(int k) {
  auto& pid = pids_[static_cast<std::size_t>(k)];
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = 0;
  }
}

std::string local_cluster::logs() const {
  std::string all = "--- cli:\n" + read_file(dir_ + "/cli.log");
  for (std::size_t k = 0; k < pids_.size(); ++k)
    all += "--- node " + std::to_string(k) + ":\n"
           + read_file(dir_ + "/node" + std::to_string(k) + "/log");
  return all;
}

void local_cluster::freeze_node(int k) {
  auto pid = pids_[static_cast<std::size_t>(k)];
  if (pid > 0)
    ::kill(pid, SIGSTOP);
}

int local_cluster::cli(const std::string& args, std::string* out) const {
  std::string cmd =
      std::string(SHARDREC_CLI_BIN) + " " + args + " 2>>" + dir_ + "/cli.log";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p)
    return -1;
  std::array<char, 4096> buf;
  std::string text;
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0)
    text.append(buf.data(), n);
  int status = pclose(p);
  if (out)
    *out = text;
  int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (rc != 0) // the CLI's own words, for the failure report
    std::system(("echo 'shardrec " + args + "' exited " + std::to_string(rc)
                 + ", its stderr:; tail -n 5 " + dir_ + "/cli.log >&2")
                    .c_str());
  return rc;
}

} // namespace shardrec::testing
