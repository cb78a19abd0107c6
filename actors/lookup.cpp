// The coordinator's single-owner lookups (actors/query.hpp): similar items
// from the item's partition, and rating predictions (the users' MF rows from
// their partitions, then each item's partition predicts).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <set>

#include <caf/event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/codec.hpp"
#include "actors/errc.hpp"
#include "actors/interfaces.hpp"
#include "actors/query.hpp"
#include "actors/scatter.hpp"
#include "core/partition.hpp"
#include "dist/live_items.hpp"

namespace shardrec::actors {

namespace {

using clock = std::chrono::steady_clock;

caf::error fail(core::errc code, std::string msg) {
  return to_caf_error(core::make_error(code, std::move(msg)));
}

} // namespace

void run_similar(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                 similar_request req, caf::typed_response_promise<frame> rp) {
  auto P = static_cast<std::uint32_t>(shards.size());
  if (P == 0 || req.item.empty())
    return (void)rp.deliver(fail(core::errc::invalid_argument, "empty item id"));
  auto owner = core::partition_of(req.item, P);
  if (!shards[owner]) {
    similar_reply r;
    r.item = req.item;
    r.partial = true;
    r.missing = {owner};
    return (void)rp.deliver(encode(r));
  }
  self->request(shards[owner], query_timeout, similar_atom::value, req.item, req.n)
      .then([=](const frame& f) mutable { rp.deliver(f); },
            [=](caf::error& err) mutable { rp.deliver(err); });
}

void run_popular(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                 popular_request req, caf::typed_response_promise<frame> rp) {
  if (req.n == 0 || req.n > max_popular)
    return (void)rp.deliver(
        fail(core::errc::invalid_argument, "n must be 1.." + std::to_string(max_popular)
                                               + ", not " + std::to_string(req.n)));
  auto out = std::make_shared<popular_reply>();
  out->trending = req.trending;
  // Trending scores are at each partition's latest event time: kept per
  // partition, brought to the latest of them before the merge.
  auto parts = std::make_shared<std::vector<popular_reply>>();
  scatter<frame>(
      self, to_each(shards, caf::make_message(popular_atom::value, encode(req))),
      query_timeout,
      [out, parts](std::size_t p, frame& f) {
        auto r = decode_popular_reply(f);
        if (!r)
          return out->missing.push_back(static_cast<std::uint32_t>(p));
        parts->push_back(std::move(*r));
      },
      [out](std::size_t p, caf::error&) {
        out->missing.push_back(static_cast<std::uint32_t>(p));
      },
      [out, parts, n = req.n, rp]() mutable {
        auto& items = out->items;
        if (!parts->empty())
          out->now =
              std::max_element(parts->begin(), parts->end(),
                               [](const auto& a, const auto& b) { return a.now < b.now; })
                  ->now;
        for (auto& r : *parts) {
          const double scale =
              out->trending ? std::exp2(
                  -(static_cast<double>(out->now) - static_cast<double>(r.now))
                  / dist::live_items::default_half_life_seconds)
                            : 1.0;
          for (auto& x : r.items)
            items.emplace_back(std::move(x.first), x.second * scale);
        }
        std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
          return a.second != b.second ? a.second > b.second : a.first < b.first;
        });
        if (items.size() > n)
          items.resize(n);
        std::sort(out->missing.begin(), out->missing.end());
        out->partial = !out->missing.empty();
        rp.deliver(encode(*out));
      });
}

void run_seen(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
              std::vector<std::string> users, std::vector<std::string> items,
              caf::typed_response_promise<std::vector<std::uint32_t>> rp) {
  auto P = static_cast<std::uint32_t>(shards.size());
  if (users.size() != items.size() || P == 0) {
    rp.deliver(
        fail(core::errc::invalid_argument, "seen: users and items differ in length"));
    return;
  }
  auto out = std::make_shared<std::vector<std::uint32_t>>(users.size(), 0);
  std::vector<std::vector<std::size_t>> by_user(P);
  for (std::size_t r = 0; r < users.size(); ++r)
    by_user[core::partition_of(users[r], P)].push_back(r);
  std::vector<scatter_request> requests;
  std::vector<std::vector<std::size_t>> pairs_of; // by request
  for (std::uint32_t p = 0; p < P; ++p) {
    if (by_user[p].empty())
      continue;
    std::vector<std::string> us, is;
    for (auto r : by_user[p]) {
      us.push_back(users[r]);
      is.push_back(items[r]);
    }
    requests.push_back(
        {shards[p], caf::make_message(seen_atom::value, std::move(us), std::move(is))});
    pairs_of.push_back(std::move(by_user[p]));
  }
  gather_all<std::vector<std::uint32_t>>(
      self, std::move(requests), admin_timeout,
      [out, pairs_of](std::size_t r, std::vector<std::uint32_t>& got) {
        const auto& idx = pairs_of[r];
        for (std::size_t q = 0; q < idx.size() && q < got.size(); ++q)
          (*out)[idx[q]] = got[q];
      },
      [out, rp](std::size_t, caf::error& err) mutable {
        if (err)
          rp.deliver(err);
        else
          rp.deliver(*out);
      });
}

