#include "dist/recommend.hpp"

#include "core/fold_in.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include <Eigen/Core>

#include "core/partition.hpp"

namespace shardrec::dist {

namespace {

using token_list = content_tokens;

token_list owned_item_tokens(const partition_store& store, std::size_t row,
                             const content_config& cfg) {
  if (row >= store.item_meta().size())
    return {};
  return item_tokens(store.item_meta()[row], cfg);
}

error bad(std::string what) {
  return make_error(errc::invalid_argument, std::move(what));
}

} // namespace

// ---- A. Content ----------------------------------------------------------

content_df_partial count_content_df(const partition_store& store,
                                    const content_config& cfg) {
  SHARDREC_ASSERT(validate(cfg).ok());
  content_df_partial out;
  out.partition = store.partition();
  std::map<std::string, std::uint32_t> df;
  for (std::size_t r = 0; r < store.items().size(); ++r) {
    auto t = owned_item_tokens(store, r, cfg);
    out.n_documents += t.empty() ? 0 : 1;
    for (auto& [name, tf] : t)
      ++df[name];
  }
  out.features.reserve(df.size());
  out.df.reserve(df.size());
  for (auto& [name, d] : df) {
    out.features.push_back(name);
    out.df.push_back(d);
  }
  return out;
}

result<content_vocabulary> merge_content_df(const std::vector<content_df_partial>& parts,
                                            std::uint32_t partitions,
                                            const content_config& cfg) {
  SHARDREC_ASSERT(validate(cfg).ok());
  std::vector<bool> have(partitions, false);
  for (const auto& p : parts) {
    if (p.partition >= partitions)
      return bad("merge_content_df: partition " + std::to_string(p.partition)
                 + " out of range (partitions = " + std::to_string(partitions) + ")");
    if (have[p.partition])
      return bad("merge_content_df: duplicate partial of partition "
                 + std::to_string(p.partition));
    if (p.df.size() != p.features.size())
      return bad("merge_content_df: partition " + std::to_string(p.partition)
                 + ": df and features differ in length");
    have[p.partition] = true;
  }
  for (std::uint32_t p = 0; p < partitions; ++p)
    if (!have[p])
      return bad("merge_content_df: no partial from partition " + std::to_string(p));
  // Integer sums: exact in any order.
  std::map<std::string, std::uint64_t> df;
  std::uint64_t n_docs = 0;
  for (const auto& p : parts) {
    n_docs += p.n_documents;
    for (std::size_t k = 0; k < p.features.size(); ++k)
      df[p.features[k]] += p.df[k];
  }
  content_vocabulary voc;
  voc.n_documents = n_docs;
  const double max_df = static_cast<double>(cfg.max_df) * static_cast<double>(n_docs);
  const double n = static_cast<double>(n_docs);
  for (const auto& [name, d] : df) {
    if (!(static_cast<double>(d) >= cfg.min_df && static_cast<double>(d) <= max_df))
      continue;
    voc.features.push_back(name);
    voc.df.push_back(static_cast<std::uint32_t>(d));
    const double dd = static_cast<double>(d);
    voc.idf.push_back(static_cast<float>(cfg.smooth_idf ? std::log((1 + n) / (1 + dd)) + 1
                                                        : std::log(n / dd)));
  }
  return voc;
}

sparse_vector item_vector(const partition_store& store, std::size_t row,
                          const content_vocabulary& voc, const content_config& cfg) {
  sparse_vector out;
  std::vector<std::pair<std::uint32_t, double>> v;
  double norm2 = 0;
  for (const auto& [name, tf] : owned_item_tokens(store, row, cfg)) {
    auto it = std::lower_bound(voc.features.begin(), voc.features.end(), name);
    if (it == voc.features.end() || *it != name)
      continue;
    auto f = static_cast<std::uint32_t>(it - voc.features.begin());
    const double w = tf * voc.idf[f];
    if (w == 0.0)
      continue;
    v.emplace_back(f, w);
    norm2 += w * w;
  }
  if (norm2 == 0.0)
    return out;
  const double inv = 1.0 / std::sqrt(norm2);
  for (const auto& [f, w] : v) {
    out.feature.push_back(f);
    out.weight.push_back(static_cast<float>(w * inv));
  }
  return out;
}

std::vector<sparse_vector> build_item_vectors(const partition_store& store,
                                              const content_vocabulary& voc,
                                              const content_config& cfg) {
  std::vector<sparse_vector> out(store.items().size());
  for (std::size_t r = 0; r < out.size(); ++r)
    out[r] = item_vector(store, r, voc, cfg);
  return out;
}

std::vector<content_vectors_message>
push_item_vectors(const partition_store& store,
                  const std::vector<sparse_vector>& vectors) {
  SHARDREC_ASSERT(vectors.size() == store.items().size());
  const auto P = store.partitions();
  // Partition of every rater, computed once.
  const auto& refs = store.user_refs();
  std::vector<std::uint32_t> owner(refs.size());
  for (std::size_t u = 0; u < refs.size(); ++u)
    owner[u] = partition_of(refs.external(static_cast<index_t>(u)), P);
  std::vector<content_vectors_message> by_dest(P);
  std::vector<std::uint32_t> last_item(P, ~std::uint32_t{0});
  const auto& m = store.item_matrix();
  for (std::size_t r = 0; r < vectors.size(); ++r) {
    if (vectors[r].empty() || r >= m.n_items())
      continue;
    auto col = m.item_col(static_cast<index_t>(r));
    for (std::size_t k = 0; k < col.size; ++k) {
      auto q = owner[col.index[k]];
      if (last_item[q] == r)
        continue;
      last_item[q] = static_cast<std::uint32_t>(r);
      by_dest[q].items.push_back(store.items().external(static_cast<index_t>(r)));
      by_dest[q].vectors.push_back(vectors[r]);
    }
  }
  std::vector<content_vectors_message> out;
  for (std::uint32_t q = 0; q < P; ++q) {
    if (by_dest[q].items.empty())
      continue;
    by_dest[q].from = store.partition();
    by_dest[q].to = q;
    out.push_back(std::move(by_dest[q]));
  }
  return out;
}

result<content_user_state>
build_content_users(const partition_store& store,
                    const std::vector<content_vectors_message>& received,
                    const content_config& cfg) {
  SHARDREC_ASSERT(validate(cfg).ok());
  content_user_state st;
  const auto& refs = store.item_refs();
  st.ref_vectors.resize(refs.size());
  for (const auto& msg : received) {
    if (msg.to != store.partition())
      return bad("build_content_users: message from partition " + std::to_string(msg.from)
                 + " is addressed to partition " + std::to_string(msg.to) + ", not "
                 + std::to_string(store.partition()));
    if (msg.items.size() != msg.vectors.size())
      return bad("build_content_users: message from partition " + std::to_string(msg.from)
                 + ": items and vectors differ in length");
    for (std::size_t k = 0; k < msg.items.size(); ++k) {
      const auto& v = msg.vectors[k];
      if (v.empty())
        continue;
      if (v.weight.size() != v.feature.size())
        return bad("build_content_users: vector of item '" + msg.items[k]
                   + "': feature and weight differ in length");
      auto j = refs.find(msg.items[k]);
      if (!j)
        continue; // no owned user touched it: nothing to weigh or explain
      st.ref_vectors[*j] = v;
    }
  }
  const auto& m = store.user_matrix();
  st.profiles.resize(store.users().size());
  content_profile_scratch scratch;
  std::vector<profile_cell> cells;
  for (std::size_t u = 0; u < st.profiles.size() && u < m.n_users(); ++u) {
    auto row = m.user_row(static_cast<index_t>(u));
    const auto* types = m.user_types(static_cast<index_t>(u));
    cells.clear();
    for (std::size_t k = 0; k < row.size; ++k)
      cells.push_back({row.index[k], row.value[k], types[k]});
    st.profiles[u] = content_profile(cells, st.ref_vectors, cfg, scratch);
  }
  return st;
}

sparse_vector content_profile(const std::vector<profile_cell>& cells,
                              const std::vector<sparse_vector>& ref_vectors,
                              const content_config& cfg,
                              content_profile_scratch& scratch) {
  auto& acc = scratch.acc;
  auto& touched = scratch.touched;
  // Weights exactly as content_model's constructor.
  bool explicit_row = cfg.centre_ratings && !cells.empty();
  double mean = 0;
  for (const auto& c : cells) {
    explicit_row = explicit_row && c.type == event_type::rating;
    mean += c.value;
  }
  bool centred = false;
  if (explicit_row) {
    mean /= static_cast<double>(cells.size());
    for (const auto& c : cells)
      centred = centred || static_cast<float>(c.value - mean) != 0.0f;
  }
  touched.clear();
  for (const auto& c : cells) {
    if (c.ref >= ref_vectors.size())
      continue; // newer than the vectors: no content yet
    const auto* v = &ref_vectors[c.ref];
    if (v->empty())
      continue;
    const double w = centred ? static_cast<float>(c.value - mean) : c.value;
    for (std::size_t e = 0; e < v->feature.size(); ++e) {
      const auto f = v->feature[e];
      if (acc.size() <= f)
        acc.resize(std::size_t{f} + 1, 0.0);
      if (acc[f] == 0.0)
        touched.push_back(f);
      acc[f] += w * v->weight[e];
    }
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  double norm2 = 0;
  for (auto f : touched)
    norm2 += acc[f] * acc[f];
  sparse_vector p;
  if (norm2 != 0.0) {
    const double inv = 1.0 / std::sqrt(norm2);
    for (auto f : touched)
      if (acc[f] != 0.0) {
        p.feature.push_back(f);
        p.weight.push_back(static_cast<float>(acc[f] * inv));
      }
  }
  for (auto f : touched)
    acc[f] = 0.0;
  return p;
}

// ---- B. Popularity -------------------------------------------------------

std::vector<float> partition_popularity(const partition_store& store) {
  const auto& m = store.item_matrix();
  std::vector<float> out(store.items().size(), 0.0f);
  for (std::size_t r = 0; r < out.size() && r < m.n_items(); ++r)
    out[r] = static_cast<float>(m.item_degree(static_cast<index_t>(r)));
  return out;
}

// ---- Profiles --------------------------------------------------------------

result<user_profile> make_user_profile(const partition_store& store,
                                       const partition_user_models& models,
                                       std::string_view user,
                                       bool with_content_evidence) {
  if (!store.owns_user(user))
    return bad("make_user_profile: user '" + std::string(user)
               + "' is not owned by partition " + std::to_string(store.partition()));
  const auto n_users = store.users().size();
  // Rows of each model part: a prefix of the store's users.
  std::size_t ials_rows = 0, mf_rows = 0, content_rows = models.content.profiles.size();
  if (!models.ials_user.empty()) {
    if (models.ials_factors == 0 || models.ials_user.size() % models.ials_factors != 0
        || models.ials_user.size() / models.ials_factors > n_users)
      return bad("make_user_profile: ials_user has "
                 + std::to_string(models.ials_user.size())
                 + " values, not a whole number of rows of "
                 + std::to_string(models.ials_factors) + " for at most "
                 + std::to_string(n_users) + " users");
    ials_rows = models.ials_user.size() / models.ials_factors;
  }
  if (!models.mf_user.empty() || !models.mf_user_bias.empty()) {
    mf_rows = models.mf_user_bias.size();
    if (mf_rows > n_users || models.mf_user.size() != mf_rows * models.mf_factors)
      return bad(
          "make_user_profile: mf_user / mf_user_bias do not match the owned users");
  }
  if (content_rows > n_users)
    return bad("make_user_profile: content profiles do not match the owned users");
  user_profile p;
  p.user = std::string(user);
  auto u = store.users().find(user);
  if (!u)
    return p; // cold
  const auto& m = store.user_matrix();
  const auto& vectors = models.content.ref_vectors;
  if (*u < m.n_users()) {
    auto row = m.user_row(*u);
    p.seen.reserve(row.size);
    p.seen_value.reserve(row.size);
    for (std::size_t k = 0; k < row.size; ++k) {
      p.seen.push_back(store.item_refs().external(row.index[k]));
      p.seen_value.push_back(row.value[k]);
    }
    // Values events since the build changed.
    for (const auto& up : store.row_updates(*u))
      for (std::size_t k = 0; k < row.size; ++k)
        if (row.index[k] == up.item_ref)
          p.seen_value[k] = up.value;
    if (with_content_evidence && !vectors.empty()) {
      p.seen_content.resize(row.size);
      for (std::size_t k = 0; k < row.size; ++k)
        if (row.index[k] < vectors.size())
          p.seen_content[k] = vectors[row.index[k]];
    }
  }
  // Items touched since the last training: seen at once (not recommended
  // again, and evidence for item-kNN), without content evidence.
  for (const auto& r : store.recent_items(*u)) {
    p.seen.push_back(store.item_refs().external(r.item_ref));
    p.seen_value.push_back(r.value);
    if (!p.seen_content.empty())
      p.seen_content.emplace_back();
  }
  if (auto folded = models.ials_folded.find(*u); folded != models.ials_folded.end()) {
    p.ials = folded->second;
  } else if (*u < ials_rows) {
    auto k = models.ials_factors;
    p.ials.assign(models.ials_user.begin() + static_cast<std::ptrdiff_t>(*u * k),
                  models.ials_user.begin() + static_cast<std::ptrdiff_t>((*u + 1) * k));
  }
  if (auto folded = models.mf_folded.find(*u); folded != models.mf_folded.end()) {
    p.mf_known = true;
    p.mf = folded->second.factors;
    p.mf_bias = folded->second.bias;
  } else if (*u < mf_rows) {
    auto k = models.mf_factors;
    p.mf_known = true;
    p.mf.assign(models.mf_user.begin() + static_cast<std::ptrdiff_t>(*u * k),
                models.mf_user.begin() + static_cast<std::ptrdiff_t>((*u + 1) * k));
    p.mf_bias = models.mf_user_bias[*u];
  }
  if (*u < content_rows)
    p.content = models.content.profiles[*u];
  return p;
}

// ---- Blend -----------------------------------------------------------------

bool blend_kind_of(std::string_view name, blend_kind& kind) {
  static constexpr std::pair<std::string_view, blend_kind> names[] = {
      {"implicit-als", blend_kind::implicit_als},
      {"itemknn", blend_kind::itemknn},
      {"content", blend_kind::content},
      {"popular", blend_kind::popular},
      {"mf", blend_kind::mf},
      {"ease", blend_kind::ease}};
  for (const auto& [n, k] : names)
    if (n == name) {
      kind = k;
      return true;
    }
  return false;
}

result<blend_spec> blend_from_hybrid(const hybrid_model& h) {
  blend_spec spec;
  for (const auto& part : h.parts()) {
    if (part.weight == 0.0f)
      continue;
    blend_component c;
    c.name = part.name;
    c.weight = part.weight;
    if (!blend_kind_of(part.name, c.kind))
      return bad("blend_from_hybrid: part '" + part.name
                 + "' has no distributed scorer (implicit-als, itemknn, content, "
                   "popular, mf, ease)");
    spec.push_back(std::move(c));
  }
  return spec;
}

bool candidate_ranks_before(const candidate& a, const candidate& b) {
  return a.score > b.score || (a.score == b.score && a.item < b.item);
}

// ---- Scorer ------------------------------------------------------------------

result<partition_scorer> partition_scorer::make(partition_item_models models,
                                                blend_spec spec) {
  const auto n = models.items.size();
  auto sized = [&](std::size_t got, std::size_t per_item, const char* field) -> status {
    if (got != 0 && got != n * per_item)
      return bad(std::string("partition_item_models.") + field + ": "
                 + std::to_string(got) + " values for " + std::to_string(n) + " items");
    return {};
  };
  for (auto st : {sized(models.ials_item.size(), models.ials_factors, "ials_item"),
                  sized(models.mf_item.size(), models.mf_factors, "mf_item"),
                  sized(models.mf_item_bias.size(), 1, "mf_item_bias"),
                  sized(models.knn_reverse.size(), 1, "knn_reverse"),
                  sized(models.popularity.size(), 1, "popularity"),
                  sized(models.content.size(), 1, "content"),
                  sized(models.ease_weight.size(),
                        models.ease ? models.ease->items.size() : 0, "ease_weight")})
    if (!st)
      return st.err();
  if (models.ease && models.ease->keys.size() != models.ease->items.size())
    return bad("partition_item_models.ease: keys and items differ in length");
  for (const auto& c : spec) {
    bool ok = true;
    switch (c.kind) {
      case blend_kind::implicit_als: ok = !models.ials_item.empty() || n == 0; break;
      case blend_kind::mf:
        ok = (!models.mf_item.empty() && !models.mf_item_bias.empty()) || n == 0;
        break;
      case blend_kind::itemknn: ok = !models.knn_reverse.empty() || n == 0; break;
      case blend_kind::content: ok = !models.content.empty() || n == 0; break;
      case blend_kind::ease: ok = models.ease != nullptr; break;
      case blend_kind::popular: break;
    }
    // Every component falls back to popularity for cold users.
    ok = ok && (!models.popularity.empty() || n == 0);
    if (!ok)
      return bad("partition_scorer: component '" + c.name + "' has no data");
  }
  partition_scorer s;
  auto tp = std::make_shared<trained_part>();
  auto& t = *tp;
  std::unordered_map<std::string, id_slot> ids;
  ids.reserve(n);
  for (std::size_t r = 0; r < n; ++r) {
    auto& slot = ids[models.items[r]];
    if (slot.row != none_)
      return bad("partition_item_models.items: duplicate item '" + models.items[r] + "'");
    slot.row = static_cast<std::uint32_t>(r);
  }
  // The reverse-list dictionary, in ascending id order.
  for (const auto& list : models.knn_reverse)
    for (const auto& e : list)
      t.ref_ids.push_back(e.item);
  std::sort(t.ref_ids.begin(), t.ref_ids.end());
  t.ref_ids.erase(std::unique(t.ref_ids.begin(), t.ref_ids.end()), t.ref_ids.end());
  for (std::size_t r = 0; r < t.ref_ids.size(); ++r)
    ids[t.ref_ids[r]].ref = static_cast<std::uint32_t>(r);
  t.rev_ptr.assign(1, 0);
  t.fwd_ptr.assign(t.ref_ids.size() + 1, 0);
  for (const auto& list : models.knn_reverse) {
    for (const auto& e : list) {
      const auto ref = ids[e.item].ref;
      t.rev_ref.push_back(ref);
      t.rev_sim.push_back(e.similarity);
      ++t.fwd_ptr[ref + 1];
    }
    t.rev_ptr.push_back(t.rev_ref.size());
  }
  for (std::size_t r = 0; r < t.ref_ids.size(); ++r)
    t.fwd_ptr[r + 1] += t.fwd_ptr[r];
  t.fwd_row.resize(t.rev_ref.size());
  t.fwd_sim.resize(t.rev_ref.size());
  {
    auto at = t.fwd_ptr;
    for (std::size_t row = 0; row + 1 < t.rev_ptr.size(); ++row)
      for (auto k = t.rev_ptr[row]; k < t.rev_ptr[row + 1]; ++k) {
        const auto pos = at[t.rev_ref[k]]++;
        t.fwd_row[pos] = static_cast<std::uint32_t>(row);
        t.fwd_sim[pos] = t.rev_sim[k];
      }
  }
  std::uint32_t n_features = 0;
  for (const auto& v : models.content) {
    if (v.weight.size() != v.feature.size())
      return bad("partition_item_models.content: feature and weight differ in length");
    if (!v.empty())
      n_features = std::max(n_features, v.feature.back() + 1);
  }
  t.feat_ptr.assign(n_features + std::size_t{1}, 0);
  for (const auto& v : models.content)
    for (auto f : v.feature)
      ++t.feat_ptr[f + 1];
  for (std::size_t f = 0; f < n_features; ++f)
    t.feat_ptr[f + 1] += t.feat_ptr[f];
  t.post_row.resize(t.feat_ptr.back());
  t.post_weight.resize(t.feat_ptr.back());
  auto fill = t.feat_ptr;
  for (std::size_t r = 0; r < models.content.size(); ++r) {
    const auto& v = models.content[r];
    for (std::size_t k = 0; k < v.feature.size(); ++k) {
      auto pos = fill[v.feature[k]]++;
      t.post_row[pos] = static_cast<std::uint32_t>(r);
      t.post_weight[pos] = v.weight[k];
    }
  }
  t.models = std::move(models);
  s.spec_ = std::move(spec);
  s.index_ids(t, ids);
  s.t_ = std::move(tp);
  return s;
}

result<partition_scorer>
partition_scorer::with_live(std::shared_ptr<const live_item_rows> rows) const {
  partition_scorer s = *this;
  s.live_.reset();
  if (!rows)
    return s;
  const auto& m = t_->models;
  const auto n_new = rows->size();
  const auto n = m.items.size() + n_new;
  auto sized = [&](std::size_t got, std::size_t want, std::size_t per_item,
                   const char* field) -> status {
    if (got != want * per_item)
      return bad(std::string("live_item_rows.") + field + ": " + std::to_string(got)
                 + " values for " + std::to_string(want) + " rows");
    return {};
  };
  for (auto st : {sized(rows->popularity.size(), n, 1, "popularity"),
                  sized(rows->ials_item.size(), n_new, m.ials_factors, "ials_item"),
                  sized(rows->mf_item.size(), n_new, m.mf_factors, "mf_item"),
                  sized(rows->mf_item_bias.size(), serves(blend_kind::mf) ? n_new : 0, 1,
                        "mf_item_bias"),
                  sized(rows->content.size(), serves(blend_kind::content) ? n_new : 0, 1,
                        "content")})
    if (!st)
      return st.err();
  auto live = std::make_shared<live_part>();
  live->rows = std::move(rows);
  live->row_of.reserve(n_new);
  for (std::size_t k = 0; k < n_new; ++k) {
    const auto& id = (*live->rows->items)[k];
    // s has no live part yet: this finds the trained part's entry only. A
    // new item may already be in the trained reverse lists (a neighbour the
    // user side knew of): its one slot keeps that ref.
    const auto* known = s.find_id(id);
    if (known && known->row != none_)
      return bad("live_item_rows.items: item '" + id + "' is one of the model's");
    const id_slot slot{static_cast<std::uint32_t>(m.items.size() + k),
                       known ? known->ref : none_};
    if (!live->row_of.emplace(id, slot).second)
      return bad("live_item_rows.items: item '" + id + "' twice");
  }
  for (const auto& v : live->rows->content)
    if (v.weight.size() != v.feature.size())
      return bad("live_item_rows.content: feature and weight differ in length");
  s.live_ = std::move(live);
  return s;
}

void partition_scorer::index_ids(
    trained_part& t, const std::unordered_map<std::string, id_slot>& ids) const {
  using id_entry = trained_part::id_entry;
  std::size_t cap = 16;
  while (cap < 2 * ids.size())
    cap *= 2;
  t.ids.assign(cap, id_entry{});
  t.ids_mask = cap - 1;
  for (const auto& [id, slot] : ids) {
    const auto h = stable_hash(id);
    auto i = (h >> 32) & t.ids_mask;
    while (t.ids[i].slot.row != none_ || t.ids[i].slot.ref != none_)
      i = (i + 1) & t.ids_mask;
    t.ids[i] = {h, slot};
  }
}

const partition_scorer::id_slot* partition_scorer::find_id(std::string_view id) const {
  if (live_) {
    if (auto it = live_->row_of.find(id); it != live_->row_of.end())
      return &it->second;
  }
  const auto& t = *t_;
  const auto h = stable_hash(id);
  // The high bits: the low ones are the partition (partition_of = h mod P),
  // the same for every owned item when P is a power of two.
  for (auto i = (h >> 32) & t.ids_mask;; i = (i + 1) & t.ids_mask) {
    const auto& e = t.ids[i];
    if (e.slot.row == none_ && e.slot.ref == none_)
      return nullptr;
    if (e.hash == h
        && (e.slot.row != none_ ? t.models.items[e.slot.row] == id
                                : t.ref_ids[e.slot.ref] == id))
      return &e.slot;
  }
}

result<partition_scores> partition_scorer::score(const user_profile& profile) const {
  std::vector<id_slot> slots(profile.seen.size());
  for (std::size_t i = 0; i < profile.seen.size(); ++i)
    if (const auto* slot = find_id(profile.seen[i]))
      slots[i] = *slot;
  return score_slots(profile, slots);
}

result<partition_scores>
partition_scorer::score_slots(const user_profile& profile,
                              const std::vector<id_slot>& seen_slots) const {
  SHARDREC_ASSERT(seen_slots.size() == profile.seen.size());
  const auto& t = *t_;
  using row_matrix =
      Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto n = n_items();
  partition_scores s;
  s.n_items = n;
  s.n_components = spec_.size();
  s.raw.assign(n * spec_.size(), 0.0f);
  s.seen_item.assign(n, 0);
  s.seen_ref.assign(t.ref_ids.size(), 0);
  auto& seen_refs = s.seen_refs;
  for (const auto& sl : seen_slots) {
    const auto* slot = &sl;
    if (slot->row != none_)
      s.seen_item[slot->row] = 1;
    if (slot->ref != none_ && !s.seen_ref[slot->ref]) {
      s.seen_ref[slot->ref] = 1;
      seen_refs.push_back(slot->ref);
    }
  }
  // Ascending: a scan of the marks (8 at a time) when the dictionary is
  // small next to a sort of the refs, else the sort.
  if (seen_refs.size() * 8 > t.ref_ids.size() / 8) {
    seen_refs.clear();
    const auto* mark = s.seen_ref.data();
    const auto n_ref = s.seen_ref.size();
    std::size_t r = 0;
    for (; r + 8 <= n_ref; r += 8) {
      std::uint64_t word;
      std::memcpy(&word, mark + r, sizeof word);
      if (word == 0)
        continue;
      for (std::size_t k = r; k < r + 8; ++k)
        if (mark[k])
          seen_refs.push_back(static_cast<std::uint32_t>(k));
    }
    for (; r < n_ref; ++r)
      if (mark[r])
        seen_refs.push_back(static_cast<std::uint32_t>(r));
  } else {
    std::sort(seen_refs.begin(), seen_refs.end());
  }
  const auto& m = t.models;
  // Rows [0, nb) are the model's, [nb, n) the live part's new items.
  const auto nb = n_base();
  const auto nbi = static_cast<Eigen::Index>(nb);
  const auto n_new = static_cast<Eigen::Index>(n - nb);
  const live_item_rows* lv = live_ ? live_->rows.get() : nullptr;
  const float* pop = lv ? lv->popularity.data() : m.popularity.data();
  if (m.ease && serves(blend_kind::ease)) {
    for (std::size_t i = 0; i < profile.seen.size(); ++i) {
      const auto pos = m.ease->position(profile.seen[i]);
      if (pos != ease_catalogue::none)
        s.ease_seen.emplace_back(pos, static_cast<std::uint32_t>(i));
    }
    std::sort(s.ease_seen.begin(), s.ease_seen.end());
    s.ease_seen.erase(
        std::unique(s.ease_seen.begin(), s.ease_seen.end(),
                    [](const auto& a, const auto& b) { return a.first == b.first; }),
        s.ease_seen.end());
  }
  for (std::size_t c = 0; c < spec_.size(); ++c) {
    float* acc = s.raw.data() + c * n;
    Eigen::Map<Eigen::VectorXf> out(acc, nbi);
    Eigen::Map<Eigen::VectorXf> out_new(acc + nb, n_new);
    auto prior = [&] {
      if (n > 0)
        std::copy(pop, pop + n, acc);
    };
    switch (spec_[c].kind) {
      case blend_kind::popular: prior(); break;
      case blend_kind::implicit_als: {
        bool cold = std::all_of(profile.ials.begin(), profile.ials.end(),
                                [](float x) { return x == 0.0f; });
        if (cold) {
          prior();
          break;
        }
        if (profile.ials.size() != m.ials_factors)
          return bad("user_profile.ials: " + std::to_string(profile.ials.size())
                     + " factors, the items have " + std::to_string(m.ials_factors));
        if (n == 0)
          break;
        auto k = static_cast<Eigen::Index>(m.ials_factors);
        Eigen::Map<const Eigen::RowVectorXf> x(profile.ials.data(), k);
        Eigen::Map<const row_matrix> y(m.ials_item.data(), nbi, k);
        out.noalias() = y * x.transpose();
        if (n_new > 0) {
          Eigen::Map<const row_matrix> y_new(lv->ials_item.data(), n_new, k);
          out_new.noalias() = y_new * x.transpose();
        }
        break;
      }
      case blend_kind::mf: {
        if (n == 0)
          break;
        Eigen::Map<const Eigen::VectorXf> bi(m.mf_item_bias.data(), nbi);
        Eigen::Map<const Eigen::VectorXf> bi_new(lv ? lv->mf_item_bias.data() : nullptr,
                                                 n_new);
        if (!profile.mf_known) {
          out = bi.array() + m.mf_mu;
          out_new = bi_new.array() + m.mf_mu;
          break;
        }
        if (profile.mf.size() != m.mf_factors)
          return bad("user_profile.mf: " + std::to_string(profile.mf.size())
                     + " factors, the items have " + std::to_string(m.mf_factors));
        auto k = static_cast<Eigen::Index>(m.mf_factors);
        Eigen::Map<const Eigen::RowVectorXf> p(profile.mf.data(), k);
        Eigen::Map<const row_matrix> q(m.mf_item.data(), nbi, k);
        out.noalias() = q * p.transpose();
        out.array() += bi.array() + (m.mf_mu + profile.mf_bias);
        if (n_new > 0) {
          Eigen::Map<const row_matrix> q_new(lv->mf_item.data(), n_new, k);
          out_new.noalias() = q_new * p.transpose();
          out_new.array() += bi_new.array() + (m.mf_mu + profile.mf_bias);
        }
        break;
      }
      case blend_kind::itemknn: {
        if (profile.seen.empty()) {
          prior();
          break;
        }
        // Ascending refs: each row adds in its reverse list's order. New
        // items have no list (0).
        for (auto ref : seen_refs)
          for (auto k = t.fwd_ptr[ref]; k < t.fwd_ptr[ref + 1]; ++k)
            acc[t.fwd_row[k]] += t.fwd_sim[k];
        break;
      }
      case blend_kind::ease: {
        // x_u B over the user's items in the catalogue (binarized, as the
        // model was solved); none of them: cold (popularity), as core
        // ease_model. Items newer than the model score 0.
        if (s.ease_seen.empty()) {
          prior();
          break;
        }
        for (const auto& [pos, i] : s.ease_seen)
          out += Eigen::Map<const Eigen::VectorXf>(
              m.ease_weight.data() + std::size_t{pos} * nb, nbi);
        break;
      }
      case blend_kind::content: {
        const auto& q = profile.content;
        if (q.empty()) {
          prior();
          break;
        }
        // Features ascending, so each item sums in the order of
        // content_index::dot_all.
        const auto n_feat = t.feat_ptr.size() - 1;
        const auto* rows = t.post_row.data();
        const auto* weights = t.post_weight.data();
        for (std::size_t e = 0; e < q.feature.size(); ++e) {
          const auto f = q.feature[e];
          if (f >= n_feat)
            continue;
          const float w = q.weight[e];
          for (auto k = t.feat_ptr[f], end = t.feat_ptr[f + 1]; k < end; ++k)
            acc[rows[k]] += w * weights[k];
        }
        // New items: the same products in the same (ascending feature) order.
        for (Eigen::Index r = 0; r < n_new; ++r) {
          const auto& v = lv->content[static_cast<std::size_t>(r)];
          float sum = 0.0f;
          for (std::size_t e = 0, k = 0; e < q.feature.size() && k < v.feature.size();) {
            if (q.feature[e] < v.feature[k])
              ++e;
            else if (v.feature[k] < q.feature[e])
              ++k;
            else
              sum += q.weight[e++] * v.weight[k++];
          }
          out_new[r] = sum;
        }
        break;
      }
    }
  }
  return s;
}

phase1_reply moments(const partition_scores& s, std::uint32_t partition) {
  phase1_reply r;
  r.partition = partition;
  r.moments.resize(s.n_components);
  for (std::size_t c = 0; c < s.n_components; ++c) {
    auto& mo = r.moments[c];
    mo.count = s.n_items;
    for (std::size_t i = 0; i < s.n_items; ++i) {
      const double v = s.raw[c * s.n_items + i];
      mo.sum += v;
      mo.sum_sq += v * v;
    }
  }
  return r;
}

result<blend_stats> combine_moments(const std::vector<phase1_reply>& replies,
                                    std::size_t n_components, std::uint32_t partitions) {
  std::vector<const phase1_reply*> by_part(partitions, nullptr);
  for (const auto& r : replies) {
    if (r.partition >= partitions)
      return bad("combine_moments: partition " + std::to_string(r.partition)
                 + " out of range (partitions = " + std::to_string(partitions) + ")");
    if (by_part[r.partition])
      return bad("combine_moments: duplicate reply of partition "
                 + std::to_string(r.partition));
    if (r.moments.size() != n_components)
      return bad("combine_moments: partition " + std::to_string(r.partition) + " sent "
                 + std::to_string(r.moments.size()) + " components, expected "
                 + std::to_string(n_components));
    by_part[r.partition] = &r;
  }
  blend_stats st;
  st.mean.assign(n_components, 0.0f);
  st.inv_std.assign(n_components, 0.0f);
  for (std::uint32_t p = 0; p < partitions; ++p)
    if (!by_part[p])
      st.missing.push_back(p);
  for (std::size_t c = 0; c < n_components; ++c) {
    // Partition order, whatever the arrival order: deterministic sums.
    std::uint64_t count = 0;
    double sum = 0, sum_sq = 0;
    for (const auto* r : by_part)
      if (r) {
        count += r->moments[c].count;
        sum += r->moments[c].sum;
        sum_sq += r->moments[c].sum_sq;
      }
    if (count == 0)
      continue;
    const double mean = sum / static_cast<double>(count);
    const double var = std::max(0.0, sum_sq / static_cast<double>(count) - mean * mean);
    if (var <= 1e-20)
      continue;
    st.mean[c] = static_cast<float>(mean);
    st.inv_std[c] = static_cast<float>(1.0 / std::sqrt(var));
  }
  return st;
}

namespace {

// z of component c of row r under stats (0 when the component is constant).
inline float z_of(const partition_scores& s, const blend_stats& stats, std::size_t c,
                  std::size_t r) {
  return blend_z(s.raw[c * s.n_items + r], stats.mean[c], stats.inv_std[c]);
}

} // namespace

std::vector<partition_scorer::ranked_row>
partition_scorer::top_rows(const partition_scores& s, const blend_stats& stats,
                           std::size_t n) const {
  SHARDREC_ASSERT(s.n_items == n_items() && s.n_components == spec_.size());
  SHARDREC_ASSERT(stats.mean.size() == spec_.size()
                  && stats.inv_std.size() == spec_.size());
  const auto n_items_here = n_items();
  const auto n_comp = spec_.size();
  // Local top n by (score desc, external id asc) with a bounded heap.
  auto before = [&](const ranked_row& a, const ranked_row& b) {
    return a.score > b.score || (a.score == b.score && item_id(a.row) < item_id(b.row));
  };
  std::vector<ranked_row> heap;
  heap.reserve(std::min(n, n_items_here) + 1);
  if (n > 0)
    for (std::size_t r = 0; r < n_items_here; ++r) {
      if (s.seen_item[r])
        continue;
      float total = 0.0f;
      for (std::size_t c = 0; c < n_comp; ++c)
        total += z_of(s, stats, c, r) * spec_[c].weight;
      if (std::isnan(total))
        continue;
      ranked_row e{total, static_cast<std::uint32_t>(r)};
      if (heap.size() == n && !before(e, heap.front()))
        continue;
      heap.push_back(e);
      std::push_heap(heap.begin(), heap.end(), before);
      if (heap.size() > n) {
        std::pop_heap(heap.begin(), heap.end(), before);
        heap.pop_back();
      }
    }
  std::sort(heap.begin(), heap.end(), before);
  return heap;
}

candidate partition_scorer::make_candidate(const partition_scores& s,
                                           const user_profile& profile,
                                           const blend_stats& stats, ranked_row e,
                                           std::size_t max_because) const {
  const auto n_comp = spec_.size();
  candidate cand;
  const auto& t = *t_;
  const bool is_new = e.row >= n_base();
  cand.item = item_id(e.row);
  cand.score = e.score;
  cand.components.reserve(n_comp);
  for (std::size_t c = 0; c < n_comp; ++c) {
    const float z = z_of(s, stats, c, e.row);
    cand.components.push_back(
        {spec_[c].name, s.raw[c * s.n_items + e.row], z, spec_[c].weight * z});
  }
  for (std::size_t c = 0; c < n_comp; ++c) {
    if (spec_[c].kind == blend_kind::itemknn && cand.knn_evidence.empty()) {
      if (is_new)
        continue; // no list yet
      // The user's items j with sim(j, row): from the row's reverse list, or,
      // when that is the longer way (a popular item is the neighbour of
      // many), from the forward lists of the user's items.
      std::vector<std::pair<std::uint32_t, float>> ev;
      const auto rev_len = t.rev_ptr[e.row + 1] - t.rev_ptr[e.row];
      if (!profile.seen.empty() && rev_len <= 8 * s.seen_refs.size()) {
        for (auto k = t.rev_ptr[e.row]; k < t.rev_ptr[e.row + 1]; ++k)
          if (s.seen_ref[t.rev_ref[k]])
            ev.emplace_back(t.rev_ref[k], t.rev_sim[k]);
      } else if (!profile.seen.empty()) {
        for (auto ref : s.seen_refs) {
          const auto* first = t.fwd_row.data() + t.fwd_ptr[ref];
          const auto* last = t.fwd_row.data() + t.fwd_ptr[ref + 1];
          const auto* at = std::lower_bound(first, last, e.row);
          if (at != last && *at == e.row)
            ev.emplace_back(ref,
                            t.fwd_sim[static_cast<std::size_t>(at - t.fwd_row.data())]);
        }
      }
      // Refs ascend with ids: (weight desc, ref asc) is (weight desc, id asc).
      const auto keep = std::min(max_because, ev.size());
      std::partial_sort(ev.begin(), ev.begin() + static_cast<std::ptrdiff_t>(keep),
                        ev.end(), [](const auto& a, const auto& b) {
                          return a.second != b.second ? a.second > b.second
                                                      : a.first < b.first;
                        });
      for (std::size_t k = 0; k < keep; ++k)
        cand.knn_evidence.push_back({t.ref_ids[ev[k].first], ev[k].second});
    } else if (spec_[c].kind == blend_kind::ease && cand.ease_evidence.empty()) {
      if (is_new)
        continue; // not in the model's catalogue
      const auto& m = t.models;
      for (const auto& [pos, i] : s.ease_seen) {
        const float w = m.ease_weight[std::size_t{pos} * n_base() + e.row];
        if (w > 0.0f && profile.seen[i] != cand.item)
          cand.ease_evidence.push_back({profile.seen[i], w});
      }
      const auto keep = std::min(max_because, cand.ease_evidence.size());
      std::partial_sort(
          cand.ease_evidence.begin(),
          cand.ease_evidence.begin() + static_cast<std::ptrdiff_t>(keep),
          cand.ease_evidence.end(), [](const evidence& a, const evidence& b) {
            return a.weight != b.weight ? a.weight > b.weight : a.item < b.item;
          });
      cand.ease_evidence.resize(keep);
    } else if (spec_[c].kind == blend_kind::content && cand.content.empty()) {
      cand.content =
          is_new ? live_->rows->content[e.row - n_base()] : t.models.content[e.row];
    }
  }
  return cand;
}

phase2_reply partition_scorer::select_candidates(const partition_scores& s,
                                                 const user_profile& profile,
                                                 const blend_stats& stats, std::size_t n,
                                                 std::size_t max_because,
                                                 std::uint32_t partition) const {
  phase2_reply out;
  out.partition = partition;
  for (const auto& e : top_rows(s, stats, n))
    out.candidates.push_back(make_candidate(s, profile, stats, e, max_because));
  return out;
}

void explain_candidates(std::vector<candidate>& cs, const user_profile& profile,
                        std::size_t max_because) {
  // The seen items' content vectors inverted: postings (seen position,
  // weight) grouped by feature, seen positions ascending within a feature,
  // built on first use. Each cosine adds its products in ascending feature
  // order, accumulated in double as content_index::similarity.
  struct seen_posting {
    std::uint32_t seen; // position in profile.seen
    float weight;
  };
  bool built = false;
  std::vector<std::uint32_t>
      feat_ptr; // feature f: postings[feat_ptr[f] .. feat_ptr[f + 1])
  std::vector<seen_posting> postings;
  std::vector<double> acc;
  std::vector<std::uint8_t> hit;
  std::vector<std::uint32_t> touched;
  auto build = [&] {
    built = true;
    const auto m = std::min(profile.seen_content.size(), profile.seen.size());
    // A counting sort by feature: features are bounded by the vocabulary,
    // and a bucket array no larger than a few times the postings (a frame
    // naming a huge feature id gets no bucket for it, hence no evidence).
    std::size_t total = 0;
    std::uint32_t max_feature = 0;
    for (std::size_t k = 0; k < m; ++k) {
      const auto& sv = profile.seen_content[k];
      total += std::min(sv.feature.size(), sv.weight.size());
      for (auto f : sv.feature)
        max_feature = std::max(max_feature, f);
    }
    const std::size_t cap = 4 * total + 65536;
    const std::size_t n_feat = std::min<std::size_t>(std::size_t{max_feature} + 1, cap);
    feat_ptr.assign(n_feat + 1, 0);
    for (std::size_t k = 0; k < m; ++k) {
      const auto& sv = profile.seen_content[k];
      for (std::size_t q = 0; q < sv.feature.size() && q < sv.weight.size(); ++q)
        if (sv.feature[q] < n_feat)
          ++feat_ptr[sv.feature[q] + 1];
    }
    for (std::size_t f = 0; f < n_feat; ++f)
      feat_ptr[f + 1] += feat_ptr[f];
    postings.resize(feat_ptr.back());
    auto fill = feat_ptr;
    for (std::size_t k = 0; k < m; ++k) {
      const auto& sv = profile.seen_content[k];
      for (std::size_t q = 0; q < sv.feature.size() && q < sv.weight.size(); ++q)
        if (sv.feature[q] < n_feat)
          postings[fill[sv.feature[q]]++] = {static_cast<std::uint32_t>(k), sv.weight[q]};
    }
    acc.assign(m, 0.0);
    hit.assign(m, 0);
  };
  std::vector<evidence> ev;
  std::vector<std::pair<std::size_t, blend_kind>> order; // component, kind
  for (auto& cand : cs) {
    cand.because.clear();
    cand.because_from.clear();
    // hybrid_model::recommend keeps the evidence of the component with the
    // largest contribution among those with evidence (the first of equal
    // ones): try them in that order and stop at the first with evidence.
    order.clear();
    for (std::size_t c = 0; c < cand.components.size(); ++c) {
      blend_kind kind{};
      if (blend_kind_of(cand.components[c].name, kind)
          && (kind == blend_kind::itemknn || kind == blend_kind::content
              || kind == blend_kind::ease)
          && cand.components[c].contribution > -1e30f)
        order.emplace_back(c, kind);
    }
    std::stable_sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
      return cand.components[a.first].contribution
             > cand.components[b.first].contribution;
    });
    for (auto [c, kind] : order) {
      if (max_because == 0)
        break;
      ev.clear();
      if (kind == blend_kind::itemknn || kind == blend_kind::ease) {
        const auto& from =
            kind == blend_kind::ease ? cand.ease_evidence : cand.knn_evidence;
        ev.assign(from.begin(),
                  from.begin()
                      + static_cast<std::ptrdiff_t>(std::min(max_because, from.size())));
      } else {
        if (!built)
          build();
        const auto& v = cand.content;
        touched.clear();
        const auto n_feat = feat_ptr.size() - 1;
        for (std::size_t q = 0; q < v.feature.size() && q < v.weight.size(); ++q) {
          const auto f = v.feature[q];
          if (f >= n_feat)
            continue;
          for (auto i = feat_ptr[f]; i < feat_ptr[f + 1]; ++i) {
            const auto& post = postings[i];
            if (!hit[post.seen]) {
              hit[post.seen] = 1;
              touched.push_back(post.seen);
            }
            acc[post.seen] += static_cast<double>(post.weight) * v.weight[q];
          }
        }
        for (auto k : touched) {
          const auto sim = static_cast<float>(acc[k]);
          if (sim > 0.0f && profile.seen[k] != cand.item)
            ev.push_back({profile.seen[k], sim});
          acc[k] = 0.0;
          hit[k] = 0;
        }
        const auto keep = std::min(max_because, ev.size());
        std::partial_sort(ev.begin(), ev.begin() + static_cast<std::ptrdiff_t>(keep),
                          ev.end(), [](const evidence& a, const evidence& b) {
                            return a.weight != b.weight ? a.weight > b.weight
                                                        : a.item < b.item;
                          });
        ev.resize(keep);
      }
      if (ev.empty())
        continue;
      cand.because = ev;
      cand.because_from = cand.components[c].name;
      break;
    }
  }
}

