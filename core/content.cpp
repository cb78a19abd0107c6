#include "core/content.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <unordered_map>

#include "core/parallel.hpp"

namespace shardrec::core {

namespace {

// Sorted, so membership is a binary search.
constexpr std::string_view stop_words[] = {
    "about", "after", "all",  "also", "an",  "and", "any",  "are",  "as",   "at",
    "be",    "been",  "but",  "by",   "can", "do",  "for",  "from", "had",  "has",
    "have",  "he",    "her",  "his",  "if",  "in",  "into", "is",   "it",   "its",
    "no",    "not",   "of",   "on",   "or",  "our", "she",  "so",   "than", "that",
    "the",   "their", "they", "this", "to",  "was", "were", "with",
};

constexpr bool sorted_strictly(const std::string_view* b, const std::string_view* e) {
  for (auto p = b; p + 1 < e; ++p)
    if (!(p[0] < p[1]))
      return false;
  return true;
}
static_assert(sorted_strictly(std::begin(stop_words), std::end(stop_words)));

bool is_stop_word(std::string_view w) {
  return std::binary_search(std::begin(stop_words), std::end(stop_words), w);
}

std::string lower_trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r\n");
  std::string r(s.substr(b, e - b + 1));
  for (auto& c : r)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return r;
}

} // namespace

content_tokens item_tokens(const item_info& info, const content_config& cfg) {
  content_tokens t;
  auto categorical = [&](const std::vector<std::string>& values, const char* prefix,
                         float w) {
    if (w == 0.0f)
      return;
    std::vector<std::string> names;
    for (const auto& v : values)
      if (auto name = lower_trim(v); !name.empty())
        names.push_back(prefix + name);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    for (auto& name : names)
      t.emplace_back(std::move(name), w);
  };
  categorical(info.genres, "genre:", cfg.genre_weight);
  categorical(info.tags, "tag:", cfg.tag_weight);
  auto words = [&](const std::string& s, float w) {
    if (w == 0.0f)
      return;
    for (auto& word : tokenize_words(s))
      t.emplace_back("word:" + word, w);
  };
  words(info.title, cfg.title_weight);
  words(info.text, cfg.text_weight);
  std::sort(t.begin(), t.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  content_tokens merged;
  for (auto& [name, tf] : t) {
    if (!merged.empty() && merged.back().first == name)
      merged.back().second += tf;
    else
      merged.emplace_back(std::move(name), tf);
  }
  return merged;
}

status validate(const content_config& cfg) {
  auto bad_weight = [](float w) { return !(std::isfinite(w) && w >= 0.0f); };
  const std::pair<const char*, float> weights[] = {{"genre_weight", cfg.genre_weight},
                                                   {"tag_weight", cfg.tag_weight},
                                                   {"title_weight", cfg.title_weight},
                                                   {"text_weight", cfg.text_weight}};
  for (const auto& [field, w] : weights)
    if (bad_weight(w))
      return make_error(errc::invalid_argument, std::string("content_config.") + field
                                                    + " = " + std::to_string(w)
                                                    + ": must be finite and >= 0");
  if (!(std::isfinite(cfg.min_df) && cfg.min_df >= 0.0f))
    return make_error(errc::invalid_argument,
                      "content_config.min_df = " + std::to_string(cfg.min_df)
                          + ": must be >= 0");
  if (!(cfg.max_df > 0.0f && cfg.max_df <= 1.0f))
    return make_error(errc::invalid_argument,
                      "content_config.max_df = " + std::to_string(cfg.max_df)
                          + ": must be in (0, 1]");
  return {};
}

std::vector<std::string> tokenize_words(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (cur.size() >= 2 && !is_stop_word(cur))
      out.push_back(cur);
    cur.clear();
  };
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 'A' && c <= 'Z')
      cur.push_back(static_cast<char>(c - 'A' + 'a'));
    else if ((c >= 'a' && c <= 'z') || c >= 0x80)
      cur.push_back(ch);
    else if (c == '\'')
      continue;
    else
      flush();
  }
  flush();
  return out;
}

