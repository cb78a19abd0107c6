#include "core/evaluate.hpp"

#include <algorithm>
#include <chrono>

#include "core/parallel.hpp"
#include "core/topn.hpp"

namespace shardrec::core {

merge_policy merge_policy_for(const std::vector<event>& events) {
  bool all_ratings = std::all_of(events.begin(), events.end(), [](const event& e) {
    return e.type == event_type::rating;
  });
  return all_ratings ? merge_policy::last : merge_policy::confidence;
}

result<eval_report> evaluate(const dataset& ds, const std::vector<event>& train,
                             const std::vector<event>& test, const eval_options& opt) {
  if (opt.k == 0)
    return make_error(errc::invalid_argument, "--k must be at least 1");
  using clock = std::chrono::steady_clock;
  eval_report rep;
  rep.algo = opt.algo.algo;
  rep.k = opt.k;
  rep.users = ds.users.size();
  rep.items = ds.items.size();
  rep.test_events = test.size();

  auto m =
      interaction_matrix::build(rep.users, rep.items, train, merge_policy_for(train));
  rep.train_interactions = m.nnz();

  algo_options algo = opt.algo;
  if (opt.tune && algo.algo == "hybrid" && algo.weights.empty()) {
    auto tuned =
        tune_hybrid(tuning_sample(ds, train, opt.tuning.max_users), algo, opt.tuning);
    if (!tuned)
      return tuned.err();
    algo.weights = tuned->chosen.weights;
    algo.ials_alpha = tuned->chosen.ials_alpha;
    algo.ials_reg = tuned->chosen.ials_reg;
    algo.knn_neighbors = tuned->chosen.knn_neighbors;
    algo.ease_lambda = tuned->chosen.ease_lambda;
    rep.tuning = std::move(*tuned);
  }
  auto t0 = clock::now();
  auto trained = train_algorithm(algo, ds, m);
  if (!trained)
    return trained.err();
  rep.train_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  const model& mdl = **trained;

  auto t1 = clock::now();
  unsigned threads = opt.algo.threads ? opt.algo.threads : default_threads();
  // A rating error means something only for ratings (an RMSE over purchase
  // quantities does not): as the cluster's eval, only when every test event
  // is a rating.
  rep.predicts_ratings =
      mdl.predicts_ratings() && std::all_of(test.begin(), test.end(), [](const event& e) {
        return e.type == event_type::rating;
      });
  if (rep.predicts_ratings) {
    std::vector<float> pred(test.size());
    parallel_for(test.size(), threads, [&](std::size_t b, std::size_t e) {
      for (auto j = b; j < e; ++j)
        pred[j] = mdl.predict(test[j].user, test[j].item);
    });
    error_accumulator acc;
    for (std::size_t j = 0; j < test.size(); ++j)
      acc.add(pred[j], test[j].value);
    rep.errors = acc.result();
  }

  // Relevant items per user: test items not already in the user's training row.
  std::vector<std::vector<index_t>> relevant(rep.users);
  for (const auto& e : test)
    if (e.user < rep.users && e.item < rep.items && !m.find(e.user, e.item))
      relevant[e.user].push_back(e.item);
  std::vector<index_t> eval_users;
  for (index_t u = 0; u < rep.users; ++u) {
    auto& r = relevant[u];
    std::sort(r.begin(), r.end());
    r.erase(std::unique(r.begin(), r.end()), r.end());
    if (!r.empty())
      eval_users.push_back(u);
  }
  std::vector<std::vector<index_t>> ranked(eval_users.size());
  parallel_for(
      eval_users.size(), threads,
      [&](std::size_t b, std::size_t e) {
        Eigen::VectorXf scores(static_cast<Eigen::Index>(rep.items));
        for (auto j = b; j < e; ++j) {
          auto u = eval_users[j];
          mdl.score_items(u, scores);
          auto row = m.user_row(u);
          ranked[j] = items_of(top_n(scores, opt.k, row.index, row.size));
        }
      },
      8);
  ranking_accumulator acc(opt.k, rep.items);
  for (std::size_t j = 0; j < eval_users.size(); ++j)
    acc.add(ranked[j], relevant[eval_users[j]]);
  rep.ranking = acc.result();
  rep.eval_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return rep;
}

} // namespace shardrec::core
