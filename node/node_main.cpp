// shardrec-node: one process of a shardrec cluster. Parses options (flags or
// an .ini file with the same names), starts the actor system, spawns the
// node's actors (actors/node.hpp), publishes its coordinator on --port, joins
// a cluster if asked, and runs until SIGINT/SIGTERM.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include <boost/program_options.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/codec.hpp"
#include "actors/interfaces.hpp"
#include "actors/node.hpp"

namespace po = boost::program_options;
using namespace shardrec;

namespace {

std::atomic<bool> stop_requested{false};

extern "C" void on_signal(int) {
  stop_requested = true;
}

struct node_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7400;
  std::string data_dir = "./shardrec-data";
  std::uint32_t partitions = 64;
  std::string join;
  unsigned threads = 0;
  std::string port_file;
};

// Splits "HOST:PORT".
bool split_host_port(const std::string& s, std::string& host, std::uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return false;
  try {
    auto p = std::stoul(s.substr(colon + 1));
    if (p == 0 || p > 65535)
      return false;
    port = static_cast<std::uint16_t>(p);
  } catch (...) {
    return false;
  }
  host = s.substr(0, colon);
  return true;
}

} // namespace

int main(int argc, char** argv) {
  node_config nc;
  std::string config_file;
  po::options_description desc(
      "shardrec-node options (also accepted in --config FILE as name = value)");
  desc.add_options()("help,h", "show this help")("config", po::value(&config_file),
                                                 ".ini file with any of these options")(
      "host", po::value(&nc.host)->default_value(nc.host),
      "address to listen on and to announce")(
      "port", po::value(&nc.port)->default_value(nc.port),
      "port this node listens on (0: any free port)")(
      "data-dir", po::value(&nc.data_dir)->default_value(nc.data_dir),
      "folder for this node's files (for the write-ahead log and snapshots of a coming "
      "release; nothing is written there yet)")(
      "partitions", po::value(&nc.partitions)->default_value(nc.partitions),
      "partitions of a new cluster (fixed at creation; ignored with --join)")(
      "join", po::value(&nc.join), "HOST:PORT of the cluster's first node to join")(
      "threads", po::value(&nc.threads)->default_value(0),
      "actor scheduler threads (0: all cores)")(
      "port-file", po::value(&nc.port_file),
      "write the bound port here once listening (for launchers)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("config")) {
      std::ifstream in(vm["config"].as<std::string>());
      if (!in) {
        std::cerr << "shardrec-node: cannot read config file '"
                  << vm["config"].as<std::string>() << "'\n";
        return 2;
      }
      po::store(po::parse_config_file(in, desc), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "shardrec-node: " << e.what() << "\n(try: shardrec-node --help)\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << "usage: shardrec-node [--config FILE] [--port P] [--partitions N] "
                 "[--join HOST:PORT]\n\n"
              << desc << "\n";
    return 0;
  }
  if (nc.partitions == 0) {
    std::cerr << "shardrec-node: --partitions must be at least 1\n";
    return 2;
  }
  std::string join_host;
  std::uint16_t join_port = 0;
  if (!nc.join.empty() && !split_host_port(nc.join, join_host, join_port)) {
    std::cerr << "shardrec-node: --join expects HOST:PORT, got '" << nc.join << "'\n";
    return 2;
  }

  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  actors::add_message_types(cfg);
  if (nc.threads > 0)
    cfg.set("scheduler.max-threads", static_cast<std::size_t>(nc.threads));
  // Deserialise on the multiplexer thread instead of handing every message
  // to a middleman worker thread: one thread switch less per remote message.
  cfg.set("middleman.workers", std::size_t{0});
  cfg.set("middleman.enable-automatic-connections", true);
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};

  actors::node_config cc;
  cc.host = nc.host;
  cc.partitions = nc.partitions;
  cc.first = nc.join.empty();
  auto node = actors::spawn_node(sys, cc);
  auto stop_node = [&] {
    caf::anon_send_exit(node.coordinator, caf::exit_reason::user_shutdown);
  };
  // Bind once (port 0: any free port); the node learns the port it announces.
  auto bound = sys.middleman().publish(node.coordinator, nc.port, nc.host.c_str(), true);
  if (!bound) {
    std::cerr << "shardrec-node: cannot listen on " << nc.host << ":" << nc.port << ": "
              << sys.render(bound.error()) << "\n";
    stop_node();
    return 1;
  }
  const std::uint16_t port = *bound;
  {
    caf::scoped_actor self{sys};
    bool started = false;
    self->request(node.coordinator, actors::admin_timeout, actors::start_atom::value,
                  port)
        .receive([&](actors::ok_atom) { started = true; },
                 [&](caf::error& err) {
                   std::cerr << "shardrec-node: cannot start: " << sys.render(err)
                             << "\n";
                 });
    if (!started) {
      stop_node();
      return 1;
    }
  }

  if (!nc.join.empty()) {
    auto leader = sys.middleman().remote_actor(join_host, join_port);
    if (!leader) {
      std::cerr << "shardrec-node: cannot reach " << nc.join << ": "
                << sys.render(leader.error()) << "\n";
      stop_node();
      return 1;
    }
    actors::partition_map me;
    me.nodes.push_back({0, nc.host, port});
    caf::scoped_actor self{sys};
    bool joined = false;
    std::uint64_t joined_version = 0;
    self->request(*leader, actors::admin_timeout, actors::join_atom::value,
                  actors::encode(me), node.membership)
        .receive(
            [&](const actors::frame& f) {
              auto m = actors::decode_partition_map(f);
              joined = m.ok();
              if (m)
                joined_version = m->version;
              if (m)
                std::cerr << "joined cluster at " << nc.join << ": " << m->nodes.size()
                          << " nodes, " << m->partitions << " partitions (map version "
                          << m->version << ")\n";
            },
            [&](caf::error& err) {
              std::cerr << "shardrec-node: join " << nc.join
                        << " refused: " << sys.render(err) << "\n";
            });
    if (!joined) {
      stop_node();
      return 1;
    }
    // The leader installs the new map on every node after it answers the
    // join; serve (and announce the port) only once this node has it.
    bool installed = false;
    for (int attempt = 0; attempt < 100 && !installed; ++attempt) {
      self->request(node.coordinator, actors::admin_timeout, actors::status_atom::value)
          .receive(
              [&](const actors::frame& f) {
                auto s = actors::decode_status_reply(f);
                // The map the join answered with (not the empty one a new
                // node starts with), with a shard for every partition.
                installed = s && s->map.partitions > 0 && s->map.version >= joined_version
                            && s->missing.empty();
              },
              [&](caf::error&) {});
      if (!installed)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!installed) {
      std::cerr << "shardrec-node: the partition map did not arrive from " << nc.join
                << "\n";
      stop_node();
      return 1;
    }
  }
  if (!nc.port_file.empty()) {
    std::ofstream(nc.port_file) << port << "\n";
  }
  std::cerr << "shardrec-node listening on " << nc.host << ":" << port << "\n";

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  while (!stop_requested)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::cerr << "shardrec-node: stopping\n";
  stop_node();
  return 0;
}
