#include "node/etcd_member.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/codec.hpp"
#include "actors/durable.hpp"
#include "actors/interfaces.hpp"
#include "actors/messages.hpp"
#include "storage/files.hpp"

namespace shardrec::node {

namespace {

using actors::node_info;
using actors::partition_map;
using core::errc;
using core::make_error;

constexpr auto tick_period = std::chrono::milliseconds(200);
constexpr auto ask_timeout = std::chrono::seconds(5);

// A partition the map moves from one node to another (copy: a new follower
// of it; its owner stays).
struct move {
  std::uint32_t partition = 0, from = 0, to = 0;
  bool copy = false;
};

std::string map_to_json(const partition_map& m, std::uint32_t replicas,
                        const std::vector<move>& moving = {}) {
  nlohmann::json j{{"version", m.version}, {"partitions", m.partitions},
                   {"replicas", replicas}, {"owner", m.owner},
                   {"epoch", m.epoch},     {"followers", m.followers}};
  auto& nodes = j["nodes"] = nlohmann::json::array();
  for (const auto& n : m.nodes)
    nodes.push_back({{"id", n.id}, {"host", n.host}, {"port", n.port}});
  auto& mv = j["moving"] = nlohmann::json::array();
  for (const auto& x : moving)
    mv.push_back(
        {{"partition", x.partition}, {"from", x.from}, {"to", x.to}, {"copy", x.copy}});
  return j.dump();
}

// The moves that empty the `draining` nodes and leave the `serving` ones
// within one partition of each other: each from the node with the most (a
// draining one first; its highest partition first) to the serving node with
// the fewest, ties to the lowest id (never to a node that follows the
// partition). The partitions of nodes in neither set (down) stay where they
// are.
std::vector<move> plan_moves(const partition_map& m,
                             const std::set<std::uint32_t>& serving,
                             const std::set<std::uint32_t>& draining) {
  std::map<std::uint32_t, std::vector<std::uint32_t>> owned;
  for (auto id : serving)
    owned[id];
  for (auto id : draining)
    owned[id];
  for (std::uint32_t p = 0; p < m.owner.size(); ++p)
    if (owned.count(m.owner[p]) != 0)
      owned[m.owner[p]].push_back(p);
  std::vector<move> out;
  if (serving.empty())
    return out;
  for (;;) {
    auto fewest = owned.end(), from = owned.end();
    for (auto it = owned.begin(); it != owned.end(); ++it) {
      if (serving.count(it->first) != 0
          && (fewest == owned.end() || it->second.size() < fewest->second.size()))
        fewest = it;
      if (draining.count(it->first) != 0 && !it->second.empty() && from == owned.end())
        from = it;
    }
    if (from == owned.end()) {
      for (auto it = owned.begin(); it != owned.end(); ++it)
        if (serving.count(it->first) != 0
            && (from == owned.end() || it->second.size() > from->second.size()))
          from = it;
      if (from->second.size() <= fewest->second.size() + 1)
        return out;
    }
    // Its highest partition that the target does not follow already.
    auto pick =
        std::find_if(from->second.rbegin(), from->second.rend(),
                     [&](std::uint32_t p) { return !m.follows(p, fewest->first); });
    if (pick == from->second.rend())
      return out;
    const auto p = *pick;
    from->second.erase(std::next(pick).base());
    fewest->second.push_back(p);
    out.push_back({p, from->first, fewest->first, false});
  }
}

// The copies that give every partition `replicas - 1` followers on
// serving nodes other than its owner (before and after `moves`), each to
// the node with the fewest partitions (owned and followed), ties to the
// lowest id; only from a live owner (the copy's source).
std::vector<move> plan_followers(const partition_map& m, const std::vector<move>& moves,
                                 std::uint32_t replicas,
                                 const std::set<std::uint32_t>& serving,
                                 const std::set<std::uint32_t>& live) {
  std::vector<move> out;
  if (replicas < 2)
    return out;
  std::vector<std::uint32_t> owner_after = m.owner;
  for (const auto& mv : moves)
    owner_after[mv.partition] = mv.to;
  std::map<std::uint32_t, std::size_t> load;
  for (auto id : serving)
    load[id] = 0;
  for (std::uint32_t p = 0; p < m.partitions; ++p) {
    if (load.count(owner_after[p]) != 0)
      ++load[owner_after[p]];
    for (auto f : m.followers[p])
      if (load.count(f) != 0)
        ++load[f];
  }
  for (std::uint32_t p = 0; p < m.partitions; ++p) {
    if (live.count(m.owner[p]) == 0)
      continue;
    std::set<std::uint32_t> holds(m.followers[p].begin(), m.followers[p].end());
    holds.insert(m.owner[p]);
    holds.insert(owner_after[p]);
    std::size_t have = m.followers[p].size();
    while (have + 1 < replicas) {
      auto best = load.end();
      for (auto it = load.begin(); it != load.end(); ++it)
        if (holds.count(it->first) == 0
            && (best == load.end() || it->second < best->second))
          best = it;
      if (best == load.end())
        break;
      out.push_back({p, m.owner[p], best->first, true});
      holds.insert(best->first);
      ++best->second;
      ++have;
    }
  }
  return out;
}

// How long a round of copies may take before the controller calls off those
// not made (their sources are frozen meanwhile).
constexpr std::chrono::seconds copy_deadline{600};

// Applies moves to a map: a new owner (and epoch) for a move, one more
// follower for a copy.
void apply_moves(partition_map& m, const std::vector<move>& moves) {
  for (const auto& mv : moves)
    if (mv.copy) {
      m.followers[mv.partition].push_back(mv.to);
    } else {
      m.owner[mv.partition] = mv.to;
      ++m.epoch[mv.partition];
    }
}

// A map read from etcd; an error names what is wrong with it.
core::result<partition_map> map_from_json(const std::string& text,
                                          std::vector<move>* moving = nullptr,
                                          std::uint32_t* replicas = nullptr) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  partition_map m;
  try {
    if (j.is_discarded() || !j.is_object())
      throw std::runtime_error("not a JSON object");
    if (moving != nullptr && j.contains("moving"))
      for (const auto& x : j.at("moving"))
        moving->push_back({x.at("partition").get<std::uint32_t>(),
                           x.at("from").get<std::uint32_t>(),
                           x.at("to").get<std::uint32_t>(), x.value("copy", false)});
    if (replicas != nullptr)
      *replicas = j.value("replicas", 0u);
    m.version = j.at("version").get<std::uint64_t>();
    m.partitions = j.at("partitions").get<std::uint32_t>();
    m.owner = j.at("owner").get<std::vector<std::uint32_t>>();
    // A map of a release without replicas: epoch 1, no followers.
    m.epoch = j.value("epoch", std::vector<std::uint64_t>(m.owner.size(), 1));
    m.followers =
        j.value("followers", std::vector<std::vector<std::uint32_t>>(m.owner.size()));
    for (const auto& n : j.at("nodes"))
      m.nodes.push_back({n.at("id").get<std::uint32_t>(),
                         n.at("host").get<std::string>(),
                         n.at("port").get<std::uint16_t>(),
                         {},
                         false});
  } catch (const std::exception& ex) {
    return make_error(errc::bad_message, std::string("the map in etcd: ") + ex.what());
  }
  if (m.partitions == 0 || m.owner.size() != m.partitions || m.nodes.empty()
      || m.epoch.size() != m.partitions || m.followers.size() != m.partitions)
    return make_error(errc::bad_message,
                      "the map in etcd: owner, epoch and followers must list one entry "
                      "per partition");
  auto known = [&](std::uint32_t id) {
    return std::any_of(m.nodes.begin(), m.nodes.end(),
                       [&](const node_info& n) { return n.id == id; });
  };
  for (std::uint32_t p = 0; p < m.partitions; ++p) {
    if (!known(m.owner[p]))
      return make_error(errc::bad_message, "the map in etcd: owner "
                                               + std::to_string(m.owner[p])
                                               + " is not one of its nodes");
    for (std::size_t k = 0; k < m.followers[p].size(); ++k) {
      const auto f = m.followers[p][k];
      if (!known(f) || f == m.owner[p]
          || std::count(m.followers[p].begin(), m.followers[p].begin() + k, f) != 0)
        return make_error(errc::bad_message,
                          "the map in etcd: follower " + std::to_string(f)
                              + " of partition " + std::to_string(p)
                              + " is not one of its nodes, is its owner, or is listed "
                                "twice");
    }
    if (m.epoch[p] == 0)
      return make_error(errc::bad_message, "the map in etcd: partition "
                                               + std::to_string(p) + " has epoch 0");
  }
  return m;
}

// A list this node's own actor `to` answers `atom` with (empty on an error
// or a timeout: asked again on the next tick).
template <class List, class Atom>
List ask_local(caf::actor_system& sys, const caf::actor& to, Atom atom) {
  caf::scoped_actor self{sys};
  List out;
  self->request(to, ask_timeout, atom)
      .receive([&](List& r) { out = std::move(r); }, [&](caf::error&) {});
  return out;
}

// Node `id` owns or follows a partition of `m`.
bool holds_any(const partition_map& m, std::uint32_t id) {
  if (std::count(m.owner.begin(), m.owner.end(), id) > 0)
    return true;
  for (std::uint32_t p = 0; p < m.partitions; ++p)
    if (m.follows(p, id))
      return true;
  return false;
}

std::string id_key(std::uint32_t id) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08" PRIu32, id);
  return buf;
}

} // namespace