std::optional<content_index::feature_t>
content_index::find_feature(std::string_view name) const {
  auto it =
      std::lower_bound(names_.begin(), names_.end(), name,
                       [](const std::string& a, std::string_view b) { return a < b; });
  if (it == names_.end() || *it != name)
    return std::nullopt;
  return static_cast<feature_t>(it - names_.begin());
}

content_index::vector_view content_index::vector(index_t i) const {
  if (i >= n_items_)
    return {};
  auto b = item_ptr_[i], e = item_ptr_[i + 1];
  return {item_entries_.data() + b, e - b};
}

float content_index::weight(index_t i, feature_t f) const {
  auto v = vector(i);
  auto it = std::lower_bound(v.begin(), v.end(), f,
                             [](const entry& a, feature_t b) { return a.feature < b; });
  return it != v.end() && it->feature == f ? it->weight : 0.0f;
}

float content_index::similarity(index_t i, index_t j) const {
  auto a = vector(i), b = vector(j);
  double s = 0;
  const entry *p = a.begin(), *q = b.begin();
  while (p != a.end() && q != b.end()) {
    if (p->feature < q->feature) {
      ++p;
    } else if (q->feature < p->feature) {
      ++q;
    } else {
      s += static_cast<double>(p->weight) * q->weight;
      ++p;
      ++q;
    }
  }
  return static_cast<float>(s);
}

void content_index::dot_all(const std::vector<entry>& q,
                            Eigen::Ref<Eigen::VectorXf> out) const {
  SHARDREC_ASSERT(static_cast<std::size_t>(out.size()) == n_items_);
  out.setZero();
  for (const auto& e : q) {
    SHARDREC_ASSERT(e.feature < names_.size());
    for (auto k = feature_ptr_[e.feature]; k < feature_ptr_[e.feature + 1]; ++k)
      out[posting_item_[k]] += e.weight * posting_weight_[k];
  }
}

std::size_t content_index::memory_bytes() const {
  std::size_t names = 0;
  for (const auto& n : names_)
    names += n.size();
  return names + names_.size() * sizeof(std::string) + idf_.size() * sizeof(float)
         + df_.size() * sizeof(std::uint32_t) + item_ptr_.size() * sizeof(std::uint64_t)
         + item_entries_.size() * sizeof(entry)
         + feature_ptr_.size() * sizeof(std::uint64_t)
         + posting_item_.size() * sizeof(index_t)
         + posting_weight_.size() * sizeof(float);
}

