#include "actors/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <sstream>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/codec.hpp"
#include "actors/codec_dist.hpp"
#include "actors/errc.hpp"
#include "actors/interfaces.hpp"
#include "actors/scatter.hpp"
#include "actors/train_steps.hpp"
#include "core/algorithms.hpp"
#include "core/parallel.hpp"
#include "core/tuning.hpp"
#include "dist/als.hpp"
#include "dist/knn.hpp"
#include "dist/recommend.hpp"
#include "dist/training.hpp"

namespace shardrec::actors {

namespace {

struct trainer_state {
  std::vector<caf::actor> shards;
  train_request req;
  train_reply reply;
  caf::response_promise rp;
  std::chrono::steady_clock::time_point start;
  bool ratings_only = true;
  bool has_content = false;
  bool ease_trained = false; // EASE ran (within its catalogue limit)
  std::uint64_t n_users = 0; // users with events, over every partition
  std::string tuned_weights; // the tuning's blend; empty: the defaults
  dist::als_globals globals;
  // The settings the shards train with (iteration counts for the loops).
  dist::train_settings settings;
  // This run's token (unique, never 0: set when the shards are asked to
  // join it) and the version of the model it publishes.
  std::uint64_t run = 0;
  std::uint64_t version = 1;
  static inline const char* name = "trainer";
};

using trainer_pointer = caf::stateful_actor<trainer_state>*;
using replies = std::vector<frame>;
using next_fn = std::function<void(replies)>;

// Ends the run with an error; the shards that joined it leave it, so the
// next `train` is not refused.
void finish_error(trainer_pointer self, caf::error err) {
  auto& st = self->state;
  if (st.run != 0) {
    train_step abort;
    abort.run = st.run;
    abort.kind = step_kind::abort;
    for (const auto& sh : st.shards)
      self->send(sh, train_atom::value, abort, frame{});
  }
  st.rp.deliver(std::move(err));
  self->quit();
}

void finish_error(trainer_pointer self, core::errc code, std::string msg) {
  finish_error(self, to_caf_error(core::make_error(code, std::move(msg))));
}

// Adds `secs` to the wall time of `phase` in the reply.
void add_phase(trainer_state& st, const std::string& phase, double secs) {
  auto& phases = st.reply.phases;
  auto it = std::find_if(phases.begin(), phases.end(),
                         [&](const auto& x) { return x.first == phase; });
  if (it == phases.end())
    phases.emplace_back(phase, secs);
  else
    it->second += secs;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Runs `step` on every shard with the same argument; calls next with the
// replies in partition order once all have answered. The step's wall time
// counts towards its phase (build, popular, content, knn, ials, mf, publish).
void all_shards(trainer_pointer self, train_step step, frame arg, next_fn next) {
  auto started = std::chrono::steady_clock::now();
  auto& st = self->state;
  step.run = st.run;
  step.version = st.version;
  st.reply.messages += st.shards.size();
  auto got = std::make_shared<replies>(st.shards.size());
  gather_all<frame>(
      self,
      to_each(st.shards, caf::make_message(train_atom::value, step, std::move(arg))),
      train_timeout, [got](std::size_t p, frame& f) { (*got)[p] = std::move(f); },
      [self, step, started, got, next = std::move(next)](std::size_t p, caf::error& err) {
        if (err)
          return finish_error(self, core::errc::io_error,
                              "training step '" + to_string(step)
                                  + "' failed at partition " + std::to_string(p) + ": "
                                  + self->system().render(err));
        add_phase(self->state, phase_of(step), seconds_since(started));
        next(std::move(*got));
      });
}

train_step step_of(step_kind kind) {
  train_step s;
  s.kind = kind;
  return s;
}

train_step als(step_kind kind, als_model model, als_half side = als_half::users,
               after_solve then = after_solve::nothing) {
  train_step s;
  s.kind = kind;
  s.model = model;
  s.side = side;
  s.then = then;
  return s;
}

// Decodes every reply with `decode`; on a bad reply ends the run.
template <class T, class Decode>
bool decode_all(trainer_pointer self, const replies& rs, Decode decode,
                std::vector<T>& out) {
  for (const auto& f : rs) {
    auto r = decode(f);
    if (!r) {
      finish_error(self, to_caf_error(r.err()));
      return false;
    }
    out.push_back(std::move(*r));
  }
  return true;
}

bool wants(const trainer_state& st, const char* algo) {
  return st.req.algo == "all" || st.req.algo == algo;
}

void step_publish(trainer_pointer self);

// The two half-steps of MF sweep `it` + 1, the user solve given `priors`
// (empty: an ALS sweep).
void step_mf_solve(trainer_pointer self, int it, int iterations, frame priors);

// Sweep `it` + 1 of MF (ALS, or Gibbs: dist/als.hpp); the item blocks of
// this sweep are in. Each solve goes straight on to send the rows it solved
// ("+send"), so a half-step costs one barrier; a sampled Gibbs sweep costs
// one more, for the stats (G1) from which the trainer draws the sweep's
// priors (G2).
void step_mf(trainer_pointer self, int it, int iterations) {
  if (it == iterations)
    return step_publish(self);
  const auto& cfg = self->state.settings.mf;
  if (cfg.solver != core::mf_solver::gibbs || it + 1 <= cfg.warm_start)
    return step_mf_solve(self, it, iterations, {});
  all_shards(self, als(step_kind::als_stats, als_model::mf), {}, [=](replies rs) {
    std::vector<dist::gibbs_stats> parts;
    if (!decode_all(self, rs, decode_gibbs_stats, parts))
      return;
    auto& st = self->state;
    auto priors = dist::draw_gibbs_priors(
        parts, static_cast<std::uint32_t>(st.shards.size()), st.settings.mf, it + 1);
    if (!priors)
      return finish_error(self, to_caf_error(priors.err()));
    step_mf_solve(self, it, iterations, encode(*priors));
  });
}

void step_mf_solve(trainer_pointer self, int it, int iterations, frame priors) {
  const bool last = it + 1 == iterations;
  all_shards(self,
             als(step_kind::als_solve, als_model::mf, als_half::users, after_solve::send),
             std::move(priors), [=](replies) {
               all_shards(self,
                          als(step_kind::als_solve, als_model::mf, als_half::items,
                              after_solve::send),
                          {}, [=](replies) {
                            if (!last)
                              return step_mf(self, it + 1, iterations);
                            // The final item rows are with their raters'
                            // partitions now: they keep them for fold-in.
                            all_shards(self, als(step_kind::als_keep, als_model::mf), {},
                                       [=](replies) { step_publish(self); });
                          });
             });
}

void step_mf_init(trainer_pointer self) {
  auto& st = self->state;
  if (!wants(st, "mf") || !st.ratings_only)
    return step_publish(self);
  all_shards(self, als(step_kind::als_init, als_model::mf), encode(st.globals),
             [=](replies) {
               all_shards(self, als(step_kind::als_send, als_model::mf, als_half::items),
                          {}, [=](replies) {
                            step_mf(self, 0, self->state.settings.mf.iterations);
                          });
             });
}

// The Gram matrix of a side from the shards' partials (replies of a send).
std::optional<frame> gram_of(trainer_pointer self, const replies& rs) {
  std::vector<dist::gram_partial> parts;
  if (!decode_all(self, rs, decode_gram_partial, parts))
    return std::nullopt;
  auto total =
      dist::sum_gram(parts, static_cast<std::uint32_t>(self->state.shards.size()));
  if (!total) {
    finish_error(self, to_caf_error(total.err()));
    return std::nullopt;
  }
  return encode(*total);
}

// Iteration `it` of iALS, given the item Gram (the item blocks are in). As
// MF, each solve sends the rows it solved and replies with their Gram
// partial. The objective costs about as much as a half-step to evaluate:
// only the last iteration reports it.
// After the last iteration: the final item factors go to the partitions of
// their raters once more (as for a next user half-step) and every
// partition keeps them, with their Gram, to fold new events into its users'
// factors until the next training.
void step_ials_keep(trainer_pointer self) {
  all_shards(self, als(step_kind::als_send, als_model::ials, als_half::items), {},
             [=](replies rs) {
               auto g = gram_of(self, rs);
               if (!g)
                 return;
               all_shards(self, als(step_kind::als_keep, als_model::ials), *g,
                          [=](replies) { step_mf_init(self); });
             });
}

void step_ials(trainer_pointer self, int it, int iterations, frame item_gram) {
  if (it == iterations)
    return step_mf_init(self);
  const bool last = it + 1 == iterations;
  all_shards(
      self,
      als(step_kind::als_solve, als_model::ials, als_half::users, after_solve::send),
      item_gram, [=](replies rs) {
        auto user_gram = gram_of(self, rs);
        if (!user_gram)
          return;
        all_shards(self,
                   als(step_kind::als_solve, als_model::ials, als_half::items,
                       last ? after_solve::loss : after_solve::send),
                   *user_gram, [=](replies rs) {
                     if (!last) {
                       if (auto g = gram_of(self, rs))
                         step_ials(self, it + 1, iterations, *g);
                       return;
                     }
                     std::vector<dist::loss_partial> parts;
                     if (!decode_all(self, rs, decode_loss_partial, parts))
                       return;
                     auto loss =
                         dist::sum_loss(parts, static_cast<std::uint32_t>(parts.size()));
                     if (loss)
                       self->state.reply.loss.push_back(*loss);
                     step_ials_keep(self);
                   });
      });
}

void step_ials_init(trainer_pointer self) {
  auto& st = self->state;
  if (!wants(st, "implicit-als"))
    return step_mf_init(self);
  all_shards(
      self, als(step_kind::als_init, als_model::ials), encode(st.globals), [=](replies) {
        all_shards(self, als(step_kind::als_send, als_model::ials, als_half::items), {},
                   [=](replies rs) {
                     if (auto g = gram_of(self, rs))
                       step_ials(self, 0, self->state.settings.ials.iterations, *g);
                   });
      });
}

// The blend the run serves, "name=weight,...": the default hybrid's for
// `all`, else the one algorithm; EASE left out when it did not train.
std::string served_weights(const trainer_state& st, bool with_ease) {
  if (st.req.algo != "all")
    return st.req.algo + "=1";
  std::stringstream in(st.tuned_weights.empty()
                           ? core::default_hybrid_weights(st.has_content)
                           : st.tuned_weights);
  std::string part, out;
  while (std::getline(in, part, ','))
    if (part.rfind("ease=", 0) != 0 || with_ease)
      out += (out.empty() ? "" : ",") + part;
  return out;
}

bool blend_has(const std::string& weights, const std::string& name) {
  return ("," + weights).find("," + name + "=") != std::string::npos;
}

// EASE (dist/ease.hpp): E1 the shards' items, E2 the catalogue, E3 their
// users' rows, E4 the Gram and the solve here, E5 each shard its items'
// columns, in chunks under the frame limit.
void step_ease(trainer_pointer self) {
  auto& st = self->state;
  const bool wanted =
      st.req.algo == "ease"
      || (st.req.algo == "all" && blend_has(served_weights(st, true), "ease"));
  if (!wanted)
    return step_ials_init(self);
  all_shards(self, step_of(step_kind::ease_items), {}, [=](replies rs) {
    auto& st = self->state;
    std::vector<std::vector<std::string>> owned;
    if (!decode_all(self, rs, decode_ease_items, owned))
      return;
    const auto max_items =
        st.req.ease_max_items ? st.req.ease_max_items : core::default_ease_max_items;
    auto cat = dist::make_ease_catalogue(owned, max_items);
    if (!cat) {
      if (st.req.algo == "ease")
        return finish_error(self, core::errc::invalid_argument,
                            cat.err().message + " (raise --ease-max-items)");
      st.reply.notes.push_back(cat.err().message
                               + ": EASE is left out of the hybrid, which blends "
                                 "the other components (raise --ease-max-items to "
                                 "keep it)");
      return step_ials_init(self);
    }
    auto shared_cat = std::make_shared<const dist::ease_catalogue>(std::move(*cat));
    all_shards(
        self, step_of(step_kind::ease_rows), encode_ease_items(shared_cat->items),
        [=](replies rs) {
          auto& st = self->state;
          const auto started = std::chrono::steady_clock::now();
          const auto n = shared_cat->items.size();
          dist::ease_gram gram(n * (n + 1) / 2, 0);
          for (std::size_t p = 0; p < rs.size(); ++p) {
            auto rows = decode_ease_rows(rs[p]);
            auto added =
                rows ? dist::add_ease_gram(gram, n, *rows) : core::status{rows.err()};
            if (!added)
              return finish_error(self, core::errc::bad_message,
                                  "EASE rows of partition " + std::to_string(p) + ": "
                                      + added.err().message);
          }
          // Every core (the shards wait for their columns); the same
          // weights for any count.
          const auto b =
              dist::ease_solve(gram, n, st.settings.ease.lambda, core::default_threads());
          dist::ease_gram().swap(gram);
          // E5: each shard's columns, in chunks of at most 2^24 weights.
          const std::size_t per_chunk = std::max<std::size_t>(
              1, (std::size_t{1} << 24) / std::max<std::size_t>(n, 1));
          std::vector<scatter_request> requests;
          for (std::size_t p = 0; p < owned.size(); ++p)
            for (std::size_t at = 0; at < owned[p].size(); at += per_chunk) {
              ease_columns_chunk c;
              c.items.assign(owned[p].begin() + static_cast<std::ptrdiff_t>(at),
                             owned[p].begin()
                                 + static_cast<std::ptrdiff_t>(
                                     std::min(owned[p].size(), at + per_chunk)));
              c.weights = dist::ease_columns(b, *shared_cat, c.items);
              auto step = step_of(step_kind::ease_columns);
              step.run = st.run;
              step.version = st.version;
              requests.push_back(
                  {st.shards[p], caf::make_message(train_atom::value, step, encode(c))});
            }
          add_phase(st, "ease", seconds_since(started));
          st.reply.messages += requests.size();
          const auto sent = std::chrono::steady_clock::now();
          gather_all<frame>(
              self, std::move(requests), train_timeout, [](std::size_t, frame&) {},
              [self, sent](std::size_t, caf::error& err) {
                if (err)
                  return finish_error(self, core::errc::io_error,
                                      "training step 'ease_columns' failed: "
                                          + self->system().render(err));
                add_phase(self->state, "ease", seconds_since(sent));
                self->state.ease_trained = true;
                step_ials_init(self);
              });
        });
  });
}

// S1 of dist/knn.hpp, round r.round and then the next: rows, gather, lists.
void step_knn_round(trainer_pointer self, dist::knn_round r) {
  all_shards(self, step_of(step_kind::knn_rows), encode(r), [=](replies) {
    all_shards(self, step_of(step_kind::knn_gather), encode(r), [=](replies) {
      all_shards(self, step_of(step_kind::knn_lists), encode(r), [=](replies) {
        if (r.round + 1 < r.rounds)
          return step_knn_round(self, dist::knn_round{r.scale, r.round + 1, r.rounds});
        all_shards(self, step_of(step_kind::knn_done), {},
                   [=](replies) { step_ease(self); });
      });
    });
  });
}

void step_knn(trainer_pointer self) {
  auto& st = self->state;
  if (!wants(st, "itemknn"))
    return step_ease(self);
  all_shards(self, step_of(step_kind::knn_scale), {}, [=](replies rs) {
    std::vector<dist::scale_partial> parts;
    if (!decode_all(self, rs, decode_scale_partial, parts))
      return;
    std::uint64_t cells = 0;
    for (const auto& p : parts)
      cells += p.cells;
    step_knn_round(
        self, dist::knn_round{dist::global_scale(parts), 0, dist::knn_rounds(cells)});
  });
}

void step_content(trainer_pointer self) {
  auto& st = self->state;
  if (!wants(st, "content"))
    return step_knn(self);
  core::content_config ccfg;
  all_shards(self, step_of(step_kind::content_df), {}, [=](replies rs) {
    std::vector<dist::content_df_partial> parts;
    if (!decode_all(self, rs, decode_content_df_partial, parts))
      return;
    std::uint64_t docs = 0;
    for (const auto& p : parts)
      docs += p.n_documents;
    if (docs == 0) // no item carries side information: nothing to learn
      return step_knn(self);
    self->state.has_content = true;
    auto voc =
        dist::merge_content_df(parts, static_cast<std::uint32_t>(parts.size()), ccfg);
    if (!voc)
      return finish_error(self, to_caf_error(voc.err()));
    all_shards(self, step_of(step_kind::content_vectors), encode(*voc), [=](replies) {
      all_shards(self, step_of(step_kind::content_users), {},
                 [=](replies) { step_knn(self); });
    });
  });
}

void step_publish(trainer_pointer self) {
  auto& st = self->state;
  dist::blend_spec spec;
  auto kind_of = [](const std::string& n) -> std::optional<dist::blend_kind> {
    if (n == "implicit-als")
      return dist::blend_kind::implicit_als;
    if (n == "itemknn")
      return dist::blend_kind::itemknn;
    if (n == "content")
      return dist::blend_kind::content;
    if (n == "popular")
      return dist::blend_kind::popular;
    if (n == "mf")
      return dist::blend_kind::mf;
    if (n == "ease")
      return dist::blend_kind::ease;
    return std::nullopt;
  };
  const std::string weights = served_weights(st, st.ease_trained);
  st.reply.blend = weights;
  std::stringstream in(weights);
  std::string part;
  while (std::getline(in, part, ',')) {
    auto eq = part.find('=');
    auto kind = kind_of(part.substr(0, eq));
    if (!kind)
      return finish_error(self, core::errc::invalid_argument,
                          "cannot serve algorithm '" + part.substr(0, eq)
                              + "' from the cluster");
    spec.push_back({part.substr(0, eq), *kind, std::stof(part.substr(eq + 1))});
  }
  all_shards(self, step_of(step_kind::publish), encode(spec), [=](replies) {
    auto& s = self->state;
    s.reply.algo = s.req.algo;
    s.reply.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - s.start).count();
    // Bytes are counted by the shards; ask them (a shard that does not
    // answer adds nothing).
    scatter<frame>(
        self, to_each(s.shards, caf::make_message(stats_atom::value)), admin_timeout,
        [self](std::size_t, frame& f) {
          if (auto ps = decode_partition_status(f))
            self->state.reply.bytes_sent += ps->train_bytes;
        },
        [](std::size_t, caf::error&) {},
        [self] {
          self->state.rp.deliver(encode(self->state.reply));
          self->quit();
        });
  });
}

void step_build(trainer_pointer self);

// Tuning (core/tuning.hpp) for `all` unless --no-tune: every partition's
// share of the sample, the data set made of them as `eval --local` makes
// it, the search here (the trainer runs detached: it may take a while).
// What it chooses goes to the build (iALS alpha), the EASE solve and the
// blend. A sample that cannot be tuned (no validation user) keeps the
// defaults, with a note.
void step_tune(trainer_pointer self) {
  auto& st = self->state;
  if (st.req.algo == "all" && !st.req.weights.empty()) {
    st.tuned_weights = st.req.weights; // the operator's blend
    return step_build(self);
  }
  if (st.req.algo != "all" || st.req.no_tune)
    return step_build(self);
  const auto max_users = core::tuning_options{}.max_users;
  all_shards(
      self, step_of(step_kind::tune_sample), encode_tuning_request(st.n_users, max_users),
      [=](replies rs) {
        auto& st = self->state;
        std::vector<core::tuning_sample_part> parts;
        if (!decode_all(self, rs, decode_tuning_sample, parts))
          return;
        const auto started = std::chrono::steady_clock::now();
        core::tuning_sample_part all;
        for (auto& p : parts) {
          std::move(p.events.begin(), p.events.end(), std::back_inserter(all.events));
          std::move(p.items.begin(), p.items.end(), std::back_inserter(all.items));
        }
        const auto sample =
            core::make_tuning_dataset(std::move(all.events), std::move(all.items));
        core::algo_options base;
        base.factors = st.req.factors;
        base.iterations = static_cast<int>(st.req.iterations);
        base.seed = st.req.seed;
        // Every core, as the shards' row solves use them: every shard
        // waits for the choice meanwhile, and queries still get their
        // turn from the OS (the choice does not depend on the count; one
        // core fewer made tuning 5.1x training on a 2-core machine).
        base.threads = core::default_threads();
        if (st.req.ease_max_items)
          base.ease_max_items = st.req.ease_max_items;
        auto t = core::tune_hybrid(sample, base);
        if (!t) {
          st.reply.notes.push_back(t.err().message + ": the default blend is served");
        } else {
          st.tuned_weights = t->chosen.weights;
          st.req.ials_alpha = t->chosen.ials_alpha;
          st.req.ials_reg = t->chosen.ials_reg;
          st.req.knn_neighbors = static_cast<std::uint32_t>(t->chosen.knn_neighbors);
          if (t->chosen.ials_alpha > 0)
            st.settings.ials.alpha = t->chosen.ials_alpha;
          if (t->chosen.ials_reg > 0)
            st.settings.ials.reg = t->chosen.ials_reg;
          if (t->chosen.knn_neighbors > 0)
            st.settings.knn.neighbors = t->chosen.knn_neighbors;
          if (t->chosen.ease_lambda > 0)
            st.settings.ease.lambda = t->chosen.ease_lambda;
          st.reply.tuning = std::move(*t);
        }
        add_phase(st, "tune", seconds_since(started));
        step_build(self);
      });
}

// Every partition copies its store for the run and builds it (the merge
// policy by the data); then popularity and the algorithms in turn.
void step_build(trainer_pointer self) {
  auto build = step_of(step_kind::build);
  build.merge = self->state.ratings_only ? build_merge::last : build_merge::confidence;
  all_shards(self, build, encode(self->state.req), [=](replies rs) {
    std::vector<dist::als_census> parts;
    if (!decode_all(self, rs, decode_als_census, parts))
      return;
    auto g = dist::merge_census(parts, static_cast<std::uint32_t>(parts.size()));
    if (!g)
      return finish_error(self, to_caf_error(g.err()));
    self->state.globals = *g;
    // Every partition is in this run now, so no other run can publish
    // before it: the next version is one more than any served now.
    gather_all<frame>(
        self, to_each(self->state.shards, caf::make_message(stats_atom::value)),
        admin_timeout,
        [self](std::size_t, frame& f) {
          if (auto s = decode_partition_status(f))
            self->state.version = std::max(self->state.version, s->model_version + 1);
        },
        [self](std::size_t p, caf::error& err) {
          if (err)
            return finish_error(self, core::errc::io_error,
                                "partition " + std::to_string(p)
                                    + " is unavailable: " + self->system().render(err));
          all_shards(self, step_of(step_kind::popular), {},
                     [=](replies) { step_content(self); });
        });
  });
}

caf::behavior trainer(trainer_pointer self) {
  auto& st = self->state;
  st.start = std::chrono::steady_clock::now();
  // 1. Is every stored event a rating? Decides the merge policy and whether
  //    the rating model (MF) is trained.
  auto events = std::make_shared<std::uint64_t>(0);
  gather_all<frame>(
      self, to_each(st.shards, caf::make_message(stats_atom::value)), admin_timeout,
      [self, events](std::size_t, frame& f) {
        if (auto s = decode_partition_status(f)) {
          self->state.ratings_only = self->state.ratings_only && s->ratings_only;
          *events += s->user_events;
          self->state.n_users += s->users;
        }
      },
      [self, events](std::size_t p, caf::error& err) {
        if (err)
          return finish_error(self, core::errc::io_error,
                              "partition " + std::to_string(p)
                                  + " is unavailable: " + self->system().render(err));
        if (*events == 0)
          return finish_error(self, core::errc::invalid_argument,
                              "the cluster holds no events: run `shardrec load` first");
        std::random_device rd;
        self->state.run = ((std::uint64_t{rd()} << 32) ^ rd()) | 1;
        for (auto& sh : self->state.shards)
          self->send(sh, train_atom::value, self->state.run, self->state.shards);
        step_tune(self);
      });
  // Replies to the fire-and-forget peer lists; everything else arrives as
  // responses to requests.
  return {[](ok_atom) {}};
}

} // namespace

void spawn_trainer(caf::actor_system& sys, std::vector<caf::actor> shards, frame request,
                   caf::response_promise rp) {
  auto req = decode_train_request(request);
  if (!req) {
    rp.deliver(to_caf_error(req.err()));
    return;
  }
  static const std::vector<std::string> algos{"all",     "implicit-als", "mf",  "itemknn",
                                              "content", "popular",      "ease"};
  if (std::find(algos.begin(), algos.end(), req->algo) == algos.end()) {
    rp.deliver(to_caf_error(
        core::make_error(core::errc::invalid_argument,
                         "unknown --algo '" + req->algo
                             + "' (all|implicit-als|mf|itemknn|content|popular|ease)")));
    return;
  }
  if (!req->weights.empty()) {
    auto w = core::parse_weights(req->weights, "--weights");
    std::string bad;
    if (w)
      for (const auto& [name, weight] : *w) {
        dist::blend_kind kind{};
        if (!dist::blend_kind_of(name, kind))
          bad = name;
      }
    if (!w || !bad.empty() || req->algo != "all") {
      rp.deliver(to_caf_error(
          !w ? w.err()
             : core::make_error(core::errc::invalid_argument,
                                req->algo != "all"
                                    ? "--weights applies to --algo all only"
                                    : "--weights: the cluster cannot serve '" + bad
                                          + "' (implicit-als|itemknn|content|popular|mf|"
                                            "ease)")));
      return;
    }
  }
  // Bounds that keep a request from running for ever or exhausting memory
  // (the counts travel as u32 and run in int loops).
  if (req->factors > 1024 || req->iterations > 10000) {
    rp.deliver(to_caf_error(
        core::make_error(core::errc::invalid_argument,
                         "--factors must be at most 1024 and --iterations at "
                         "most 10000 (0: the default)")));
    return;
  }
  for (const auto& s : shards)
    if (!s) {
      rp.deliver(to_caf_error(core::make_error(
          core::errc::io_error, "a partition is unavailable; cannot train")));
      return;
    }
  // The tuned settings are the trainer's to set, never a client's.
  req->ials_alpha = 0.0f;
  req->ials_reg = 0.0f;
  req->knn_neighbors = 0;
  // Detached: tuning and the EASE solve compute here for a while, and must
  // not hold one of the scheduler's threads.
  sys.spawn<caf::detached>([shards = std::move(shards), r = std::move(*req),
                            rp](trainer_pointer self) mutable {
    self->state.shards = std::move(shards);
    self->state.settings = dist::make_train_settings(r.factors, r.iterations, r.seed, 1);
    self->state.req = std::move(r);
    self->state.rp = std::move(rp);
    return trainer(self);
  });
}

} // namespace shardrec::actors
