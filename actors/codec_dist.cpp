#include "actors/codec_dist.hpp"

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "actors/codec_parts.hpp"
#include "actors/codec_util.hpp"
#include "schema/query.capnp.h"
#include "schema/train.capnp.h"

namespace shardrec::actors {

namespace {

using detail::bad_message;
using detail::text;

using detail::fill;
using detail::first_unsorted;
using detail::from_wire;
using detail::get;
using detail::get_strings;
using detail::list_size;
using detail::misaligned;
using detail::not_ascending;
using detail::out_of_dictionary;
using detail::put;
using detail::read;
using detail::to_wire;
using detail::unknown_enum;
using detail::unknown_enumerant;

// ---- enums: mapped one by one, so reordering either side cannot shift them.

wire::KnnSide to_wire(core::knn_side s) {
  switch (s) {
    case core::knn_side::item: return wire::KnnSide::ITEM;
    case core::knn_side::user: return wire::KnnSide::USER;
  }
  unknown_enumerant();
}

std::optional<core::knn_side> from_wire(wire::KnnSide s) {
  switch (s) {
    case wire::KnnSide::ITEM: return core::knn_side::item;
    case wire::KnnSide::USER: return core::knn_side::user;
  }
  return std::nullopt;
}

wire::SimilarityKind to_wire(core::similarity_kind k) {
  switch (k) {
    case core::similarity_kind::cosine: return wire::SimilarityKind::COSINE;
    case core::similarity_kind::adjusted_cosine:
      return wire::SimilarityKind::ADJUSTED_COSINE;
    case core::similarity_kind::pearson: return wire::SimilarityKind::PEARSON;
    case core::similarity_kind::pearson_baseline:
      return wire::SimilarityKind::PEARSON_BASELINE;
    case core::similarity_kind::jaccard: return wire::SimilarityKind::JACCARD;
  }
  unknown_enumerant();
}

std::optional<core::similarity_kind> from_wire(wire::SimilarityKind k) {
  switch (k) {
    case wire::SimilarityKind::COSINE: return core::similarity_kind::cosine;
    case wire::SimilarityKind::ADJUSTED_COSINE:
      return core::similarity_kind::adjusted_cosine;
    case wire::SimilarityKind::PEARSON: return core::similarity_kind::pearson;
    case wire::SimilarityKind::PEARSON_BASELINE:
      return core::similarity_kind::pearson_baseline;
    case wire::SimilarityKind::JACCARD: return core::similarity_kind::jaccard;
  }
  return std::nullopt;
}

wire::AlsSide to_wire(dist::als_side s) {
  switch (s) {
    case dist::als_side::users: return wire::AlsSide::USERS;
    case dist::als_side::items: return wire::AlsSide::ITEMS;
  }
  unknown_enumerant();
}

std::optional<dist::als_side> from_wire(wire::AlsSide s) {
  switch (s) {
    case wire::AlsSide::USERS: return dist::als_side::users;
    case wire::AlsSide::ITEMS: return dist::als_side::items;
  }
  return std::nullopt;
}

wire::NodeQueryKind to_wire(dist::node_query_kind k) {
  switch (k) {
    case dist::node_query_kind::direct: return wire::NodeQueryKind::DIRECT;
    case dist::node_query_kind::local: return wire::NodeQueryKind::LOCAL;
  }
  unknown_enumerant();
}

std::optional<dist::node_query_kind> from_wire(wire::NodeQueryKind k) {
  switch (k) {
    case wire::NodeQueryKind::DIRECT: return dist::node_query_kind::direct;
    case wire::NodeQueryKind::LOCAL: return dist::node_query_kind::local;
    case wire::NodeQueryKind::REMOVED_SCORE:
    case wire::NodeQueryKind::REMOVED_SELECT: break; // no longer answered
  }
  return std::nullopt;
}

// ---- envelopes: magic + union tag, so a frame of another message type (or
// of another protocol area) is rejected instead of being misread.

template <class Root, class F> frame build(std::uint32_t magic, F&& fill) {
  capnp::MallocMessageBuilder mb;
  auto root = mb.initRoot<Root>();
  root.setMagic(magic);
  fill(root);
  return detail::to_frame(mb);
}

template <class Root, class T, class F>
core::result<T> read_tagged(const frame& f, std::uint32_t magic,
                            typename Root::Which which, const char* name, F&& fn) {
  return detail::read_frame<Root, T>(f, [&](typename Root::Reader r) -> core::result<T> {
    if (r.getMagic() != magic)
      return bad_message(std::string(name) + ": wrong magic "
                         + std::to_string(r.getMagic()) + ", expected "
                         + std::to_string(magic));
    if (r.which() != which)
      return bad_message(std::string(name) + ": the frame holds message tag "
                         + std::to_string(static_cast<unsigned>(r.which()))
                         + ", expected " + std::to_string(static_cast<unsigned>(which)));
    return fn(r);
  });
}

template <class F> frame build_train(F&& fill) {
  return build<wire::TrainFrame>(wire::TRAIN_FRAME_MAGIC, std::forward<F>(fill));
}

template <class T, class F>
core::result<T> read_train(const frame& f, wire::TrainFrame::Which which,
                           const char* name, F&& fn) {
  return read_tagged<wire::TrainFrame, T>(f, wire::TRAIN_FRAME_MAGIC, which, name,
                                          std::forward<F>(fn));
}

template <class F> frame build_query(F&& fill) {
  return build<wire::QueryFrame>(wire::QUERY_FRAME_MAGIC, std::forward<F>(fill));
}

template <class T, class F>
core::result<T> read_query(const frame& f, wire::QueryFrame::Which which,
                           const char* name, F&& fn) {
  return read_tagged<wire::QueryFrame, T>(f, wire::QUERY_FRAME_MAGIC, which, name,
                                          std::forward<F>(fn));
}

// ---- ALS factor blocks and Gram matrices (B: IalsFactorBlock / MfFactorBlock,
// G: gram_partial / gram_total)

template <class T, class B> void fill_block(B b, const dist::factor_block<T>& blk) {
  b.setFrom(blk.from);
  b.setTo(blk.to);
  b.setSide(to_wire(blk.side));
  b.setVersion(blk.version);
  b.setWidth(blk.width);
  put(b.initIds(list_size(blk.ids.size())), blk.ids);
  put(b.initValues(list_size(blk.values.size())), blk.values);
}

template <class T, class R>
core::result<dist::factor_block<T>> read_block(R r, const std::string& where) {
  dist::factor_block<T> b;
  auto side = from_wire(r.getSide());
  if (!side)
    return unknown_enum(where, "side", static_cast<std::uint16_t>(r.getSide()));
  b.side = *side;
  b.from = r.getFrom();
  b.to = r.getTo();
  b.version = r.getVersion();
  b.width = r.getWidth();
  auto values = r.getValues();
  auto ids = r.getIds();
  if (std::uint64_t{values.size()} != std::uint64_t{ids.size()} * b.width)
    return bad_message(where + ": field 'values' has " + std::to_string(values.size())
                       + " entries, expected 'ids' " + std::to_string(ids.size())
                       + " x 'width' " + std::to_string(b.width));
  b.ids = get_strings(ids);
  b.values = get<T>(values);
  return b;
}

template <class G> void fill_gram(wire::AlsGram::Builder b, const G& g) {
  b.setSide(to_wire(g.side));
  b.setVersion(g.version);
  b.setK(g.k);
  put(b.initGram(list_size(g.gram.size())), g.gram);
}

template <class G>
core::result<G> read_gram(wire::AlsGram::Reader r, const std::string& where) {
  G g;
  auto side = from_wire(r.getSide());
  if (!side)
    return unknown_enum(where, "side", static_cast<std::uint16_t>(r.getSide()));
  g.side = *side;
  g.version = r.getVersion();
  g.k = r.getK();
  auto gram = r.getGram();
  if (std::uint64_t{gram.size()} != std::uint64_t{g.k} * g.k)
    return bad_message(where + ": field 'gram' has " + std::to_string(gram.size())
                       + " entries, expected 'k' " + std::to_string(g.k) + " squared");
  g.gram = get<double>(gram);
  return g;
}

// ---- query-time structs, shared by the single frames (UserProfile,
// BlendStats) and the node batches (Phase1Reply and BlendCandidate only there)

void fill_profile(wire::UserProfile::Builder b, const dist::user_profile& p) {
  b.setUser(p.user);
  put(b.initSeen(list_size(p.seen.size())), p.seen);
  put(b.initSeenValue(list_size(p.seen_value.size())), p.seen_value);
  fill(b.initSeenContent(), p.seen_content);
  put(b.initIals(list_size(p.ials.size())), p.ials);
  b.setMfKnown(p.mf_known);
  put(b.initMf(list_size(p.mf.size())), p.mf);
  b.setMfBias(p.mf_bias);
  fill(b.initContent(), p.content);
}

core::result<dist::user_profile> read_profile(wire::UserProfile::Reader r,
                                              const std::string& where) {
  dist::user_profile p;
  p.user = text(r.getUser());
  p.seen = get_strings(r.getSeen());
  p.seen_value = get<float>(r.getSeenValue());
  if (p.seen_value.size() != p.seen.size())
    return misaligned(where, "seen_value", p.seen_value.size(), "seen", p.seen.size());
  auto seen_content = r.getSeenContent();
  if (auto n = seen_content.getLength().size(); n != 0 && n != p.seen.size())
    return misaligned(where, "seen_content", n, "seen", p.seen.size());
  auto rows = read(seen_content, where + " seen_content");
  if (!rows.ok())
    return rows.err();
  p.seen_content = std::move(*rows);
  p.ials = get<float>(r.getIals());
  p.mf_known = r.getMfKnown();
  p.mf = get<float>(r.getMf());
  p.mf_bias = r.getMfBias();
  auto content = read(r.getContent(), where + " content");
  if (!content.ok())
    return content.err();
  p.content = std::move(*content);
  return p;
}

void fill_phase1(wire::Phase1Reply::Builder b, const dist::phase1_reply& r) {
  b.setPartition(r.partition);
  auto list = b.initMoments(list_size(r.moments.size()));
  for (unsigned i = 0; i < r.moments.size(); ++i) {
    list[i].setCount(r.moments[i].count);
    list[i].setSum(r.moments[i].sum);
    list[i].setSumSq(r.moments[i].sum_sq);
  }
}

dist::phase1_reply read_phase1(wire::Phase1Reply::Reader r) {
  dist::phase1_reply out;
  out.partition = r.getPartition();
  auto list = r.getMoments();
  out.moments.reserve(list.size());
  for (auto m : list)
    out.moments.push_back({m.getCount(), m.getSum(), m.getSumSq()});
  return out;
}

void fill_stats(wire::BlendStats::Builder b, const dist::blend_stats& s) {
  put(b.initMean(list_size(s.mean.size())), s.mean);
  put(b.initInvStd(list_size(s.inv_std.size())), s.inv_std);
  put(b.initMissing(list_size(s.missing.size())), s.missing);
}

core::result<dist::blend_stats> read_stats(wire::BlendStats::Reader r,
                                           const std::string& where) {
  dist::blend_stats s;
  s.mean = get<float>(r.getMean());
  s.inv_std = get<float>(r.getInvStd());
  s.missing = get<std::uint32_t>(r.getMissing());
  if (s.inv_std.size() != s.mean.size())
    return misaligned(where, "inv_std", s.inv_std.size(), "mean", s.mean.size());
  return s;
}

void fill_evidence(capnp::List<wire::Evidence>::Builder list,
                   const std::vector<dist::evidence>& v) {
  for (unsigned k = 0; k < v.size(); ++k) {
    list[k].setItem(v[k].item);
    list[k].setWeight(v[k].weight);
  }
}

std::vector<dist::evidence> read_evidence(capnp::List<wire::Evidence>::Reader list) {
  std::vector<dist::evidence> v;
  v.reserve(list.size());
  for (auto x : list)
    v.push_back({text(x.getItem()), x.getWeight()});
  return v;
}

void fill_candidates(capnp::List<wire::BlendCandidate>::Builder list,
                     const std::vector<dist::candidate>& cs) {
  for (unsigned i = 0; i < cs.size(); ++i) {
    const auto& c = cs[i];
    auto w = list[i];
    w.setItem(c.item);
    w.setScore(c.score);
    auto comps = w.initComponents(list_size(c.components.size()));
    for (unsigned k = 0; k < c.components.size(); ++k) {
      comps[k].setName(c.components[k].name);
      comps[k].setRaw(c.components[k].raw);
      comps[k].setNormalised(c.components[k].normalised);
      comps[k].setContribution(c.components[k].contribution);
    }
    fill_evidence(w.initBecause(list_size(c.because.size())), c.because);
    w.setBecauseFrom(c.because_from);
    fill_evidence(w.initKnnEvidence(list_size(c.knn_evidence.size())), c.knn_evidence);
    if (!c.ease_evidence.empty())
      fill_evidence(w.initEaseEvidence(list_size(c.ease_evidence.size())),
                    c.ease_evidence);
    if (!c.content.empty())
      fill(w.initContent(), c.content);
  }
}

core::result<std::vector<dist::candidate>>
read_candidates(capnp::List<wire::BlendCandidate>::Reader list,
                const std::string& where) {
  std::vector<dist::candidate> out;
  out.reserve(list.size());
  for (unsigned i = 0; i < list.size(); ++i) {
    auto w = list[i];
    dist::candidate c;
    c.item = text(w.getItem());
    c.score = w.getScore();
    auto comps = w.getComponents();
    c.components.reserve(comps.size());
    for (auto x : comps)
      c.components.push_back(
          {text(x.getName()), x.getRaw(), x.getNormalised(), x.getContribution()});
    c.because = read_evidence(w.getBecause());
    c.because_from = text(w.getBecauseFrom());
    c.knn_evidence = read_evidence(w.getKnnEvidence());
    c.ease_evidence = read_evidence(w.getEaseEvidence());
    if (w.hasContent()) {
      auto v =
          read(w.getContent(), where + " candidates[" + std::to_string(i) + "] content");
      if (!v.ok())
        return v.err();
      c.content = std::move(*v);
    }
    out.push_back(std::move(c));
  }
  return out;
}

// A node batch's or answer's partition list (strictly ascending).
core::result<std::vector<std::uint32_t>>
read_partitions(capnp::List<std::uint32_t>::Reader list, const std::string& where) {
  auto v = get<std::uint32_t>(list);
  if (auto at = first_unsorted(v); at != v.size())
    return not_ascending(where, "partitions", at);
  return v;
}

// Which parts of a node query travel, by kind (dist/node_query.hpp): the
// profile always, the statistics for direct only.
bool carries_stats(dist::node_query_kind k) {
  return k == dist::node_query_kind::direct;
}

std::string indexed(const char* where, const char* field, unsigned i) {
  return std::string(where) + " " + field + "[" + std::to_string(i) + "]";
}

core::error missing_field(const std::string& where, const char* field, const char* why) {
  return bad_message(where + ": field '" + field + "' is missing (" + why + ")");
}

} // namespace

// ---- training: dist_knn (item-kNN by row exchange)

frame encode(const dist::scale_partial& s) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initScalePartial();
    b.setPartition(s.partition);
    b.setMaxAbs(s.max_abs);
    b.setRaters(s.raters);
    b.setCells(s.cells);
  });
}