struct etcd_member::view {
  struct registered {
    node_info info;                // state: as the node wrote it
    std::int64_t registration = 0; // create revision of its key
  };
  std::optional<partition_map> map;
  std::vector<move> moving; // of this map
  std::uint32_t replicas = 0;
  // PREFIX/ready/P.TO = VERSION: node TO holds its copy of partition P for
  // the moves of map VERSION.
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint64_t> ready;
  // PREFIX/lagging/P.NODE = EPOCH: the primary of P's epoch EPOCH cannot
  // bring its follower on NODE up to date from its tail.
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint64_t> lagging;
  std::int64_t map_revision = 0; // mod revision of PREFIX/map (0: none)
  std::map<std::uint32_t, registered> nodes;
  std::optional<std::uint32_t> controller;
  std::set<std::uint32_t> drain; // nodes asked to drain (PREFIX/drain/ID)

  bool live(std::uint32_t id) const { return nodes.count(id) != 0; }
  bool is_ready(const move& mv) const {
    auto it = ready.find({mv.partition, mv.to});
    return it != ready.end() && map && it->second == map->version;
  }
};

namespace {

// "P.N" -> (P, N); nullopt when malformed.
std::optional<std::pair<std::uint32_t, std::uint32_t>> pair_key(const std::string& s) {
  const auto dot = s.find('.');
  if (dot == std::string::npos)
    return std::nullopt;
  try {
    return std::make_pair(static_cast<std::uint32_t>(std::stoul(s.substr(0, dot))),
                          static_cast<std::uint32_t>(std::stoul(s.substr(dot + 1))));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string pair_name(std::uint32_t p, std::uint32_t n) {
  return std::to_string(p) + "." + std::to_string(n);
}

} // namespace

etcd_member::etcd_member(caf::actor_system& sys, caf::actor coordinator,
                         caf::actor membership, etcd_member_config cfg)
    : sys_(sys), coordinator_(std::move(coordinator)), membership_(std::move(membership)),
      cfg_(std::move(cfg)), etcd_(cfg_.endpoints), renew_etcd_(cfg_.endpoints) {
  installed_version_ = assigned_version_ = cfg_.installed_version;
}

etcd_member::~etcd_member() {
  stop_ = true;
  if (renew_thread_.joinable())
    renew_thread_.join();
  if (control_thread_.joinable())
    control_thread_.join();
  std::int64_t lease = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    lease = lease_;
  }
  if (lease != 0)
    (void)renew_etcd_.revoke(lease); // best effort: else it expires in lease_seconds
}

std::string etcd_member::node_key(std::uint32_t id) const {
  return cfg_.prefix + "/nodes/" + id_key(id);
}

std::string etcd_member::node_value(const std::string& state) const {
  return nlohmann::json{
      {"id", id_}, {"host", cfg_.host}, {"port", cfg_.port}, {"state", state}}
      .dump();
}

core::status etcd_member::start() {
  if (cfg_.node_id) {
    id_ = *cfg_.node_id;
  } else {
    // The next id: a guarded increment of PREFIX/next_id.
    const auto key = cfg_.prefix + "/next_id";
    for (int attempt = 0;; ++attempt) {
      auto kv = etcd_.get(key);
      if (!kv)
        return kv.err();
      std::uint32_t next = 0;
      if (*kv)
        next = static_cast<std::uint32_t>(std::stoul((*kv)->value));
      auto put =
          etcd_.put_if(key, std::to_string(next + 1), *kv ? (*kv)->mod_revision : 0);
      if (!put)
        return put.err();
      if (*put) {
        id_ = next;
        break;
      }
      if (attempt > 100)
        return make_error(errc::io_error, "could not take a node id from etcd");
    }
  }
  if (auto s = register_node(); !s)
    return s;
  renew_thread_ = std::thread([this] { renew_loop(); });
  control_thread_ = std::thread([this] { control_loop(); });
  return {};
}

// A fresh lease, and this node's keys on it.
core::status etcd_member::register_node() {
  auto lease = renew_etcd_.grant(cfg_.lease_seconds);
  if (!lease)
    return lease.err();
  std::string state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state = state_;
  }
  if (auto r = renew_etcd_.put(node_key(id_), node_value(state), *lease); !r)
    return r.err();
  if (auto r = renew_etcd_.put(cfg_.prefix + "/election/" + id_key(id_),
                               std::to_string(id_), *lease);
      !r)
    return r.err();
  std::lock_guard<std::mutex> lock(mu_);
  lease_ = *lease;
  lease_ok_at_ = std::chrono::steady_clock::now();
  return {};
}

