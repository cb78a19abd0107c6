// The shard actor (actors/shard.hpp): ingest, status and the query-time
// handlers. The training handlers are in actors/shard_train.cpp.
#include "actors/shard.hpp"

#include <algorithm>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/codec.hpp"
#include "actors/codec_dist.hpp"
#include "actors/errc.hpp"
#include "actors/shard_state.hpp"

namespace shardrec::actors {

namespace {

using detail::shard_pointer;

constexpr std::size_t max_cached_stats = 1 << 20;

caf::error fail(core::errc code, std::string msg) {
  return to_caf_error(core::make_error(code, std::move(msg)));
}

caf::message_handler shard_queries(shard_pointer self) {
  return {
      [=](ingest_atom, const frame& f) -> caf::result<frame> {
        auto batch = decode_event_batch(f);
        if (!batch)
          return to_caf_error(batch.err());
        self->state.scale = batch->scale;
        ingest_result r;
        std::size_t index = 0;
        for (const auto& e : batch->events) {
          auto st = self->state.store->add(e);
          if (st) {
            ++r.accepted;
            if (e.type != core::event_type::rating)
              self->state.ratings_only = false;
          } else {
            ++r.rejected;
            if (r.problems.size() < 10)
              r.problems.push_back("event " + std::to_string(index) + ": "
                                   + st.err().message);
          }
          ++index;
        }
        return encode(r);
      },
      [=](profile_atom, const std::vector<std::string>& users)
          -> caf::result<std::vector<frame>, std::vector<std::string>> {
        // Per user two frames (the profile, with the seen items' content
        // vectors for the coordinator's explanations; the cached blend
        // statistics or empty) and an error text (empty: fine).
        auto& st = self->state;
        if (!st.scorer)
          return fail(core::errc::invalid_argument,
                      "no trained model: run `shardrec train`");
        std::vector<frame> frames;
        std::vector<std::string> errors;
        frames.reserve(2 * users.size());
        for (const auto& user : users) {
          auto p = dist::make_user_profile(*st.store, st.user_models, user);
          if (!p) {
            frames.insert(frames.end(), 2, frame{});
            errors.push_back(p.err().message);
            continue;
          }
          // The profile's seen list is the count key_of() computes.
          const detail::shard_state::stats_key key{st.model_version, p->seen.size()};
          auto cached = st.stats_cache.find(user);
          frames.push_back(encode(*p));
          if (cached != st.stats_cache.end() && cached->second.key == key) {
            frames.push_back(cached->second.stats);
          } else {
            frames.emplace_back();
            if (st.pending_stats.size() >= max_cached_stats)
              st.pending_stats.clear(); // queries that never reported back
            st.pending_stats[user] = key;
          }
          errors.emplace_back();
        }
        return {std::move(frames), std::move(errors)};
      },
      [=](cache_atom, const std::string& user, const frame& stats) {
        // Kept only if the user's profile is still the one the statistics
        // were computed from.
        auto& st = self->state;
        auto pending = st.pending_stats.find(user);
        if (pending == st.pending_stats.end())
          return;
        const auto key = pending->second;
        st.pending_stats.erase(pending);
        if (st.scorer && key == st.key_of(user)
            && st.stats_cache.size() < max_cached_stats)
          st.stats_cache[user] = {stats, key};
      },
      [=](similar_atom, const std::string& item, std::uint32_t n) -> caf::result<frame> {
        auto& st = self->state;
        similar_reply r;
        r.item = item;
        // From the published model, as recommend's item-kNN part: a
        // training run in progress changes neither.
        const auto* lists = st.neighbors ? st.neighbors->find(item) : nullptr;
        if (!lists) {
          if (!st.store->items().find(item))
            return fail(core::errc::unknown_id, "unknown item '" + item + "'");
          return encode(r); // known, but no neighbours (or not trained)
        }
        for (const auto& nb : lists->neighbors) {
          if (r.neighbors.size() >= n)
            break;
          r.neighbors.emplace_back(nb.id, nb.similarity);
        }
        return encode(r);
      },
      [=](items_atom, const frame& f) -> caf::result<frame> {
        auto batch = decode_item_batch(f);
        if (!batch)
          return to_caf_error(batch.err());
        ingest_result r;
        for (auto& [id, info] : batch->items) {
          if (id.empty()) {
            ++r.rejected;
            continue;
          }
          self->state.store->set_item_info(id, std::move(info));
          ++r.accepted;
        }
        return encode(r);
      },
      [=](rows_atom, const std::vector<std::string>& users)
          -> caf::result<std::uint32_t, std::vector<float>> {
        auto& st = self->state;
        // The served model's MF part (not a training run's).
        if (!st.scorer || st.scorer->models().mf_factors == 0)
          return fail(core::errc::invalid_argument,
                      "no rating model: train with --algo all|mf");
        const auto& m = st.user_models;
        auto k = m.mf_factors;
        std::vector<float> rows;
        rows.reserve(users.size() * (k + 1));
        for (const auto& u : users) {
          // A user who arrived after training has no row yet: zeros, as for
          // an unknown one.
          auto idx = st.store->users().find(u);
          const bool has_row = idx && *idx < m.mf_user_bias.size()
                               && (std::size_t{*idx} + 1) * k <= m.mf_user.size();
          for (std::size_t c = 0; c < k; ++c)
            rows.push_back(has_row ? m.mf_user[*idx * k + c] : 0.0f);
          rows.push_back(has_row ? m.mf_user_bias[*idx] : 0.0f);
        }
        return {static_cast<std::uint32_t>(k), std::move(rows)};
      },
      [=](predict_atom, const std::vector<std::string>& items,
          const std::vector<float>& user_rows) -> caf::result<std::vector<float>> {
        auto& st = self->state;
        if (!st.scorer || st.scorer->models().mf_factors == 0)
          return fail(core::errc::invalid_argument,
                      "no rating model: train with --algo all|mf");
        const auto& im = st.scorer->models();
        auto k = im.mf_factors;
        if (user_rows.size() != items.size() * (k + 1))
          return fail(core::errc::bad_message,
                      "predict: user rows do not match the items");
        std::vector<float> out(items.size());
        for (std::size_t r = 0; r < items.size(); ++r) {
          const float* x = user_rows.data() + r * (k + 1);
          double p = im.mf_mu + x[k];
          // An item that arrived after training has no row yet: mean and
          // user bias only.
          auto i = st.store->items().find(items[r]);
          if (i && *i < im.mf_item_bias.size()
              && (std::size_t{*i} + 1) * k <= im.mf_item.size()) {
            p += im.mf_item_bias[*i];
            for (std::size_t c = 0; c < k; ++c)
              p += static_cast<double>(x[c]) * im.mf_item[*i * k + c];
          }
          out[r] = std::clamp(static_cast<float>(p), st.scale.min, st.scale.max);
        }
        return out;
      },
      [=](stats_atom) -> frame {
        const auto& s = *self->state.store;
        partition_status st;
        st.partition = s.partition();
        st.node = self->state.node_id;
        st.users = s.users().size();
        st.items = s.items().size();
        st.user_events = s.user_events();
        st.item_events = s.item_events();
        st.ratings_only = self->state.ratings_only;
        st.train_bytes = self->state.bytes_sent;
        st.model_version = self->state.model_version;
        if (self->state.scorer)
          for (const auto& c : self->state.scorer->spec())
            st.models.push_back(c.name);
        return encode(st);
      },
  };
}

} // namespace

shard_actor spawn_shard(caf::actor_system& sys, std::uint32_t partition,
                        std::uint32_t partitions, std::uint32_t node_id,
                        caf::actor host) {
  return sys.spawn([=](shard_pointer self) {
    self->state.store = std::make_unique<dist::partition_store>(partition, partitions);
    self->state.node_id = node_id;
    self->state.host = host;
    self->set_down_handler([self](caf::down_msg& dm) {
      auto& st = self->state;
      if (st.run != 0 && dm.source == st.run_owner)
        st.run = 0; // the trainer died without an abort
    });
    return caf::behavior{shard_queries(self).or_else(detail::shard_training(self))};
  });
}

} // namespace shardrec::actors
