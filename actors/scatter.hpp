// The one scatter-gather of shardrec's actors: every fan-out (training
// steps, blocks between shards, ingest routing, status, queries) sends its
// requests through scatter() or gather_all(), so that deadlines, missing
// targets, dead targets (CAF answers a request to a dead actor with an
// error) and partial results are handled in one place.
//
// Included only by actors/*.cpp (it pulls in CAF's event-based actor).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

namespace shardrec::actors {

// The time left until `deadline`, at least 1 ms (a request's timeout must
// be positive; an overdue request then fails at once).
inline std::chrono::milliseconds
time_left(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return std::max(left, std::chrono::milliseconds{1});
}

struct scatter_request {
  caf::actor to; // an empty handle fails at once (an unavailable target)
  caf::message msg;
};

// Sends every request with `timeout`; calls on_reply(k, Rs&...) for each
// reply of request k (in arrival order), on_error(k, caf::error&) for each
// failure (error reply, timeout, dead or empty target), and done() once
// after the last of them, also when `requests` is empty.
template <class... Rs, class OnReply, class OnError, class Done>
void scatter(caf::event_based_actor* self, std::vector<scatter_request> requests,
             std::chrono::milliseconds timeout, OnReply on_reply, OnError on_error,
             Done done) {
  struct shared {
    std::size_t left;
    OnReply on_reply;
    OnError on_error;
    Done done;
    void settle() {
      if (--left == 0)
        done();
    }
  };
  if (requests.empty()) {
    done();
    return;
  }
  auto st = std::make_shared<shared>(
      shared{requests.size(), std::move(on_reply), std::move(on_error), std::move(done)});
  for (std::size_t k = 0; k < requests.size(); ++k) {
    if (!requests[k].to) {
      caf::error err = caf::sec::invalid_argument;
      st->on_error(k, err);
      st->settle();
      continue;
    }
    self->request(requests[k].to, timeout, std::move(requests[k].msg))
        .then(
            [st, k](Rs&... xs) {
              st->on_reply(k, xs...);
              st->settle();
            },
            [st, k](caf::error& err) {
              st->on_error(k, err);
              st->settle();
            });
  }
}

// scatter() for fan-outs that need every reply: on_reply as above until
// the first failure; then done(k, err) once: at the first failure (k the
// failed request, err its error; later replies are ignored), or after the
// last reply with an empty err when every request succeeded.
template <class... Rs, class OnReply, class Done>
void gather_all(caf::event_based_actor* self, std::vector<scatter_request> requests,
                std::chrono::milliseconds timeout, OnReply on_reply, Done done) {
  struct shared {
    bool finished = false;
    OnReply on_reply;
    Done done;
  };
  auto st = std::make_shared<shared>(shared{false, std::move(on_reply), std::move(done)});
  scatter<Rs...>(
      self, std::move(requests), timeout,
      [st](std::size_t k, Rs&... xs) {
        if (!st->finished)
          st->on_reply(k, xs...);
      },
      [st](std::size_t k, caf::error& err) {
        if (st->finished)
          return;
        st->finished = true;
        st->done(k, err);
      },
      [st] {
        if (st->finished)
          return;
        st->finished = true;
        caf::error none;
        st->done(0, none);
      });
}

// The same message to each of `to`.
inline std::vector<scatter_request> to_each(const std::vector<caf::actor>& to,
                                            const caf::message& msg) {
  std::vector<scatter_request> out;
  out.reserve(to.size());
  for (const auto& a : to)
    out.push_back({a, msg});
  return out;
}

} // namespace shardrec::actors