void etcd_member::renew_loop() {
  const auto period = std::chrono::milliseconds(cfg_.lease_seconds * 1000 / 3);
  auto next = std::chrono::steady_clock::now() + period;
  std::string last;
  while (!stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (std::chrono::steady_clock::now() < next)
      continue;
    next = std::chrono::steady_clock::now() + period;
    std::int64_t lease = 0;
    std::string state;
    {
      std::lock_guard<std::mutex> lock(mu_);
      lease = lease_;
      state = state_;
    }
    auto ttl = renew_etcd_.keep_alive(lease);
    std::string problem;
    if (!ttl) {
      problem = "cannot renew its etcd lease: " + ttl.err().message;
    } else if (*ttl == 0) {
      // Expired (a pause longer than the lease, or etcd lost it): the
      // others saw this node leave; it registers again, as a new
      // registration, at the back of the election.
      if (auto s = register_node(); !s)
        problem =
            "its etcd lease expired and it cannot register again: " + s.err().message;
      else
        std::fprintf(stderr, "shardrec-node: etcd lease expired; registered again\n");
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      lease_ok_at_ = std::chrono::steady_clock::now();
    }
    if (problem != last && !problem.empty())
      std::fprintf(stderr, "shardrec-node: %s\n", problem.c_str());
    last = problem;
  }
}

void etcd_member::control_loop() {
  while (!stop_) {
    tick();
    std::this_thread::sleep_for(tick_period);
  }
}

