// evaluate: predictions in blocks of 5000 events, then the top-k queries
// with a window of them in flight.
#include "client/evaluate.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include <caf/blocking_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/codec.hpp"
#include "actors/interfaces.hpp"
#include "client/connection_impl.hpp"

namespace shardrec::client {

namespace {

// Rating error of the cluster's predictions for every event of `test`.
void rate(connection::impl& ci, caf::scoped_actor& self, const core::dataset& test,
          eval_figures& out) {
  constexpr std::size_t block = 5000;
  core::error_accumulator acc;
  bool ok = true;
  for (std::size_t b = 0; b < test.events.size() && ok; b += block) {
    std::vector<std::string> us, is;
    auto e = std::min(test.events.size(), b + block);
    for (auto r = b; r < e; ++r) {
      us.push_back(test.users.external(test.events[r].user));
      is.push_back(test.items.external(test.events[r].item));
    }
    self->request(ci.coordinator, actors::admin_timeout, actors::predict_atom::value, us,
                  is)
        .receive(
            [&](const std::vector<float>& preds) {
              for (auto r = b; r < e; ++r)
                acc.add(preds[r - b], test.events[r].value);
            },
            [&](caf::error& err) {
              out.warnings.push_back("no rating predictions: " + ci.render(err));
              ok = false;
            });
  }
  if (ok) {
    out.has_rating_error = true;
    out.rating = acc.result();
  }
}

} // namespace

core::result<eval_figures> evaluate(connection& c, const core::dataset& test,
                                    const eval_options& opt) {
  SHARDREC_ASSERT(opt.k > 0 && opt.window > 0);
  auto status = client::status(c);
  if (!status)
    return status.err();
  eval_figures out;
  for (const auto& p : status->partitions) {
    out.users += p.users;
    out.items += p.items;
    out.train_interactions += p.user_events;
  }
  out.test_events = test.events.size();
  auto& ci = c.get();
  caf::scoped_actor self{*ci.sys};
  if (std::all_of(test.events.begin(), test.events.end(), [](const core::event& e) {
        return e.type == core::event_type::rating;
      }))
    rate(ci, self, test, out);
  // Ranking: the top-k of every test user against the user's test items
  // that the cluster does not hold an event of (those are excluded from the
  // answers, as `eval --local` removes the training row's items).
  std::vector<std::uint32_t> held(test.events.size(), 0);
  constexpr std::size_t block = 5000;
  for (std::size_t b = 0; b < test.events.size(); b += block) {
    std::vector<std::string> us, is;
    const auto e = std::min(test.events.size(), b + block);
    for (auto r = b; r < e; ++r) {
      us.push_back(test.users.external(test.events[r].user));
      is.push_back(test.items.external(test.events[r].item));
    }
    self->request(ci.coordinator, actors::admin_timeout, actors::seen_atom::value, us, is)
        .receive(
            [&](const std::vector<std::uint32_t>& got) {
              for (auto r = b; r < e && r - b < got.size(); ++r)
                held[r] = got[r - b];
            },
            [&](caf::error& err) {
              out.warnings.push_back("cannot tell which test items are known: "
                                     + ci.render(err));
            });
  }
  std::vector<std::vector<core::index_t>> relevant(test.users.size());
  for (std::size_t r = 0; r < test.events.size(); ++r)
    if (!held[r])
      relevant[test.events[r].user].push_back(test.events[r].item);
  std::vector<core::index_t> eval_users;
  for (core::index_t u = 0; u < relevant.size(); ++u) {
    auto& r = relevant[u];
    std::sort(r.begin(), r.end());
    r.erase(std::unique(r.begin(), r.end()), r.end());
    if (!r.empty())
      eval_users.push_back(u);
  }
  // Recommended items the test set never mentions get indices past its own.
  auto items = test.items;
  std::vector<std::vector<core::index_t>> ranked(eval_users.size());
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::pair<std::size_t,
                        caf::response_handle<caf::blocking_actor, caf::message, true>>>
      inflight;
  auto await_one = [&] {
    auto q = inflight.front().first;
    inflight.front().second.receive(
        [&](const actors::frame& f) {
          if (auto r = actors::decode_recommend_reply(f)) {
            out.partial_answers += r->partial ? 1 : 0;
            for (const auto& it : r->items)
              ranked[q].push_back(items.intern(it.item));
          }
        },
        [&](caf::error& err) {
          out.warnings.push_back("query failed: " + ci.render(err));
        });
    inflight.erase(inflight.begin());
  };
  for (std::size_t q = 0; q < eval_users.size(); ++q) {
    actors::recommend_request req;
    req.user = test.users.external(eval_users[q]);
    req.n = static_cast<std::uint32_t>(opt.k);
    inflight.emplace_back(q, self->request(ci.coordinator, actors::query_timeout * 2,
                                           actors::recommend_atom::value,
                                           actors::encode(req)));
    if (inflight.size() >= opt.window)
      await_one();
  }
  while (!inflight.empty())
    await_one();
  out.query_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.queries = eval_users.size();
  core::ranking_accumulator racc(opt.k, std::max<std::size_t>(out.items, items.size()));
  for (std::size_t q = 0; q < eval_users.size(); ++q)
    racc.add(ranked[q], relevant[eval_users[q]]);
  out.ranking = racc.result();
  return out;
}

} // namespace shardrec::client
