#include "core/algorithms.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>

#include "core/baseline.hpp"
#include "core/content.hpp"
#include "core/ease.hpp"
#include "core/hybrid.hpp"
#include "core/ials.hpp"
#include "core/knn.hpp"
#include "core/mf.hpp"
#include "core/parallel.hpp"
#include "core/partition.hpp"
#include "core/popularity.hpp"

namespace shardrec::core {

namespace {

// stable_hash of every user's and item's external id, indexed like the
// training matrix (ids beyond the maps, which do not occur, hash their index).
std::pair<std::vector<std::uint64_t>, std::vector<std::uint64_t>>
id_keys(const dataset& ds, const interaction_matrix& train) {
  std::pair<std::vector<std::uint64_t>, std::vector<std::uint64_t>> keys;
  keys.first.resize(train.n_users());
  keys.second.resize(train.n_items());
  for (std::size_t u = 0; u < keys.first.size(); ++u)
    keys.first[u] =
        stable_hash(u < ds.users.size() ? ds.users.external(static_cast<index_t>(u))
                                        : std::to_string(u));
  for (std::size_t i = 0; i < keys.second.size(); ++i)
    keys.second[i] =
        stable_hash(i < ds.items.size() ? ds.items.external(static_cast<index_t>(i))
                                        : std::to_string(i));
  return keys;
}

bool holds_ratings(const dataset& ds) {
  return !ds.events.empty()
         && std::all_of(ds.events.begin(), ds.events.end(),
                        [](const event& e) { return e.type == event_type::rating; });
}

} // namespace

bool has_content(const dataset& ds) {
  return std::any_of(ds.item_meta.begin(), ds.item_meta.end(), [](const item_info& i) {
    return !i.genres.empty() || !i.tags.empty() || !i.text.empty() || !i.title.empty();
  });
}

result<std::vector<std::pair<std::string, float>>> parse_weights(const std::string& s,
                                                                 const char* what) {
  std::vector<std::pair<std::string, float>> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (part.empty())
      continue;
    auto eq = part.find('=');
    if (eq == std::string::npos)
      return make_error(errc::invalid_argument,
                        std::string(what) + ": expected name=weight, got '" + part + "'");
    auto name = part.substr(0, eq);
    char* end = nullptr;
    auto value = part.substr(eq + 1);
    float w = std::strtof(value.c_str(), &end);
    if (value.empty() || *end != '\0' || w < 0)
      return make_error(errc::invalid_argument, std::string(what) + ": weight of '" + name
                                                    + "' must be a number >= 0, got '"
                                                    + value + "'");
    if (name == "hybrid"
        || std::find(algorithm_names().begin(), algorithm_names().end(), name)
               == algorithm_names().end())
      return make_error(errc::invalid_argument,
                        std::string(what) + ": unknown component '" + name + "'");
    out.emplace_back(name, w);
  }
  return out;
}

// Trains a hybrid part used for ranking only: on ratings data the kNN parts
// use co-occurrence cosine on the binarized matrix.
result<std::shared_ptr<const model>> train_ranking_part(const algo_options& opt,
                                                        const dataset& ds,
                                                        const interaction_matrix& train) {
  if (opt.algo == "itemknn" || opt.algo == "userknn") {
    auto cfg = ranking_knn_config();
    if (opt.knn_neighbors > 0)
      cfg.neighbors = opt.knn_neighbors;
    // Ranking and explaining read only each list's top `neighbors`; keeping
    // every positive pair (the pool rating prediction walks) cost the
    // tuning 8 B per co-occurring pair per variant, 5.3 GB on a 5,000-user
    // sample of a 40,000-item catalogue (bench/RESULTS.md, fifteenth session).
    cfg.prediction_pool = cfg.neighbors;
    cfg.threads = opt.threads ? opt.threads : default_threads();
    auto bin = train.binarized();
    return std::shared_ptr<const model>(opt.algo == "itemknn" ? train_item_knn(bin, cfg)
                                                              : train_user_knn(bin, cfg));
  }
  return train_algorithm(opt, ds, train);
}

