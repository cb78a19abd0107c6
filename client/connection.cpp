// connect, ask, connect_every_node and the typed admin requests.
#include "client/connection.hpp"

#include <algorithm>

#include <caf/atom.hpp>
#include <caf/io/middleman.hpp>
#include <caf/message.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/codec.hpp"
#include "actors/interfaces.hpp"
#include "client/connection_impl.hpp"

namespace shardrec::client {

connection::connection(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
connection::connection(connection&&) noexcept = default;
connection& connection::operator=(connection&&) noexcept = default;
connection::~connection() = default;

connection disconnected() {
  return connection(nullptr);
}

core::result<connection> connect(const std::string& host, std::uint16_t port) {
  auto c = std::make_unique<connection::impl>();
  c->cfg = std::make_unique<caf::actor_system_config>();
  c->cfg->load<caf::io::middleman>();
  actors::add_message_types(*c->cfg);
  c->cfg->set("logger.verbosity", caf::atom("quiet"));
  c->cfg->set("scheduler.max-threads", std::size_t{2});
  c->cfg->set("middleman.workers", std::size_t{0}); // as shardrec-node
  c->cfg->set("middleman.enable-automatic-connections", true);
  c->sys = std::make_unique<caf::actor_system>(*c->cfg);
  auto h = c->sys->middleman().remote_actor(host, port);
  if (!h)
    return core::make_error(core::errc::io_error, "cannot reach a node at " + host + ":"
                                                      + std::to_string(port) + ": "
                                                      + c->render(h.error()));
  c->coordinator = *h;
  return connection{std::move(c)};
}

core::result<actors::frame> ask(connection& c, caf::message msg,
                                std::chrono::milliseconds timeout) {
  auto& ci = c.get();
  caf::scoped_actor self{*ci.sys};
  core::result<actors::frame> out{actors::frame{}};
  self->request(ci.coordinator, timeout, std::move(msg))
      .receive([&](const actors::frame& f) { out = f; },
               [&](caf::error& err) { out = client_error(ci, err); });
  return out;
}

core::status connect_every_node(connection& c, const actors::partition_map& map) {
  auto& ci = c.get();
  std::map<std::uint32_t, caf::actor> node_coordinator;
  for (const auto& nd : map.nodes) {
    // A node that owns no partition (joining, or down after a drain or a
    // called-off move) is never asked.
    if (std::find(map.owner.begin(), map.owner.end(), nd.id) == map.owner.end())
      continue;
    auto h = ci.sys->middleman().remote_actor(nd.host, nd.port);
    if (!h) {
      // Lost (its lease has not expired yet): its partitions' followers
      // answer through the entry node until the failover.
      std::fprintf(stderr,
                   "shardrec: node %u at %s:%u does not answer (%s); going on "
                   "without it\n",
                   nd.id, nd.host.c_str(), static_cast<unsigned>(nd.port),
                   ci.render(h.error()).c_str());
      continue;
    }
    node_coordinator[nd.id] = *h;
  }
  ci.map = map;
  ci.node_coordinator = std::move(node_coordinator);
  return {};
}

namespace {

// Asks and decodes the frame reply with `decode`.
template <class Decode>
auto ask_decoded(connection& c, caf::message msg, std::chrono::milliseconds timeout,
                 Decode decode) -> decltype(decode(actors::frame{})) {
  auto f = ask(c, std::move(msg), timeout);
  if (!f)
    return f.err();
  return decode(*f);
}

} // namespace

core::result<std::string> drain(connection& c, std::uint32_t node) {
  auto& ci = c.get();
  caf::scoped_actor self{*ci.sys};
  core::result<std::string> out{std::string()};
  self->request(ci.coordinator, actors::admin_timeout, actors::drain_atom::value, node)
      .receive([&](const std::string& s) { out = s; },
               [&](caf::error& err) { out = client_error(ci, err); });
  return out;
}

core::result<actors::status_reply> status(connection& c) {
  return ask_decoded(
      c, caf::make_message(actors::status_atom::value), actors::admin_timeout,
      [](const actors::frame& f) { return actors::decode_status_reply(f); });
}

core::result<actors::train_reply> train(connection& c, const actors::train_request& r) {
  return ask_decoded(
      c, caf::make_message(actors::train_atom::value, actors::encode(r)),
      std::chrono::duration_cast<std::chrono::milliseconds>(actors::train_timeout),
      [](const actors::frame& f) { return actors::decode_train_reply(f); });
}

core::result<actors::recommend_reply> recommend(connection& c,
                                                const actors::recommend_request& r) {
  return ask_decoded(
      c, caf::make_message(actors::recommend_atom::value, actors::encode(r)),
      actors::query_timeout * 2,
      [](const actors::frame& f) { return actors::decode_recommend_reply(f); });
}

core::result<actors::similar_reply> similar(connection& c,
                                            const actors::similar_request& r) {
  return ask_decoded(c, caf::make_message(actors::similar_atom::value, actors::encode(r)),
                     actors::query_timeout * 2, [](const actors::frame& f) {
                       return actors::decode_similar_reply(f);
                     });
}

core::result<actors::popular_reply> popular(connection& c,
                                            const actors::popular_request& r) {
  return ask_decoded(c, caf::make_message(actors::popular_atom::value, actors::encode(r)),
                     actors::query_timeout * 2, [](const actors::frame& f) {
                       return actors::decode_popular_reply(f);
                     });
}

} // namespace shardrec::client
