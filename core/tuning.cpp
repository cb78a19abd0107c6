#include "core/tuning.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <tuple>
#include <unordered_set>

#include <Eigen/Core>

#include "core/evaluate.hpp"
#include "core/hybrid.hpp"
#include "core/parallel.hpp"
#include "core/partition.hpp"
#include "core/split.hpp"

namespace shardrec::core {

bool in_tuning_sample(std::string_view user, std::uint64_t n_users,
                      std::size_t max_users) {
  if (n_users <= max_users)
    return true;
  // stable_hash(user) < 2^64 * max_users / n_users, in 128 bits.
  __extension__ using u128 = unsigned __int128;
  const auto limit = (u128{1} << 64) * max_users / n_users;
  return u128{stable_hash(user)} < limit;
}

dataset make_tuning_dataset(std::vector<sample_event> events,
                            std::vector<std::pair<std::string, item_info>> items) {
  // A user's events keep their order among equal timestamps: it is the
  // order they arrived in (a file's order), which the latest-event split
  // uses (leave_last_out), and a cluster keeps it per user.
  std::stable_sort(events.begin(), events.end(),
                   [](const sample_event& a, const sample_event& b) {
                     return std::tie(a.user, a.timestamp) < std::tie(b.user, b.timestamp);
                   });
  std::set<std::string> item_ids;
  for (const auto& e : events)
    item_ids.insert(e.item);
  dataset ds;
  for (const auto& id : item_ids)
    ds.items.intern(id);
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [id, info] : items)
    if (auto i = ds.items.find(id))
      ds.item_meta_at(*i) = std::move(info);
  ds.events.reserve(events.size());
  for (const auto& e : events) {
    event x;
    x.user = ds.users.intern(e.user);
    x.item = *ds.items.find(e.item);
    x.value = e.value;
    x.type = e.type;
    x.timestamp = e.timestamp;
    ds.events.push_back(x);
  }
  return ds;
}