void etcd_member::tick() {
  auto kvs = etcd_.list(cfg_.prefix + "/");
  if (!kvs) {
    if (kvs.err().message != last_error_)
      std::fprintf(stderr, "shardrec-node: %s\n", kvs.err().message.c_str());
    last_error_ = kvs.err().message;
    return;
  }
  last_error_.clear();
  view v;
  std::int64_t lowest = 0;
  for (const auto& kv : *kvs) {
    const auto rest = kv.key.substr(cfg_.prefix.size() + 1);
    if (rest == "map") {
      auto m = map_from_json(kv.value, &v.moving, &v.replicas);
      if (!m) {
        std::fprintf(stderr, "shardrec-node: %s (ignored)\n", m.err().message.c_str());
        continue;
      }
      v.map = std::move(*m);
      v.map_revision = kv.mod_revision;
    } else if (rest.rfind("nodes/", 0) == 0) {
      auto j = nlohmann::json::parse(kv.value, nullptr, false);
      try {
        node_info n{j.at("id").get<std::uint32_t>(), j.at("host").get<std::string>(),
                    j.at("port").get<std::uint16_t>(), j.value("state", "joining"),
                    false};
        v.nodes[n.id] = {n, kv.create_revision};
      } catch (const std::exception&) {
        std::fprintf(stderr, "shardrec-node: etcd key %s is not a node (ignored)\n",
                     kv.key.c_str());
      }
    } else if (rest.rfind("election/", 0) == 0) {
      try {
        const auto id = static_cast<std::uint32_t>(std::stoul(kv.value));
        if (!v.controller || kv.create_revision < lowest) {
          v.controller = id;
          lowest = kv.create_revision;
        }
      } catch (const std::exception&) {
      }
    } else if (rest.rfind("ready/", 0) == 0 || rest.rfind("lagging/", 0) == 0) {
      const bool ready = rest[0] == 'r';
      auto key = pair_key(rest.substr(ready ? 6 : 8));
      try {
        if (key)
          (ready ? v.ready : v.lagging)[*key] = std::stoull(kv.value);
      } catch (const std::exception&) {
      }
    } else if (rest.rfind("drain/", 0) == 0) {
      try {
        v.drain.insert(static_cast<std::uint32_t>(std::stoul(rest.substr(6))));
      } catch (const std::exception&) {
      }
    }
  }
  take_drain_requests();
  report_lagging();
  publish_registry(v);
  if (v.drain.count(id_) != 0)
    drain(v);
  bool lease_fresh = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    lease_fresh = std::chrono::steady_clock::now() - lease_ok_at_
                  < std::chrono::seconds(cfg_.lease_seconds);
  }
  // A node that cannot renew its lease may have lost it already: it does
  // not act as the controller then.
  if (v.controller == id_ && lease_fresh)
    control(v);
  apply(v);
}

// The nodes etcd knows, with their states, for status replies.
void etcd_member::publish_registry(const view& v) {
  partition_map r;
  for (const auto& [id, n] : v.nodes) {
    r.nodes.push_back(n.info);
    r.nodes.back().controller = v.controller == id;
  }
  auto f = actors::encode(r);
  if (f.bytes == last_registry_)
    return;
  last_registry_ = f.bytes;
  caf::anon_send(coordinator_, actors::nodes_atom::value, std::move(f));
}

