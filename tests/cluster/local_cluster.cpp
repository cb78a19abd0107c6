#include "tests/cluster/local_cluster.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "etcd/client.hpp"

namespace shardrec::testing {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// waitpid that retries when a signal interrupts it.
pid_t wait_for(pid_t pid, int* status, int options) {
  pid_t r;
  do
    r = ::waitpid(pid, status, options);
  while (r < 0 && errno == EINTR);
  return r;
}

std::string describe(int status) {
  if (WIFEXITED(status))
    return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status));
  return "stopped";
}

} // namespace

// ---- temp_dir -----------------------------------------------------------------

temp_dir::temp_dir(const std::string& parent) {
  std::string tmpl = parent;
  if (tmpl.empty() || tmpl.back() != '/')
    tmpl += '/';
  tmpl += "shardrec-test-XXXXXX";
  if (!::mkdtemp(tmpl.data()))
    throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ignored; // a destructor has no one to report to
  std::filesystem::remove_all(path_, ignored);
}

// ---- child_processes ----------------------------------------------------------

std::size_t child_processes::spawn(const std::vector<std::string>& args,
                                   const std::string& log) {
  // Everything the child needs is made before fork: between fork and exec
  // only async-signal-safe calls are allowed (CAF threads may be running).
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pids_.reserve(pids_.size() + 1); // so that recording the child cannot throw
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0)
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) // the test died before prctl took effect
      ::_exit(127);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    // No descriptor of the test (CAF sockets, CLI pipes) outlives it in a node.
    ::close_range(3, ~0u, 0);
    ::execv(argv[0], argv.data());
    static const char msg[] = "local_cluster: exec failed\n";
    [[maybe_unused]] const auto n = ::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  pids_.push_back(pid);
  return pids_.size() - 1;
}

bool child_processes::exited(std::size_t k, int* status) {
  pid_t& pid = pids_[k];
  if (pid <= 0)
    return true;
  if (wait_for(pid, status, WNOHANG) != pid)
    return false;
  pid = 0;
  return true;
}

void child_processes::kill_now(std::size_t k) {
  pid_t& pid = pids_[k];
  if (pid <= 0)
    return;
  ::kill(pid, SIGKILL);
  int status = 0;
  wait_for(pid, &status, 0);
  pid = 0;
}

void child_processes::signal(std::size_t k, int sig) {
  if (pids_[k] > 0)
    ::kill(pids_[k], sig);
}

