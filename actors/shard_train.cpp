// The shard's training handlers (actors/shard.hpp lists the steps): decode
// the step's argument, call its dist/ session, encode the reply, and send the
// step's blocks to other shards. A step that sends blocks replies only after
// every block was acknowledged: when the trainer has every reply of a step,
// every block of that step has arrived (the barrier the next step relies on).
#include <algorithm>
#include <thread>
#include <type_traits>

#include <caf/event_based_actor.hpp>

#include "actors/codec.hpp"
#include "actors/codec_dist.hpp"
#include "actors/errc.hpp"
#include "actors/interfaces.hpp"
#include "actors/local_messages.hpp"
#include "actors/scatter.hpp"
#include "actors/shard_state.hpp"
#include "actors/train_steps.hpp"

namespace shardrec::actors::detail {

namespace {

caf::error fail(core::errc code, std::string msg) {
  return to_caf_error(core::make_error(code, std::move(msg)));
}

caf::error fail(const core::error& e) {
  return to_caf_error(e);
}

struct outgoing {
  std::uint32_t to;
  block_kind kind;
  frame block;
};

caf::error apply_block(shard_pointer self, block_kind kind, const frame& f);

bool is_group_kind(block_kind k) {
  return k == block_kind::ials_group || k == block_kind::mf_group;
}

// Sends the blocks to their shards and applies the ones addressed to this
// shard directly; delivers `reply` to rp once every block was acknowledged,
// or the first error.
void send_blocks(shard_pointer self, std::vector<outgoing> blocks, frame reply,
                 caf::typed_response_promise<frame> rp) {
  auto& st = self->state;
  const auto me = st.data.store->partition();
  std::vector<scatter_request> requests;
  for (auto& b : blocks) {
    st.bytes_sent += payload_bytes(b.block);
    // A group block goes to its leader even when that is this shard: the
    // leader's handler hands it on to the node's other shards.
    if (b.to == me && !is_group_kind(b.kind)) {
      if (auto err = apply_block(self, b.kind, b.block))
        return (void)rp.deliver(err);
      continue;
    }
    if (b.to >= st.peers.size() || !st.peers[b.to])
      return (void)rp.deliver(fail(
          core::errc::io_error, "partition " + std::to_string(b.to) + " is unavailable"));
    requests.push_back({st.peers[b.to], caf::make_message(block_atom::value, b.kind,
                                                          std::move(b.block))});
  }
  gather_all<ok_atom>(
      self, std::move(requests), train_timeout, [](std::size_t, ok_atom) {},
      [rp, reply = std::move(reply)](std::size_t, caf::error& err) mutable {
        if (err)
          rp.deliver(err);
        else
          rp.deliver(std::move(reply));
      });
}

template <class Block>
std::vector<outgoing> blocks_of(block_kind kind, const std::vector<Block>& bs) {
  std::vector<outgoing> out;
  out.reserve(bs.size());
  for (const auto& b : bs)
    out.push_back({b.to, kind, encode(b)});
  return out;
}

// The leader hands a node-local message to the other shards of its node
// and delivers `reply` once they all acknowledged, or the first error.
template <class Msg, class Reply>
void hand_to_group(shard_pointer self, const Msg& msg, Reply reply,
                   caf::typed_response_promise<Reply> rp) {
  auto& st = self->state;
  const auto me = st.data.store->partition();
  std::vector<caf::actor> group;
  for (std::uint32_t q = 0; q < st.peers.size() && q < st.leader_of.size(); ++q)
    if (q != me && st.leader_of[q] == me && st.peers[q])
      group.push_back(st.peers[q]);
  gather_all<ok_atom>(
      self, to_each(group, caf::make_message(block_atom::value, msg)), train_timeout,
      [](std::size_t, ok_atom) {},
      [rp, reply](std::size_t, caf::error& err) mutable {
        if (err)
          rp.deliver(err);
        else
          rp.deliver(reply);
      });
}

// This shard's rows of a group block (iALS or MF by the block's type).
template <class Block> caf::error receive_group(shard_pointer self, const Block& b) {
  auto& st = self->state;
  constexpr bool implicit = std::is_same_v<Block, dist::ials_block>;
  auto* model = [&] {
    if constexpr (implicit)
      return st.ials.get();
    else
      return st.mf.get();
  }();
  if (!model)
    return fail(core::errc::invalid_argument,
                implicit ? "ials block before als_init" : "mf block before als_init");
  auto s = model->receive(b, true);
  return s ? caf::error{} : fail(s.err());
}

// The leader's side of a group block: decode once, take this shard's rows,
// hand the decoded block to the node's other shards, acknowledge once they
// all have.
template <class Block>
caf::result<ok_atom> take_group_block(shard_pointer self, core::result<Block> decoded) {
  auto& st = self->state;
  if (!decoded)
    return fail(decoded.err());
  const auto me = st.data.store->partition();
  if (decoded->to != me || st.leader_of.size() != st.peers.size() || !st.is_leader())
    return fail(core::errc::bad_message, "group block for partition "
                                             + std::to_string(decoded->to)
                                             + " reached partition " + std::to_string(me)
                                             + ", which does not lead its node's group");
  auto shared = std::make_shared<const Block>(std::move(*decoded));
  if (auto err = receive_group(self, *shared))
    return err;
  auto rp = self->make_response_promise<ok_atom>();
  hand_to_group(self, shared, ok_atom::value, rp);
  return rp;
}

caf::error apply_block(shard_pointer self, block_kind kind, const frame& f) {
  auto& st = self->state;
  auto check = [](const core::status& s) { return s ? caf::error{} : fail(s.err()); };
  switch (kind) {
    case block_kind::content_vectors: {
      if (!st.content)
        return fail(core::errc::invalid_argument, "content vectors before build");
      auto m = decode_content_vectors_message(f);
      if (!m)
        return fail(m.err());
      st.content->receive(std::move(*m));
      return {};
    }
    case block_kind::rater_rows: {
      if (!st.knn)
        return fail(core::errc::invalid_argument, "rater rows before build");
      if (!st.is_leader())
        return fail(core::errc::bad_message,
                    "rater rows reached partition "
                        + std::to_string(st.data.store->partition())
                        + ", which does not lead its node's group");
      auto b = decode_rater_rows_block(f);
      return b ? check(st.knn->add_rows(std::move(*b), st.data.store->partition(),
                                        st.leader_of))
               : fail(b.err());
    }
    case block_kind::reverse: {
      if (!st.knn)
        return fail(core::errc::invalid_argument, "reverse block before build");
      auto b = decode_reverse_block(f);
      return b ? check(st.knn->receive(*st.train, *b)) : fail(b.err());
    }
    case block_kind::ials_group:
    case block_kind::mf_group: break;
  }
  return fail(core::errc::bad_message, "unknown block kind");
}

dist::als_side side_of(als_half h) {
  return h == als_half::users ? dist::als_side::users : dist::als_side::items;
}

// The send half of an ALS half-step: this shard's rows of `side` to every
// node that needs them; the reply (iALS: the Gram partial of `side`) once
// every block is acknowledged.
caf::result<frame> send_side(shard_pointer self, als_model model, dist::als_side side) {
  auto& st = self->state;
  auto rp = self->make_response_promise<frame>();
  if (model == als_model::ials)
    send_blocks(
        self,
        blocks_of(block_kind::ials_group, st.ials->make_group_blocks(side, st.leader_of)),
        encode(st.ials->make_gram_partial(side)), rp);
  else
    send_blocks(
        self,
        blocks_of(block_kind::mf_group, st.mf->make_group_blocks(side, st.leader_of)),
        frame{}, rp);
  return rp;
}

// Drops a run's copy of the store and every session on it.
void reset_sessions(detail::shard_state& st) {
  st.content.reset();
  st.knn.reset();
  st.ials.reset();
  st.mf.reset();
  st.ease.reset();
  st.bin.reset();
  st.train.reset();
  st.ials_fold.reset();
  st.mf_fold.reset();
  st.popularity.clear();
}

caf::result<frame> build(shard_pointer self, build_merge merge, const frame& arg) {
  auto& st = self->state;
  auto req = decode_train_request(arg);
  if (!req)
    return fail(req.err());
  // Row solves on every core: while this shard solves, its peers on other
  // nodes may be waiting at the half-step barrier. Results do not depend on
  // the thread count.
  st.settings =
      dist::make_train_settings(req->factors, req->iterations, req->seed,
                                std::max(1u, std::thread::hardware_concurrency()));
  if (req->ials_alpha > 0) // chosen by the run's tuning
    st.settings.ials.alpha = req->ials_alpha;
  if (req->ials_reg > 0)
    st.settings.ials.reg = req->ials_reg;
  if (req->knn_neighbors > 0)
    st.settings.knn.neighbors = req->knn_neighbors;
  // The run trains on a copy of the store as it is now: events keep coming
  // into the live store (and queries keep using the served model) until
  // publish swaps the new model in. Retraining without new events or item
  // information reuses the matrices (a copy of a built store is built).
  const auto policy = merge == build_merge::last  ? dist::merge_policy::last
                      : merge == build_merge::sum ? dist::merge_policy::sum
                                                  : dist::merge_policy::confidence;
  reset_sessions(st);
  st.train = std::make_unique<dist::partition_store>(*st.data.store);
  st.train_changes = st.data.store->changes();
  st.train_user_events = st.data.store->user_events();
  if (!st.train->built_with(policy))
    st.train->build(policy);
  st.train_policy = policy;
  st.bin = std::make_unique<dist::partition_store>(st.train->binarized());
  st.content = std::make_unique<dist::content_session>(st.settings.content);
  st.knn = std::make_unique<dist::knn_session>(st.train->partitions(), st.settings.knn);
  return encode(dist::census(*st.train));
}

caf::result<frame> knn_step(shard_pointer self, step_kind kind, const frame& arg) {
  auto& st = self->state;
  auto& s = *st.train;
  switch (kind) {
    case step_kind::knn_scale: {
      auto sp = st.knn->scale(s, *st.bin);
      return sp ? caf::result<frame>(encode(*sp)) : fail(sp.err());
    }
    case step_kind::knn_rows: {
      // This shard's users' rows of the round, once to every node (its
      // first shard); with round 0 also each node's own cells.
      auto r = decode_knn_round(arg);
      if (!r)
        return fail(r.err());
      auto rows = st.knn->rows(*st.bin, *r, st.leader_of);
      if (!rows)
        return fail(rows.err());
      std::vector<outgoing> blocks;
      for (const auto& b : *rows)
        blocks.push_back({b.to, block_kind::rater_rows, encode(b)});
      rows->clear();
      auto rp = self->make_response_promise<frame>();
      send_blocks(self, std::move(blocks), frame{}, rp);
      return rp;
    }
    case step_kind::knn_gather: {
      // The node's first shard builds the round from every rater's rows and
      // hands it to the node's other shards; they reply at once.
      if (!st.is_leader())
        return frame{};
      auto g = st.knn->gather();
      if (!g)
        return fail(g.err());
      auto rp = self->make_response_promise<frame>();
      hand_to_group(self, shared_raters{*g}, frame{}, rp);
      return rp;
    }
    case step_kind::knn_lists: {
      // The round added to this shard's items' lists; after the last, the
      // reverse blocks.
      auto r = decode_knn_round(arg);
      if (!r)
        return fail(r.err());
      auto blocks = st.knn->lists_round(s, *r, st.settings.ials.threads);
      if (!blocks)
        return fail(blocks.err());
      auto rp = self->make_response_promise<frame>();
      send_blocks(self, blocks_of(block_kind::reverse, *blocks), frame{}, rp);
      return rp;
    }
    default: st.knn->complete(); return frame{};
  }
}

caf::result<frame> als_step(shard_pointer self, const train_step& step,
                            const frame& arg) {
  auto& st = self->state;
  const bool implicit = step.model == als_model::ials;
  if (step.kind == step_kind::als_init) {
    auto g = decode_als_globals(arg);
    if (!g)
      return fail(g.err());
    if (implicit)
      st.ials = std::make_unique<dist::ials_partition>(*st.train, st.settings.ials, *g);
    else
      st.mf = std::make_unique<dist::mf_partition>(*st.train, st.settings.mf, *g);
    return frame{};
  }
  if (implicit ? !st.ials : !st.mf)
    return fail(core::errc::invalid_argument, to_string(step) + " before als_init");
  if (step.kind == step_kind::als_keep) {
    if (!implicit) {
      auto d = st.mf->fold_in_data();
      if (!d)
        return fail(d.err());
      st.mf_fold = std::make_shared<const dist::mf_fold_in_data>(std::move(*d));
      return frame{};
    }
    auto gram = decode_gram_total(arg);
    if (!gram)
      return fail(gram.err());
    auto d = st.ials->fold_in_data(*gram);
    if (!d)
      return fail(d.err());
    st.ials_fold = std::make_shared<const dist::ials_fold_in_data>(std::move(*d));
    return frame{};
  }
  if (step.kind == step_kind::als_stats) {
    if (implicit)
      return fail(core::errc::invalid_argument, "als_stats is a step of mf");
    auto g = st.mf->make_gibbs_stats();
    if (!g)
      return fail(g.err());
    return encode(*g);
  }
  const auto side = side_of(step.side);
  if (step.kind == step_kind::als_send)
    return send_side(self, step.model, side);
  // The objective's partial sum costs about as much as the solve: the
  // trainer asks for it once, at the end.
  core::status solved;
  if (implicit) {
    auto gram = decode_gram_total(arg);
    if (!gram)
      return fail(gram.err());
    solved = st.ials->solve(side, *gram);
  } else if (!arg.bytes.empty()) { // a sampled Gibbs sweep's user solve
    auto priors = decode_gibbs_priors(arg);
    if (!priors)
      return fail(priors.err());
    solved = st.mf->solve(side, &*priors);
  } else {
    solved = st.mf->solve(side);
  }
  if (!solved)
    return fail(solved.err());
  if (step.then == after_solve::loss && side == dist::als_side::items)
    return encode(implicit ? st.ials->make_loss_partial() : st.mf->make_loss_partial());
  if (step.then == after_solve::send)
    return send_side(self, step.model, side);
  return frame{};
}

// Builds the query-time scorer and user models from whatever was trained and
// hands the scorer to the node host (for the node's scorer actor).
caf::result<frame> publish(shard_pointer self, std::uint64_t version, const frame& arg) {
  auto& st = self->state;
  st.run = 0; // the run ends here, swapped in or not
  auto spec = decode_blend_spec(arg);
  if (!spec)
    return fail(spec.err());
  auto served =
      dist::pack_models(*st.train, st.popularity, st.content.get(), st.knn.get(),
                        st.ials.get(), st.mf.get(), st.ease.get(), *spec);
  if (!served)
    return fail(served.err());
  st.data.model = std::move(*served);
  if (st.ials)
    st.data.model.users.ials_fold = st.ials_fold;
  if (st.mf)
    st.data.model.users.mf_fold = st.mf_fold;
  // The live store takes the run's matrices: the run's copy itself when
  // nothing arrived during the run, else a rebuild with the events that
  // did (from now on they are in their users' rows, not recent items), and
  // those events' users have them folded into their factors.
  if (st.data.store->changes() == st.train_changes) {
    st.data.store = std::move(st.train);
  } else {
    auto& live = *st.data.store;
    live.build(st.train_policy);
    const auto& events = live.user_side_events();
    std::vector<core::index_t> users;
    for (auto k = st.train_user_events; k < events.size(); ++k)
      users.push_back(events[k].user);
    std::sort(users.begin(), users.end());
    users.erase(std::unique(users.begin(), users.end()), users.end());
    for (auto u : users)
      dist::fold_in_user(st.data.model.users, live, u);
  }
  reset_sessions(st);
  st.stats_cache.clear();
  st.pending_stats.clear();
  st.data.model_version = version;
  // The item side starts over with this model; the host gets the scorer.
  reset_live(st.data);
  detail::send_live(self);
  // A restart serves this model again, without retraining: the snapshot
  // makes it durable; the marker before it lets recovery tell when that
  // snapshot was never written.
  if (st.log)
    (void)detail::append_record(self, record_publish, u64_record(version));
  detail::snapshot_now(self);
  detail::send_model(self); // the followers serve it too
  return frame{};
}

// One training run at a time per partition: build joins a run unless
// another one is active (its last step less than train_timeout ago); every
// other step must belong to the partition's run; publish and abort end it.
caf::error check_run(shard_pointer self, const train_step& step) {
  auto& st = self->state;
  const auto now = std::chrono::steady_clock::now();
  const bool active = st.run != 0 && now - st.run_seen < train_timeout;
  if (step.kind == step_kind::build || step.kind == step_kind::tune_sample) {
    if (active && st.run != step.run)
      return fail(core::errc::invalid_argument,
                  "a training run is in progress; wait for it to finish and train again");
    if (st.run != step.run) {
      // Leave the run when its trainer dies without an abort.
      st.run_owner = caf::actor_cast<caf::actor_addr>(self->current_sender());
      if (auto owner = caf::actor_cast<caf::actor>(self->current_sender()))
        self->monitor(owner);
    }
    st.run = step.run;
  } else if (step.run != st.run) {
    return fail(core::errc::invalid_argument,
                "step '" + to_string(step)
                    + "' of a training run this partition is not in"
                    + (active ? " (another run is in progress)" : ""));
  }
  st.run_seen = now;
  return {};
}

caf::result<frame> train_step_of(shard_pointer self, const train_step& step,
                                 const frame& arg) {
  auto& st = self->state;
  if (step.kind == step_kind::abort) {
    if (step.run == st.run)
      detail::leave_run(st);
    return frame{};
  }
  if (auto err = check_run(self, step))
    return err;
  if (step.kind == step_kind::build)
    return build(self, step.merge, arg);
  if (step.kind == step_kind::tune_sample) {
    // From the live store: the run's copy is made at build, after tuning.
    auto r = decode_tuning_request(arg);
    if (!r)
      return fail(r.err());
    return encode(dist::tuning_sample_of(*st.data.store, r->first,
                                         static_cast<std::size_t>(r->second)));
  }
  if (!st.train || !st.bin || !st.content || !st.knn)
    return fail(core::errc::invalid_argument,
                "training step '" + to_string(step) + "' before build");
  auto& s = *st.train;
  switch (step.kind) {
    case step_kind::popular:
      st.popularity = dist::partition_popularity(s);
      return frame{};
    case step_kind::content_df: return encode(st.content->count_df(s));
    case step_kind::content_vectors: {
      auto voc = decode_content_vocabulary(arg);
      if (!voc)
        return fail(voc.err());
      auto rp = self->make_response_promise<frame>();
      send_blocks(
          self,
          blocks_of(block_kind::content_vectors, st.content->build_vectors(s, *voc)),
          frame{}, rp);
      return rp;
    }
    case step_kind::content_users: {
      auto done = st.content->finish_users(s);
      return done ? caf::result<frame>(frame{}) : fail(done.err());
    }
    case step_kind::knn_scale:
    case step_kind::knn_rows:
    case step_kind::knn_gather:
    case step_kind::knn_lists:
    case step_kind::knn_done: return knn_step(self, step.kind, arg);
    case step_kind::als_init:
    case step_kind::als_send:
    case step_kind::als_solve:
    case step_kind::als_keep:
    case step_kind::als_stats: return als_step(self, step, arg);
    case step_kind::ease_items: return encode_ease_items(dist::ease_items(*st.bin));
    case step_kind::ease_rows: {
      auto items = decode_ease_items(arg);
      if (!items)
        return fail(items.err());
      auto cat = dist::make_ease_catalogue({std::move(*items)}, ~std::size_t{0});
      if (!cat)
        return fail(cat.err());
      st.ease = std::make_unique<dist::ease_session>();
      return encode(st.ease->rows(*st.bin, std::move(*cat)));
    }
    case step_kind::ease_columns: {
      if (!st.ease)
        return fail(core::errc::invalid_argument, "ease_columns before ease_rows");
      auto c = decode_ease_columns(arg);
      if (!c)
        return fail(c.err());
      auto done = st.ease->receive(s, c->items, c->weights);
      return done ? caf::result<frame>(frame{}) : fail(done.err());
    }
    case step_kind::publish: return publish(self, step.version, arg);
    case step_kind::build:
    case step_kind::tune_sample:
    case step_kind::abort: break;
  }
  return fail(core::errc::invalid_argument, "unknown training step");
}

} // namespace

void leave_run(shard_state& st) {
  st.run = 0;
  reset_sessions(st);
}

caf::message_handler shard_training(shard_pointer self) {
  return {
      [=](train_atom, std::uint64_t run, std::vector<caf::actor> peers) {
        // The peers of run `run`; ignored while another run is active (its
        // block routing and byte count must not change under it).
        auto& st = self->state;
        if (st.run != 0 && st.run != run
            && std::chrono::steady_clock::now() - st.run_seen < train_timeout)
          return ok_atom::value;
        st.peers = std::move(peers);
        st.leader_of.assign(st.peers.size(), 0);
        for (std::uint32_t p = 0; p < st.peers.size(); ++p) {
          st.leader_of[p] = p;
          for (std::uint32_t q = 0; q < p; ++q)
            if (st.peers[q] && st.peers[p] && st.peers[q].node() == st.peers[p].node()) {
              st.leader_of[p] = q;
              break;
            }
        }
        st.bytes_sent = 0;
        return ok_atom::value;
      },
      [=](train_atom, const train_step& step, const frame& arg) -> caf::result<frame> {
        if (!valid(step))
          return fail(core::errc::bad_message, "unknown training step");
        // No exception may leave a handler: the shard (and its data) would die.
        try {
          return train_step_of(self, step, arg);
        } catch (const std::exception& e) {
          return fail(core::errc::io_error,
                      "training step '" + to_string(step) + "' failed: " + e.what());
        }
      },
      [=](block_atom, block_kind kind, const frame& f) -> caf::result<ok_atom> {
        if (!valid(kind))
          return fail(core::errc::bad_message, "unknown block kind");
        if (kind == block_kind::ials_group)
          return take_group_block(self, decode_ials_block(f));
        if (kind == block_kind::mf_group)
          return take_group_block(self, decode_mf_block(f));
        if (auto err = apply_block(self, kind, f))
          return err;
        return ok_atom::value;
      },
      [=](block_atom, const shared_ials_block& b) -> caf::result<ok_atom> {
        if (auto err = receive_group(self, *b))
          return err;
        return ok_atom::value;
      },
      [=](block_atom, const shared_mf_block& b) -> caf::result<ok_atom> {
        if (auto err = receive_group(self, *b))
          return err;
        return ok_atom::value;
      },
      [=](block_atom, const shared_raters& r) -> caf::result<ok_atom> {
        if (!r)
          return fail(core::errc::bad_message, "empty rater rows");
        if (!self->state.knn)
          return fail(core::errc::invalid_argument, "rater rows before build");
        self->state.knn->set_raters(r);
        return ok_atom::value;
      },
  };
}

} // namespace shardrec::actors::detail