core::result<dist::scale_partial> decode_scale_partial(const frame& f) {
  return read_train<dist::scale_partial>(f, wire::TrainFrame::SCALE_PARTIAL,
                                         "scale_partial",
                                         [](wire::TrainFrame::Reader root) {
                                           auto r = root.getScalePartial();
                                           dist::scale_partial s;
                                           s.partition = r.getPartition();
                                           s.max_abs = r.getMaxAbs();
                                           s.raters = r.getRaters();
                                           s.cells = r.getCells();
                                           return s;
                                         });
}

frame encode(const dist::knn_round& k) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initKnnRound();
    b.setScale(k.scale);
    b.setRound(k.round);
    b.setRounds(k.rounds);
  });
}

core::result<dist::knn_round> decode_knn_round(const frame& f) {
  return read_train<dist::knn_round>(
      f, wire::TrainFrame::KNN_ROUND, "knn_round",
      [](wire::TrainFrame::Reader root) -> core::result<dist::knn_round> {
        auto r = root.getKnnRound();
        dist::knn_round k{r.getScale(), r.getRound(), r.getRounds()};
        if (k.rounds == 0 || k.round >= k.rounds)
          return bad_message("knn_round: field 'round' is " + std::to_string(k.round)
                             + " of 'rounds' " + std::to_string(k.rounds));
        return k;
      });
}

