// shardrec-node: one process of a shardrec cluster. Parses options (flags or
// an .ini file with the same names), starts the actor system, spawns the
// node's actors (actors/node.hpp), publishes its coordinator on --port, joins
// a cluster if asked, and runs until SIGINT/SIGTERM.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
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
#include "node/etcd_member.hpp"
#include "storage/files.hpp"
#include "storage/partition_log.hpp"

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
  std::string etcd;
  std::string etcd_prefix = "/shardrec";
  std::int64_t etcd_lease = 3;
  std::uint32_t replicas = 0;
  unsigned threads = 0;
  std::string port_file;
  std::string sync = "always";
  std::uint64_t snapshot_every = 1'000'000;
  std::string retrain_every = "0";
};

// "90", "90s", "15m", "2h" -> seconds; nullopt if malformed.
std::optional<std::chrono::seconds> parse_duration(const std::string& s) {
  if (s.empty())
    return std::nullopt;
  std::size_t used = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(s, &used);
  } catch (...) {
    return std::nullopt;
  }
  const std::string unit = s.substr(used);
  const unsigned long long scale = unit.empty() || unit == "s" ? 1
                                   : unit == "m"               ? 60
                                   : unit == "h"               ? 3600
                                                               : 0;
  if (scale == 0)
    return std::nullopt;
  return std::chrono::seconds(static_cast<std::chrono::seconds::rep>(n * scale));
}

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