// The controller. In this order, one change per tick: the first map;
// failover (a follower of a lost primary takes over with a new epoch) and
// followers dropped (down, draining, or reported lagging); moves called
// off whose target is down or whose source is no longer the owner; a move
// in progress flipped once every copy is ready; then joins, leaves, drains
// and missing followers planned into one new map (when the cluster holds
// data, one that lists the copies to make while the owners keep serving).
void etcd_member::control(const view& v) {
  std::set<std::uint32_t> live;
  for (const auto& [id, n] : v.nodes)
    live.insert(id);
  auto put_map = [&](const partition_map& m, std::uint32_t replicas,
                     const std::vector<move>& moving, std::int64_t revision) {
    auto put =
        etcd_.put_if(cfg_.prefix + "/map", map_to_json(m, replicas, moving), revision);
    return put && *put;
  };
  if (!v.map) {
    partition_map m;
    m.version = 1;
    m.partitions = cfg_.partitions;
    std::set<std::uint32_t> serving;
    for (const auto& [id, n] : v.nodes) {
      m.nodes.push_back({id, n.info.host, n.info.port, {}, false});
      serving.insert(id);
    }
    if (m.nodes.empty())
      return;
    // Every partition on the first node, then spread as a join spreads
    // them, with its followers.
    m.owner.assign(m.partitions, m.nodes.front().id);
    m.epoch.assign(m.partitions, 1);
    m.followers.assign(m.partitions, {});
    for (const auto& mv : plan_moves(m, serving, {}))
      m.owner[mv.partition] = mv.to;
    const auto replicas = cfg_.replicas;
    apply_moves(m, plan_followers(m, {}, replicas ? replicas : 2, serving, live));
    if (put_map(m, replicas, {}, 0))
      std::fprintf(stderr,
                   "shardrec-node: controller: new cluster, %u partitions on %zu "
                   "node(s) (map version 1)\n",
                   m.partitions, m.nodes.size());
    return;
  }
  const std::uint32_t replicas = v.replicas ? v.replicas : 2;
  partition_map m = *v.map;
  // Failover, and followers that cannot serve as copies any more.
  std::size_t promoted = 0, dropped = 0;
  auto lagging = [&](std::uint32_t p, std::uint32_t id) {
    auto it = v.lagging.find({p, id});
    return it != v.lagging.end() && it->second == m.epoch[p];
  };
  for (std::uint32_t p = 0; p < m.partitions; ++p) {
    auto& f = m.followers[p];
    // A primary that reports itself came back within its lease (its log
    // may lack records its followers have): a new epoch, on a follower if
    // one can take it, else on itself.
    const bool restarted = v.live(m.owner[p]) && lagging(p, m.owner[p]);
    if (!v.live(m.owner[p]) || restarted) {
      auto next = std::find_if(f.begin(), f.end(), [&](std::uint32_t id) {
        return v.live(id) && !lagging(p, id);
      });
      if (next != f.end()) {
        m.owner[p] = *next;
        f.erase(next);
        ++m.epoch[p];
        ++promoted;
      } else if (restarted) {
        ++m.epoch[p];
        ++promoted;
      }
    }
    const auto before = f.size();
    f.erase(std::remove_if(f.begin(), f.end(),
                           [&](std::uint32_t id) {
                             return !v.live(id) || v.drain.count(id) != 0
                                    || lagging(p, id);
                           }),
            f.end());
    dropped += before - f.size();
  }
  std::vector<move> kept;
  for (const auto& mv : v.moving)
    if (v.live(mv.to) && m.owner[mv.partition] == mv.from)
      kept.push_back(mv);
  // A report is done with once the map in etcd no longer lists that
  // follower in that epoch (its primary reports again while it does).
  auto done_reports = [&](const partition_map& stored) {
    for (const auto& [key, epoch] : v.lagging) {
      const auto& [p, id] = key;
      const bool listed =
          p < stored.partitions && stored.epoch[p] == epoch
          && (stored.owner[p] == id
              || std::count(stored.followers[p].begin(), stored.followers[p].end(), id)
                     != 0);
      if (!listed)
        (void)etcd_.erase(cfg_.prefix + "/lagging/" + pair_name(p, id));
    }
  };
  if (promoted > 0 || dropped > 0 || kept.size() < v.moving.size()) {
    ++m.version;
    if (put_map(m, v.replicas, kept, v.map_revision)) {
      done_reports(m);
      std::fprintf(
          stderr,
          "shardrec-node: controller: map version %llu: %zu partition(s) failed "
          "over to a follower, %zu follower(s) dropped, %zu move(s) called off\n",
          static_cast<unsigned long long>(m.version), promoted, dropped,
          v.moving.size() - kept.size());
    }
    return;
  }
  done_reports(*v.map);
  if (!v.moving.empty()) {
    // A move in progress: the map flips once every target holds its copy.
    // A round whose copies take longer than copy_deadline (a target that
    // keeps failing to fetch while its lease lives) is called off but for
    // the copies made, so that its sources do not stay frozen.
    const auto now = std::chrono::steady_clock::now();
    if (moves_version_ != m.version) {
      moves_version_ = m.version;
      moves_seen_ = now;
    }
    if (!std::all_of(v.moving.begin(), v.moving.end(),
                     [&](const move& mv) { return v.is_ready(mv); })) {
      if (now - moves_seen_ < copy_deadline)
        return;
      std::vector<move> made;
      for (const auto& mv : v.moving)
        if (v.is_ready(mv))
          made.push_back(mv);
      apply_moves(m, made);
      ++m.version;
      if (put_map(m, v.replicas, {}, v.map_revision)) {
        std::fprintf(stderr,
                     "shardrec-node: controller: %zu partition cop(ies) not made within "
                     "%lld s: called off, %zu made (map version %llu)\n",
                     v.moving.size() - made.size(),
                     static_cast<long long>(copy_deadline.count()), made.size(),
                     static_cast<unsigned long long>(m.version));
        for (const auto& mv : v.moving)
          (void)etcd_.erase(cfg_.prefix + "/ready/" + pair_name(mv.partition, mv.to));
      }
      return;
    }
    apply_moves(m, v.moving);
    ++m.version;
    if (put_map(m, v.replicas, {}, v.map_revision)) {
      std::fprintf(stderr,
                   "shardrec-node: controller: %zu partition cop(ies) made (map version "
                   "%llu)\n",
                   v.moving.size(), static_cast<unsigned long long>(m.version));
      for (const auto& mv : v.moving)
        (void)etcd_.erase(cfg_.prefix + "/ready/" + pair_name(mv.partition, mv.to));
    }
    return;
  }
  std::size_t joined = 0, left = 0;
  for (const auto& [id, n] : v.nodes)
    if (std::none_of(m.nodes.begin(), m.nodes.end(),
                     [&](const node_info& x) { return x.id == id; })
        && !v.drain.count(id)) {
      m.nodes.push_back({id, n.info.host, n.info.port, {}, false});
      ++joined;
    }
  // A node that holds nothing leaves the map once it is down (drained, or
  // gone before its moves were done); it joins again if it comes back.
  std::set<std::uint32_t> serving, draining;
  for (auto it = m.nodes.begin(); it != m.nodes.end();) {
    const auto id = it->id;
    if (!holds_any(m, id) && !v.live(id)) {
      it = m.nodes.erase(it);
      if (v.drain.count(id) != 0)
        (void)etcd_.erase(cfg_.prefix + "/drain/" + std::to_string(id));
      ++left;
      continue;
    }
    if (v.live(id))
      (v.drain.count(id) != 0 ? draining : serving).insert(id);
    ++it;
  }
  auto moves = plan_moves(m, serving, draining);
  auto copies = plan_followers(m, moves, replicas, serving, live);
  if (joined == 0 && left == 0 && moves.empty() && copies.empty())
    return;
  std::sort(m.nodes.begin(), m.nodes.end(),
            [](const node_info& a, const node_info& b) { return a.id < b.id; });
  ++m.version;
  // Partitions are copied to their new owners and followers first (the map
  // lists the moves; the owners flip once every copy is made), even in a
  // cluster that held no data when it was asked: a write may reach an old
  // owner until it serves the new map, and a copy keeps it. A cluster
  // without data also places every follower anew (balanced over all
  // serving nodes): copies of empty partitions are quick.
  bool holds_data = true;
  if (!moves.empty() || !copies.empty()) {
    caf::scoped_actor self{sys_};
    std::uint64_t events = 0, items = 0;
    bool known = false;
    self->request(coordinator_, ask_timeout, actors::status_atom::value)
        .receive(
            [&](const actors::frame& f) {
              auto s = actors::decode_status_reply(f);
              if (!s || !s->missing.empty())
                return;
              known = true;
              for (const auto& p : s->partitions) {
                events += p.user_events;
                items += p.items;
              }
            },
            [&](caf::error&) {});
    if (!known)
      return; // a partition did not answer: try again on the next tick
    holds_data = events > 0 || items > 0;
  }
  if (!holds_data) {
    for (auto& f : m.followers)
      f.clear();
    copies = plan_followers(m, moves, replicas, serving, live);
  }
  moves.insert(moves.end(), copies.begin(), copies.end());
  if (put_map(m, v.replicas, moves, v.map_revision))
    std::fprintf(stderr,
                 "shardrec-node: controller: map version %llu: %zu node(s), %zu joined, "
                 "%zu left, %zu partition(s) moving, %zu follower(s) copying%s\n",
                 static_cast<unsigned long long>(m.version), m.nodes.size(), joined, left,
                 moves.size() - copies.size(), copies.size(),
                 holds_data ? "" : " (no data yet: every follower placed anew)");
}