// The row lengths of a CSR block (row_ptr of rows + 1 offsets) on the wire.
template <class Builder>
void put_row_lengths(Builder length, const std::vector<std::uint64_t>& row_ptr) {
  for (unsigned r = 0; r < length.size(); ++r) {
    SHARDREC_ASSERT(row_ptr[r] <= row_ptr[r + 1]);
    length.set(r, list_size(row_ptr[r + 1] - row_ptr[r]));
  }
}

// The head the kNN blocks share (side, kind, from, to, ids); an error for an
// unknown enum value.
template <class Reader, class Block>
std::optional<core::error> read_knn_head(const std::string& where, Reader r, Block& b) {
  auto side = from_wire(r.getSide());
  if (!side)
    return unknown_enum(where, "side", static_cast<std::uint16_t>(r.getSide()));
  auto kind = from_wire(r.getKind());
  if (!kind)
    return unknown_enum(where, "kind", static_cast<std::uint16_t>(r.getKind()));
  b.side = *side;
  b.kind = *kind;
  b.from = r.getFrom();
  b.to = r.getTo();
  b.ids = get_strings(r.getIds());
  return std::nullopt;
}

// row_ptr from the wire's row lengths: {0, l0, l0 + l1, ...}.
template <class List> std::vector<std::uint64_t> offsets_of(List length) {
  std::vector<std::uint64_t> ptr;
  ptr.reserve(length.size() + 1);
  ptr.push_back(0);
  for (auto l : length)
    ptr.push_back(ptr.back() + l);
  return ptr;
}

frame encode(const dist::rater_rows_block& blk) {
  SHARDREC_ASSERT(!blk.row_ptr.empty() && blk.row_ptr.back() == blk.entity.size());
  const std::size_t rows = blk.row_ptr.size() - 1;
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initRaterRowsBlock();
    b.setSide(to_wire(blk.side));
    b.setKind(to_wire(blk.kind));
    b.setFrom(blk.from);
    b.setTo(blk.to);
    put(b.initIds(list_size(blk.ids.size())), blk.ids);
    put_row_lengths(b.initRowLength(list_size(rows)), blk.row_ptr);
    put(b.initEntity(list_size(blk.entity.size())), blk.entity);
    put(b.initQ(list_size(blk.q.size())), blk.q);
    b.setRound(blk.round);
    b.setRounds(blk.rounds);
    b.setOwn(blk.own);
  });
}

