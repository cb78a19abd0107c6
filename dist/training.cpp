#include "dist/training.hpp"

#include "core/algorithms.hpp"

namespace shardrec::dist {

train_settings make_train_settings(std::uint32_t factors, std::uint32_t iterations,
                                   std::uint64_t seed, unsigned threads) {
  train_settings t;
  t.ials = ials_settings(factors, static_cast<int>(iterations), seed);
  t.mf = mf_gibbs_config(factors, static_cast<int>(iterations), seed);
  t.knn = ranking_knn_config();
  t.ease = ease_settings();
  t.ials.threads = t.mf.threads = threads;
  return t;
}

content_df_partial content_session::count_df(const partition_store& s) const {
  return count_content_df(s, cfg_);
}

std::vector<content_vectors_message>
content_session::build_vectors(const partition_store& s, const content_vocabulary& voc) {
  item_vectors_ = build_item_vectors(s, voc, cfg_);
  vocabulary_ = std::make_shared<const content_vocabulary>(voc);
  return push_item_vectors(s, item_vectors_);
}

status content_session::finish_users(const partition_store& s) {
  auto users = build_content_users(s, received_, cfg_);
  received_.clear();
  if (!users)
    return users.err();
  users_ = std::move(*users);
  users_.vocabulary = vocabulary_;
  return {};
}

neighbor_lists::neighbor_lists(std::vector<entity_neighbors> lists)
    : lists_(std::move(lists)) {
  for (std::size_t k = 0; k < lists_.size(); ++k)
    index_[lists_[k].id] = k;
}

const entity_neighbors* neighbor_lists::find(const std::string& item) const {
  auto it = index_.find(item);
  return it == index_.end() ? nullptr : &lists_[it->second];
}

knn_session::knn_session(std::uint32_t partitions, knn_config cfg)
    : partitions_(partitions), cfg_(std::move(cfg)) {}

result<scale_partial> knn_session::scale(const partition_store& s,
                                         const partition_store& bin) {
  ctx_.reset();
  gather_.reset();
  raters_.reset();
  building_.reset();
  reverse_.assign(s.items().size(), {});
  lists_.reset();
  trained_ = false;
  scaled_ = true;
  return local_scale(bin, knn_side::item, cfg_, nullptr);
}

result<std::vector<rater_rows_block>>
knn_session::rows(const partition_store& bin, const knn_round& r,
                  const std::vector<std::uint32_t>& node_of) {
  if (r.rounds == 0 || r.round >= r.rounds)
    return make_error(errc::invalid_argument, "knn round " + std::to_string(r.round)
                                                  + " of " + std::to_string(r.rounds));
  if (node_of.size() != partitions_)
    return make_error(errc::invalid_argument, "knn rows: the node of every partition");
  if (r.round == 0) {
    auto ctx = make_local_context(bin, knn_side::item, cfg_, nullptr, r.scale);
    if (!ctx)
      return ctx.err();
    ctx_ = std::move(*ctx);
  } else if (!ctx_) {
    return make_error(errc::invalid_argument,
                      "knn rows of round " + std::to_string(r.round) + " before round 0");
  }
  std::vector<rater_rows_block> out;
  const auto block = make_round_rows(bin, *ctx_, r.round, r.rounds);
  for (std::uint32_t d = 0; d < partitions_; ++d)
    if (node_of[d] == d) {
      if (r.round == 0) {
        out.push_back(make_own_rows(bin, *ctx_, d, node_of, r.rounds));
        out.back().to = d;
      }
      out.push_back(block);
      out.back().to = d;
    }
  if (r.round + 1 == r.rounds)
    ctx_.reset();
  return out;
}

status knn_session::add_rows(rater_rows_block b, std::uint32_t node,
                             const std::vector<std::uint32_t>& node_of) {
  if (!scaled_)
    return make_error(errc::invalid_argument, "rater rows before the knn scale step");
  if (!gather_) {
    if (node_of.size() != partitions_ || node >= partitions_ || node_of[node] != node)
      return make_error(errc::bad_message,
                        "rater rows reached partition " + std::to_string(node)
                            + ", which does not lead its node's group");
    gather_ =
        std::make_unique<rows_gather>(knn_side::item, cfg_, partitions_, node, node_of);
  }
  return gather_->add(std::move(b));
}

result<std::shared_ptr<const gathered_raters>> knn_session::gather() {
  if (!gather_)
    return make_error(errc::invalid_argument, "knn gather before any rater rows");
  auto g = gather_->finish();
  if (!g)
    return g.err();
  raters_ = *g;
  if (raters_->round() + 1 == raters_->rounds())
    gather_.reset();
  return raters_;
}

result<std::vector<reverse_block>>
knn_session::lists_round(const partition_store& s, const knn_round& r, unsigned threads) {
  if (!raters_ || raters_->round() != r.round || raters_->rounds() != r.rounds)
    return make_error(errc::invalid_argument, "knn lists of round "
                                                  + std::to_string(r.round)
                                                  + " before its gathered rows");
  if (r.round == 0) {
    std::vector<std::string> owned;
    owned.reserve(s.items().size());
    for (index_t i = 0; i < s.items().size(); ++i)
      owned.push_back(s.items().external(i));
    building_ = std::make_unique<round_lists>(std::move(owned), cfg_.neighbors);
  }
  if (!building_)
    return make_error(errc::invalid_argument, "knn lists of round "
                                                  + std::to_string(r.round)
                                                  + " before round 0");
  auto added = raters_->add_to(*building_, threads);
  raters_.reset();
  if (!added)
    return added.err();
  if (r.round + 1 < r.rounds)
    return std::vector<reverse_block>{};
  auto lists = building_->take();
  building_.reset();
  auto blocks = make_reverse_blocks(lists, cfg_.neighbors, s.partition(), s.partitions());
  lists_ = std::make_shared<const neighbor_lists>(std::move(lists));
  return blocks;
}

status knn_session::receive(const partition_store& s, const reverse_block& b) {
  if (reverse_.size() != s.items().size())
    return make_error(errc::invalid_argument, "reverse block before the knn scale step");
  for (std::size_t t = 0; t < b.target.size(); ++t)
    if (!s.owns_item(b.ids[b.target[t]]))
      return make_error(errc::bad_message, "reverse block names item '"
                                               + b.ids[b.target[t]] + "' not owned here");
  // An owned item this partition's copy of the store does not have yet (its
  // first event arrived while the partitions copied their stores for the
  // run) gets its lists at the next run.
  for (std::size_t t = 0; t < b.target.size(); ++t)
    if (auto item = s.items().find(b.ids[b.target[t]]))
      reverse_[*item].push_back({b.ids[b.source[t]], b.similarity[t]});
  return {};
}

ease_rows ease_session::rows(const partition_store& bin, ease_catalogue cat) {
  cat_ = std::make_shared<const ease_catalogue>(std::move(cat));
  columns_.clear();
  return ease_user_rows(bin, *cat_);
}

status ease_session::receive(const partition_store& s,
                             const std::vector<std::string>& items,
                             const std::vector<float>& cols) {
  if (!cat_)
    return make_error(errc::invalid_argument, "EASE columns before the catalogue");
  const auto n = cat_->items.size();
  if (cols.size() != items.size() * n)
    return make_error(errc::invalid_argument,
                      "EASE columns: " + std::to_string(cols.size()) + " weights for "
                          + std::to_string(items.size()) + " items of a catalogue of "
                          + std::to_string(n));
  for (const auto& id : items)
    if (!s.owns_item(id))
      return make_error(errc::bad_message,
                        "EASE columns name item '" + id + "', not owned here");
  for (std::size_t r = 0; r < items.size(); ++r)
    columns_[items[r]].assign(cols.begin() + static_cast<std::ptrdiff_t>(r * n),
                              cols.begin() + static_cast<std::ptrdiff_t>((r + 1) * n));
  return {};
}

void ease_session::pack(const partition_store& s, partition_item_models& im) const {
  if (!cat_)
    return;
  const auto n = cat_->items.size();
  const auto owned = s.items().size();
  im.ease = cat_;
  im.ease_weight.assign(n * owned, 0.0f);
  for (std::size_t r = 0; r < owned; ++r) {
    auto it = columns_.find(s.items().external(static_cast<index_t>(r)));
    if (it == columns_.end())
      continue;
    for (std::size_t pos = 0; pos < n; ++pos)
      im.ease_weight[pos * owned + r] = it->second[pos];
  }
}

tuning_sample_part tuning_sample_of(const partition_store& s, std::uint64_t n_users,
                                    std::size_t max_users) {
  tuning_sample_part out;
  std::vector<std::uint8_t> user_in(s.users().size());
  for (std::size_t u = 0; u < user_in.size(); ++u)
    user_in[u] =
        in_tuning_sample(s.users().external(static_cast<index_t>(u)), n_users, max_users);
  for (const auto& e : s.user_side_events())
    if (e.user < user_in.size() && user_in[e.user])
      out.events.push_back({s.users().external(e.user), s.item_refs().external(e.item),
                            e.value, e.type, e.timestamp});
  std::vector<std::uint8_t> rater_in(s.user_refs().size());
  for (std::size_t u = 0; u < rater_in.size(); ++u)
    rater_in[u] = in_tuning_sample(s.user_refs().external(static_cast<index_t>(u)),
                                   n_users, max_users);
  std::vector<std::uint8_t> touched(s.items().size(), 0);
  for (const auto& e : s.item_side_events())
    if (e.user < rater_in.size() && rater_in[e.user] && e.item < touched.size())
      touched[e.item] = 1;
  for (std::size_t i = 0; i < touched.size() && i < s.item_meta().size(); ++i)
    if (touched[i])
      out.items.emplace_back(s.items().external(static_cast<index_t>(i)),
                             s.item_meta()[i]);
  return out;
}

result<served_models> pack_models(const partition_store& s,
                                  const std::vector<float>& popularity,
                                  const content_session* content, const knn_session* knn,
                                  const ials_partition* ials, const mf_partition* mf,
                                  const ease_session* ease, const blend_spec& spec) {
  partition_item_models im;
  const auto n_items = s.items().size();
  for (std::size_t i = 0; i < n_items; ++i)
    im.items.push_back(s.items().external(static_cast<index_t>(i)));
  partition_user_models um;
  if (ials) {
    const auto& y = ials->item_factors();
    im.ials_factors = static_cast<std::size_t>(y.cols());
    im.ials_item.assign(y.data(), y.data() + y.size());
    const auto& x = ials->user_factors();
    um.ials_factors = im.ials_factors;
    um.ials_user.assign(x.data(), x.data() + x.size());
  }
  if (mf) {
    // Rows hold the k factors and, in the last column, the bias.
    const auto& ir = mf->item_rows();
    const auto& ur = mf->user_rows();
    const auto k = static_cast<Eigen::Index>(ir.cols()) - 1;
    im.mf_factors = um.mf_factors = static_cast<std::size_t>(k);
    im.mf_mu = static_cast<float>(mf->mu());
    auto split = [k](const auto& rows, std::vector<float>& factors,
                     std::vector<float>& bias) {
      for (Eigen::Index r = 0; r < rows.rows(); ++r) {
        for (Eigen::Index c = 0; c < k; ++c)
          factors.push_back(static_cast<float>(rows(r, c)));
        bias.push_back(static_cast<float>(rows(r, k)));
      }
    };
    split(ir, im.mf_item, im.mf_item_bias);
    split(ur, um.mf_user, um.mf_user_bias);
  }
  im.popularity = popularity;
  if (content) {
    im.content = content->item_vectors();
    um.content = content->users();
  }
  const bool has_ease = ease && ease->trained();
  if (has_ease)
    ease->pack(s, im);
  const bool has_content = content && !content->item_vectors().empty();
  const bool has_knn = knn && knn->trained();
  if (has_knn)
    im.knn_reverse = knn->reverse();
  else
    im.knn_reverse.assign(n_items, {});
  blend_spec usable;
  for (const auto& c : spec) {
    bool ok =
        (c.kind == blend_kind::implicit_als && ials) || (c.kind == blend_kind::mf && mf)
        || (c.kind == blend_kind::itemknn && has_knn)
        || (c.kind == blend_kind::content && has_content)
        || (c.kind == blend_kind::ease && has_ease) || c.kind == blend_kind::popular;
    if (ok)
      usable.push_back(c);
  }
  auto scorer = partition_scorer::make(std::move(im), usable);
  if (!scorer)
    return scorer.err();
  served_models out;
  out.scorer = std::make_shared<const partition_scorer>(std::move(*scorer));
  out.users = std::move(um);
  if (has_knn)
    out.neighbors = knn->lists();
  return out;
}

} // namespace shardrec::dist