dataset tuning_sample(const dataset& ds, const std::vector<event>& train,
                      std::size_t max_users) {
  std::vector<std::uint8_t> has(ds.users.size(), 0);
  std::uint64_t n_users = 0;
  for (const auto& e : train)
    if (e.user < has.size() && !has[e.user]) {
      has[e.user] = 1;
      ++n_users;
    }
  std::vector<std::uint8_t> keep(ds.users.size(), 0);
  for (std::size_t u = 0; u < has.size(); ++u)
    keep[u] = has[u]
              && in_tuning_sample(ds.users.external(static_cast<index_t>(u)), n_users,
                                  max_users);
  std::vector<sample_event> events;
  std::vector<std::uint8_t> named(ds.items.size(), 0);
  for (const auto& e : train) {
    if (e.user >= keep.size() || !keep[e.user] || e.item >= ds.items.size())
      continue;
    events.push_back({ds.users.external(e.user), ds.items.external(e.item), e.value,
                      e.type, e.timestamp});
    named[e.item] = 1;
  }
  std::vector<std::pair<std::string, item_info>> items;
  for (std::size_t i = 0; i < ds.item_meta.size() && i < named.size(); ++i)
    if (named[i])
      items.emplace_back(ds.items.external(static_cast<index_t>(i)), ds.item_meta[i]);
  return make_tuning_dataset(std::move(events), std::move(items));
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The validation users: each one's training row (sorted item indices, the
// items excluded from the ranking) and held-out items not in it.
struct validation_set {
  std::vector<index_t> users;
  std::vector<std::vector<index_t>> held; // aligned with users, ascending
};

struct metric_sum {
  double ndcg = 0.0;
  double hit = 0.0;
};

// NDCG@k and hit@k of each column of `scores` (n_items x G) for one user:
// an item's rank counts the unseen items above it (ties: lower index first).
void rank_columns(const Eigen::MatrixXf& scores, const interaction_matrix::span& row,
                  const std::vector<index_t>& held, std::size_t k,
                  std::vector<metric_sum>& out) {
  const auto n = static_cast<index_t>(scores.rows());
  std::vector<std::uint8_t> seen(static_cast<std::size_t>(n), 0);
  for (std::size_t t = 0; t < row.size; ++t)
    seen[row.index[t]] = 1;
  double idcg = 0.0;
  for (std::size_t r = 0; r < std::min(k, held.size()); ++r)
    idcg += 1.0 / std::log2(static_cast<double>(r) + 2.0);
  for (Eigen::Index g = 0; g < scores.cols(); ++g) {
    const float* s = scores.col(g).data();
    double dcg = 0.0;
    bool hit = false;
    for (auto h : held) {
      const float sh = s[h];
      std::size_t rank = 0;
      for (index_t i = 0; i < n && rank < k; ++i)
        if (!seen[i] && i != h && (s[i] > sh || (s[i] == sh && i < h)))
          ++rank;
      if (rank < k) {
        dcg += 1.0 / std::log2(static_cast<double>(rank) + 2.0);
        hit = true;
      }
    }
    out[static_cast<std::size_t>(g)].ndcg += idcg > 0 ? dcg / idcg : 0.0;
    out[static_cast<std::size_t>(g)].hit += hit ? 1.0 : 0.0;
  }
}

// The metrics of G blends for every validation user: scores(u) gives the
// user's n_items x G matrix. Users in parallel; each user's row its own.
template <class Scores>
std::vector<std::vector<metric_sum>>
evaluate_columns(const validation_set& v, const interaction_matrix& train, std::size_t g,
                 std::size_t k, unsigned threads, Scores scores) {
  std::vector<std::vector<metric_sum>> per_user(v.users.size(),
                                                std::vector<metric_sum>(g));
  parallel_for(
      v.users.size(), threads,
      [&](std::size_t b, std::size_t e) {
        for (std::size_t x = b; x < e; ++x) {
          const Eigen::MatrixXf s = scores(v.users[x]);
          rank_columns(s, train.user_row(v.users[x]), v.held[x], k, per_user[x]);
        }
      },
      16);
  return per_user;
}

// Mean over the users (summed in user order) of column c.
metric_sum mean_of(const std::vector<std::vector<metric_sum>>& per_user, std::size_t c) {
  metric_sum m;
  for (const auto& u : per_user) {
    m.ndcg += u[c].ndcg;
    m.hit += u[c].hit;
  }
  m.ndcg /= static_cast<double>(per_user.size());
  m.hit /= static_cast<double>(per_user.size());
  return m;
}

// True when column c is within noise of column best: its mean NDCG is
// behind by at most two standard errors of the per-user differences (a
// paired comparison).
bool within_noise(const std::vector<std::vector<metric_sum>>& per_user, std::size_t best,
                  std::size_t c) {
  const auto n = static_cast<double>(per_user.size());
  double sum = 0.0, sum_sq = 0.0;
  for (const auto& u : per_user) {
    const double d = u[best].ndcg - u[c].ndcg;
    sum += d;
    sum_sq += d * d;
  }
  const double mean = sum / n;
  const double var = n > 1 ? std::max(0.0, (sum_sq - n * mean * mean) / (n - 1)) : 0.0;
  return mean <= 2.0 * std::sqrt(var / n);
}

// The choice among `cols` columns (column `base` the default): the best
// mean NDCG wins, but every column within noise of it counts as as good,
// and among those the default is kept if it is one, else the simplest
// (fewest parts, by `parts`; then the better mean). A choice is never
// worse on validation than the default beyond noise, and it does not
// trade a simple model for a complicated one on the strength of a few
// users.
template <class Parts>
std::size_t choose(const std::vector<std::vector<metric_sum>>& per_user, std::size_t cols,
                   std::size_t base, Parts parts) {
  std::vector<double> mean(cols);
  std::size_t best = base;
  for (std::size_t c = 0; c < cols; ++c) {
    mean[c] = mean_of(per_user, c).ndcg;
    if (mean[c] > mean[best])
      best = c;
  }
  if (best == base || within_noise(per_user, best, base))
    return base;
  std::size_t pick = best;
  for (std::size_t c = 0; c < cols; ++c)
    if (c != best && mean[c] >= mean[base] && within_noise(per_user, best, c)
        && (parts(c) < parts(pick) || (parts(c) == parts(pick) && mean[c] > mean[pick])))
      pick = c;
  return pick;
}

std::string format_weight(float w) {
  std::ostringstream out;
  out << w;
  return out.str();
}

std::string weights_string(const std::vector<std::string>& names,
                           const std::vector<float>& w) {
  std::string out;
  for (std::size_t c = 0; c < names.size(); ++c)
    if (w[c] > 0)
      out += (out.empty() ? "" : ",") + names[c] + "=" + format_weight(w[c]);
  return out;
}

// Every split of `steps` tenths over `parts` components, in lexicographic
// order of the first component's share descending.
void simplex(std::size_t parts, int steps, std::vector<int>& cur,
             std::vector<std::vector<int>>& out) {
  if (cur.size() + 1 == parts) {
    cur.push_back(steps);
    out.push_back(cur);
    cur.pop_back();
    return;
  }
  for (int s = steps; s >= 0; --s) {
    cur.push_back(s);
    simplex(parts, steps - s, cur, out);
    cur.pop_back();
  }
}

} // namespace