// A restarted node tells every other node of the map that it is back (its
// new shard handles) and learns theirs; a node that is down now greets this
// one when it comes back.
void greet_peers(caf::actor_system& sys, const caf::actor& coordinator,
                 const actors::partition_map& map, std::uint32_t me) {
  caf::scoped_actor self{sys};
  struct {
    std::uint32_t id = 0;
    std::vector<std::uint32_t> parts;
    std::vector<caf::actor> shards;
    caf::actor scorer, membership;
  } mine;
  self->request(coordinator, actors::admin_timeout, actors::hello_atom::value)
      .receive(
          [&](std::uint32_t id, std::vector<std::uint32_t>& parts,
              std::vector<caf::actor>& shards, caf::actor& scorer,
              caf::actor& membership) {
            mine = {id, std::move(parts), std::move(shards), std::move(scorer),
                    std::move(membership)};
          },
          [&](caf::error&) {});
  if (!mine.membership)
    return;
  for (const auto& n : map.nodes) {
    if (n.id == me)
      continue;
    auto peer = sys.middleman().remote_actor(n.host, n.port);
    if (!peer) {
      std::cerr << "shardrec-node: node " << n.id << " at " << n.host << ":" << n.port
                << " is not up; it will find this node when it starts\n";
      continue;
    }
    self->request(*peer, actors::admin_timeout, actors::hello_atom::value, mine.id,
                  mine.parts, mine.shards, mine.scorer, mine.membership)
        .receive(
            [&](std::uint32_t id, std::vector<std::uint32_t>& parts,
                std::vector<caf::actor>& shards, caf::actor& scorer,
                caf::actor& membership) {
              self->send(coordinator, actors::hello_atom::value, id, std::move(parts),
                         std::move(shards), std::move(scorer), std::move(membership));
              std::cerr << "shardrec-node: rejoined node " << id << " at " << n.host
                        << ":" << n.port << "\n";
            },
            [&](caf::error& err) {
              std::cerr << "shardrec-node: node " << n.id
                        << " did not answer: " << sys.render(err) << "\n";
            });
  }
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
      "folder for this node's files: its identity and partition map (node.state) and "
      "each "
      "partition's write-ahead log and snapshots (partitions/pNNNNN). Restarting with "
      "the "
      "same folder brings the node back with its partitions; one process per folder")(
      "sync", po::value(&nc.sync)->default_value(nc.sync),
      "when an event is acknowledged: always (after fsync of its partition's log; "
      "batches "
      "arriving together share one sync), batch (after the write; synced within 10 ms: "
      "a machine crash may lose those 10 ms), none (after the write; never synced by "
      "shardrec)")(
      "retrain-every", po::value(&nc.retrain_every)->default_value(nc.retrain_every),
      "train in the background this often (e.g. 90s, 15m, 2h; 0: only on `shardrec "
      "train`) when events or items changed since the last scheduled run; queries use "
      "the old model until the new one is swapped in. Given to the cluster's first node")(
      "snapshot-every", po::value(&nc.snapshot_every)->default_value(nc.snapshot_every),
      "events a partition takes between snapshots (0: only after training); a restart "
      "loads the newest snapshot and replays the log after it")(
      "partitions", po::value(&nc.partitions)->default_value(nc.partitions),
      "partitions of a new cluster (fixed at creation; ignored when joining)")(
      "etcd", po::value(&nc.etcd),
      "etcd endpoints (http://HOST:PORT, comma-separated) that hold the cluster's "
      "membership and partition map: the node registers there and joins the cluster "
      "they describe (the first node to register creates it). Without --etcd or --join "
      "a node is a cluster of one")(
      "etcd-prefix", po::value(&nc.etcd_prefix)->default_value(nc.etcd_prefix),
      "etcd key prefix of this cluster (several clusters can share one etcd)")(
      "etcd-lease", po::value(&nc.etcd_lease)->default_value(nc.etcd_lease),
      "seconds a node's etcd registration outlives its last renewal (renewed every "
      "third of it): how long a killed or frozen node takes to show as down")(
      "replicas", po::value(&nc.replicas)->default_value(0),
      "with --etcd: copies of every partition in a new cluster, on different nodes "
      "(a primary and replicas - 1 followers that confirm every write before it is "
      "acknowledged; a follower takes over when its primary's node is lost). 0: 2, "
      "or 1 while the cluster has one node. Fixed when the cluster is created")(
      "join", po::value(&nc.join),
      "HOST:PORT of the cluster's first node to join, without etcd (ignored when the "
      "data folder holds a node already: it rejoins as that node)")(
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
                 "[--etcd http://HOST:PORT,...]\n\n"
              << desc << "\n";
    return 0;
  }
  if (nc.partitions == 0) {
    std::cerr << "shardrec-node: --partitions must be at least 1\n";
    return 2;
  }
  std::vector<etcd::endpoint> etcd_endpoints;
  if (!nc.etcd.empty()) {
    auto eps = etcd::parse_endpoints(nc.etcd);
    if (!eps) {
      std::cerr << "shardrec-node: " << eps.err().message << "\n";
      return 2;
    }
    etcd_endpoints = std::move(*eps);
    if (!nc.join.empty()) {
      std::cerr << "shardrec-node: give --etcd or --join, not both (with --etcd a node "
                   "finds the cluster in etcd)\n";
      return 2;
    }
    if (nc.replicas > 16) {
      std::cerr << "shardrec-node: --replicas must be 0..16\n";
      return 2;
    }
    if (nc.etcd_lease < 1 || nc.etcd_lease > 3600) {
      std::cerr << "shardrec-node: --etcd-lease must be 1..3600 seconds\n";
      return 2;
    }
    if (nc.etcd_prefix.empty() || nc.etcd_prefix.front() != '/'
        || nc.etcd_prefix.back() == '/') {
      std::cerr << "shardrec-node: --etcd-prefix must start with '/' and not end with "
                   "one, got '"
                << nc.etcd_prefix << "'\n";
      return 2;
    }
  }
  std::string join_host;
  std::uint16_t join_port = 0;
  if (!nc.join.empty() && !split_host_port(nc.join, join_host, join_port)) {
    std::cerr << "shardrec-node: --join expects HOST:PORT, got '" << nc.join << "'\n";
    return 2;
  }

  const auto retrain_every = parse_duration(nc.retrain_every);
  if (!retrain_every) {
    std::cerr << "shardrec-node: --retrain-every expects a duration such as 90s, 15m or "
                 "2h, got '"
              << nc.retrain_every << "'\n";
    return 2;
  }
  auto sync = storage::parse_sync_mode(nc.sync);
  if (!sync) {
    std::cerr << "shardrec-node: " << sync.err().message << "\n";
    return 2;
  }
  // The data folder: one process at a time, and a restart's identity.
  if (auto made = storage::make_dirs(nc.data_dir); !made) {
    std::cerr << "shardrec-node: " << made.err().message << "\n";
    return 1;
  }
  auto lock = storage::dir_lock::acquire(nc.data_dir);
  if (!lock) {
    std::cerr << "shardrec-node: " << lock.err().message << "\n";
    return 1;
  }
  std::optional<actors::node_state> restored;
  const auto state_file = nc.data_dir + "/node.state";
  if (std::filesystem::exists(state_file)) {
    auto bytes = storage::read_blob(state_file);
    core::result<actors::node_state> st =
        bytes ? actors::decode_node_state(
            actors::frame{std::vector<std::uint8_t>(bytes->begin(), bytes->end())})
              : core::result<actors::node_state>(bytes.err());
    if (!st) {
      std::cerr << "shardrec-node: cannot read this node's identity: " << st.err().message
                << "\n(move the data folder away to start a new node with no data)\n";
      return 1;
    }
    restored = std::move(*st);
    std::uint16_t was = 0;
    for (const auto& n : restored->map.nodes)
      if (n.id == restored->node_id)
        was = n.port;
    if (!vm["port"].defaulted() && nc.port != 0 && nc.port != was) {
      std::cerr << "shardrec-node: " << nc.data_dir << " belongs to node "
                << restored->node_id << " at port " << was << "; start it with --port "
                << was << " (or 0)\n";
      return 2;
    }
    nc.port = was;
    if (!nc.join.empty())
      std::cerr << "shardrec-node: restarting as node " << restored->node_id
                << " of its cluster; --join ignored\n";
    nc.join.clear();
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
  // With etcd no node is "first": the controller makes the first map.
  cc.first =
      etcd_endpoints.empty() && (restored ? restored->node_id == 0 : nc.join.empty());
  cc.etcd = !etcd_endpoints.empty();
  cc.dur.data_dir = nc.data_dir;
  cc.dur.sync = *sync;
  cc.dur.snapshot_every = nc.snapshot_every;
  cc.dur.await_role = !etcd_endpoints.empty();
  cc.restored = restored;
  cc.retrain_every = *retrain_every;
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
    // A restart recovers every hosted partition (snapshot, log replay)
    // before it answers: no timeout then.
    self->request(node.coordinator,
                  restored ? caf::duration{caf::infinite}
                           : caf::duration{actors::admin_timeout},
                  actors::start_atom::value, port)
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

  std::unique_ptr<node::etcd_member> member;
  if (!etcd_endpoints.empty()) {
    node::etcd_member_config ec;
    ec.endpoints = etcd_endpoints;
    ec.prefix = nc.etcd_prefix;
    ec.lease_seconds = nc.etcd_lease;
    ec.host = nc.host;
    ec.port = port;
    ec.partitions = nc.partitions;
    ec.replicas = nc.replicas;
    ec.data_dir = nc.data_dir;
    if (restored) {
      ec.node_id = restored->node_id;
      ec.installed_version = restored->map.version;
    }
    member =
        std::make_unique<node::etcd_member>(sys, node.coordinator, node.membership, ec);
    auto started = member->start();
    if (started)
      started = member->wait_serving(std::chrono::seconds(60));
    if (!started) {
      std::cerr << "shardrec-node: " << started.err().message << "\n";
      member.reset();
      stop_node();
      return 1;
    }
    std::cerr << "shardrec-node: node " << member->node_id() << " of the cluster in etcd "
              << nc.etcd << nc.etcd_prefix << "\n";
  } else if (restored) {
    greet_peers(sys, node.coordinator, restored->map, restored->node_id);
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
    me.nodes.push_back({0, nc.host, port, {}, false});
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
  while (!stop_requested && !(member && member->drained()))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::cerr << "shardrec-node: stopping\n";
  member.reset(); // leaves etcd first: the others see it go at once
  stop_node();
  return 0;
}