child_processes::~child_processes() {
  for (pid_t pid : pids_)
    if (pid > 0) {
      ::kill(pid, SIGCONT); // a frozen node could not act on SIGTERM
      ::kill(pid, SIGTERM);
    }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (pid_t& pid : pids_) {
    int status = 0;
    while (pid > 0) {
      const pid_t r = wait_for(pid, &status, WNOHANG);
      if (r == pid || r < 0) { // reaped, or not our child any more
        pid = 0;
      } else if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid, SIGKILL);
        wait_for(pid, &status, 0);
        pid = 0;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
}

// ---- etcd_server --------------------------------------------------------------

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  return addr;
}

} // namespace

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  auto addr = loopback(0);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string("bind: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

etcd_server::etcd_server(const std::string& dir) : dir_(dir + "/etcd") {
  const char* bin = std::getenv("SHARDREC_ETCD");
  const std::string exe = bin && *bin ? bin : "/usr/bin/etcd";
  std::filesystem::create_directories(dir_);
  client_port_ = free_port();
  const int peer_port = free_port();
  const auto client_url = "http://127.0.0.1:" + std::to_string(client_port_);
  const auto peer_url = "http://127.0.0.1:" + std::to_string(peer_port);
  endpoint_ = client_url;
  proc_.spawn({exe, "--name", "test", "--data-dir", dir_ + "/data",
               "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
               "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
               "--initial-cluster", "test=" + peer_url, "--log-level", "warn"},
              dir_ + "/log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int status = 0;
    if (proc_.exited(0, &status))
      throw std::runtime_error("etcd (" + exe + ") " + describe(status)
                               + " before it answered; its log:\n" + log());
    // Ready once its client port accepts a connection.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const auto addr = loopback(client_port_);
    const bool up =
        fd >= 0
        && ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    if (fd >= 0)
      ::close(fd);
    if (up)
      return;
    if (std::chrono::steady_clock::now() >= deadline)
      throw std::runtime_error("etcd did not listen on " + client_url
                               + " within 15 s; its log:\n" + log());
  }
}

std::string etcd_server::log() const {
  return read_file(dir_ + "/log");
}

// ---- local_cluster ------------------------------------------------------------

local_cluster::local_cluster(int nodes, int partitions,
                             const local_cluster_options& options)
    : dir_(options.parent) {
  // From here on, a throw destroys nodes_ (stopping every node started so
  // far) and then dir_ (removing the folder).
  bin_ = options.node_bin.empty() ? SHARDREC_NODE_BIN : options.node_bin;
  start_timeout_ = options.start_timeout;
  node_args_ = options.node_args;
  if (options.etcd) {
    etcd_ = std::make_unique<etcd_server>(dir_.path());
    node_args_.push_back("--etcd");
    node_args_.push_back(etcd_->endpoint());
  }
  for (int k = 0; k < nodes; ++k) {
    std::filesystem::create_directories(node_dir(k));
    std::vector<std::string> args{"--port", "0", "--partitions",
                                  std::to_string(partitions)};
    if (k > 0 && !etcd_) {
      args.push_back("--join");
      args.push_back(address(0));
    }
    ports_.push_back(start(k, args));
  }
  if (etcd_ && nodes > 1)
    wait_settled(nodes, partitions);
}

// True once every node's status shows map version `version` (false at the
// deadline).
bool local_cluster::served_by_all(std::uint64_t version,
                                  std::chrono::steady_clock::time_point deadline) const {
  const std::string want = "\"map_version\":" + std::to_string(version);
  for (int k = 0; k < nodes(); ++k) {
    for (;;) {
      std::string out;
      if (cli("--cluster " + address(k) + " status --json", &out) == 0) {
        const auto at = out.find(want);
        if (at != std::string::npos
            && !std::isdigit(static_cast<unsigned char>(out[at + want.size()])))
          break;
      }
      if (std::chrono::steady_clock::now() >= deadline)
        return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return true;
}

void local_cluster::wait_settled(int nodes, int partitions) {
  auto client = etcd::client(*etcd::parse_endpoints(etcd_->endpoint()));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::string last = "(no map)";
  while (std::chrono::steady_clock::now() < deadline) {
    auto kv = client.get("/shardrec/map");
    if (kv.ok() && kv->has_value()) {
      last = (*kv)->value;
      auto m = nlohmann::json::parse(last, nullptr, false);
      if (m.is_object() && m.contains("nodes") && m["nodes"].size() == std::size_t(nodes)
          && (!m.contains("moving") || m["moving"].empty())) {
        bool each = true;
        if (partitions >= nodes)
          for (const auto& n : m["nodes"]) {
            const auto& owner = m["owner"];
            each = each && std::count(owner.begin(), owner.end(), n["id"]) > 0;
          }
        // Every partition has its followers: replicas R (0: 2), R - 1 of
        // them once there are R nodes.
        const std::size_t r = m.value("replicas", 0u) == 0 ? 2u : m.value("replicas", 0u);
        const std::size_t want = std::min<std::size_t>(r, std::size_t(nodes)) - 1;
        if (m.contains("followers"))
          for (const auto& f : m["followers"])
            each = each && f.size() >= want;
        if (each && served_by_all(m.value("version", 0ull), deadline))
          return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("the cluster did not settle within 60 s (map: " + last + ")\n"
                           + logs());
}

int local_cluster::add_node() {
  if (!etcd_)
    throw std::runtime_error("add_node: this cluster was started without etcd");
  const int k = nodes();
  std::filesystem::create_directories(node_dir(k));
  ports_.push_back(start(k, {"--port", "0"}));
  return k;
}

std::string local_cluster::node_dir(int k) const {
  return dir_.path() + "/node" + std::to_string(k);
}

int local_cluster::start(int k, const std::vector<std::string>& extra) {
  const auto port_file = node_dir(k) + "/port";
  const auto log = node_dir(k) + "/log";
  std::filesystem::remove(port_file);
  std::vector<std::string> args{bin_,        "--port-file", port_file, "--data-dir",
                                node_dir(k), "--threads",   "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.insert(args.end(), node_args_.begin(), node_args_.end());
  const auto index = nodes_.spawn(args, log);
  if (proc_.size() <= static_cast<std::size_t>(k))
    proc_.resize(static_cast<std::size_t>(k) + 1);
  proc_[static_cast<std::size_t>(k)] = index;
  const auto deadline = std::chrono::steady_clock::now() + start_timeout_;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    const auto text = read_file(port_file);
    if (!text.empty() && text.back() == '\n')
      if (int port = std::atoi(text.c_str()); port != 0)
        return port;
    int status = 0;
    if (nodes_.exited(index, &status))
      throw std::runtime_error("node " + std::to_string(k) + " (" + bin_ + ") "
                               + describe(status) + " before it listened; its log:\n"
                               + read_file(log));
    if (std::chrono::steady_clock::now() >= deadline)
      throw std::runtime_error(
          "node " + std::to_string(k) + " (" + bin_ + ") wrote no port within "
          + std::to_string(start_timeout_.count()) + " ms; its log:\n" + read_file(log));
  }
}

void local_cluster::restart_node(int k) {
  const auto port =
      start(k, {"--port", std::to_string(ports_[static_cast<std::size_t>(k)])});
  if (port != ports_[static_cast<std::size_t>(k)])
    throw std::runtime_error("node " + std::to_string(k) + " came back on port "
                             + std::to_string(port) + ", not "
                             + std::to_string(ports_[static_cast<std::size_t>(k)]));
}

std::string local_cluster::address(int k) const {
  return "127.0.0.1:" + std::to_string(ports_[static_cast<std::size_t>(k)]);
}

void local_cluster::kill_node(int k) {
  nodes_.kill_now(proc_[static_cast<std::size_t>(k)]);
}

void local_cluster::freeze_node(int k) {
  nodes_.signal(proc_[static_cast<std::size_t>(k)], SIGSTOP);
}

void local_cluster::thaw_node(int k) {
  nodes_.signal(proc_[static_cast<std::size_t>(k)], SIGCONT);
}

std::string local_cluster::logs() const {
  std::string all = "--- cli:\n" + read_file(dir_.path() + "/cli.log");
  if (etcd_)
    all += "--- etcd:\n" + etcd_->log();
  for (std::size_t k = 0; k < ports_.size(); ++k)
    all += "--- node " + std::to_string(k) + ":\n"
           + read_file(dir_.path() + "/node" + std::to_string(k) + "/log");
  return all;
}

int local_cluster::cli(const std::string& args, std::string* out) const {
  const std::string cli_log = dir_.path() + "/cli.log";
  std::string cmd = std::string(SHARDREC_CLI_BIN) + " " + args + " 2>>" + cli_log;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p)
    return -1;
  std::array<char, 4096> buf;
  std::string text;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
    text.append(buf.data(), n);
  int status = ::pclose(p);
  if (out)
    *out = text;
  int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (rc != 0) { // the CLI's own words, for the failure report
    auto log = read_file(cli_log);
    auto from = log.size(); // the last 5 lines
    for (int newlines = 0; from > 0; --from)
      if (log[from - 1] == '\n' && ++newlines == 6)
        break;
    std::fprintf(stderr, "shardrec %s exited %d, its stderr:\n%s", args.c_str(), rc,
                 log.substr(from).c_str());
  }
  return rc;
}

} // namespace shardrec::testing
