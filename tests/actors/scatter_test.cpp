// The scatter-gather helper's contract (actors/scatter.hpp): every request
// settles once (reply, error, timeout, dead or empty target), done runs
// once after the last, also for no requests; gather_all stops at the first
// failure.
#include "actors/scatter.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/interfaces.hpp"

namespace shardrec::actors {
namespace {

using namespace std::chrono_literals;

struct outcome {
  std::vector<int> replies; // by request: the value, -1 error, 0 none yet
  int errors = 0;
  int done = 0;
  std::size_t first_failed = 0;
  bool failed = false;
};

// Replies x * 10 to (int x); fails for x < 0; never answers x == 0.
caf::behavior echo(caf::event_based_actor* self) {
  return {[=](int x) -> caf::result<int> {
    if (x < 0)
      return caf::sec::invalid_argument;
    if (x == 0)
      return self->make_response_promise<int>(); // never delivered
    return x * 10;
  }};
}

class Scatter : public ::testing::Test {
protected:
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  void SetUp() override {
    cfg.set("logger.verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
  }

  // Runs scatter (or gather_all) inside an actor and waits for done.
  outcome run(std::vector<scatter_request> requests, bool all,
              std::chrono::milliseconds timeout = 300ms) {
    auto out = std::make_shared<outcome>();
    out->replies.assign(requests.size(), 0);
    caf::scoped_actor waiter{*sys};
    auto w = caf::actor_cast<caf::actor>(waiter);
    sys->spawn([=](caf::event_based_actor* self) mutable {
      auto finish = [=] { self->send(w, ok_atom::value); };
      if (all)
        gather_all<int>(
            self, std::move(requests), timeout,
            [out](std::size_t k, int v) { out->replies[k] = v; },
            [out, finish](std::size_t k, caf::error& err) {
              ++out->done;
              out->failed = static_cast<bool>(err);
              out->first_failed = k;
              finish();
            });
      else
        scatter<int>(
            self, std::move(requests), timeout,
            [out](std::size_t k, int v) { out->replies[k] = v; },
            [out](std::size_t k, caf::error&) {
              out->replies[k] = -1;
              ++out->errors;
            },
            [out, finish] {
              ++out->done;
              finish();
            });
    });
    waiter->receive([](ok_atom) {}, caf::after(std::chrono::seconds(10)) >>
                                        [] { ADD_FAILURE() << "done never ran"; });
    // Nothing more may arrive (done exactly once).
    waiter->receive([](ok_atom) { ADD_FAILURE() << "done ran twice"; },
                    caf::after(timeout + 300ms) >> [] {});
    return *out;
  }
};

TEST_F(Scatter, NoRequestsIsDoneAtOnce) {
  auto o = run({}, false);
  EXPECT_EQ(o.done, 1);
  auto a = run({}, true);
  EXPECT_EQ(a.done, 1);
  EXPECT_FALSE(a.failed);
}

TEST_F(Scatter, EveryRequestSettlesOnceWhateverBecomesOfIt) {
  auto good = sys->spawn(echo);
  auto dead = sys->spawn(echo);
  caf::anon_send_exit(dead, caf::exit_reason::user_shutdown);
  std::this_thread::sleep_for(50ms);
  std::vector<scatter_request> rs{
      {good, caf::make_message(1)},         // reply 10
      {good, caf::make_message(-1)},        // error reply
      {caf::actor{}, caf::make_message(2)}, // no target
      {dead, caf::make_message(3)},         // dead target
      {good, caf::make_message(0)},         // no answer: times out
      {good, caf::make_message(4)},         // reply 40
  };
  auto o = run(rs, false, 200ms);
  EXPECT_EQ(o.done, 1);
  EXPECT_EQ(o.errors, 4);
  EXPECT_EQ(o.replies, (std::vector<int>{10, -1, -1, -1, -1, 40}));
  caf::anon_send_exit(good, caf::exit_reason::user_shutdown);
}

TEST_F(Scatter, GatherAllReportsTheFirstFailureOnce) {
  auto good = sys->spawn(echo);
  std::vector<scatter_request> ok{{good, caf::make_message(1)},
                                  {good, caf::make_message(2)}};
  auto o = run(ok, true);
  EXPECT_EQ(o.done, 1);
  EXPECT_FALSE(o.failed);
  EXPECT_EQ(o.replies, (std::vector<int>{10, 20}));
  // The empty target fails at once, before the slow request times out; the
  // other failure comes later and is not reported.
  std::vector<scatter_request> bad{{good, caf::make_message(0)},
                                   {caf::actor{}, caf::make_message(1)},
                                   {good, caf::make_message(-1)}};
  auto b = run(bad, true, 600ms);
  EXPECT_EQ(b.done, 1);
  EXPECT_TRUE(b.failed);
  EXPECT_EQ(b.first_failed, 1u);
  caf::anon_send_exit(good, caf::exit_reason::user_shutdown);
}

} // namespace
} // namespace shardrec::actors