core::result<dist::rater_rows_block> decode_rater_rows_block(const frame& f) {
  return read_train<dist::rater_rows_block>(
      f, wire::TrainFrame::RATER_ROWS_BLOCK, "rater_rows_block",
      [](wire::TrainFrame::Reader root) -> core::result<dist::rater_rows_block> {
        const std::string where = "rater_rows_block";
        auto r = root.getRaterRowsBlock();
        dist::rater_rows_block b;
        if (auto err = read_knn_head(where, r, b))
          return *err;
        b.round = r.getRound();
        b.rounds = r.getRounds();
        b.own = r.getOwn();
        if (b.rounds == 0)
          return bad_message(where
                             + ": field 'rounds' is 0: a block of the one-round "
                               "row exchange (a node of an older version; "
                               "every node must run the same version)");
        if (b.round >= b.rounds || (b.own && b.round != 0))
          return bad_message(where + ": field 'round' is " + std::to_string(b.round)
                             + " of 'rounds' " + std::to_string(b.rounds)
                             + (b.own ? " (own cells travel with round 0)" : ""));
        b.row_ptr = offsets_of(r.getRowLength());
        b.entity = get<std::uint32_t>(r.getEntity());
        if (b.row_ptr.back() != b.entity.size())
          return bad_message(where + ": field 'row_length' adds up to "
                             + std::to_string(b.row_ptr.back()) + ", 'entity' has "
                             + std::to_string(b.entity.size()) + " entries");
        b.q = get<std::int64_t>(r.getQ());
        if (b.q.size() != b.entity.size())
          return misaligned(where, "q", b.q.size(), "entity", b.entity.size());
        for (std::size_t i = 0; i < b.entity.size(); ++i)
          if (b.entity[i] >= b.ids.size())
            return out_of_dictionary(where, "entity", i, b.entity[i], b.ids.size());
        return b;
      });
}

// ---- EASE

frame encode_ease_items(const std::vector<std::string>& items) {
  return build_train([&](wire::TrainFrame::Builder root) {
    put(root.initEaseItems().initItems(list_size(items.size())), items);
  });
}

core::result<std::vector<std::string>> decode_ease_items(const frame& f) {
  return read_train<std::vector<std::string>>(
      f, wire::TrainFrame::EASE_ITEMS, "ease_items",
      [](wire::TrainFrame::Reader root) -> core::result<std::vector<std::string>> {
        return get_strings(root.getEaseItems().getItems());
      });
}

frame encode(const dist::ease_rows& rows) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initEaseRows();
    put(b.initLength(list_size(rows.length.size())), rows.length);
    put(b.initPosition(list_size(rows.position.size())), rows.position);
  });
}

core::result<dist::ease_rows> decode_ease_rows(const frame& f) {
  return read_train<dist::ease_rows>(
      f, wire::TrainFrame::EASE_ROWS, "ease_rows",
      [](wire::TrainFrame::Reader root) -> core::result<dist::ease_rows> {
        auto r = root.getEaseRows();
        dist::ease_rows rows;
        rows.length = get<std::uint32_t>(r.getLength());
        rows.position = get<std::uint32_t>(r.getPosition());
        std::uint64_t total = 0;
        for (auto l : rows.length)
          total += l;
        if (total != rows.position.size())
          return bad_message("ease_rows: field 'length' adds up to "
                             + std::to_string(total) + ", 'position' has "
                             + std::to_string(rows.position.size()) + " entries");
        return rows;
      });
}

frame encode(const ease_columns_chunk& c) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initEaseColumns();
    put(b.initItems(list_size(c.items.size())), c.items);
    put(b.initWeights(list_size(c.weights.size())), c.weights);
  });
}

core::result<ease_columns_chunk> decode_ease_columns(const frame& f) {
  return read_train<ease_columns_chunk>(
      f, wire::TrainFrame::EASE_COLUMNS, "ease_columns",
      [](wire::TrainFrame::Reader root) -> core::result<ease_columns_chunk> {
        auto r = root.getEaseColumns();
        ease_columns_chunk c;
        c.items = get_strings(r.getItems());
        c.weights = get<float>(r.getWeights());
        if (c.items.empty() ? !c.weights.empty() : c.weights.size() % c.items.size() != 0)
          return bad_message("ease_columns: " + std::to_string(c.weights.size())
                             + " weights for " + std::to_string(c.items.size())
                             + " items");
        return c;
      });
}

// ---- tuning sample

frame encode(const core::tuning_sample_part& t) {
  std::vector<std::string> users, items;
  std::unordered_map<std::string_view, std::uint32_t> user_of, item_of;
  std::vector<std::uint32_t> user, item;
  auto id = [](auto& of, auto& names, const std::string& x) {
    auto [it, fresh] = of.emplace(x, static_cast<std::uint32_t>(names.size()));
    if (fresh)
      names.push_back(x);
    return it->second;
  };
  for (const auto& e : t.events) {
    user.push_back(id(user_of, users, e.user));
    item.push_back(id(item_of, items, e.item));
  }
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initTuningSample();
    put(b.initUsers(list_size(users.size())), users);
    put(b.initItems(list_size(items.size())), items);
    put(b.initUser(list_size(user.size())), user);
    put(b.initItem(list_size(item.size())), item);
    auto value = b.initValue(list_size(t.events.size()));
    auto type = b.initType(list_size(t.events.size()));
    auto ts = b.initTimestamp(list_size(t.events.size()));
    for (unsigned k = 0; k < t.events.size(); ++k) {
      value.set(k, t.events[k].value);
      type.set(k, static_cast<std::uint8_t>(t.events[k].type));
      ts.set(k, t.events[k].timestamp);
    }
    auto info = b.initInfo(list_size(t.items.size()));
    for (unsigned k = 0; k < t.items.size(); ++k) {
      fill(info[k], t.items[k].second);
      info[k].setItem(t.items[k].first);
    }
  });
}

