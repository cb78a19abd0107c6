// What a client::connection holds, for client/*.cpp only (CAF inside).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "client/connection.hpp"

namespace shardrec::client {

// Members are destroyed bottom up: every actor handle before the system,
// the system before its config.
struct connection::impl {
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor coordinator;                               // the entry node
  actors::partition_map map;                            // set by connect_every_node
  std::map<std::uint32_t, caf::actor> node_coordinator; // node id -> coordinator

  std::string render(const caf::error& err) const { return sys->render(err); }
};

// A transport or node error as a client error.
inline core::error client_error(const connection::impl& c, const caf::error& err) {
  return core::make_error(core::errc::io_error, c.render(err));
}

} // namespace shardrec::client