void run_predict(caf::event_based_actor* self, const std::vector<caf::actor>& shards,
                 std::vector<std::string> users, std::vector<std::string> items,
                 caf::typed_response_promise<std::vector<float>> rp) {
  auto P = static_cast<std::uint32_t>(shards.size());
  if (users.size() != items.size() || P == 0) {
    rp.deliver(
        fail(core::errc::invalid_argument, "predict: users and items differ in length"));
    return;
  }
  for (auto& s : shards)
    if (!s) {
      rp.deliver(fail(core::errc::io_error, "a partition is unavailable"));
      return;
    }
  struct job {
    std::vector<std::string> users, items;
    std::map<std::string, std::vector<float>> rows; // user -> k + 1 floats
    std::vector<float> out;
  };
  auto j = std::make_shared<job>();
  j->users = std::move(users);
  j->items = std::move(items);
  j->out.assign(j->items.size(), 0.0f);
  auto deadline = clock::now() + admin_timeout;
  // Step 2: every item partition predicts its pairs.
  auto predict = [=]() mutable {
    std::vector<std::vector<std::size_t>> by_item(P);
    for (std::size_t r = 0; r < j->items.size(); ++r)
      by_item[core::partition_of(j->items[r], P)].push_back(r);
    std::vector<scatter_request> requests;
    std::vector<std::vector<std::size_t>> pairs_of; // by request
    for (std::uint32_t p = 0; p < P; ++p) {
      if (by_item[p].empty())
        continue;
      std::vector<std::string> its;
      std::vector<float> rows;
      for (auto r : by_item[p]) {
        its.push_back(j->items[r]);
        const auto& row = j->rows[j->users[r]];
        rows.insert(rows.end(), row.begin(), row.end());
      }
      requests.push_back({shards[p], caf::make_message(predict_atom::value,
                                                       std::move(its), std::move(rows))});
      pairs_of.push_back(std::move(by_item[p]));
    }
    gather_all<std::vector<float>>(
        self, std::move(requests), time_left(deadline),
        [j, pairs_of](std::size_t r, std::vector<float>& preds) {
          const auto& idx = pairs_of[r];
          for (std::size_t q = 0; q < idx.size() && q < preds.size(); ++q)
            j->out[idx[q]] = preds[q];
        },
        [j, rp](std::size_t, caf::error& err) mutable {
          if (err)
            rp.deliver(err);
          else
            rp.deliver(j->out);
        });
  };
  // Step 1: the users' MF rows from their partitions.
  std::vector<std::vector<std::string>> by_user(P);
  {
    std::set<std::string> seen(j->users.begin(), j->users.end());
    for (const auto& u : seen)
      by_user[core::partition_of(u, P)].push_back(u);
  }
  std::vector<scatter_request> requests;
  std::vector<std::vector<std::string>> users_of; // by request
  for (std::uint32_t p = 0; p < P; ++p) {
    if (by_user[p].empty())
      continue;
    requests.push_back({shards[p], caf::make_message(rows_atom::value, by_user[p])});
    users_of.push_back(std::move(by_user[p]));
  }
  gather_all<std::uint32_t, std::vector<float>>(
      self, std::move(requests), time_left(deadline),
      [j, users_of](std::size_t r, std::uint32_t k, std::vector<float>& rows) {
        const auto& us = users_of[r];
        const std::size_t width = std::size_t{k} + 1;
        // A short reply gives its users zero rows (as unknown users get).
        const bool whole = rows.size() >= us.size() * width;
        for (std::size_t q = 0; q < us.size(); ++q) {
          auto& row = j->rows[us[q]];
          if (whole)
            row.assign(rows.begin() + static_cast<std::ptrdiff_t>(q * width),
                       rows.begin() + static_cast<std::ptrdiff_t>((q + 1) * width));
          else
            row.assign(width, 0.0f);
        }
      },
      [predict, rp](std::size_t, caf::error& err) mutable {
        if (err)
          rp.deliver(err);
        else
          predict();
      });
}

} // namespace shardrec::actors