core::result<core::tuning_sample_part> decode_tuning_sample(const frame& f) {
  return read_train<core::tuning_sample_part>(
      f, wire::TrainFrame::TUNING_SAMPLE, "tuning_sample",
      [](wire::TrainFrame::Reader root) -> core::result<core::tuning_sample_part> {
        const std::string where = "tuning_sample";
        auto r = root.getTuningSample();
        const auto users = get_strings(r.getUsers());
        const auto items = get_strings(r.getItems());
        const auto user = get<std::uint32_t>(r.getUser());
        const auto item = get<std::uint32_t>(r.getItem());
        const auto value = get<float>(r.getValue());
        const auto type = get<std::uint8_t>(r.getType());
        const auto ts = get<std::int64_t>(r.getTimestamp());
        const auto n = user.size();
        if (item.size() != n)
          return misaligned(where, "item", item.size(), "user", n);
        if (value.size() != n)
          return misaligned(where, "value", value.size(), "user", n);
        if (type.size() != n)
          return misaligned(where, "type", type.size(), "user", n);
        if (ts.size() != n)
          return misaligned(where, "timestamp", ts.size(), "user", n);
        core::tuning_sample_part t;
        t.events.reserve(n);
        for (std::size_t k = 0; k < n; ++k) {
          if (user[k] >= users.size())
            return out_of_dictionary(where, "user", k, user[k], users.size());
          if (item[k] >= items.size())
            return out_of_dictionary(where, "item", k, item[k], items.size());
          if (type[k] >= core::event_type_count)
            return unknown_enum(where + " event " + std::to_string(k), "type", type[k]);
          t.events.push_back({users[user[k]], items[item[k]], value[k],
                              static_cast<core::event_type>(type[k]), ts[k]});
        }
        for (auto i : r.getInfo())
          t.items.emplace_back(text(i.getItem()), read(i));
        return t;
      });
}

frame encode_tuning_request(std::uint64_t n_users, std::uint64_t max_users) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initTuningSampleRequest();
    b.setNUsers(n_users);
    b.setMaxUsers(max_users);
  });
}

core::result<std::pair<std::uint64_t, std::uint64_t>>
decode_tuning_request(const frame& f) {
  return read_train<std::pair<std::uint64_t, std::uint64_t>>(
      f, wire::TrainFrame::TUNING_SAMPLE_REQUEST, "tuning_sample_request",
      [](wire::TrainFrame::Reader root)
          -> core::result<std::pair<std::uint64_t, std::uint64_t>> {
        auto r = root.getTuningSampleRequest();
        return std::make_pair(r.getNUsers(), r.getMaxUsers());
      });
}

frame encode(const dist::reverse_block& blk) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initReverseBlock();
    b.setFrom(blk.from);
    b.setTo(blk.to);
    put(b.initIds(list_size(blk.ids.size())), blk.ids);
    put(b.initTarget(list_size(blk.target.size())), blk.target);
    put(b.initSource(list_size(blk.source.size())), blk.source);
    put(b.initSimilarity(list_size(blk.similarity.size())), blk.similarity);
  });
}

core::result<dist::reverse_block> decode_reverse_block(const frame& f) {
  return read_train<dist::reverse_block>(
      f, wire::TrainFrame::REVERSE_BLOCK, "reverse_block",
      [](wire::TrainFrame::Reader root) -> core::result<dist::reverse_block> {
        const std::string where = "reverse_block";
        auto r = root.getReverseBlock();
        dist::reverse_block b;
        b.from = r.getFrom();
        b.to = r.getTo();
        b.ids = get_strings(r.getIds());
        b.target = get<std::uint32_t>(r.getTarget());
        b.source = get<std::uint32_t>(r.getSource());
        b.similarity = get<float>(r.getSimilarity());
        if (b.source.size() != b.target.size())
          return misaligned(where, "source", b.source.size(), "target", b.target.size());
        if (b.similarity.size() != b.target.size())
          return misaligned(where, "similarity", b.similarity.size(), "target",
                            b.target.size());
        for (std::size_t i = 0; i < b.target.size(); ++i) {
          if (b.target[i] >= b.ids.size())
            return out_of_dictionary(where, "target", i, b.target[i], b.ids.size());
          if (b.source[i] >= b.ids.size())
            return out_of_dictionary(where, "source", i, b.source[i], b.ids.size());
        }
        return b;
      });
}

// ---- training: dist_recommend phase A

frame encode(const dist::content_df_partial& p) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initContentDfPartial();
    b.setPartition(p.partition);
    b.setNDocuments(p.n_documents);
    put(b.initFeatures(list_size(p.features.size())), p.features);
    put(b.initDf(list_size(p.df.size())), p.df);
  });
}

core::result<dist::content_df_partial> decode_content_df_partial(const frame& f) {
  return read_train<dist::content_df_partial>(
      f, wire::TrainFrame::CONTENT_DF_PARTIAL, "content_df_partial",
      [](wire::TrainFrame::Reader root) -> core::result<dist::content_df_partial> {
        auto r = root.getContentDfPartial();
        dist::content_df_partial p;
        p.partition = r.getPartition();
        p.n_documents = r.getNDocuments();
        p.features = get_strings(r.getFeatures());
        p.df = get<std::uint32_t>(r.getDf());
        if (p.df.size() != p.features.size())
          return misaligned("content_df_partial", "df", p.df.size(), "features",
                            p.features.size());
        if (auto at = first_unsorted(p.features); at != p.features.size())
          return not_ascending("content_df_partial", "features", at);
        return p;
      });
}

frame encode(const dist::content_vocabulary& v) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initContentVocabulary();
    b.setNDocuments(v.n_documents);
    put(b.initFeatures(list_size(v.features.size())), v.features);
    put(b.initDf(list_size(v.df.size())), v.df);
    put(b.initIdf(list_size(v.idf.size())), v.idf);
  });
}

core::result<dist::content_vocabulary> decode_content_vocabulary(const frame& f) {
  return read_train<dist::content_vocabulary>(
      f, wire::TrainFrame::CONTENT_VOCABULARY, "content_vocabulary",
      [](wire::TrainFrame::Reader root) -> core::result<dist::content_vocabulary> {
        const std::string where = "content_vocabulary";
        auto r = root.getContentVocabulary();
        dist::content_vocabulary v;
        v.n_documents = r.getNDocuments();
        v.features = get_strings(r.getFeatures());
        v.df = get<std::uint32_t>(r.getDf());
        v.idf = get<float>(r.getIdf());
        if (v.df.size() != v.features.size())
          return misaligned(where, "df", v.df.size(), "features", v.features.size());
        if (v.idf.size() != v.features.size())
          return misaligned(where, "idf", v.idf.size(), "features", v.features.size());
        if (auto at = first_unsorted(v.features); at != v.features.size())
          return not_ascending(where, "features", at);
        return v;
      });
}

