// A load generator: top-n hybrid queries for pseudo-random users with a
// fixed number in flight, each reply taken as it comes; reports throughput
// and latency percentiles.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "client/connection.hpp"

namespace shardrec::client {

enum class query_route {
  owner, // to the node owning the user's partition, as a partition-aware client
         // does (the profile is then local); needs connect_every_node first
  entry, // every query to the entry node
};

struct load_generator_options {
  std::size_t queries = 20000; // REQUIRES >= 1
  std::size_t window = 8;      // queries in flight; REQUIRES >= 1
  std::size_t users = 6000;    // user ids prefix + 0 .. users-1; REQUIRES >= 1
  std::string prefix = "u";
  std::size_t n = 10; // recommendations per query
  std::uint64_t seed = 1;
  query_route route = query_route::owner;
};

struct load_generator_figures {
  std::size_t answered = 0; // replies, partial or not
  std::size_t failed = 0;   // errors and timeouts
  std::size_t partial = 0;  // replies flagged partial
  double seconds = 0;       // first send to last reply
  double qps = 0;           // answered / seconds
  // Latency of the answered queries, send to reply, in milliseconds: the
  // sorted latency at index round(p * (answered - 1)); 0 when none answered.
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

// Runs the queries and waits for the last reply. The user sequence is a
// function of the seed alone (xorshift64), the same in every build. Error:
// route owner before connect_every_node.
core::result<load_generator_figures> generate_load(connection& c,
                                                   const load_generator_options& opt);

} // namespace shardrec::client