// Every node: hosts its share of the newest map, installs it once every
// live node hosts its share, and takes the new handles of a node that came
// back.
void etcd_member::apply(const view& v) {
  if (!v.map)
    return;
  const auto& m = *v.map;
  caf::scoped_actor self{sys_};
  struct share {
    std::uint64_t version = 0;
    std::vector<std::uint32_t> parts;
    std::vector<caf::actor> shards;
    caf::actor scorer;
    bool ok = false;
  };
  // Asks node `n` for its share (this node: its own membership).
  auto ask = [&](const node_info& n) {
    share s;
    caf::actor target = membership_;
    if (n.id != id_) {
      auto peer = sys_.middleman().remote_actor(n.host, n.port);
      if (!peer)
        return s;
      target = *peer;
    }
    self->request(target, ask_timeout, actors::hello_atom::value, m.version)
        .receive(
            [&](std::uint32_t id, std::uint64_t version,
                std::vector<std::uint32_t>& parts, std::vector<caf::actor>& shards,
                caf::actor& scorer) {
              if (id != n.id)
                return;
              s = {version, std::move(parts), std::move(shards), std::move(scorer), true};
            },
            [&](caf::error&) {});
    return s;
  };
  auto in_map = [&](std::uint32_t id) {
    return std::any_of(m.nodes.begin(), m.nodes.end(),
                       [&](const node_info& n) { return n.id == id; });
  };
  if (m.version > installed_version_ || roles_version_ < m.version) {
    if (!in_map(id_)) {
      return; // not admitted yet
    }
    if (assigned_version_ < m.version) {
      bool ok = false;
      self->request(membership_, ask_timeout, actors::assign_atom::value,
                    actors::encode(m))
          .receive([&](const std::vector<std::uint32_t>&, const std::vector<caf::actor>&,
                       const caf::actor&) { ok = true; },
                   [&](caf::error& err) {
                     std::fprintf(
                         stderr,
                         "shardrec-node: cannot host this node's partitions of map "
                         "version %llu: %s\n",
                         static_cast<unsigned long long>(m.version),
                         sys_.render(err).c_str());
                   });
      if (!ok)
        return;
      assigned_version_ = m.version;
    }
    std::vector<caf::actor> shards(m.partitions);
    std::vector<caf::actor> scorers(m.nodes.size());
    std::vector<std::vector<caf::actor>> followers(m.partitions);
    for (std::uint32_t p = 0; p < m.partitions; ++p)
      followers[p].resize(m.followers[p].size());
    std::map<std::uint32_t, std::int64_t> known;
    for (std::size_t k = 0; k < m.nodes.size(); ++k) {
      const auto& n = m.nodes[k];
      if (n.id != id_ && !v.live(n.id))
        continue; // down: its partitions answer when it is back
      auto s = ask(n);
      if (!s.ok || s.version < m.version)
        return; // not ready yet: ask again on the next tick
      for (std::size_t i = 0; i < s.parts.size() && i < s.shards.size(); ++i) {
        const auto p = s.parts[i];
        if (p >= m.partitions)
          continue;
        if (m.owner[p] == n.id)
          shards[p] = s.shards[i];
        for (std::size_t f = 0; f < m.followers[p].size(); ++f)
          if (m.followers[p][f] == n.id)
            followers[p][f] = s.shards[i];
      }
      scorers[k] = s.scorer;
      if (n.id != id_)
        known[n.id] = v.nodes.at(n.id).registration;
    }
    std::vector<caf::actor> flat;
    for (const auto& f : followers)
      flat.insert(flat.end(), f.begin(), f.end());
    caf::anon_send(membership_, actors::install_atom::value, actors::encode(m), shards,
                   scorers, flat);
    installed_version_ = roles_version_ = m.version;
    known_ = std::move(known);
    become_serving();
    return;
  }
  if (installed_version_ > 0)
    become_serving(); // a restarted node hosts its partitions of the map it had
  if (m.version == installed_version_) {
    take_moves(v);
    thaw_kept(v);
  }
  // A live node of the map whose registration this node has not seen: a
  // node that came back (new shard handles) or that was down at install.
  for (const auto& n : m.nodes) {
    if (n.id == id_ || !v.live(n.id))
      continue;
    const auto reg = v.nodes.at(n.id).registration;
    if (auto it = known_.find(n.id); it != known_.end() && it->second == reg)
      continue;
    auto s = ask(n);
    if (!s.ok || s.version < installed_version_)
      continue;
    caf::anon_send(coordinator_, actors::hello_atom::value, n.id, s.parts, s.shards,
                   s.scorer, caf::actor{});
    known_[n.id] = reg;
    // Its shards are new: the primaries here get their followers' new
    // handles with a fresh install.
    roles_version_ = 0;
  }
}

