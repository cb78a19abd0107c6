// A client's link to a running cluster: this process's actor system, the
// coordinator of the node it was opened to (the entry node) and, once
// connect_every_node has run, the coordinator of every node in the map.
// `ask` is the blocking request/reply for single admin requests; the loader,
// the eval loop and the load generator keep several requests in flight
// themselves.
// No CAF in this header: the actor system lives behind connection::impl
// (client/connection_impl.hpp, for client/*.cpp only).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/frame.hpp"
#include "actors/messages.hpp"
#include "core/error.hpp"

namespace caf {
class message;
} // namespace caf

namespace shardrec::client {

// Owns the actor system; every handle into the cluster dies with it. Movable,
// not copyable; use from one thread at a time.
class connection {
public:
  struct impl;
  explicit connection(std::unique_ptr<impl> i);
  connection(connection&&) noexcept;
  connection& operator=(connection&&) noexcept;
  ~connection();

  impl& get() { return *impl_; }

private:
  std::unique_ptr<impl> impl_;
};

// Starts an actor system in this process and reaches the coordinator of
// the node listening at host:port. Error: "cannot reach a node at HOST:PORT: ..."
core::result<connection> connect(const std::string& host, std::uint16_t port);

// A connection to nothing, for a command that never asks (its --help).
connection disconnected();

// Sends msg to the entry node's coordinator and waits at most `timeout`
// for its frame reply. Error: the transport's or the node's error, rendered.
core::result<actors::frame> ask(connection& c, caf::message msg,
                                std::chrono::milliseconds timeout);

// Connects this process to every node of `map`. Messages to any actor of a
// node then take the direct connection from the first one on, instead of
// going through the entry node while CAF sets up a direct connection in the
// middle of a run (a batch sent during that hand-over was once left
// unanswered). Remembers the map and the nodes for routing queries to their
// owners. Error: "cannot reach node N at HOST:PORT: ..."
core::status connect_every_node(connection& c, const actors::partition_map& map);

// Typed requests to the entry node; errors as `ask`, or the reply's decoding
// error.
core::result<actors::status_reply> status(connection& c);
core::result<actors::train_reply> train(connection& c, const actors::train_request& r);
core::result<actors::recommend_reply> recommend(connection& c,
                                                const actors::recommend_request& r);
core::result<actors::similar_reply> similar(connection& c,
                                            const actors::similar_request& r);
core::result<actors::popular_reply> popular(connection& c,
                                            const actors::popular_request& r);
// Asks for node `node` to be drained (its partitions move away, then it
// leaves); the entry node's answer.
core::result<std::string> drain(connection& c, std::uint32_t node);

} // namespace shardrec::client