result<merged_recommendations> merge_candidates(const std::vector<phase2_reply>& replies,
                                                std::uint32_t partitions, std::size_t n) {
  std::vector<bool> have(partitions, false);
  std::vector<const candidate*> all;
  for (const auto& r : replies) {
    if (r.partition >= partitions)
      return bad("merge_candidates: partition " + std::to_string(r.partition)
                 + " out of range (partitions = " + std::to_string(partitions) + ")");
    if (have[r.partition])
      return bad("merge_candidates: duplicate reply of partition "
                 + std::to_string(r.partition));
    have[r.partition] = true;
    for (const auto& c : r.candidates)
      all.push_back(&c);
  }
  auto before = [](const candidate* a, const candidate* b) {
    return candidate_ranks_before(*a, *b);
  };
  const auto keep = std::min(n, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep),
                    all.end(), before);
  merged_recommendations out;
  out.items.reserve(keep);
  for (std::size_t k = 0; k < keep; ++k)
    out.items.push_back(*all[k]);
  for (std::uint32_t p = 0; p < partitions; ++p)
    if (!have[p])
      out.missing.push_back(p);
  return out;
}

} // namespace shardrec::dist

namespace shardrec::dist {

namespace {

// The user's cells now: the row of the last build with the values events
// since have changed (row_updates), then the items touched since.
std::vector<profile_cell> current_cells(const partition_store& store, index_t user) {
  std::vector<profile_cell> cells;
  const auto& m = store.user_matrix();
  if (user < m.n_users()) {
    auto row = m.user_row(user);
    const auto* types = m.user_types(user);
    for (std::size_t k = 0; k < row.size; ++k)
      cells.push_back({row.index[k], row.value[k], types[k]});
    for (const auto& u : store.row_updates(user))
      for (auto& c : cells)
        if (c.ref == u.item_ref) {
          c.value = u.value;
          c.type = u.type;
        }
  }
  for (const auto& r : store.recent_items(user))
    cells.push_back({r.item_ref, r.value, r.type});
  return cells;
}

// current_cells as fold-in cells: the rows of the fold-in data's item
// matrix (items newer than the model's build have none and do not enter).
fold_in_cells fold_cells(const std::vector<profile_cell>& current,
                         const std::vector<index_t>& ref_row) {
  const auto none = ~index_t{0};
  fold_in_cells cells;
  for (const auto& c : current)
    if (c.ref < ref_row.size() && ref_row[c.ref] != none)
      cells.emplace_back(ref_row[c.ref], c.value);
  return cells;
}

// The user's content profile from the row of the last build and the items
// touched since, weighted as at training (the cluster trains with the
// default content_config).
void fold_in_content(partition_user_models& models, index_t user,
                     const std::vector<profile_cell>& cells) {
  auto& content = models.content;
  if (content.ref_vectors.empty())
    return; // no content model
  content_profile_scratch scratch;
  if (content.profiles.size() <= user)
    content.profiles.resize(std::size_t{user} + 1);
  content.profiles[user] =
      content_profile(cells, content.ref_vectors, content_config{}, scratch);
}

// The user's rating-MF factors and bias: the ALS half-step's row solve
// against the final item rows (exact, so no start).
void fold_in_mf(partition_user_models& models, index_t user,
                const std::vector<profile_cell>& current) {
  const auto* fold = models.mf_fold.get();
  if (!fold)
    return;
  const auto cells = fold_cells(current, fold->ref_row);
  const auto x = mf_fold_in(fold->items, fold->mu, cells, fold->cfg, nullptr);
  mf_folded_row out;
  const auto k = fold->cfg.factors;
  out.factors.assign(k, 0.0f);
  for (std::size_t c = 0; c < k; ++c)
    out.factors[c] = static_cast<float>(x[c]);
  out.bias = static_cast<float>(x[k]);
  models.mf_folded[user] = std::move(out);
}

} // namespace

void fold_in_user(partition_user_models& models, const partition_store& store,
                  index_t user) {
  if (user >= store.users().size())
    return;
  // The user's cells once, for every part.
  const auto current = current_cells(store, user);
  fold_in_content(models, user, current);
  fold_in_mf(models, user, current);
  const auto* fold = models.ials_fold.get();
  if (!fold)
    return;
  const auto cells = fold_cells(current, fold->ref_row);
  const auto k = models.ials_factors;
  const float* start = nullptr;
  if (k != 0 && (std::size_t{user} + 1) * k <= models.ials_user.size())
    start = models.ials_user.data() + std::size_t{user} * k;
  models.ials_folded[user] = ials_fold_in(fold->items, fold->gram, cells, fold->cfg,
                                          nullptr, start, fold->n_items);
}

} // namespace shardrec::dist
