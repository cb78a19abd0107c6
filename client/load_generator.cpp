// generate_load: one event-based actor keeps the window full; the calling
// thread waits on a future for the last reply.
#include "client/load_generator.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <vector>

#include <caf/event_based_actor.hpp>

#include "actors/codec.hpp"
#include "actors/interfaces.hpp"
#include "client/connection_impl.hpp"
#include "core/partition.hpp"

namespace shardrec::client {

core::result<load_generator_figures> generate_load(connection& c,
                                                   const load_generator_options& opt) {
  SHARDREC_ASSERT(opt.queries > 0 && opt.window > 0 && opt.users > 0);
  auto& ci = c.get();
  // Where each partition's queries go: the entry node, or the owner's node.
  std::uint32_t P = 1;
  std::vector<caf::actor> target_of{ci.coordinator};
  if (opt.route == query_route::owner) {
    if (ci.node_coordinator.empty())
      return core::make_error(core::errc::invalid_argument,
                              "route owner needs connect_every_node first");
    const auto& map = ci.map;
    P = std::max<std::uint32_t>(map.partitions, 1);
    target_of.assign(P, ci.coordinator);
    for (std::uint32_t p = 0; p < P && p < map.owner.size(); ++p)
      if (auto it = ci.node_coordinator.find(map.owner[p]);
          it != ci.node_coordinator.end())
        target_of[p] = it->second;
  }
  using clk = std::chrono::steady_clock;
  // An event-based generator: each reply is taken as it arrives (whatever
  // the order) and immediately replaced by the next query, so `window`
  // queries stay in flight and each latency ends when its reply arrives.
  struct run_state {
    std::vector<double> latency_ms;
    std::size_t failed = 0, partial = 0, sent = 0, left = 0;
    std::uint64_t x = 0;
    std::promise<void> finished;
  };
  auto st = std::make_shared<run_state>();
  st->latency_ms.reserve(opt.queries);
  st->left = opt.queries;
  st->x = opt.seed;
  auto finished = st->finished.get_future();
  auto t0 = clk::now();
  ci.sys->spawn([=](caf::event_based_actor* gen) {
    auto next_user = [st, opt] {
      auto& x = st->x;
      x ^= x << 13; // xorshift64: the same users for the same seed everywhere
      x ^= x >> 7;
      x ^= x << 17;
      return opt.prefix + std::to_string(x % opt.users);
    };
    auto send_one = std::make_shared<std::function<void()>>();
    *send_one = [=] {
      if (st->sent == opt.queries)
        return;
      ++st->sent;
      actors::recommend_request req;
      req.user = next_user();
      req.n = static_cast<std::uint32_t>(opt.n);
      const auto& to = target_of[P == 1 ? 0 : core::partition_of(req.user, P)];
      auto sent = clk::now();
      auto after = [=] {
        if (--st->left == 0) {
          st->finished.set_value();
          gen->quit();
        } else {
          (*send_one)();
        }
      };
      gen->request(to, actors::query_timeout * 2, actors::recommend_atom::value,
                   actors::encode(req))
          .then(
              [=](const actors::frame& f) {
                st->latency_ms.push_back(
                    std::chrono::duration<double, std::milli>(clk::now() - sent).count());
                if (auto r = actors::decode_recommend_reply(f); r && r->partial)
                  ++st->partial;
                after();
              },
              [=](caf::error&) {
                ++st->failed;
                after();
              });
    };
    for (std::size_t w = 0; w < opt.window; ++w)
      (*send_one)();
    // The last reply breaks the cycle of the sender holding itself.
    gen->attach_functor([send_one] { *send_one = nullptr; });
  });
  finished.wait();
  load_generator_figures out;
  out.seconds = std::chrono::duration<double>(clk::now() - t0).count();
  auto& latency_ms = st->latency_ms;
  std::sort(latency_ms.begin(), latency_ms.end());
  auto pct = [&](double p) {
    if (latency_ms.empty())
      return 0.0;
    auto i =
        static_cast<std::size_t>(p * static_cast<double>(latency_ms.size() - 1) + 0.5);
    return latency_ms[std::min(i, latency_ms.size() - 1)];
  };
  out.answered = latency_ms.size();
  out.failed = st->failed;
  out.partial = st->partial;
  out.qps = static_cast<double>(out.answered) / out.seconds;
  out.p50_ms = pct(0.5);
  out.p99_ms = pct(0.99);
  out.max_ms = pct(1.0);
  return out;
}

} // namespace shardrec::client
