// load_events and load_items.
#include "client/loader.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>
#include <utility>

#include <caf/blocking_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/codec.hpp"
#include "actors/errc.hpp"
#include "actors/interfaces.hpp"
#include "client/connection_impl.hpp"
#include "dist/routing.hpp"

namespace shardrec::client {

namespace {

void add_problems(std::vector<std::string>& to, std::vector<std::string> from) {
  for (auto& p : from)
    if (to.size() < dist::max_problems)
      to.push_back(std::move(p));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

core::result<load_figures> load_events(connection& c, const core::dataset& ds,
                                       const core::load_report& read,
                                       const load_options& opt,
                                       const load_observer& observer) {
  SHARDREC_ASSERT(opt.batch > 0 && opt.window > 0);
  auto& ci = c.get();
  auto t0 = std::chrono::steady_clock::now();
  caf::scoped_actor self{*ci.sys};
  load_figures out;
  out.rejected = read.skipped;
  out.problems = read.problems;
  // Batches go straight to the shards that own their users and items (the
  // map comes from the entry node): no hop through a coordinator.
  std::uint32_t parts = 0;
  std::vector<caf::actor> shards;
  std::optional<core::error> no_shards;
  auto complete = [&] {
    return parts != 0 && shards.size() == parts
           && std::none_of(shards.begin(), shards.end(),
                           [](const caf::actor& a) { return !a; });
  };
  // A node that has just joined may be a moment ahead of the entry node's
  // map (its install is on the way): ask again for up to 5 s.
  for (int attempt = 0; attempt < 50 && !no_shards && (attempt == 0 || !complete());
       ++attempt) {
    if (attempt > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    self->request(ci.coordinator, actors::admin_timeout, actors::shards_atom::value)
        .receive(
            [&](std::uint32_t p, const std::vector<caf::actor>& hs) {
              parts = p;
              shards = hs;
            },
            [&](caf::error& err) { no_shards = client_error(ci, err); });
  }
  if (no_shards)
    return *no_shards;
  if (!complete())
    return core::make_error(core::errc::io_error,
                            "the cluster has unavailable partitions; nothing loaded");
  // A chunk of opt.batch events goes out as one batch per partition; its
  // valid events count as accepted once every one of those is acknowledged.
  struct chunk {
    std::uint64_t valid = 0;
    std::size_t pending = 0;
    bool failed = false;
  };
  std::vector<chunk> chunks;
  struct sent {
    std::size_t chunk;
    std::uint32_t partition;
    actors::frame batch; // kept to send again if its partition is moving
    std::chrono::steady_clock::time_point deadline;
    caf::response_handle<caf::blocking_actor, caf::message, true> handle;
  };
  std::vector<sent> inflight;
  // A partition that moves to another node refuses writes until the map
  // flips: its batch goes again, to the owner the entry node names then.
  auto send_again = [&](sent s) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    self->request(ci.coordinator, actors::admin_timeout, actors::shards_atom::value)
        .receive(
            [&](std::uint32_t p, const std::vector<caf::actor>& hs) {
              if (p == parts && hs.size() == parts)
                shards = hs;
            },
            [&](caf::error&) {});
    auto& to = shards[s.partition];
    auto handle =
        self->request(to, actors::part_timeout, actors::ingest_atom::value, s.batch);
    inflight.push_back({s.chunk, s.partition, std::move(s.batch), s.deadline, handle});
  };
  auto await_one = [&] {
    auto& ch = chunks[inflight.front().chunk];
    bool moved = false;
    inflight.front().handle.receive(
        [&](const actors::frame& f) {
          if (auto r = actors::decode_ingest_result(f))
            add_problems(out.problems, std::move(r->problems));
        },
        [&](caf::error& err) {
          // Moving, a new primary, or no answer from its node (a follower
          // takes over): sent again (its batch id: stored once).
          if ((actors::is_moved(err) || err.category() != caf::atom("shardrec"))
              && std::chrono::steady_clock::now() < inflight.front().deadline) {
            moved = true;
            return;
          }
          ch.failed = true;
          if (out.failure.empty()) {
            out.failure = "a batch was not stored: " + ci.render(err);
            if (observer.failed)
              observer.failed(out.failure);
          }
        });
    if (moved) {
      sent s = std::move(inflight.front());
      inflight.erase(inflight.begin());
      return send_again(std::move(s));
    }
    if (--ch.pending == 0)
      (ch.failed ? out.unconfirmed : out.accepted) += ch.valid;
    inflight.erase(inflight.begin());
  };
  const auto total = ds.events.size();
  for (std::size_t begin = 0; begin < total && out.failure.empty(); begin += opt.batch) {
    auto end = std::min(total, begin + opt.batch);
    std::vector<dist::raw_event> raw(end - begin);
    for (auto k = begin; k < end; ++k) {
      const auto& e = ds.events[k];
      auto& r = raw[k - begin];
      r.user = ds.users.external(e.user);
      r.item = ds.items.external(e.item);
      r.value = e.value;
      r.type = e.type;
      r.timestamp = e.timestamp;
      r.device = ds.devices.external(e.device);
      r.location = ds.locations.external(e.location);
    }
    auto routed = dist::route_events(std::move(raw), parts, begin);
    out.rejected += routed.rejected;
    add_problems(out.problems, std::move(routed.problems));
    const std::size_t id = chunks.size();
    chunks.push_back({routed.accepted, 0, false});
    for (std::uint32_t p = 0; p < parts; ++p)
      chunks[id].pending += !routed.per_partition[p].empty();
    if (chunks[id].pending == 0)
      out.accepted += chunks[id].valid;
    for (std::uint32_t p = 0; p < parts; ++p) {
      if (routed.per_partition[p].empty())
        continue;
      actors::event_batch b{std::move(routed.per_partition[p]), ds.scale, true,
                            actors::new_batch_id()};
      auto f = actors::encode(b);
      auto handle =
          self->request(shards[p], actors::part_timeout, actors::ingest_atom::value, f);
      inflight.push_back({id, p, std::move(f),
                          std::chrono::steady_clock::now() + std::chrono::seconds(30),
                          handle});
      while (inflight.size() >= opt.window * parts)
        await_one();
    }
    if (observer.progress)
      observer.progress(end, total, seconds_since(t0));
  }
  while (!inflight.empty())
    await_one();
  out.seconds = seconds_since(t0);
  return out;
}

item_load_figures load_items(connection& c, const core::dataset& side,
                             const load_options& opt) {
  SHARDREC_ASSERT(opt.batch > 0);
  auto& ci = c.get();
  caf::scoped_actor self{*ci.sys};
  std::vector<std::pair<std::string, core::item_info>> all;
  for (std::size_t i = 0; i < side.item_meta.size(); ++i)
    all.emplace_back(side.items.external(static_cast<core::index_t>(i)),
                     side.item_meta[i]);
  item_load_figures out;
  for (std::size_t b = 0; b < all.size() && out.failure.empty(); b += opt.batch) {
    actors::item_batch part;
    part.items.assign(
        all.begin() + static_cast<std::ptrdiff_t>(b),
        all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), b + opt.batch)));
    self->request(ci.coordinator, actors::ingest_timeout, actors::items_atom::value,
                  actors::encode(part))
        .receive(
            [&](const actors::frame& f) {
              if (auto r = actors::decode_ingest_result(f))
                out.stored += r->accepted;
            },
            [&](caf::error& err) {
              out.failure = "item attributes not stored: " + ci.render(err);
            });
  }
  return out;
}

core::result<actors::ingest_result> send_events(connection& c,
                                                std::vector<dist::raw_event> events,
                                                std::optional<core::rating_scale> scale) {
  auto& ci = c.get();
  caf::scoped_actor self{*ci.sys};
  actors::event_batch b{std::move(events), scale.value_or(core::rating_scale{}),
                        scale.has_value()};
  std::optional<core::result<actors::ingest_result>> out;
  self->request(ci.coordinator, actors::ingest_timeout, actors::ingest_atom::value,
                actors::encode(b))
      .receive([&](const actors::frame& f) { out = actors::decode_ingest_result(f); },
               [&](caf::error& err) { out = client_error(ci, err); });
  return std::move(*out);
}

} // namespace shardrec::client