frame encode(const dist::content_vectors_message& m) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initContentVectors();
    b.setFrom(m.from);
    b.setTo(m.to);
    put(b.initItems(list_size(m.items.size())), m.items);
    fill(b.initVectors(), m.vectors);
  });
}

core::result<dist::content_vectors_message>
decode_content_vectors_message(const frame& f) {
  return read_train<dist::content_vectors_message>(
      f, wire::TrainFrame::CONTENT_VECTORS, "content_vectors_message",
      [](wire::TrainFrame::Reader root) -> core::result<dist::content_vectors_message> {
        const std::string where = "content_vectors_message";
        auto r = root.getContentVectors();
        dist::content_vectors_message m;
        m.from = r.getFrom();
        m.to = r.getTo();
        m.items = get_strings(r.getItems());
        // Checked before the rows are materialised: a frame of empty rows
        // must not cost far more memory than its own size.
        if (auto n = r.getVectors().getLength().size(); n != m.items.size())
          return misaligned(where, "vectors", n, "items", m.items.size());
        auto rows = read(r.getVectors(), where + " vectors");
        if (!rows.ok())
          return rows.err();
        m.vectors = std::move(*rows);
        return m;
      });
}

// ---- training: dist_als

frame encode(const dist::als_census& c) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initAlsCensus();
    b.setFrom(c.from);
    b.setUsers(c.users);
    b.setItems(c.items);
    b.setRatings(c.ratings);
    b.setRatingSum(c.rating_sum);
  });
}

core::result<dist::als_census> decode_als_census(const frame& f) {
  return read_train<dist::als_census>(f, wire::TrainFrame::ALS_CENSUS, "als_census",
                                      [](wire::TrainFrame::Reader root) {
                                        auto r = root.getAlsCensus();
                                        dist::als_census c;
                                        c.from = r.getFrom();
                                        c.users = r.getUsers();
                                        c.items = r.getItems();
                                        c.ratings = r.getRatings();
                                        c.rating_sum = r.getRatingSum();
                                        return c;
                                      });
}

frame encode(const dist::als_globals& g) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initAlsGlobals();
    b.setPartitions(g.partitions);
    b.setNUsers(g.n_users);
    b.setNItems(g.n_items);
    b.setMu(g.mu);
  });
}

core::result<dist::als_globals> decode_als_globals(const frame& f) {
  return read_train<dist::als_globals>(f, wire::TrainFrame::ALS_GLOBALS, "als_globals",
                                       [](wire::TrainFrame::Reader root) {
                                         auto r = root.getAlsGlobals();
                                         dist::als_globals g;
                                         g.partitions = r.getPartitions();
                                         g.n_users = r.getNUsers();
                                         g.n_items = r.getNItems();
                                         g.mu = r.getMu();
                                         return g;
                                       });
}

frame encode(const dist::ials_block& b) {
  return build_train(
      [&](wire::TrainFrame::Builder root) { fill_block(root.initIalsBlock(), b); });
}

core::result<dist::ials_block> decode_ials_block(const frame& f) {
  return read_train<dist::ials_block>(
      f, wire::TrainFrame::IALS_BLOCK, "ials_block", [](wire::TrainFrame::Reader root) {
        return read_block<float>(root.getIalsBlock(), "ials_block");
      });
}

frame encode(const dist::mf_block& b) {
  return build_train(
      [&](wire::TrainFrame::Builder root) { fill_block(root.initMfBlock(), b); });
}

core::result<dist::mf_block> decode_mf_block(const frame& f) {
  return read_train<dist::mf_block>(
      f, wire::TrainFrame::MF_BLOCK, "mf_block", [](wire::TrainFrame::Reader root) {
        return read_block<double>(root.getMfBlock(), "mf_block");
      });
}

frame encode(const dist::gram_partial& g) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initGramPartial();
    b.setFrom(g.from);
    fill_gram(b, g);
  });
}

core::result<dist::gram_partial> decode_gram_partial(const frame& f) {
  return read_train<dist::gram_partial>(
      f, wire::TrainFrame::GRAM_PARTIAL, "gram_partial",
      [](wire::TrainFrame::Reader root) -> core::result<dist::gram_partial> {
        auto r = root.getGramPartial();
        auto g = read_gram<dist::gram_partial>(r, "gram_partial");
        if (g.ok())
          g->from = r.getFrom();
        return g;
      });
}

frame encode(const dist::gram_total& g) {
  return build_train(
      [&](wire::TrainFrame::Builder root) { fill_gram(root.initGramTotal(), g); });
}

core::result<dist::gram_total> decode_gram_total(const frame& f) {
  return read_train<dist::gram_total>(
      f, wire::TrainFrame::GRAM_TOTAL, "gram_total", [](wire::TrainFrame::Reader root) {
        return read_gram<dist::gram_total>(root.getGramTotal(), "gram_total");
      });
}

frame encode(const dist::loss_partial& l) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initLossPartial();
    b.setFrom(l.from);
    b.setVersion(l.version);
    b.setLoss(l.loss);
  });
}

core::result<dist::loss_partial> decode_loss_partial(const frame& f) {
  return read_train<dist::loss_partial>(f, wire::TrainFrame::LOSS_PARTIAL, "loss_partial",
                                        [](wire::TrainFrame::Reader root) {
                                          auto r = root.getLossPartial();
                                          dist::loss_partial l;
                                          l.from = r.getFrom();
                                          l.version = r.getVersion();
                                          l.loss = r.getLoss();
                                          return l;
                                        });
}

// ---- Gibbs stats and priors