result<tuning_report> tune_hybrid(const dataset& sample, const algo_options& base,
                                  const tuning_options& opt) {
  const auto started = std::chrono::steady_clock::now();
  tuning_report rep;
  const unsigned threads = base.threads ? base.threads : default_threads();
  // 3. Validation.
  const bool timed = std::any_of(sample.events.begin(), sample.events.end(),
                                 [](const event& e) { return e.timestamp != 0; });
  split_result split;
  if (timed) {
    split = leave_last_out(sample.events);
    rep.validation = "latest event per user";
  } else {
    auto r = random_split(sample.events, 0.2, base.seed);
    if (!r)
      return r.err();
    split = std::move(*r);
    rep.validation = "random 20 % (no timestamps)";
  }
  const auto policy = merge_policy_for(sample.events);
  const auto train = interaction_matrix::build(sample.users.size(), sample.items.size(),
                                               split.train, policy);
  std::map<index_t, std::set<index_t>> held;
  for (const auto& e : split.test)
    if (!train.find(e.user, e.item))
      held[e.user].insert(e.item);
  validation_set v;
  for (auto& [u, items] : held) {
    v.users.push_back(u);
    v.held.emplace_back(items.begin(), items.end());
  }
  rep.sample_users = sample.users.size();
  rep.validation_users = v.users.size();
  rep.items = sample.items.size();
  if (v.users.empty())
    return make_error(errc::invalid_argument,
                      "tuning: no user has a held-out item they had not seen");

  // The default blend's components.
  rep.default_weights = default_hybrid_weights(has_content(sample));
  auto parsed = parse_weights(rep.default_weights, "default weights");
  if (!parsed)
    return parsed.err();
  // The default blend's components, and EASE (not in the defaults: the
  // catalogue may be too large for it) when the catalogue allows.
  std::vector<std::string> names;
  std::vector<float> defaults;
  const bool ease_fits = ease_catalogue_size(train) <= base.ease_max_items;
  for (const auto& [name, w] : *parsed) {
    if (w <= 0 || (name == "ease" && !ease_fits))
      continue;
    names.push_back(name);
    defaults.push_back(w);
  }
  if (ease_fits && std::find(names.begin(), names.end(), "ease") == names.end()) {
    names.push_back("ease");
    defaults.push_back(0.0f);
  }
  // 4. Each component's variants, alone.
  std::vector<std::shared_ptr<const model>> models;
  const std::size_t n_items = sample.items.size();
  // One setting of a component (0: the default), one changed at a time.
  struct variant {
    float alpha = 0.0f, reg = 0.0f, lambda = 0.0f;
    std::size_t neighbors = 0;
  };
  for (const auto& name : names) {
    std::vector<variant> variants{variant{}};
    if (name == "implicit-als") {
      const auto d = ials_settings(0, 0, 0);
      variants = {{d.alpha, 0.0f, 0.0f, 0},
                  {0.1f, 0.0f, 0.0f, 0},
                  {2.0f, 0.0f, 0.0f, 0},
                  {d.alpha, d.reg / 3.0f, 0.0f, 0},
                  {d.alpha, d.reg * 3.0f, 0.0f, 0}};
    }
    if (name == "itemknn") {
      const auto d = ranking_knn_config().neighbors;
      variants = {
          {0.0f, 0.0f, 0.0f, d}, {0.0f, 0.0f, 0.0f, d / 2}, {0.0f, 0.0f, 0.0f, 100}};
    }
    if (name == "ease") {
      const float d = ease_settings().lambda;
      variants = {{0.0f, 0.0f, d, 0}};
      // Each solve costs n^3: beyond 2048 items only the default. (At
      // 4,000 items the three other lambdas cost 4.7x the whole training
      // without tuning on a 1.35M-rating set: bench/RESULTS.md, tenth
      // session; on ml-latest-small, 9.7k items, one solve takes minutes.)
      if (ease_catalogue_size(train) <= 2048)
        for (float l : {30.0f, 300.0f, 1000.0f})
          variants.push_back({0.0f, 0.0f, l, 0});
    }
    std::vector<std::shared_ptr<const model>> trained;
    std::vector<std::vector<metric_sum>> per_user(v.users.size());
    for (const auto& var : variants) {
      const auto [alpha, reg, lambda, neighbors] = var;
      const auto began = std::chrono::steady_clock::now();
      algo_options o = base;
      o.algo = name;
      o.weights.clear();
      o.ials_alpha = alpha;
      o.ials_reg = reg;
      o.ease_lambda = lambda;
      o.knn_neighbors = neighbors;
      auto m = train_ranking_part(o, sample, train);
      if (!m)
        return m.err();
      const auto& mm = **m;
      auto r = evaluate_columns(v, train, 1, opt.k, threads, [&](index_t u) {
        Eigen::MatrixXf s(static_cast<Eigen::Index>(n_items), 1);
        mm.score_items(u, s.col(0));
        return s;
      });
      for (std::size_t x = 0; x < r.size(); ++x)
        per_user[x].push_back(r[x][0]);
      std::string what = name;
      if (alpha > 0)
        what += " alpha=" + format_weight(alpha);
      if (reg > 0)
        what += " reg=" + format_weight(reg);
      if (lambda > 0)
        what += " lambda=" + format_weight(lambda);
      if (neighbors > 0)
        what += " neighbors=" + std::to_string(neighbors);
      const auto mean = mean_of(r, 0);
      rep.variants.push_back({what, mean.ndcg, mean.hit, seconds_since(began)});
      trained.push_back(*m);
    }
    // The first variant is the default.
    const auto pick = choose(per_user, variants.size(), 0, [](std::size_t) { return 1; });
    if (name == "implicit-als") {
      rep.chosen.ials_alpha = variants[pick].alpha;
      rep.chosen.ials_reg = variants[pick].reg;
    }
    if (name == "itemknn")
      rep.chosen.knn_neighbors = variants[pick].neighbors;
    if (name == "ease")
      rep.chosen.ease_lambda = variants[pick].lambda;
    const auto best = trained[pick];
    models.push_back(best);
  }
  // 5. Blends: the defaults first, then the grid.
  std::vector<std::vector<float>> blends{defaults};
  std::vector<int> cur;
  std::vector<std::vector<int>> grid;
  if (!names.empty())
    simplex(names.size(), 10, cur, grid);
  for (const auto& g : grid) {
    std::vector<float> w;
    for (int s : g)
      w.push_back(static_cast<float>(s) / 10.0f);
    blends.push_back(std::move(w));
  }
  const auto C = static_cast<Eigen::Index>(names.size());
  Eigen::MatrixXf W(C, static_cast<Eigen::Index>(blends.size()));
  for (std::size_t b = 0; b < blends.size(); ++b)
    for (Eigen::Index c = 0; c < C; ++c)
      W(c, static_cast<Eigen::Index>(b)) = blends[b][static_cast<std::size_t>(c)];
  auto r = evaluate_columns(v, train, blends.size(), opt.k, threads, [&](index_t u) {
    Eigen::MatrixXf z(static_cast<Eigen::Index>(n_items), C);
    for (Eigen::Index c = 0; c < C; ++c) {
      models[static_cast<std::size_t>(c)]->score_items(u, z.col(c));
      standardise(z.col(c));
    }
    return Eigen::MatrixXf(z * W);
  });
  const std::size_t best = choose(r, blends.size(), 0, [&](std::size_t b) {
    return std::count_if(blends[b].begin(), blends[b].end(),
                         [](float w) { return w > 0; });
  });
  const auto def = mean_of(r, 0), top = mean_of(r, best);
  rep.blends_tried = blends.size();
  rep.defaults = {"blend " + weights_string(names, defaults), def.ndcg, def.hit};
  rep.chosen.weights = weights_string(names, blends[best]);
  // The neighbour lists also answer `similar`: their length changes only
  // for a blend that ranks with them.
  if (!blends[best].empty()) {
    auto at = std::find(names.begin(), names.end(), "itemknn");
    if (at == names.end()
        || blends[best][static_cast<std::size_t>(at - names.begin())] <= 0)
      rep.chosen.knn_neighbors = 0;
  }
  rep.best = {"blend " + rep.chosen.weights, top.ndcg, top.hit};
  rep.seconds = seconds_since(started);
  return rep;
}

} // namespace shardrec::core
