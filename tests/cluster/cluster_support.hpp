// Helpers of the multi-process tests (tests/cluster/*_test.cpp): the CLI's
// JSON answers, loading ML-100K u1, and a raw CAF peer that speaks to a
// node's coordinator directly.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "actors/codec.hpp"
#include "actors/interfaces.hpp"
#include "tests/cluster/local_cluster.hpp"
#include "tests/data_dir.hpp"

namespace shardrec::testing {

inline const std::string data = SHARDREC_DATA_DIR;

inline nlohmann::json status_of(const local_cluster& c, int node) {
  std::string out;
  EXPECT_EQ(c.cli("--cluster " + c.address(node) + " status --json", &out), 0);
  return nlohmann::json::parse(out);
}

// Loads ML-100K u1.base through node 0, then trains with `train_args`.
inline void load_u1_and_train(const local_cluster& c, const std::string& train_args) {
  const auto where = "--cluster " + c.address(0) + " ";
  ASSERT_EQ(c.cli(where + "load " + data + "/ml-100k/u1.base --quiet"), 0) << c.logs();
  ASSERT_EQ(c.cli(where + "train " + train_args), 0) << c.logs();
}

inline nlohmann::json run_json(const local_cluster& c, const std::string& args) {
  std::string out;
  EXPECT_EQ(c.cli(args, &out), 0) << args << "\n" << out;
  return nlohmann::json::parse(out.empty() ? "{}" : out);
}

// A raw peer that speaks to a node's coordinator actor directly.
struct peer {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor coordinator;
  explicit peer(int port) {
    cfg.load<caf::io::middleman>();
    actors::add_message_types(cfg);
    cfg.set("logger.verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    auto h = sys->middleman().remote_actor("127.0.0.1", static_cast<std::uint16_t>(port));
    if (!h)
      throw std::runtime_error("cannot reach node: " + sys->render(h.error()));
    coordinator = *h;
  }
  // Sends an ingest frame; returns "" on success or the error text.
  std::string ingest(const actors::frame& f) {
    caf::scoped_actor self{*sys};
    std::string err = "no reply";
    self->request(coordinator, std::chrono::seconds(10), actors::ingest_atom::value, f)
        .receive([&](const actors::frame&) { err.clear(); },
                 [&](caf::error& e) { err = sys->render(e); });
    return err;
  }
  // Sends two train requests at once; each result is "" or the error text.
  std::pair<std::string, std::string> train_twice(const std::string& algo) {
    caf::scoped_actor self{*sys};
    actors::train_request req;
    req.algo = algo;
    auto a = self->request(coordinator, std::chrono::seconds(60),
                           actors::train_atom::value, actors::encode(req));
    auto b = self->request(coordinator, std::chrono::seconds(60),
                           actors::train_atom::value, actors::encode(req));
    std::pair<std::string, std::string> out{"no reply", "no reply"};
    std::move(a).receive([&](const actors::frame&) { out.first.clear(); },
                         [&](caf::error& e) { out.first = sys->render(e); });
    std::move(b).receive([&](const actors::frame&) { out.second.clear(); },
                         [&](caf::error& e) { out.second = sys->render(e); });
    return out;
  }
  // Asks the top n for `user`; the reply, or the error text in *err.
  std::optional<actors::recommend_reply> recommend(const std::string& user,
                                                   std::string* err, std::uint32_t n = 10) {
    caf::scoped_actor self{*sys};
    actors::recommend_request req;
    req.user = user;
    req.n = n;
    std::optional<actors::recommend_reply> out;
    *err = "no reply";
    self->request(coordinator, std::chrono::seconds(10), actors::recommend_atom::value,
                  actors::encode(req))
        .receive(
            [&](const actors::frame& f) {
              auto r = actors::decode_recommend_reply(f);
              if (r) {
                out = std::move(*r);
                err->clear();
              } else {
                *err = r.err().message;
              }
            },
            [&](caf::error& e) { *err = sys->render(e); });
    return out;
  }
};

} // namespace shardrec::testing
