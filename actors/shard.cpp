#include "actors/shard.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/codec.hpp"
#include "actors/codec_dist.hpp"
#include "actors/errc.hpp"
#include "actors/local_messages.hpp"
#include "dist/als.hpp"
#include "dist/knn.hpp"
#include "dist/recommend.hpp"
#include "dist/partition_store.hpp"

namespace shardrec::actors {

namespace {

// Settings of the cluster's models; the single-process hybrid's ranking
// parts use the same (core/algorithms.cpp).
core::knn_config ranking_knn_config() {
  core::knn_config cfg;
  cfg.similarity = core::similarity_kind::cosine;
  return cfg;
}

struct shard_state {
  std::unique_ptr<dist::partition_store> store; // set at spawn, never null after
  std::unique_ptr<dist::partition_store> bin;   // binarized copy, after build
  std::uint32_t node_id = 0;
  bool ratings_only = true; // every event so far is a rating
  core::rating_scale scale; // of the latest event batch: predictions are clamped to it
  std::vector<caf::actor> peers; // every shard, by partition (training only)
  // leader_of[p]: the first partition on p's node. Factor blocks travel once
  // per node, to its leader, which hands them to the node's other shards.
  std::vector<std::uint32_t> leader_of;

  // Training state, reset by "build".
  dist::als_globals globals;
  core::content_config content_cfg;
  std::vector<dist::sparse_vector> item_vectors;
  std::vector<dist::content_vectors_message> content_in;
  std::uint64_t bytes_sent = 0; // payload bytes of blocks sent since build
  dist::content_user_state content_users;
  std::vector<float> popularity;
  // Item-kNN: the node's first shard gathers every partition's rater rows
  // (gather) and shares the result with the node's shards (raters).
  std::unique_ptr<dist::rows_gather> gather;
  std::shared_ptr<const dist::gathered_raters> raters;
  bool knn_trained = false;
  std::vector<std::vector<dist::reverse_neighbor>> knn_reverse; // per owned item
  std::vector<dist::entity_neighbors> item_lists;
  std::unique_ptr<dist::ials_partition> ials;
  std::unique_ptr<dist::mf_als_partition> mf;
  core::ials_config ials_cfg;
  core::mf_config mf_cfg;

  // Query-time state, replaced by "publish".
  std::shared_ptr<const dist::partition_scorer> scorer;
  dist::partition_user_models user_models;
  std::map<std::string, std::size_t> list_of_item; // owned item -> item_lists index

  // Per owned user, the blend statistics of the current models (a function of
  // the models and the user's profile only, so valid until the next publish):
  // a repeat query skips phase 1.
  std::unordered_map<std::string, frame> stats_cache;

  // The node's control actor: gets the scorer after every publish (its
  // query engine scores this partition's items).
  caf::actor node;

