// Plain values carried in frames between the coordinator, the shards and
// the admin CLI. No CAF and no Cap'n Proto here: actors/codec.hpp converts.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dataset.hpp"
#include "core/tuning.hpp"
#include "dist/partition_store.hpp"

namespace shardrec::actors {

struct node_info {
  std::uint32_t id = 0;
  std::string host;
  std::uint16_t port = 0;
  // With --etcd (status replies only): joining | serving | draining | down,
  // and whether it is the controller. Empty / false otherwise.
  std::string state;
  bool controller = false;
};

// Partition p lives on node owner[p]; version grows with every change.
struct partition_map {
  std::uint64_t version = 0;
  std::uint32_t partitions = 0;
  std::vector<node_info> nodes;
  std::vector<std::uint32_t> owner; // size partitions
  // With replicas (else empty): per partition its epoch (grows with every
  // change of primary) and the nodes that follow it.
  std::vector<std::uint64_t> epoch;
  std::vector<std::vector<std::uint32_t>> followers;
  std::uint64_t epoch_of(std::uint32_t p) const {
    return p < epoch.size() ? epoch[p] : 0;
  }
  bool follows(std::uint32_t p, std::uint32_t node) const {
    return p < followers.size()
           && std::find(followers[p].begin(), followers[p].end(), node)
                  != followers[p].end();
  }
};

// A node's identity and last installed map (DATA_DIR/node.state).
struct node_state {
  std::uint32_t node_id = 0;
  partition_map map;
};

struct event_batch {
  std::vector<dist::raw_event> events;
  core::rating_scale scale;
  bool has_scale = true; // false: keep the partition's scale (a lone event)
  std::uint64_t id = 0;  // the sender's batch id (0: none): stored once
};

// Item side information on its way to the items' partitions.
struct item_batch {
  std::vector<std::pair<std::string, core::item_info>> items; // external id, info
  std::uint64_t id = 0;                                       // as event_batch::id
};

struct ingest_result {
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
  std::vector<std::string> problems;
};

struct partition_status {
  std::uint32_t partition = 0;
  std::uint32_t node = 0;
  std::uint64_t users = 0, items = 0, user_events = 0, item_events = 0;
  std::vector<std::string> models;
  bool ratings_only = true;
  std::uint64_t train_bytes = 0;
  std::uint64_t model_version = 0; // of the model it serves; 0: none yet
  std::uint64_t log_seq = 0;       // its last log record (0: none or no log)
  std::uint64_t snapshot_seq = 0;  // the last record its newest snapshot covers
  std::uint64_t log_bytes = 0;     // of its log segments on disk
};

struct status_reply {
  partition_map map;
  std::vector<partition_status> partitions;
  std::vector<std::uint32_t> missing;
};

struct train_request {
  std::string algo =
      "all"; // all | implicit-als | mf | itemknn | userknn | content | popular
  std::uint32_t factors = 0;    // 0: default
  std::uint32_t iterations = 0; // 0: default
  std::uint64_t seed = 42;
  std::uint64_t ease_max_items = 0; // 0: core::default_ease_max_items
  bool no_tune = false;             // all: the default blend, no tuning
  float ials_alpha = 0.0f;          // 0: default; the trainer sets it after tuning
  std::string weights;              // all: this blend, not tuned; "": tune (or defaults)
  float ials_reg = 0.0f;            // 0: default; the trainer sets it after tuning
  std::uint32_t knn_neighbors = 0;  // 0: default; the trainer sets it after tuning
};

struct train_reply {
  std::string algo;
  double seconds = 0.0;
  std::uint64_t bytes_sent = 0; // payload bytes of blocks exchanged between shards
  std::uint64_t messages = 0;
  std::vector<double> loss; // implicit ALS objective after the last iteration
  // Wall time per phase (build, popular, content, knn, ials, mf, publish), in
  // the order they ran.
  std::vector<std::pair<std::string, double>> phases;
  std::vector<std::string> notes;            // what the run left out and why
  std::string blend;                         // the served blend, "name=weight,..."
  std::optional<core::tuning_report> tuning; // when the run tuned the blend
};

struct recommend_request {
  std::string user;
  std::uint32_t n = 10;
  std::string algo; // "" = hybrid
};

struct component_score {
  std::string name;
  float raw = 0.0f;
  float contribution = 0.0f;
};

struct recommendation {
  std::string item;
  float score = 0.0f;
  std::vector<component_score> components;
  std::vector<std::string> because;
  std::string because_from; // the component behind `because` (itemknn, content)
};

struct recommend_reply {
  std::string user;
  std::vector<recommendation> items;
  bool partial = false;
  std::vector<std::uint32_t> missing;
  // Components that score by popularity for this user because the model
  // knows nothing of the user for them yet, and why (empty: none).
  std::vector<std::string> cold_start;
  std::string note;
};

struct similar_request {
  std::string item;
  std::uint32_t n = 10;
};

// The most popular items now: by the number of users with an event on the
// item, or (trending) by its events weighted 2^(-age / 7 days), age counted
// from the latest event time (dist/live_items.hpp).
struct popular_request {
  std::uint32_t n = 10;
  bool trending = false;
};

struct popular_reply {
  bool trending = false;
  std::vector<std::pair<std::string, double>> items; // score desc, id asc
  bool partial = false;
  std::vector<std::uint32_t> missing;
  // Trending: the time (seconds since the epoch) the scores are at, the
  // latest event time seen; a partition's own, until the coordinator
  // brings every partition's scores to the latest of them.
  std::int64_t now = 0;
};

struct similar_reply {
  std::string item;
  std::vector<std::pair<std::string, float>> neighbors;
  bool partial = false;
  std::vector<std::uint32_t> missing;
  std::string note; // why there are none (an item newer than the model)
};

} // namespace shardrec::actors