namespace {

void fill(wire::ExactSum::Builder b, const core::exact_sum& s) {
  b.setHigh(s.high());
  b.setLow(s.low());
  b.setPoisoned(s.poisoned());
}

core::exact_sum read(wire::ExactSum::Reader r) {
  return core::exact_sum::from_bits(r.getHigh(), r.getLow(), r.getPoisoned());
}

void fill(wire::MfMoments::Builder b, const core::mf_row_moments& m) {
  b.setN(m.n);
  auto sum = b.initSum(list_size(m.sum.size()));
  for (std::size_t i = 0; i < m.sum.size(); ++i)
    fill(sum[static_cast<unsigned>(i)], m.sum[i]);
  auto outer = b.initOuter(list_size(m.outer.size()));
  for (std::size_t i = 0; i < m.outer.size(); ++i)
    fill(outer[static_cast<unsigned>(i)], m.outer[i]);
}

core::result<core::mf_row_moments> read(wire::MfMoments::Reader r,
                                        const std::string& where) {
  core::mf_row_moments m;
  m.n = r.getN();
  auto sum = r.getSum();
  auto outer = r.getOuter();
  const std::uint64_t d = sum.size();
  if ((m.n == 0) != (d == 0) || std::uint64_t{outer.size()} != d * d)
    return bad_message(where + ": " + std::to_string(m.n) + " rows with 'sum' of "
                       + std::to_string(d) + " and 'outer' of "
                       + std::to_string(outer.size()) + " entries");
  for (auto e : sum)
    m.sum.push_back(read(e));
  for (auto e : outer)
    m.outer.push_back(read(e));
  return m;
}

void fill(wire::GibbsPrior::Builder b, const core::mf_gibbs_prior& p) {
  b.setAlpha(p.alpha);
  const auto rows = p.lambda.rows(), cols = p.lambda.cols();
  auto l = b.initLambda(list_size(static_cast<std::size_t>(rows * cols)));
  for (Eigen::Index s = 0; s < rows; ++s)
    for (Eigen::Index t = 0; t < cols; ++t)
      l.set(static_cast<unsigned>(s * cols + t), p.lambda(s, t));
  auto lm = b.initLambdaMu(list_size(static_cast<std::size_t>(p.lambda_mu.size())));
  for (Eigen::Index s = 0; s < p.lambda_mu.size(); ++s)
    lm.set(static_cast<unsigned>(s), p.lambda_mu[s]);
}

core::result<core::mf_gibbs_prior> read(wire::GibbsPrior::Reader r,
                                        const std::string& where) {
  core::mf_gibbs_prior p;
  p.alpha = r.getAlpha();
  auto lm = r.getLambdaMu();
  auto l = r.getLambda();
  const std::uint64_t d = lm.size();
  if (std::uint64_t{l.size()} != d * d)
    return bad_message(where + ": field 'lambda' has " + std::to_string(l.size())
                       + " entries, expected 'lambdaMu' " + std::to_string(d)
                       + " squared");
  const auto n = static_cast<Eigen::Index>(d);
  p.lambda.resize(n, n);
  p.lambda_mu.resize(n);
  for (Eigen::Index s = 0; s < n; ++s) {
    p.lambda_mu[s] = lm[static_cast<unsigned>(s)];
    for (Eigen::Index t = 0; t < n; ++t)
      p.lambda(s, t) = l[static_cast<unsigned>(s * n + t)];
  }
  return p;
}

} // namespace

frame encode(const dist::gibbs_stats& g) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initGibbsStats();
    b.setFrom(g.from);
    b.setVersion(g.version);
    b.setCells(g.cells);
    fill(b.initSse(), g.sse);
    fill(b.initUsers(), g.users);
    fill(b.initItems(), g.items);
  });
}

core::result<dist::gibbs_stats> decode_gibbs_stats(const frame& f) {
  return read_train<dist::gibbs_stats>(
      f, wire::TrainFrame::GIBBS_STATS, "gibbs_stats",
      [](wire::TrainFrame::Reader root) -> core::result<dist::gibbs_stats> {
        auto r = root.getGibbsStats();
        dist::gibbs_stats g;
        g.from = r.getFrom();
        g.version = r.getVersion();
        g.cells = r.getCells();
        g.sse = read(r.getSse());
        auto users = read(r.getUsers(), "gibbs_stats users");
        if (!users)
          return users.err();
        auto items = read(r.getItems(), "gibbs_stats items");
        if (!items)
          return items.err();
        g.users = std::move(*users);
        g.items = std::move(*items);
        return g;
      });
}

frame encode(const dist::gibbs_priors& g) {
  return build_train([&](wire::TrainFrame::Builder root) {
    auto b = root.initGibbsPriors();
    b.setSweep(g.sweep);
    fill(b.initUsers(), g.users);
    fill(b.initItems(), g.items);
  });
}

core::result<dist::gibbs_priors> decode_gibbs_priors(const frame& f) {
  return read_train<dist::gibbs_priors>(
      f, wire::TrainFrame::GIBBS_PRIORS, "gibbs_priors",
      [](wire::TrainFrame::Reader root) -> core::result<dist::gibbs_priors> {
        auto r = root.getGibbsPriors();
        dist::gibbs_priors g;
        g.sweep = r.getSweep();
        auto users = read(r.getUsers(), "gibbs_priors users");
        if (!users)
          return users.err();
        auto items = read(r.getItems(), "gibbs_priors items");
        if (!items)
          return items.err();
        g.users = std::move(*users);
        g.items = std::move(*items);
        return g;
      });
}

// ---- query time

frame encode(const dist::blend_spec& s) {
  return build_query(
      [&](wire::QueryFrame::Builder root) { fill(root.initBlendSpec(), s); });
}

core::result<dist::blend_spec> decode_blend_spec(const frame& f) {
  return read_query<dist::blend_spec>(f, wire::QueryFrame::BLEND_SPEC, "blend_spec",
                                      [](wire::QueryFrame::Reader root) {
                                        return read(root.getBlendSpec(), "blend_spec");
                                      });
}

frame encode(const dist::user_profile& p) {
  return build_query(
      [&](wire::QueryFrame::Builder root) { fill_profile(root.initUserProfile(), p); });
}

core::result<dist::user_profile> decode_user_profile(const frame& f) {
  return read_query<dist::user_profile>(f, wire::QueryFrame::USER_PROFILE, "user_profile",
                                        [](wire::QueryFrame::Reader root) {
                                          return read_profile(root.getUserProfile(),
                                                              "user_profile");
                                        });
}

frame encode(const dist::blend_stats& s) {
  return build_query(
      [&](wire::QueryFrame::Builder root) { fill_stats(root.initBlendStats(), s); });
}