  static inline const char* name = "shard";
};

using shard_pointer = caf::stateful_actor<shard_state>*;

constexpr std::size_t max_cached_stats = 1 << 20;

caf::error fail(core::errc code, std::string msg) {
  return to_caf_error(core::make_error(code, std::move(msg)));
}

template <class T> caf::error fail(const core::result<T>& r) {
  return to_caf_error(r.err());
}

// An encoded empty reply (a frame header): "done, nothing to report".
frame empty_reply() {
  return encode(ingest_result{});
}

// Sends the blocks (dest, kind, frame) to the other shards and applies the
// ones addressed to this shard directly; delivers `reply` to rp once every
// block was acknowledged.
struct outgoing {
  std::uint32_t to;
  std::string kind;
  frame block;
};

caf::error apply_block(shard_pointer self, const std::string& kind, const frame& f);

bool is_group_kind(const std::string& kind) {
  return kind == "ials_group" || kind == "mf_group";
}

void send_blocks(shard_pointer self, std::vector<outgoing> blocks, frame reply,
                 caf::typed_response_promise<frame> rp) {
  auto& st = self->state;
  auto me = st.store->partition();
  auto left = std::make_shared<std::size_t>(0);
  auto failed = std::make_shared<bool>(false);
  // A group block goes to its leader even when that is this shard: the
  // leader's handler hands it on to the node's other shards.
  auto local = [&](const outgoing& b) { return b.to == me && !is_group_kind(b.kind); };
  for (auto& b : blocks) {
    if (local(b)) {
      if (auto err = apply_block(self, b.kind, b.block)) {
        rp.deliver(err);
        return;
      }
    } else {
      if (b.to >= st.peers.size() || !st.peers[b.to]) {
        rp.deliver(fail(core::errc::io_error,
                        "partition " + std::to_string(b.to) + " is unavailable"));
        return;
      }
      ++*left;
    }
  }
  if (*left == 0) {
    rp.deliver(std::move(reply));
    return;
  }
  auto shared_reply = std::make_shared<frame>(std::move(reply));
  for (auto& b : blocks) {
    if (local(b))
      continue;
    self->request(st.peers[b.to], train_timeout, block_atom::value, b.kind,
                  std::move(b.block))
        .then(
            [=](ok_atom) mutable {
              if (--*left == 0 && !*failed)
                rp.deliver(*shared_reply);
            },
            [=](caf::error& err) mutable {
              if (!*failed)
                rp.deliver(err);
              *failed = true;
            });
  }
}

caf::error apply_block(shard_pointer self, const std::string& kind, const frame& f) {
  auto& st = self->state;
  auto check = [](const core::status& s) -> caf::error {
    return s ? caf::error{} : to_caf_error(s.err());
  };
  if (kind == "content_vec") {
    auto m = decode_content_vectors_message(f);
    if (!m)
      return fail(m);
    st.content_in.push_back(std::move(*m));
    return {};
  }
  if (kind == "knn_rows") {
    if (!st.gather)
      return fail(core::errc::invalid_argument, "rater rows before knn_scale");
    const auto me = st.store->partition();
    if (st.leader_of.size() <= me || st.leader_of[me] != me)
      return fail(core::errc::bad_message,
                  "rater rows reached partition " + std::to_string(me)
                      + ", which does not lead its node's group");
    auto b = decode_rater_rows_block(f);
    return b ? check(st.gather->add(std::move(*b))) : fail(b);
  }
  if (kind == "reverse") {
    auto b = decode_reverse_block(f);
    if (!b)
      return fail(b);
    if (st.knn_reverse.size() != st.store->items().size())
      return fail(core::errc::invalid_argument, "reverse block before knn_scale");
    for (std::size_t t = 0; t < b->target.size(); ++t) {
      auto item = st.store->items().find(b->ids[b->target[t]]);
      if (!item)
        return fail(core::errc::bad_message, "reverse block names item '"
                                                 + b->ids[b->target[t]]
                                                 + "' not owned here");
      st.knn_reverse[*item].push_back({b->ids[b->source[t]], b->similarity[t]});
    }
    return {};
  }
  return fail(core::errc::bad_message, "unknown block kind '" + kind + "'");
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
                implicit ? "ials block before ials_init" : "mf block before mf_init");
  auto s = model->receive(b, true);
  return s ? caf::error{} : to_caf_error(s.err());
}

// The leader hands a node-local message to the other shards of its node's
// group and delivers `reply` once they all acknowledged (at once if there
// are none), or the first error.
template <class Msg, class Reply>
void hand_to_group(shard_pointer self, const Msg& msg, Reply reply,
                   caf::typed_response_promise<Reply> rp) {
  auto& st = self->state;
  const auto me = st.store->partition();
  std::vector<caf::actor> group;
  for (std::uint32_t q = 0; q < st.peers.size() && q < st.leader_of.size(); ++q)
    if (q != me && st.leader_of[q] == me && st.peers[q])
      group.push_back(st.peers[q]);
  if (group.empty()) {
    rp.deliver(std::move(reply));
    return;
  }
  auto left = std::make_shared<std::size_t>(group.size());
  auto failed = std::make_shared<bool>(false);
  for (const auto& peer : group)
    self->request(peer, train_timeout, block_atom::value, msg)
        .then(
            [=](ok_atom) mutable {
              if (--*left == 0 && !*failed)
                rp.deliver(reply);
            },
            [=](caf::error& err) mutable {
              if (!*failed)
                rp.deliver(err);
              *failed = true;
            });
}

// The leader's side of a group block: decode once, take this shard's rows,
// hand the decoded block to the node's other shards, acknowledge once they
// all have.
template <class Block>
caf::result<ok_atom> take_group_block(shard_pointer self, core::result<Block> decoded) {
  auto& st = self->state;
  if (!decoded)
    return fail(decoded);
  const auto me = st.store->partition();
  if (decoded->to != me || st.leader_of.size() != st.peers.size() || st.leader_of.empty()
      || st.leader_of[me] != me)
    return fail(core::errc::bad_message, "group block for partition "
                                             + std::to_string(decoded->to)
                                             + " reached partition " + std::to_string(me)
                                             + ", which does not lead its node's group");
  auto shared = std::make_shared<const Block>(std::move(*decoded));
  if (auto err = receive_group(self, *shared))
    return err;
  // A response promise takes the reply over from the return value.
  auto rp = self->make_response_promise<ok_atom>();
  hand_to_group(self, shared, ok_atom::value, rp);
  return rp;
}

dist::als_side side_of(const std::string& step) {
  return step.size() > 5 && step.compare(step.size() - 5, 5, "users") == 0
             ? dist::als_side::users
             : dist::als_side::items;
}

template <class Block>
std::vector<outgoing> encode_blocks(const char* kind, const std::vector<Block>& blocks,
                                    std::uint64_t* bytes = nullptr) {
  std::vector<outgoing> out;
  out.reserve(blocks.size());
  for (const auto& b : blocks) {
    out.push_back({b.to, kind, encode(b)});
    if (bytes)
      *bytes += out.back().block.bytes.size();
  }
  return out;
}

// Builds the query-time scorer and user models from whatever was trained.
caf::error publish(shard_pointer self, const dist::blend_spec& spec) {
  auto& st = self->state;
  const auto& s = *st.store;
  dist::partition_item_models im;
  auto n_items = s.items().size();
  for (std::size_t i = 0; i < n_items; ++i)
    im.items.push_back(s.items().external(static_cast<core::index_t>(i)));
  dist::partition_user_models um;
  if (st.ials) {
    const auto& y = st.ials->item_factors();
    im.ials_factors = static_cast<std::size_t>(y.cols());
    im.ials_item.assign(y.data(), y.data() + y.size());
    const auto& x = st.ials->user_factors();
    um.ials_factors = im.ials_factors;
    um.ials_user.assign(x.data(), x.data() + x.size());
  }
  if (st.mf) {
    const auto& ir = st.mf->item_rows();
    const auto& ur = st.mf->user_rows();
    auto k = static_cast<std::size_t>(ir.cols()) - 1; // last column: the bias
    im.mf_factors = k;
    um.mf_factors = k;
    im.mf_mu = static_cast<float>(st.mf->mu());
    for (Eigen::Index r = 0; r < ir.rows(); ++r) {
      for (std::size_t c = 0; c < k; ++c)
        im.mf_item.push_back(static_cast<float>(ir(r, static_cast<Eigen::Index>(c))));
      im.mf_item_bias.push_back(static_cast<float>(ir(r, static_cast<Eigen::Index>(k))));
    }
    for (Eigen::Index r = 0; r < ur.rows(); ++r) {
      for (std::size_t c = 0; c < k; ++c)
        um.mf_user.push_back(static_cast<float>(ur(r, static_cast<Eigen::Index>(c))));
      um.mf_user_bias.push_back(static_cast<float>(ur(r, static_cast<Eigen::Index>(k))));
    }
  }
  im.popularity = st.popularity;
  im.content = st.item_vectors;
  um.content = st.content_users;
  if (st.knn_trained)
    im.knn_reverse = st.knn_reverse;
  else
    im.knn_reverse.assign(n_items, {});
  st.list_of_item.clear();
  for (std::size_t k = 0; k < st.item_lists.size(); ++k)
    st.list_of_item[st.item_lists[k].id] = k;
  dist::blend_spec usable;
  for (const auto& c : spec) {
    bool ok = (c.kind == dist::blend_kind::implicit_als && st.ials)
              || (c.kind == dist::blend_kind::mf && st.mf)
              || (c.kind == dist::blend_kind::itemknn && st.knn_trained)
              || (c.kind == dist::blend_kind::content && !st.item_vectors.empty())
              || c.kind == dist::blend_kind::popular;
    if (ok)
      usable.push_back(c);
  }
  auto scorer = dist::partition_scorer::make(std::move(im), usable);
  if (!scorer)
    return fail(scorer);
  st.scorer = std::make_shared<const dist::partition_scorer>(std::move(*scorer));
  st.user_models = std::move(um);
  st.stats_cache.clear();
  if (st.node)
    self->send(st.node, scorer_atom::value, s.partition(), shared_scorer{st.scorer});
  return {};
}

// The send half of an ALS half-step: this shard's rows of `side` to every
// node that needs them; the reply (iALS: the Gram partial of `side`) once
// every block is acknowledged.
caf::result<frame> send_side(shard_pointer self, bool implicit, dist::als_side side) {
  auto& st = self->state;
  auto rp = self->make_response_promise<frame>();
  if (implicit)
    send_blocks(self,
                encode_blocks("ials_group",
                              st.ials->make_group_blocks(side, st.leader_of),
                              &st.bytes_sent),
                encode(st.ials->make_gram_partial(side)), rp);
  else
    send_blocks(self,
                encode_blocks("mf_group", st.mf->make_group_blocks(side, st.leader_of),
                              &st.bytes_sent),
                empty_reply(), rp);
  return rp;
}

caf::result<frame> train_step(shard_pointer self, const std::string& step,
                              const frame& arg) {
  auto& st = self->state;
  auto& s = *st.store;
  auto P = s.partitions();
  auto me = s.partition();
  if (step.rfind("build:", 0) == 0) {
    auto req = decode_train_request(arg);
    if (!req)
      return fail(req);
    st.ials_cfg = core::ials_config{};
    if (req->factors)
      st.ials_cfg.factors = req->factors;
    if (req->iterations)
      st.ials_cfg.iterations = static_cast<int>(req->iterations);
    st.ials_cfg.seed = req->seed;
    st.mf_cfg = core::mf_config{};
    st.mf_cfg.solver = core::mf_solver::als;
    st.mf_cfg.iterations = 15; // as core/algorithms.cpp's --solver als
    st.mf_cfg.reg = 0.1f;
    if (req->factors)
      st.mf_cfg.factors = req->factors;
    if (req->iterations)
      st.mf_cfg.iterations = static_cast<int>(req->iterations);
    st.mf_cfg.seed = req->seed;
    // Row solves on every core: while this shard solves, its peers on other
    // nodes may be waiting at the half-step barrier. Results do not depend
    // on the thread count.
    st.ials_cfg.threads = st.mf_cfg.threads =
        std::max(1u, std::thread::hardware_concurrency());
    // Retraining without new events or item information reuses the matrices.
    const auto policy =
        step == "build:last" ? core::merge_policy::last : core::merge_policy::sum;
    if (!st.bin || !s.built_with(policy)) {
      s.build(policy);
      st.bin = std::make_unique<dist::partition_store>(s.binarized());
    }
    st.gather.reset();
    st.raters.reset();
    st.knn_trained = false;
    st.knn_reverse.clear();
    st.ials.reset();
    st.mf.reset();
    st.item_lists.clear();
    st.item_vectors.clear();
    st.content_in.clear();
    st.content_users = {};
    st.popularity.clear();
    return encode(dist::census(s));
  }
  if (!s.built() || !st.bin)
    return fail(core::errc::invalid_argument,
                "training step '" + step + "' before build");
  if (step == "popular") {
    st.popularity = dist::partition_popularity(s);
    return empty_reply();
  }
  if (step == "content_df")
    return encode(dist::count_content_df(s, st.content_cfg));
  if (step == "content_vec") {
    auto voc = decode_content_vocabulary(arg);
    if (!voc)
      return fail(voc);
    st.item_vectors = dist::build_item_vectors(s, *voc, st.content_cfg);
    auto rp = self->make_response_promise<frame>();
    send_blocks(self,
                encode_blocks("content_vec", dist::push_item_vectors(s, st.item_vectors),
                              &st.bytes_sent),
                empty_reply(), rp);
    return rp;
  }
  if (step == "content_users") {
    auto users = dist::build_content_users(s, st.content_in, st.content_cfg);
    st.content_in.clear();
    if (!users)
      return fail(users);
    st.content_users = std::move(*users);
    return empty_reply();
  }
  if (step == "knn_scale") {
    // The receivers of the next steps' blocks exist before any shard can
    // send one: every shard finishes this step before any starts the next.
    st.gather = std::make_unique<dist::rows_gather>(core::knn_side::item,
                                                    ranking_knn_config(), P);
    st.raters.reset();
    st.knn_reverse.assign(s.items().size(), {});
    auto sp =
        dist::local_scale(*st.bin, core::knn_side::item, ranking_knn_config(), nullptr);
    if (!sp)
      return fail(sp);
    return encode(*sp);
  }
  if (step == "knn_rows") {
    // This shard's users' rows, once to every node (its first shard).
    auto scale = decode_scale_partial(arg);
    if (!scale)
      return fail(scale);
    auto ctx = dist::make_local_context(*st.bin, core::knn_side::item,
                                        ranking_knn_config(), nullptr, scale->max_abs);
    if (!ctx)
      return fail(ctx);
    auto rows = dist::make_rater_rows(*st.bin, *ctx);
    std::vector<outgoing> blocks;
    for (std::uint32_t d = 0; d < P && d < st.leader_of.size(); ++d)
      if (st.leader_of[d] == d) {
        rows.to = d;
        blocks.push_back({d, "knn_rows", encode(rows)});
        st.bytes_sent += blocks.back().block.bytes.size();
      }
    auto rp = self->make_response_promise<frame>();
    send_blocks(self, std::move(blocks), empty_reply(), rp);
    return rp;
  }
  if (step == "knn_gather") {
    // The node's first shard builds the matrix of every rater and hands it
    // to the node's other shards; they reply at once.
    if (st.leader_of.size() <= me || st.leader_of[me] != me)
      return empty_reply();
    if (!st.gather)
      return fail(core::errc::invalid_argument, "knn_gather before knn_scale");
    auto g = st.gather->finish();
    st.gather.reset();
    if (!g)
      return fail(g);
    st.raters = std::make_shared<const dist::gathered_raters>(std::move(*g));
    auto rp = self->make_response_promise<frame>();
    hand_to_group(self, shared_raters{st.raters}, empty_reply(), rp);
    return rp;
  }
  if (step == "knn_final") {
    if (!st.raters)
      return fail(core::errc::invalid_argument, "knn_final before knn_gather");
    auto k = ranking_knn_config().neighbors;
    std::vector<std::string> owned;
    owned.reserve(s.items().size());
    for (core::index_t i = 0; i < s.items().size(); ++i)
      owned.push_back(s.items().external(i));
    st.item_lists = st.raters->neighbors(owned, k, st.ials_cfg.threads);
    st.raters.reset();
    auto rp = self->make_response_promise<frame>();
    send_blocks(self,
                encode_blocks("reverse",
                              dist::make_reverse_blocks(st.item_lists, k, me, P),
                              &st.bytes_sent),
                empty_reply(), rp);
    return rp;
  }
  if (step == "knn_reverse") {
    st.knn_trained = true;
    return empty_reply();
  }
  if (step == "ials_init" || step == "mf_init") {
    auto g = decode_als_globals(arg);
    if (!g)
      return fail(g);
    st.globals = *g;
    if (step == "ials_init")
      st.ials = std::make_unique<dist::ials_partition>(s, st.ials_cfg, st.globals);
    else
      st.mf = std::make_unique<dist::mf_als_partition>(s, st.mf_cfg, st.globals);
    return empty_reply();
  }
  if (step.rfind("ials_send:", 0) == 0 || step.rfind("mf_send:", 0) == 0) {
    bool implicit = step[0] == 'i';
    if (implicit ? !st.ials : !st.mf)
      return fail(core::errc::invalid_argument, step + " before init");
    return send_side(self, implicit, side_of(step));
  }
  if (step.rfind("ials_solve:", 0) == 0 || step.rfind("mf_solve:", 0) == 0) {
    // "...:items+loss" also returns the objective's partial sum, which costs
    // about as much as the solve: the trainer asks for it once, at the end.
    // "...+send" goes on with the send step of the side just solved (its
    // blocks, and for iALS its Gram partial as the reply): one barrier per
    // half-step instead of two.
    auto ends_with = [&](const std::string& suffix) {
      return step.size() > suffix.size()
             && step.compare(step.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    const bool with_loss = ends_with("+loss");
    const bool with_send = ends_with("+send");
    auto side = side_of(step.substr(0, step.find('+')));
    bool implicit = step[0] == 'i';
    if (implicit ? !st.ials : !st.mf)
      return fail(core::errc::invalid_argument, step + " before init");
    core::status solved;
    if (implicit) {
      auto gram = decode_gram_total(arg);
      if (!gram)
        return fail(gram);
      solved = st.ials->solve(side, *gram);
    } else {
      solved = st.mf->solve(side);
    }
    if (!solved)
      return to_caf_error(solved.err());
    if (with_loss && side == dist::als_side::items)
      return encode(implicit ? st.ials->make_loss_partial() : st.mf->make_loss_partial());
    if (with_send)
      return send_side(self, implicit, side);
    return empty_reply();
  }
  if (step == "publish") {
    auto spec = decode_blend_spec(arg);
    if (!spec)
      return fail(spec);
    if (auto err = publish(self, *spec))
      return err;
    return empty_reply();
  }
  return fail(core::errc::invalid_argument, "unknown training step '" + step + "'");
}

caf::behavior shard_behavior(shard_pointer self) {
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
      [=](train_atom, std::vector<caf::actor> peers) {
        auto& st = self->state;
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
        self->state.bytes_sent = 0;
        return ok_atom::value;
      },
      [=](train_atom, const std::string& step, const frame& arg) -> caf::result<frame> {
        // No exception may leave a handler: the shard (and its data) would die.
        try {
          return train_step(self, step, arg);
        } catch (const std::exception& e) {
          return fail(core::errc::io_error,
                      "training step '" + step + "' failed: " + std::string(e.what()));
        }
      },
      [=](block_atom, const std::string& kind, const frame& f) -> caf::result<ok_atom> {
        if (kind == "ials_group")
          return take_group_block(self, decode_ials_block(f));
        if (kind == "mf_group")
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
        self->state.raters = r;
        return ok_atom::value;
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
          auto cached = st.stats_cache.find(user);
          frames.push_back(encode(*p));
          frames.push_back(cached == st.stats_cache.end() ? frame{} : cached->second);
          errors.emplace_back();
        }
        return {std::move(frames), std::move(errors)};
      },
      [=](cache_atom, const std::string& user, const frame& stats) {
        auto& st = self->state;
        if (st.scorer && st.store->owns_user(user)
            && st.stats_cache.size() < max_cached_stats)
          st.stats_cache[user] = stats;
      },
      [=](similar_atom, const std::string& item, std::uint32_t n) -> caf::result<frame> {
        auto& st = self->state;
        similar_reply r;
        r.item = item;
        auto it = st.list_of_item.find(item);
        if (it == st.list_of_item.end()) {
          if (!st.store->items().find(item))
            return fail(core::errc::unknown_id, "unknown item '" + item + "'");
          return encode(r); // known, but no neighbours (or not trained)
        }
        for (const auto& nb : st.item_lists[it->second].neighbors) {
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
        if (!st.mf)
          return fail(core::errc::invalid_argument,
                      "no rating model: train with --algo all|mf");
        const auto& m = st.user_models;
        auto k = m.mf_factors;
        std::vector<float> rows;
        rows.reserve(users.size() * (k + 1));
        for (const auto& u : users) {
          auto idx = st.store->users().find(u);
          for (std::size_t c = 0; c < k; ++c)
            rows.push_back(idx ? m.mf_user[*idx * k + c] : 0.0f);
          rows.push_back(idx ? m.mf_user_bias[*idx] : 0.0f);
        }
        return {static_cast<std::uint32_t>(k), std::move(rows)};
      },
      [=](predict_atom, const std::vector<std::string>& items,
          const std::vector<float>& user_rows) -> caf::result<std::vector<float>> {
        auto& st = self->state;
        if (!st.mf || !st.scorer)
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
          if (auto i = st.store->items().find(items[r])) {
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
                        caf::actor node) {
  return sys.spawn([=](shard_pointer self) {
    self->state.store = std::make_unique<dist::partition_store>(partition, partitions);
    self->state.node_id = node_id;
    self->state.node = node;
    return shard_behavior(self);
  });
}

} // namespace shardrec::actors
