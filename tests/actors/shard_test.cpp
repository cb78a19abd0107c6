// A shard takes part in one training run at a time (actors/shard.hpp):
// build joins a run unless another is active, other steps must be of the
// shard's run, abort of another run changes nothing, abort or publish of its
// own run releases it, and a trainer that dies releases it too.
#include "actors/shard.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/codec.hpp"
#include "actors/codec_dist.hpp"
#include "actors/interfaces.hpp"
#include "actors/train_steps.hpp"

namespace shardrec::actors {
namespace {

using namespace std::chrono_literals;

class ShardRuns : public ::testing::Test {
protected:
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor shard;

  void SetUp() override {
    cfg.set("logger.verbosity", caf::atom("quiet"));
    add_message_types(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    shard = spawn_shard(*sys, 0, 1, 0, caf::actor{});
    event_batch b;
    for (const char* u : {"u1", "u2"})
      for (const char* i : {"a", "b"}) {
        dist::raw_event e;
        e.user = u;
        e.item = i;
        b.events.push_back(e);
      }
    caf::scoped_actor self{*sys};
    self->request(shard, 5s, ingest_atom::value, encode(b))
        .receive([](const frame&) {}, [](caf::error& e) { FAIL() << to_string(e); });
  }
  void TearDown() override {
    caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
  }

  // Runs one step as `self` would; "" or the error text.
  std::string step(caf::scoped_actor& self, std::uint64_t run, step_kind kind) {
    train_step s;
    s.run = run;
    s.version = 7;
    s.kind = kind;
    frame arg;
    if (kind == step_kind::build)
      arg = encode(train_request{});
    if (kind == step_kind::publish)
      arg = encode(dist::blend_spec{{"popular", dist::blend_kind::popular, 1.0f}});
    std::string out = "no reply";
    self->request(shard, 5s, train_atom::value, s, arg)
        .receive([&](const frame&) { out.clear(); },
                 [&](caf::error& e) { out = sys->render(e); });
    return out;
  }
};

TEST_F(ShardRuns, OneRunAtATime) {
  caf::scoped_actor self{*sys};
  ASSERT_EQ(step(self, 1, step_kind::build), "");
  EXPECT_NE(step(self, 2, step_kind::build).find("training run is in progress"),
            std::string::npos);
  // Another run's abort changes nothing.
  EXPECT_EQ(step(self, 2, step_kind::abort), "");
  EXPECT_NE(step(self, 2, step_kind::build).find("in progress"), std::string::npos);
  // The run's own steps go on.
  EXPECT_EQ(step(self, 1, step_kind::popular), "");
  // Its abort releases the shard; a late step of it is then refused.
  EXPECT_EQ(step(self, 1, step_kind::abort), "");
  EXPECT_NE(step(self, 1, step_kind::popular).find("not in"), std::string::npos);
  ASSERT_EQ(step(self, 2, step_kind::build), "");
  EXPECT_EQ(step(self, 2, step_kind::popular), "");
  // Publish ends run 2: run 3 may build.
  ASSERT_EQ(step(self, 2, step_kind::publish), "");
  EXPECT_EQ(step(self, 3, step_kind::build), "");
}

TEST_F(ShardRuns, ATrainerThatDiesReleasesTheShard) {
  {
    // A trainer joins run 1 and dies without an abort.
    caf::scoped_actor trainer{*sys};
    ASSERT_EQ(step(trainer, 1, step_kind::build), "");
  }
  caf::scoped_actor self{*sys};
  std::string out = "refused";
  for (int k = 0; k < 100 && !out.empty(); ++k) {
    out = step(self, 2, step_kind::build);
    if (!out.empty())
      std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(out, "") << "the shard stayed in the dead trainer's run";
}

TEST_F(ShardRuns, StepsWithoutARunAreRefused) {
  caf::scoped_actor self{*sys};
  EXPECT_NE(step(self, 0, step_kind::build).find("unknown training step"),
            std::string::npos);
}

} // namespace
} // namespace shardrec::actors
