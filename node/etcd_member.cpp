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

// A partition the map moves from one node to another.
struct move {
  std::uint32_t partition = 0, from = 0, to = 0;
};

std::string map_to_json(const partition_map& m, const std::vector<move>& moving = {}) {
  nlohmann::json j{
      {"version", m.version}, {"partitions", m.partitions}, {"owner", m.owner}};
  auto& nodes = j["nodes"] = nlohmann::json::array();
  for (const auto& n : m.nodes)
    nodes.push_back({{"id", n.id}, {"host", n.host}, {"port", n.port}});
  auto& mv = j["moving"] = nlohmann::json::array();
  for (const auto& x : moving)
    mv.push_back({{"partition", x.partition}, {"from", x.from}, {"to", x.to}});
  return j.dump();
}

// The moves that empty the `draining` nodes and leave the `serving` ones
// within one partition of each other: each from the node with the most (a
// draining one first; its highest partition first) to the serving node with
// the fewest, ties to the lowest id. The partitions of nodes in neither set
// (down) stay where they are.
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
    const auto p = from->second.back();
    from->second.pop_back();
    fewest->second.push_back(p);
    out.push_back({p, from->first, fewest->first});
  }
}

// A map read from etcd; an error names what is wrong with it.
core::result<partition_map> map_from_json(const std::string& text,
                                          std::vector<move>* moving = nullptr) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  partition_map m;
  try {
    if (moving != nullptr && j.is_object() && j.contains("moving"))
      for (const auto& x : j.at("moving"))
        moving->push_back({x.at("partition").get<std::uint32_t>(),
                           x.at("from").get<std::uint32_t>(),
                           x.at("to").get<std::uint32_t>()});
    if (j.is_discarded() || !j.is_object())
      throw std::runtime_error("not a JSON object");
    m.version = j.at("version").get<std::uint64_t>();
    m.partitions = j.at("partitions").get<std::uint32_t>();
    m.owner = j.at("owner").get<std::vector<std::uint32_t>>();
    for (const auto& n : j.at("nodes"))
      m.nodes.push_back({n.at("id").get<std::uint32_t>(),
                         n.at("host").get<std::string>(),
                         n.at("port").get<std::uint16_t>(),
                         {},
                         false});
  } catch (const std::exception& ex) {
    return make_error(errc::bad_message, std::string("the map in etcd: ") + ex.what());
  }
  if (m.partitions == 0 || m.owner.size() != m.partitions || m.nodes.empty())
    return make_error(errc::bad_message,
                      "the map in etcd: owner must list one node per partition");
  for (auto o : m.owner)
    if (std::none_of(m.nodes.begin(), m.nodes.end(),
                     [&](const node_info& n) { return n.id == o; }))
      return make_error(errc::bad_message, "the map in etcd: owner " + std::to_string(o)
                                               + " is not one of its nodes");
  return m;
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
  std::vector<move> moving;                   // of this map
  std::map<std::uint32_t, std::string> ready; // partition -> "TO@VERSION"
  std::int64_t map_revision = 0;              // mod revision of PREFIX/map (0: none)
  std::map<std::uint32_t, registered> nodes;
  std::optional<std::uint32_t> controller;
  std::set<std::uint32_t> drain; // nodes asked to drain (PREFIX/drain/ID)

  bool live(std::uint32_t id) const { return nodes.count(id) != 0; }
};

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
      auto m = map_from_json(kv.value, &v.moving);
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
    } else if (rest.rfind("ready/", 0) == 0) {
      try {
        v.ready[static_cast<std::uint32_t>(std::stoul(rest.substr(6)))] = kv.value;
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

// The controller: the first map, and joining nodes admitted into a new one.
void etcd_member::control(const view& v) {
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
    // Every partition on the first node, then spread as a join spreads them.
    m.owner.assign(m.partitions, m.nodes.front().id);
    for (const auto& mv : plan_moves(m, serving, {}))
      m.owner[mv.partition] = mv.to;
    auto put = etcd_.put_if(cfg_.prefix + "/map", map_to_json(m), 0);
    if (put && *put)
      std::fprintf(stderr,
                   "shardrec-node: controller: new cluster, %u partitions on %zu "
                   "node(s) (map version 1)\n",
                   m.partitions, m.nodes.size());
    return;
  }
  if (!v.moving.empty()) {
    // A move whose new owner is gone (its lease expired) is called off: the
    // partition stays with its owner, which takes writes again.
    std::vector<move> kept;
    for (const auto& mv : v.moving)
      if (v.live(mv.to))
        kept.push_back(mv);
    if (kept.size() < v.moving.size()) {
      partition_map m = *v.map;
      ++m.version;
      auto put = etcd_.put_if(cfg_.prefix + "/map", map_to_json(m, kept), v.map_revision);
      if (put && *put)
        std::fprintf(stderr,
                     "shardrec-node: controller: %zu move(s) called off, their new owner "
                     "is down (map version %llu)\n",
                     v.moving.size() - kept.size(),
                     static_cast<unsigned long long>(m.version));
      return;
    }
    // A move in progress: the map flips once every new owner holds its
    // partitions' folders (PREFIX/ready/P = "TO@VERSION").
    for (const auto& mv : v.moving) {
      auto it = v.ready.find(mv.partition);
      if (it == v.ready.end()
          || it->second != std::to_string(mv.to) + "@" + std::to_string(v.map->version))
        return;
    }
    partition_map m = *v.map;
    for (const auto& mv : v.moving)
      m.owner[mv.partition] = mv.to;
    ++m.version;
    auto put = etcd_.put_if(cfg_.prefix + "/map", map_to_json(m), v.map_revision);
    if (put && *put) {
      std::fprintf(
          stderr,
          "shardrec-node: controller: %zu partition(s) moved (map version %llu)\n",
          v.moving.size(), static_cast<unsigned long long>(m.version));
      for (const auto& mv : v.moving)
        (void)etcd_.erase(cfg_.prefix + "/ready/" + std::to_string(mv.partition));
    }
    return;
  }
  partition_map m = *v.map;
  std::size_t joined = 0, left = 0;
  for (const auto& [id, n] : v.nodes)
    if (std::none_of(m.nodes.begin(), m.nodes.end(),
                     [&](const node_info& x) { return x.id == id; })
        && !v.drain.count(id)) {
      m.nodes.push_back({id, n.info.host, n.info.port, {}, false});
      ++joined;
    }
  // A node that owns nothing leaves the map once it is down (drained, or
  // gone before its moves were done); it joins again if it comes back.
  std::set<std::uint32_t> serving, draining;
  for (auto it = m.nodes.begin(); it != m.nodes.end();) {
    const auto id = it->id;
    const bool owns = std::count(m.owner.begin(), m.owner.end(), id) > 0;
    if (!owns && !v.live(id)) {
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
  if (joined == 0 && left == 0 && moves.empty())
    return;
  std::sort(m.nodes.begin(), m.nodes.end(),
            [](const node_info& a, const node_info& b) { return a.id < b.id; });
  ++m.version;
  // A cluster that holds data copies the moving partitions' folders first
  // (the map lists the moves; the owners flip once they are copied); an
  // empty one just reassigns them.
  bool holds_data = false;
  if (!moves.empty()) {
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
  if (!holds_data) // nothing to copy: the owners change at once
    for (const auto& mv : moves)
      m.owner[mv.partition] = mv.to;
  auto put = etcd_.put_if(cfg_.prefix + "/map",
                          map_to_json(m, holds_data ? moves : std::vector<move>{}),
                          v.map_revision);
  if (put && *put)
    std::fprintf(stderr,
                 "shardrec-node: controller: map version %llu: %zu node(s), %zu joined, "
                 "%zu left, %zu partition(s) %s\n",
                 static_cast<unsigned long long>(m.version), m.nodes.size(), joined, left,
                 moves.size(), holds_data ? "moving" : "reassigned");
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
  if (m.version > installed_version_) {
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
    std::map<std::uint32_t, std::int64_t> known;
    for (std::size_t k = 0; k < m.nodes.size(); ++k) {
      const auto& n = m.nodes[k];
      if (n.id != id_ && !v.live(n.id))
        continue; // down: its partitions answer when it is back
      auto s = ask(n);
      if (!s.ok || s.version < m.version)
        return; // not ready yet: ask again on the next tick
      for (std::size_t i = 0; i < s.parts.size() && i < s.shards.size(); ++i)
        if (s.parts[i] < m.partitions && m.owner[s.parts[i]] == n.id)
          shards[s.parts[i]] = s.shards[i];
      scorers[k] = s.scorer;
      if (n.id != id_)
        known[n.id] = v.nodes.at(n.id).registration;
    }
    caf::anon_send(membership_, actors::install_atom::value, actors::encode(m), shards,
                   scorers);
    installed_version_ = m.version;
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
  }
}

// The partitions the map moves to this node: their folders copied from
// their owners, then PREFIX/ready/P tells the controller.
void etcd_member::take_moves(const view& v) {
  for (const auto& mv : v.moving) {
    if (mv.to != id_)
      continue;
    const auto ready = std::to_string(id_) + "@" + std::to_string(v.map->version);
    if (auto it = v.ready.find(mv.partition); it != v.ready.end() && it->second == ready)
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
    if (auto put =
            etcd_.put(cfg_.prefix + "/ready/" + std::to_string(mv.partition), ready);
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
  caf::scoped_actor self{sys_};
  std::vector<std::uint32_t> ids;
  self->request(coordinator_, ask_timeout, actors::drain_atom::value)
      .receive([&](std::vector<std::uint32_t>& d) { ids = std::move(d); },
               [&](caf::error&) {});
  for (auto id : ids)
    if (auto put = etcd_.put(cfg_.prefix + "/drain/" + std::to_string(id), "1"); !put)
      std::fprintf(stderr, "shardrec-node: cannot record the drain of node %u: %s\n", id,
                   put.err().message.c_str());
}

// This node is drained: it says so, and once the map it serves gives it no
// partition (and the nodes that still routed to it had the grace period of
// its moved partitions) it leaves.
void etcd_member::drain(const view& v) {
  set_state("draining");
  const bool owns = v.map && v.map->version == installed_version_
                    && std::count(v.map->owner.begin(), v.map->owner.end(), id_) > 0;
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
