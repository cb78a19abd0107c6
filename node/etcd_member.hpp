// A node's membership in etcd (shardrec-node --etcd). etcd holds, under
// PREFIX (default /shardrec):
//   PREFIX/next_id           the next node id (a counter, taken by a guarded put)
//   PREFIX/nodes/ID          {"id","host","port","state"}, on this node's lease:
//                            it vanishes when the node stops renewing it
//   PREFIX/election/ID       on the node's lease; the node whose key has the
//                            lowest create revision is the controller
//   PREFIX/map               the partition map (JSON: version, partitions,
//                            replicas, nodes, owner, epoch, followers, moving),
//                            changed only by a put guarded by its mod
//                            revision, and only by the controller
//   PREFIX/drain/ID          node ID is to hand its partitions to the others
//                            and leave (shardrec drain ID)
//   PREFIX/ready/P.TO        VERSION: node TO holds its copy of partition P's
//                            folder for the moves the map of VERSION lists
//   PREFIX/lagging/P.ID      EPOCH: P's primary of that epoch cannot bring its
//                            follower on node ID up to date (the controller
//                            drops it, then copies P to a follower anew)
// Every node renews its lease on one thread and, on another, reads PREFIX
// every 200 ms: the controller promotes a follower of each partition whose
// primary's lease expired (a new epoch), drops followers that are down,
// draining or lagging, and admits joining nodes and places missing
// followers into a new map (when the cluster holds data, one that lists the
// partitions to copy while their owners keep serving; once each target has
// copied its partitions' folders, a map that flips their owners or adds the
// followers); every
// node hosts its share of the newest map, asks each live node for its share
// of that map (hello_atom, version) and installs the map once all have it;
// a node that comes back (a new registration) is asked again. No consensus
// of our own: etcd orders every change.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/messages.hpp"
#include "core/error.hpp"
#include "etcd/client.hpp"

namespace shardrec::node {

struct etcd_member_config {
  std::vector<etcd::endpoint> endpoints;
  std::string prefix = "/shardrec";
  std::int64_t lease_seconds = 3;
  std::string host; // this node's address as the others reach it
  std::uint16_t port = 0;
  std::uint32_t partitions = 64; // of a new cluster (the first map)
  std::uint32_t replicas = 0;    // of a new cluster (0: 2, as nodes allow)
  std::string data_dir;          // where moved partitions' folders go
  // A node restarted with its data folder: its id and the map it installed.
  std::optional<std::uint32_t> node_id;
  std::uint64_t installed_version = 0;
};

class etcd_member {
public:
  etcd_member(caf::actor_system& sys, caf::actor coordinator, caf::actor membership,
              etcd_member_config cfg);
  // Stops both threads and revokes the lease: the node leaves at once.
  ~etcd_member();
  etcd_member(const etcd_member&) = delete;
  etcd_member& operator=(const etcd_member&) = delete;

  // Takes a node id (a new node), grants the lease, registers as joining
  // and starts the threads. An error if etcd does not answer.
  core::status start();
  // Blocks until this node serves its share of an installed map (ok) or
  // `timeout` passes.
  core::status wait_serving(std::chrono::milliseconds timeout);
  std::uint32_t node_id() const { return id_; }
  // True once this node was drained: it owns no partition and should stop.
  bool drained() const { return leave_; }

private:
  struct view; // what one read of PREFIX found
  void renew_loop();
  void control_loop();
  void tick();
  core::status register_node();
  void control(const view& v);
  void apply(const view& v);
  void publish_registry(const view& v);
  core::status fetch_partition(std::uint32_t partition, const actors::node_info& from);
  void take_moves(const view& v);
  void thaw_kept(const view& v);
  void become_serving();
  void set_state(const std::string& state);
  void take_drain_requests();
  void report_lagging();
  void drain(const view& v);
  std::string node_key(std::uint32_t id) const;
  std::string node_value(const std::string& state) const; // this node's registration

  caf::actor_system& sys_;
  caf::actor coordinator_, membership_;
  etcd_member_config cfg_;
  etcd::client etcd_;       // the control thread's
  etcd::client renew_etcd_; // the renew thread's
  std::uint32_t id_ = 0;

  std::mutex mu_; // guards lease_, state_, serving_, lease_ok_at_
  std::int64_t lease_ = 0;
  std::string state_ = "joining";
  bool serving_ = false;
  std::chrono::steady_clock::time_point lease_ok_at_;

  // Control thread only.
  std::uint64_t assigned_version_ = 0, installed_version_ = 0, thawed_version_ = 0;
  // The map version whose roles (primary, followers) this node's shards
  // got: also after a restart, whose shards take no write until then.
  std::uint64_t roles_version_ = 0;
  std::map<std::uint32_t, std::int64_t> known_; // peer id -> registration asked
  std::vector<std::uint8_t> last_registry_;     // the registry frame sent last
  std::string last_error_;
  std::optional<std::chrono::steady_clock::time_point> drained_at_;
  // Controller: when it first saw the moves of the map version in progress
  // (a round not copied within copy_deadline is called off: its sources
  // take writes again).
  std::uint64_t moves_version_ = 0;
  std::chrono::steady_clock::time_point moves_seen_{};
  std::atomic<bool> leave_{false};

  std::atomic<bool> stop_{false};
  std::thread renew_thread_, control_thread_;
};

} // namespace shardrec::node