// The partitions the map moves to this node: their folders copied from
// their owners, then PREFIX/ready/P tells the controller.
void etcd_member::take_moves(const view& v) {
  for (const auto& mv : v.moving) {
    if (mv.to != id_)
      continue;
    if (v.is_ready(mv))
      continue;
    auto from = std::find_if(v.map->nodes.begin(), v.map->nodes.end(),
                             [&](const node_info& n) { return n.id == mv.from; });
    if (from == v.map->nodes.end() || !v.live(mv.from))
      continue; // its owner is down: wait for it
    const auto t0 = std::chrono::steady_clock::now();
    auto fetched = fetch_partition(mv.partition, *from);
    if (!fetched) {
      std::fprintf(stderr,
                   "shardrec-node: cannot copy partition %u from node %u (will "
                   "retry): %s\n",
                   mv.partition, mv.from, fetched.err().message.c_str());
      continue;
    }
    std::fprintf(
        stderr, "shardrec-node: copied partition %u from node %u in %.2f s\n",
        mv.partition, mv.from,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (auto put = etcd_.put(cfg_.prefix + "/ready/" + pair_name(mv.partition, id_),
                             std::to_string(v.map->version));
        !put)
      std::fprintf(stderr, "shardrec-node: %s\n", put.err().message.c_str());
  }
}

// Copies partition p's folder (a snapshot of everything and its log, made
// when the owner exported it: from then on it takes no writes) into this
// node's data folder, through pNNNNN.incoming.
core::status etcd_member::fetch_partition(std::uint32_t p, const node_info& from) {
  auto peer = sys_.middleman().remote_actor(from.host, from.port);
  if (!peer)
    return make_error(errc::io_error, "node " + std::to_string(from.id) + " at "
                                          + from.host + ":" + std::to_string(from.port)
                                          + ": " + sys_.render(peer.error()));
  caf::scoped_actor self{sys_};
  std::vector<std::string> files;
  std::vector<std::uint64_t> sizes;
  std::string failure;
  self->request(*peer, std::chrono::seconds(120), actors::export_atom::value, p)
      .receive(
          [&](std::vector<std::string>& f, std::vector<std::uint64_t>& s) {
            files = std::move(f);
            sizes = std::move(s);
          },
          [&](caf::error& err) { failure = "export: " + sys_.render(err); });
  if (!failure.empty())
    return make_error(errc::io_error, failure);
  // Fault injection for tests: a pause between the export (the source takes
  // no writes from now on) and the copy, to kill a node during a move.
  if (const char* pause = std::getenv("SHARDREC_FAULT_COPY_PAUSE_MS"))
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(pause)));
  actors::durability dur;
  dur.data_dir = cfg_.data_dir;
  const std::filesystem::path dir = actors::partition_dir(dur, p);
  const std::filesystem::path incoming = dir.string() + ".incoming";
  std::error_code ec;
  std::filesystem::remove_all(incoming, ec);
  for (std::size_t k = 0; k < files.size() && k < sizes.size(); ++k) {
    const auto target = incoming / files[k];
    std::filesystem::create_directories(target.parent_path(), ec);
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    if (!out)
      return make_error(errc::io_error, "cannot write " + target.string());
    std::uint64_t offset = 0;
    while (offset < sizes[k]) {
      actors::frame chunk;
      self->request(*peer, std::chrono::seconds(30), actors::fetch_atom::value, p,
                    files[k], offset)
          .receive([&](actors::frame& f) { chunk = std::move(f); },
                   [&](caf::error& err) { failure = "fetch: " + sys_.render(err); });
      if (!failure.empty())
        return make_error(errc::io_error, failure);
      if (chunk.bytes.empty())
        return make_error(errc::io_error, files[k] + " ended at " + std::to_string(offset)
                                              + " of " + std::to_string(sizes[k])
                                              + " bytes");
      out.write(reinterpret_cast<const char*>(chunk.bytes.data()),
                static_cast<std::streamsize>(chunk.bytes.size()));
      offset += chunk.bytes.size();
    }
    out.flush();
    if (!out)
      return make_error(errc::io_error, "cannot write " + target.string());
  }
  // Synced before the rename makes it this node's partition folder.
  for (auto e = std::filesystem::recursive_directory_iterator(incoming, ec);
       !ec && e != std::filesystem::recursive_directory_iterator(); e.increment(ec))
    if (e->is_regular_file())
      if (auto s = storage::sync_file(e->path().string()); !s)
        return s;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir.parent_path(), ec);
  std::filesystem::rename(incoming, dir, ec);
  if (ec)
    return make_error(errc::io_error, "cannot rename " + incoming.string() + " to "
                                          + dir.string() + ": " + ec.message());
  return storage::sync_dir(dir.parent_path().string());
}