namespace {

result<std::shared_ptr<const model>> train_hybrid(const algo_options& opt,
                                                  const dataset& ds,
                                                  const interaction_matrix& train) {
  auto w = parse_weights(opt.weights.empty() ? default_hybrid_weights(has_content(ds))
                                             : opt.weights,
                         "--weights");
  if (!w)
    return w.err();
  auto rw = parse_weights(opt.rating_weights.empty() ? default_hybrid_rating_weights()
                                                     : opt.rating_weights,
                          "--rating-weights");
  if (!rw)
    return rw.err();
  std::map<std::string, hybrid_part> parts; // ordered: deterministic component order
  for (const auto& [name, weight] : *w)
    parts[name].weight = weight;
  for (const auto& [name, weight] : *rw)
    parts[name].rating_weight = weight;
  std::vector<hybrid_part> list;
  for (auto& [name, part] : parts) {
    if (part.weight == 0 && part.rating_weight == 0)
      continue;
    // Beyond its catalogue limit EASE is left out (ease_fallback_note).
    if (name == "ease" && ease_catalogue_size(train) > opt.ease_max_items)
      continue;
    algo_options sub = opt;
    sub.algo = name;
    // A part that only ranks learns from which items were touched, not from
    // rating values (ranking on ratings data is the implicit task).
    bool rank_only = part.rating_weight == 0;
    auto m =
        rank_only ? train_ranking_part(sub, ds, train) : train_algorithm(sub, ds, train);
    if (!m)
      return m.err();
    part.name = name;
    part.model = *m;
    list.push_back(std::move(part));
  }
  if (list.empty())
    return make_error(errc::invalid_argument, "hybrid: every component weight is 0");
  return std::shared_ptr<const model>(std::make_shared<hybrid_model>(std::move(list)));
}

// A request's overrides of a factor model's defaults (0 = keep the default).
template <class Config>
Config with_overrides(Config cfg, std::size_t factors, int iterations,
                      std::uint64_t seed) {
  if (factors)
    cfg.factors = factors;
  if (iterations)
    cfg.iterations = iterations;
  cfg.seed = seed;
  return cfg;
}

} // namespace

knn_config ranking_knn_config() {
  knn_config cfg;
  cfg.similarity = similarity_kind::cosine;
  return cfg;
}

mf_config mf_gibbs_config(std::size_t factors, int iterations, std::uint64_t seed) {
  mf_config cfg = with_overrides(mf_config{}, factors, iterations, seed);
  if (cfg.burn_in >= cfg.iterations) {
    cfg.burn_in = cfg.iterations / 5;
    cfg.warm_start = std::min(cfg.warm_start, cfg.burn_in);
  }
  return cfg;
}

mf_config mf_als_config(std::size_t factors, int iterations, std::uint64_t seed) {
  mf_config cfg;
  cfg.solver = mf_solver::als;
  cfg.iterations = 15;
  cfg.reg = 0.1f; // ALS-WR; best of 0.05 / 0.1 / 0.2 on u1/u2 holdouts
  return with_overrides(cfg, factors, iterations, seed);
}

ials_config ials_settings(std::size_t factors, int iterations, std::uint64_t seed) {
  // Confidence-weighted: a cell r (a rating, or the summed event
  // confidences of merge_policy::confidence) weighs 1 + alpha r. alpha
  // chosen on Online Retail (--split last, hit rate@10 of implicit-als:
  // binary 0.081; alpha 0.1 / 0.5 / 1 / 2: 0.106 / 0.133 / 0.130 / 0.128)
  // and reported unchanged on ML-100K u1 and ml-latest-small
  // (bench/RESULTS.md).
  ials_config cfg;
  cfg.binary = false;
  cfg.alpha = 0.5f;
  return with_overrides(cfg, factors, iterations, seed);
}

ease_config ease_settings() {
  // Chosen on Online Retail (--split last, hit rate@10 of ease: lambda
  // 50 / 100 / 300 / 600 / 1000: 0.199 / 0.201 / 0.191 / 0.181 / 0.178)
  // and reported unchanged on the MovieLens sets (bench/RESULTS.md).
  ease_config cfg;
  cfg.lambda = 100.0f;
  return cfg;
}

std::size_t ease_catalogue_size(const interaction_matrix& train) {
  std::size_t n = 0;
  for (index_t i = 0; i < train.n_items(); ++i)
    n += train.item_degree(i) > 0;
  return n;
}