content_index build_content_index(const std::vector<item_info>& items,
                                  std::size_t n_items, const content_config& cfg) {
  SHARDREC_ASSERT(validate(cfg).ok());
  std::vector<content_tokens> tokens(n_items);
  const auto n_info = std::min(n_items, items.size());
  parallel_for(n_info, cfg.threads, [&](std::size_t b, std::size_t e) {
    for (auto i = b; i < e; ++i)
      tokens[i] = item_tokens(items[i], cfg);
  });

  std::unordered_map<std::string_view, std::uint32_t> df;
  std::size_t n_docs = 0;
  for (const auto& t : tokens) {
    n_docs += t.empty() ? 0 : 1;
    for (const auto& [name, tf] : t)
      ++df[name];
  }
  content_index idx;
  idx.n_items_ = n_items;
  idx.n_documents_ = n_docs;
  const double max_df = static_cast<double>(cfg.max_df) * static_cast<double>(n_docs);
  for (const auto& [name, d] : df)
    if (d >= cfg.min_df && d <= max_df)
      idx.names_.emplace_back(name);
  std::sort(idx.names_.begin(), idx.names_.end());
  const auto n_features = idx.names_.size();
  idx.df_.resize(n_features);
  idx.idf_.resize(n_features);
  const double n = static_cast<double>(n_docs);
  for (std::size_t f = 0; f < n_features; ++f) {
    const auto d = df.find(idx.names_[f])->second;
    idx.df_[f] = d;
    const double dd = d;
    idx.idf_[f] = static_cast<float>(cfg.smooth_idf ? std::log((1 + n) / (1 + dd)) + 1
                                                    : std::log(n / dd));
  }

  // Item vectors. Token lists are sorted by name and feature ids are name
  // ranks, so each vector comes out sorted by feature.
  std::vector<std::vector<content_index::entry>> vecs(n_items);
  parallel_for(n_info, cfg.threads, [&](std::size_t b, std::size_t e) {
    for (auto i = b; i < e; ++i) {
      std::vector<std::pair<content_index::feature_t, double>> v;
      double norm2 = 0;
      for (const auto& [name, tf] : tokens[i]) {
        auto f = idx.find_feature(name);
        if (!f)
          continue;
        const double w = tf * idx.idf_[*f];
        if (w == 0.0)
          continue;
        v.emplace_back(*f, w);
        norm2 += w * w;
      }
      if (norm2 == 0.0)
        continue;
      const double inv = 1.0 / std::sqrt(norm2);
      vecs[i].reserve(v.size());
      for (const auto& [f, w] : v)
        vecs[i].push_back({f, static_cast<float>(w * inv)});
    }
  });
  tokens.clear();

  idx.item_ptr_.assign(n_items + 1, 0);
  for (std::size_t i = 0; i < n_items; ++i)
    idx.item_ptr_[i + 1] = idx.item_ptr_[i] + vecs[i].size();
  idx.item_entries_.reserve(idx.item_ptr_[n_items]);
  for (auto& v : vecs) {
    idx.item_entries_.insert(idx.item_entries_.end(), v.begin(), v.end());
    v = {};
  }

  // Inverted index; items ascending within each posting list.
  idx.feature_ptr_.assign(n_features + 1, 0);
  for (const auto& e : idx.item_entries_)
    ++idx.feature_ptr_[e.feature + 1];
  for (std::size_t f = 0; f < n_features; ++f)
    idx.feature_ptr_[f + 1] += idx.feature_ptr_[f];
  idx.posting_item_.resize(idx.item_entries_.size());
  idx.posting_weight_.resize(idx.item_entries_.size());
  auto fill = idx.feature_ptr_;
  for (std::size_t i = 0; i < n_items; ++i)
    for (auto k = idx.item_ptr_[i]; k < idx.item_ptr_[i + 1]; ++k) {
      const auto& e = idx.item_entries_[k];
      auto pos = fill[e.feature]++;
      idx.posting_item_[pos] = static_cast<index_t>(i);
      idx.posting_weight_[pos] = e.weight;
    }
  return idx;
}

std::vector<std::pair<index_t, float>> similar_items(const content_index& index,
                                                     index_t item, std::size_t n) {
  std::vector<std::pair<index_t, float>> out;
  auto v = index.vector(item);
  if (v.size == 0 || n == 0)
    return out;
  Eigen::VectorXf sims(static_cast<Eigen::Index>(index.n_items()));
  index.dot_all(std::vector<content_index::entry>(v.begin(), v.end()), sims);
  for (index_t j = 0; j < index.n_items(); ++j)
    if (j != item && sims[j] > 0.0f)
      out.emplace_back(j, sims[j]);
  auto by_score = [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  };
  if (out.size() > n) {
    std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n),
                      out.end(), by_score);
    out.resize(n);
  } else {
    std::sort(out.begin(), out.end(), by_score);
  }
  return out;
}

namespace {

class content_model final : public model {
public:
  content_model(std::shared_ptr<const content_index> index,
                const interaction_matrix& train, const content_config& cfg)
      : index_(std::move(index)) {
    SHARDREC_ASSERT(index_ && index_->n_items() == train.n_items());
    user_ptr_.assign(train.n_users() + 1, 0);
    user_items_.reserve(train.nnz());
    user_weights_.reserve(train.nnz());
    for (index_t u = 0; u < train.n_users(); ++u) {
      auto row = train.user_row(u);
      const auto* types = train.user_types(u);
      bool explicit_row = cfg.centre_ratings && row.size > 0;
      double mean = 0;
      for (std::size_t k = 0; k < row.size; ++k) {
        explicit_row = explicit_row && types[k] == event_type::rating;
        mean += row.value[k];
      }
      bool centred = false;
      if (explicit_row) {
        mean /= static_cast<double>(row.size);
        for (std::size_t k = 0; k < row.size; ++k)
          centred = centred || static_cast<float>(row.value[k] - mean) != 0.0f;
      }
      for (std::size_t k = 0; k < row.size; ++k) {
        user_items_.push_back(row.index[k]);
        user_weights_.push_back(centred ? static_cast<float>(row.value[k] - mean)
                                        : row.value[k]);
      }
      user_ptr_[u + 1] = user_items_.size();
    }
    prior_.resize(train.n_items());
    for (index_t i = 0; i < train.n_items(); ++i)
      prior_[i] = static_cast<float>(train.item_degree(i));
  }