// A partition this node exported for a move that was called off (it still
// owns it and no move lists it): it takes writes again.
void etcd_member::thaw_kept(const view& v) {
  if (thawed_version_ == v.map->version)
    return;
  thawed_version_ = v.map->version;
  for (std::uint32_t p = 0; p < v.map->owner.size(); ++p)
    if (v.map->owner[p] == id_
        && std::none_of(v.moving.begin(), v.moving.end(),
                        [&](const move& mv) { return mv.partition == p; }))
      caf::anon_send(membership_, actors::export_atom::value, p, false);
}

// Drain requests that reached this node's coordinator (shardrec drain):
// into etcd, where the controller acts on them.
void etcd_member::take_drain_requests() {
  for (auto id : ask_local<std::vector<std::uint32_t>>(sys_, coordinator_,
                                                       actors::drain_atom::value))
    if (auto put = etcd_.put(cfg_.prefix + "/drain/" + std::to_string(id), "1"); !put)
      std::fprintf(stderr, "shardrec-node: cannot record the drain of node %u: %s\n", id,
                   put.err().message.c_str());
}

// Followers this node's primaries cannot bring up to date (their reports
// reached its membership): into etcd, where the controller drops them.
void etcd_member::report_lagging() {
  const auto l = ask_local<std::vector<std::uint64_t>>(sys_, membership_,
                                                       actors::lagging_atom::value);
  for (std::size_t k = 0; k + 2 < l.size(); k += 3) {
    const auto key = cfg_.prefix + "/lagging/"
                     + pair_name(static_cast<std::uint32_t>(l[k]),
                                 static_cast<std::uint32_t>(l[k + 1]));
    if (auto put = etcd_.put(key, std::to_string(l[k + 2])); !put)
      std::fprintf(stderr, "shardrec-node: %s\n", put.err().message.c_str());
  }
}

// This node is drained: it says so, and once the map it serves gives it no
// partition (and the nodes that still routed to it had the grace period of
// its moved partitions) it leaves.
void etcd_member::drain(const view& v) {
  set_state("draining");
  const bool owns =
      v.map && v.map->version == installed_version_ && holds_any(*v.map, id_);
  const bool moving = std::any_of(v.moving.begin(), v.moving.end(),
                                  [&](const move& mv) { return mv.from == id_; });
  if (!v.map || v.map->version != installed_version_ || owns || moving) {
    drained_at_.reset();
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (!drained_at_)
    drained_at_ = now;
  if (now - *drained_at_ >= std::chrono::seconds(11) && !leave_) {
    std::fprintf(stderr,
                 "shardrec-node: drained: this node owns no partition; leaving\n");
    leave_ = true;
  }
}

void etcd_member::set_state(const std::string& state) {
  std::int64_t lease = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == state)
      return;
    state_ = state;
    lease = lease_;
  }
  if (auto r = etcd_.put(node_key(id_), node_value(state), lease); !r)
    std::fprintf(stderr, "shardrec-node: cannot tell etcd this node is %s: %s\n",
                 state.c_str(), r.err().message.c_str());
}

void etcd_member::become_serving() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (serving_)
      return;
    serving_ = true;
  }
  set_state("serving");
}

core::status etcd_member::wait_serving(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (serving_)
        return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return make_error(errc::io_error,
                    "no partition map that lists this node arrived from etcd "
                        + etcd::to_string(cfg_.endpoints) + " within "
                        + std::to_string(timeout.count() / 1000) + " s");
}

} // namespace shardrec::node