const std::vector<std::string>& algorithm_names() {
  static const std::vector<std::string> names{
      "baseline", "popular",      "trending", "itemknn", "userknn",
      "mf",       "implicit-als", "ease",     "content", "hybrid"};
  return names;
}

std::string default_hybrid_weights(bool with_content) {
  // Chosen on ML-100K fold u2 (bench/RESULTS.md): iALS carries the ranking,
  // content adds a little, item-kNN a little and supplies the "because you
  // touched X" evidence.
  return with_content ? "implicit-als=0.85,content=0.1,itemknn=0.05"
                      : "implicit-als=0.95,itemknn=0.05";
}

std::string default_hybrid_rating_weights() {
  return "mf=1";
}

result<std::shared_ptr<const model>> train_algorithm(const algo_options& opt,
                                                     const dataset& ds,
                                                     const interaction_matrix& train) {
  unsigned threads = opt.threads ? opt.threads : default_threads();
  const auto& a = opt.algo;
  std::shared_ptr<const model> m;
  if (a == "baseline") {
    m = make_baseline_model(fit_biases(train, baseline_config{}), ds.scale.min,
                            ds.scale.max);
  } else if (a == "popular" || a == "trending") {
    popularity_config cfg;
    cfg.trending = a == "trending";
    m = train_popularity(train, cfg);
  } else if (a == "itemknn" || a == "userknn") {
    // Baseline-corrected Pearson suits ratings; on implicit data (or when
    // ranking only) the residuals carry no signal, so co-occurrence cosine.
    knn_config cfg;
    cfg.threads = threads;
    if (opt.knn_neighbors > 0)
      cfg.neighbors = opt.knn_neighbors;
    if (!holds_ratings(ds))
      cfg.similarity = similarity_kind::cosine;
    m = a == "itemknn" ? train_item_knn(train, cfg) : train_user_knn(train, cfg);
  } else if (a == "mf") {
    mf_config cfg;
    if (opt.solver == "als") {
      cfg = mf_als_config(opt.factors, opt.iterations, opt.seed);
    } else if (!opt.solver.empty() && opt.solver != "gibbs") {
      return make_error(errc::invalid_argument,
                        "unknown --solver '" + opt.solver + "' (gibbs|als)");
    } else {
      cfg = mf_gibbs_config(opt.factors, opt.iterations, opt.seed);
    }
    cfg.threads = threads;
    cfg.min_rating = ds.scale.min;
    cfg.max_rating = ds.scale.max;
    auto keys = id_keys(ds, train);
    cfg.user_keys = &keys.first;
    cfg.item_keys = &keys.second;
    m = train_mf(train, cfg);
  } else if (a == "implicit-als") {
    auto cfg = ials_settings(opt.factors, opt.iterations, opt.seed);
    if (opt.ials_alpha > 0)
      cfg.alpha = opt.ials_alpha;
    if (opt.ials_reg > 0)
      cfg.reg = opt.ials_reg;
    cfg.threads = threads;
    auto keys = id_keys(ds, train);
    cfg.user_keys = &keys.first;
    cfg.item_keys = &keys.second;
    m = train_ials(train, cfg);
  } else if (a == "ease") {
    const auto n = ease_catalogue_size(train);
    if (n > opt.ease_max_items)
      return make_error(errc::invalid_argument,
                        "ease: the catalogue has " + std::to_string(n)
                            + " items, more than --ease-max-items "
                            + std::to_string(opt.ease_max_items)
                            + " (EASE keeps n^2 weights)");
    // Solved in stable-hash order of the item ids, as the cluster solves it
    // (dist/ease.hpp), so that both give the same weights.
    auto keys = id_keys(ds, train);
    auto bin = train.binarized();
    m = std::make_shared<ease_model>(
        ease_weights(bin, opt.ease_lambda > 0 ? opt.ease_lambda : ease_settings().lambda,
                     &keys.second, threads),
        bin);
  } else if (a == "content") {
    content_config cfg;
    cfg.threads = threads;
    m = train_content(train, ds, cfg);
  } else if (a == "hybrid") {
    return train_hybrid(opt, ds, train);
  } else {
    std::string list;
    for (const auto& n : algorithm_names())
      list += (list.empty() ? "" : "|") + n;
    return make_error(errc::invalid_argument,
                      "unknown algorithm '" + a + "' (expected " + list + ")");
  }
  return m;
}

} // namespace shardrec::core