core::result<dist::blend_stats> decode_blend_stats(const frame& f) {
  return read_query<dist::blend_stats>(
      f, wire::QueryFrame::BLEND_STATS, "blend_stats", [](wire::QueryFrame::Reader root) {
        return read_stats(root.getBlendStats(), "blend_stats");
      });
}

// ---- query time: node batches

frame encode(const dist::node_query_batch& batch) {
  return build_query([&](wire::QueryFrame::Builder root) {
    auto b = root.initNodeQueryBatch();
    put(b.initPartitions(list_size(batch.partitions.size())), batch.partitions);
    auto list = b.initQueries(list_size(batch.queries.size()));
    for (unsigned i = 0; i < batch.queries.size(); ++i) {
      const auto& q = batch.queries[i];
      auto w = list[i];
      w.setQuery(q.id);
      w.setN(q.n);
      w.setKind(to_wire(q.kind));
      fill_profile(w.initProfile(), q.profile);
      if (carries_stats(q.kind))
        fill_stats(w.initStats(), q.stats);
    }
  });
}

core::result<dist::node_query_batch> decode_node_query_batch(const frame& f) {
  return read_query<dist::node_query_batch>(
      f, wire::QueryFrame::NODE_QUERY_BATCH, "node_query_batch",
      [](wire::QueryFrame::Reader root) -> core::result<dist::node_query_batch> {
        const char* where = "node_query_batch";
        auto r = root.getNodeQueryBatch();
        dist::node_query_batch b;
        auto partitions = read_partitions(r.getPartitions(), where);
        if (!partitions.ok())
          return partitions.err();
        b.partitions = std::move(*partitions);
        auto list = r.getQueries();
        b.queries.reserve(list.size());
        for (unsigned i = 0; i < list.size(); ++i) {
          auto w = list[i];
          dist::node_query q;
          q.id = w.getQuery();
          q.n = w.getN();
          auto kind = from_wire(w.getKind());
          if (!kind)
            return unknown_enum(indexed(where, "queries", i), "kind",
                                static_cast<std::uint16_t>(w.getKind()));
          q.kind = *kind;
          if (!w.hasProfile())
            return missing_field(indexed(where, "queries", i), "profile",
                                 "kind direct or local");
          auto p =
              read_profile(w.getProfile(), indexed(where, "queries", i) + " profile");
          if (!p.ok())
            return p.err();
          q.profile = std::move(*p);
          if (carries_stats(q.kind)) {
            if (!w.hasStats())
              return missing_field(indexed(where, "queries", i), "stats", "kind direct");
            auto s = read_stats(w.getStats(), indexed(where, "queries", i) + " stats");
            if (!s.ok())
              return s.err();
            q.stats = std::move(*s);
          }
          b.queries.push_back(std::move(q));
        }
        return b;
      });
}

frame encode(const dist::node_query_reply& r) {
  return build_query([&](wire::QueryFrame::Builder root) {
    auto list = root.initNodeQueryReply().initAnswers(list_size(r.answers.size()));
    for (unsigned i = 0; i < r.answers.size(); ++i) {
      const auto& a = r.answers[i];
      auto w = list[i];
      w.setQuery(a.id);
      w.setError(a.error);
      put(w.initPartitions(list_size(a.partitions.size())), a.partitions);
      auto moments = w.initMoments(list_size(a.moments.size()));
      for (unsigned k = 0; k < a.moments.size(); ++k)
        fill_phase1(moments[k], a.moments[k]);
      fill_candidates(w.initCandidates(list_size(a.candidates.size())), a.candidates);
      if (!a.bound.weights.empty() || a.bound.complete) {
        auto b = w.initBound();
        fill_stats(b.initLocal(), a.bound.local);
        put(b.initWeights(list_size(a.bound.weights.size())), a.bound.weights);
        put(b.initRawMin(list_size(a.bound.raw_min.size())), a.bound.raw_min);
        put(b.initRawMax(list_size(a.bound.raw_max.size())), a.bound.raw_max);
        b.setThreshold(a.bound.threshold);
        b.setComplete(a.bound.complete);
        b.setHasNan(a.bound.has_nan);
      }
    }
  });
}

core::result<dist::node_query_reply> decode_node_query_reply(const frame& f) {
  return read_query<dist::node_query_reply>(
      f, wire::QueryFrame::NODE_QUERY_REPLY, "node_query_reply",
      [](wire::QueryFrame::Reader root) -> core::result<dist::node_query_reply> {
        const char* where = "node_query_reply";
        auto list = root.getNodeQueryReply().getAnswers();
        dist::node_query_reply r;
        r.answers.reserve(list.size());
        for (unsigned i = 0; i < list.size(); ++i) {
          auto w = list[i];
          dist::node_answer a;
          a.id = w.getQuery();
          a.error = text(w.getError());
          auto partitions =
              read_partitions(w.getPartitions(), indexed(where, "answers", i));
          if (!partitions.ok())
            return partitions.err();
          a.partitions = std::move(*partitions);
          auto moments = w.getMoments();
          if (moments.size() != 0 && moments.size() != a.partitions.size())
            return misaligned(indexed(where, "answers", i), "moments", moments.size(),
                              "partitions", a.partitions.size());
          a.moments.reserve(moments.size());
          for (auto m : moments)
            a.moments.push_back(read_phase1(m));
          auto candidates =
              read_candidates(w.getCandidates(), indexed(where, "answers", i));
          if (!candidates.ok())
            return candidates.err();
          a.candidates = std::move(*candidates);
          if (w.hasBound()) {
            const auto at = indexed(where, "answers", i) + " bound";
            auto b = w.getBound();
            auto local = read_stats(b.getLocal(), at);
            if (!local.ok())
              return local.err();
            a.bound.local = std::move(*local);
            a.bound.weights = get<float>(b.getWeights());
            a.bound.raw_min = get<float>(b.getRawMin());
            a.bound.raw_max = get<float>(b.getRawMax());
            const auto n = a.bound.weights.size();
            if (a.bound.raw_min.size() != n)
              return misaligned(at, "raw_min", a.bound.raw_min.size(), "weights", n);
            if (a.bound.raw_max.size() != n)
              return misaligned(at, "raw_max", a.bound.raw_max.size(), "weights", n);
            a.bound.threshold = b.getThreshold();
            a.bound.complete = b.getComplete();
            a.bound.has_nan = b.getHasNan();
          }
          r.answers.push_back(std::move(a));
        }
        return r;
      });
}

} // namespace shardrec::actors