  std::string name() const override { return "content"; }
  std::size_t n_items() const override { return prior_.size(); }

  void score_items(index_t user, Eigen::Ref<Eigen::VectorXf> out) const override {
    SHARDREC_ASSERT(static_cast<std::size_t>(out.size()) == prior_.size());
    auto profile = make_profile(user);
    if (profile.empty()) {
      for (std::size_t i = 0; i < prior_.size(); ++i)
        out[static_cast<Eigen::Index>(i)] = prior_[i];
      return;
    }
    index_->dot_all(profile, out);
  }

  std::vector<contribution> explain(index_t user, index_t item,
                                    std::size_t max) const override {
    std::vector<contribution> out;
    if (user + std::size_t{1} >= user_ptr_.size() || item >= prior_.size())
      return out;
    for (auto k = user_ptr_[user]; k < user_ptr_[user + 1]; ++k) {
      const auto j = user_items_[k];
      if (j == item)
        continue;
      const float s = index_->similarity(j, item);
      if (s > 0.0f)
        out.push_back({j, s});
    }
    std::sort(out.begin(), out.end(), [](const contribution& a, const contribution& b) {
      return a.weight != b.weight ? a.weight > b.weight : a.item < b.item;
    });
    if (out.size() > max)
      out.resize(max);
    return out;
  }

private:
  // The user's unit profile, sorted by feature; empty when the user has no
  // training items or the weighted sum is zero.
  std::vector<content_index::entry> make_profile(index_t user) const {
    std::vector<content_index::entry> q;
    if (user + std::size_t{1} >= user_ptr_.size())
      return q;
    std::vector<double> acc(index_->n_features(), 0.0);
    std::vector<content_index::feature_t> touched;
    for (auto k = user_ptr_[user]; k < user_ptr_[user + 1]; ++k) {
      const double w = user_weights_[k];
      for (const auto& e : index_->vector(user_items_[k])) {
        if (acc[e.feature] == 0.0)
          touched.push_back(e.feature);
        acc[e.feature] += w * e.weight;
      }
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    double norm2 = 0;
    for (auto f : touched)
      norm2 += acc[f] * acc[f];
    if (norm2 == 0.0)
      return q;
    const double inv = 1.0 / std::sqrt(norm2);
    q.reserve(touched.size());
    for (auto f : touched)
      if (acc[f] != 0.0)
        q.push_back({f, static_cast<float>(acc[f] * inv)});
    return q;
  }

  std::shared_ptr<const content_index> index_;
  std::vector<std::uint64_t> user_ptr_;
  std::vector<index_t> user_items_;
  std::vector<float> user_weights_;
  std::vector<float> prior_; // item degree in train: the cold-user fallback
};

} // namespace

std::unique_ptr<model> make_content_model(std::shared_ptr<const content_index> index,
                                          const interaction_matrix& train,
                                          const content_config& cfg) {
  SHARDREC_ASSERT(validate(cfg).ok());
  return std::make_unique<content_model>(std::move(index), train, cfg);
}

std::unique_ptr<model> train_content(const interaction_matrix& train, const dataset& ds,
                                     const content_config& cfg) {
  auto index = std::make_shared<const content_index>(
      build_content_index(ds.item_meta, train.n_items(), cfg));
  return make_content_model(std::move(index), train, cfg);
}

} // namespace shardrec::core
