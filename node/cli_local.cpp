// The in-process subcommands: gen, eval --local, demo.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "core/algorithms.hpp"
#include "core/evaluate.hpp"
#include "core/generator.hpp"
#include "core/hybrid.hpp"
#include "core/knn.hpp"
#include "core/loaders.hpp"
#include "core/split.hpp"
#include "core/tuning.hpp"
#include "node/cli.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace shardrec::core;

namespace shardrec::node {

namespace {

// Parses `args` against `desc`; prints help (exit 0) or the error (exit 2).
std::optional<int> parse(const char* cmd, const char* synopsis,
                         const std::vector<std::string>& args,
                         po::options_description& desc, po::variables_map& vm) {
  desc.add_options()("help,h", "show this help");
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: shardrec " << cmd << " " << synopsis << "\n\n" << desc << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "shardrec " << cmd << ": " << e.what() << "\n(try: shardrec " << cmd
              << " --help)\n";
    return 2;
  }
  return std::nullopt;
}

int fail(const char* cmd, const error& err) {
  std::cerr << "shardrec " << cmd << ": " << err.message << "\n";
  return err.code == errc::invalid_argument ? 2 : 1;
}

void print_load(const load_report& r) {
  std::cerr << "loaded " << r.file << ": " << r.accepted << " accepted";
  if (r.skipped)
    std::cerr << ", " << r.skipped << " bad lines skipped";
  if (r.ignored)
    std::cerr << ", " << r.ignored << " ignored";
  std::cerr << "\n";
  for (const auto& p : r.problems)
    std::cerr << "  " << p << "\n";
}

// Guesses the format from the file name when --format is not given.
std::optional<data_format> guess_format(const std::string& path) {
  auto name = fs::path(path).filename().string();
  auto ext = fs::path(path).extension().string();
  if (ext == ".data" || ext == ".base" || ext == ".test")
    return data_format::movielens;
  if (ext == ".dat")
    return data_format::ml1m;
  if (name.find("online_retail") != std::string::npos)
    return data_format::online_retail;
  if (name == "ratings.csv")
    return data_format::ml_csv;
  if (ext == ".csv")
    return data_format::events;
  return std::nullopt;
}

// Loads item side information found next to a MovieLens file (u.item or
// movies.csv + tags.csv) when the user did not name one. Missing files are
// not an error: content-based scoring then has nothing to use.
void load_sidecar_items(const std::string& events_path, dataset& ds) {
  auto dir = fs::path(events_path).parent_path();
  for (const char* f : {"u.item", "movies.csv"}) {
    auto p = dir / f;
    if (fs::exists(p)) {
      auto r = load_item_attributes(p.string(), ds);
      if (r)
        print_load(*r);
      else
        std::cerr << "warning: " << r.err().message << "\n";
      break;
    }
  }
  auto tags = dir / "tags.csv";
  if (fs::exists(tags)) {
    auto r = load_tags(tags.string(), ds);
    if (r)
      print_load(*r);
  }
}

} // namespace

nlohmann::json tuning_json(const core::tuning_report& t) {
  auto trial = [](const core::tuning_trial& x) {
    return nlohmann::json{
        {"what", x.what}, {"ndcg_at_k", x.ndcg}, {"hit_rate_at_k", x.hit_rate}};
  };
  auto variant = [&](const core::tuning_trial& x) {
    auto j = trial(x);
    j["seconds"] = x.seconds;
    return j;
  };
  nlohmann::json j;
  j["weights"] = t.chosen.weights;
  j["ials_alpha"] = t.chosen.ials_alpha;
  j["ials_reg"] = t.chosen.ials_reg;
  j["ease_lambda"] = t.chosen.ease_lambda;
  j["knn_neighbors"] = t.chosen.knn_neighbors;
  j["default_weights"] = t.default_weights;
  j["validation"] = t.validation;
  j["sample_users"] = t.sample_users;
  j["validation_users"] = t.validation_users;
  j["items"] = t.items;
  j["defaults"] = trial(t.defaults);
  j["chosen"] = trial(t.best);
  j["variants"] = nlohmann::json::array();
  for (const auto& v : t.variants)
    j["variants"].push_back(variant(v));
  j["blends_tried"] = t.blends_tried;
  j["seconds"] = t.seconds;
  return j;
}

void print_tuning(const core::tuning_report& t) {
  std::printf("tuned on         %zu users (%zu validation, %s) in %.1f s\n",
              t.sample_users, t.validation_users, t.validation.c_str(), t.seconds);
  std::printf("  defaults       %s: NDCG %.4f, hit rate %.4f\n",
              t.default_weights.c_str(), t.defaults.ndcg, t.defaults.hit_rate);
  std::printf(
      "  chosen         %s (iALS alpha %g reg %g, item-kNN neighbours %zu, EASE lambda "
      "%g; 0: default): NDCG %.4f, hit rate %.4f\n",
      t.chosen.weights.c_str(), static_cast<double>(t.chosen.ials_alpha),
      static_cast<double>(t.chosen.ials_reg), t.chosen.knn_neighbors,
      static_cast<double>(t.chosen.ease_lambda), t.best.ndcg, t.best.hit_rate);
}

namespace {

nlohmann::json to_json(const eval_report& r) {
  nlohmann::json j;
  j["algo"] = r.algo;
  j["k"] = r.k;
  if (r.predicts_ratings) {
    j["rmse"] = r.errors.rmse;
    j["mae"] = r.errors.mae;
  }
  j["precision_at_k"] = r.ranking.precision;
  j["recall_at_k"] = r.ranking.recall;
  j["f1_at_k"] = r.ranking.f1;
  j["ndcg_at_k"] = r.ranking.ndcg;
  j["map_at_k"] = r.ranking.map;
  j["hit_rate_at_k"] = r.ranking.hit_rate;
  j["coverage"] = r.ranking.coverage;
  j["ranking_users"] = r.ranking.users;
  j["train_seconds"] = r.train_seconds;
  j["eval_seconds"] = r.eval_seconds;
  j["users"] = r.users;
  j["items"] = r.items;
  j["train_interactions"] = r.train_interactions;
  j["test_events"] = r.test_events;
  if (r.tuning)
    j["tuning"] = tuning_json(*r.tuning);
  return j;
}

void print_report(const eval_report& r) {
  std::printf("algorithm        %s\n", r.algo.c_str());
  std::printf(
      "data             %zu users, %zu items, %zu train interactions, %zu test events\n",
      r.users, r.items, r.train_interactions, r.test_events);
  if (r.predicts_ratings)
    std::printf("RMSE / MAE       %.4f / %.4f\n", r.errors.rmse, r.errors.mae);
  std::printf("P@%zu / R@%zu       %.4f / %.4f\n", r.k, r.k, r.ranking.precision,
              r.ranking.recall);
  std::printf("NDCG@%zu / MAP@%zu   %.4f / %.4f\n", r.k, r.k, r.ranking.ndcg,
              r.ranking.map);
  std::printf("hit rate / cover %.4f / %.4f  (%zu test users)\n", r.ranking.hit_rate,
              r.ranking.coverage, r.ranking.users);
  std::printf("train / eval s   %.3f / %.3f\n", r.train_seconds, r.eval_seconds);
  if (r.tuning)
    print_tuning(*r.tuning);
}

} // namespace

int cmd_gen(const std::vector<std::string>& args) {
  po::options_description desc("options");
  generator_config cfg;
  std::string out, items_out;
  desc.add_options()("users", po::value(&cfg.users)->default_value(cfg.users),
                     "number of users")(
      "items", po::value(&cfg.items)->default_value(cfg.items), "number of items")(
      "events", po::value(&cfg.events)->default_value(cfg.events),
      "number of events")("seed", po::value(&cfg.seed)->default_value(cfg.seed),
                          "random seed (same seed, same data)")(
      "factors", po::value(&cfg.factors)->default_value(cfg.factors),
      "dimension of the hidden taste structure")(
      "explicit", po::bool_switch(&cfg.explicit_ratings), "every event is a 1..5 rating")(
      "out,o", po::value(&out)->default_value("-"), "events CSV to write ('-': stdout)")(
      "items-out", po::value(&items_out), "also write the item attributes CSV here");
  po::variables_map vm;
  if (auto rc =
          parse("gen", "[--users U] [--items I] [--events E] [--seed S] [--out FILE]",
                args, desc, vm))
    return *rc;
  if (cfg.users == 0 || cfg.items == 0 || cfg.factors == 0)
    return fail("gen", make_error(errc::invalid_argument,
                                  "--users, --items and --factors must be >= 1"));
  auto ds = generate(cfg);
  auto st = write_events_csv(ds, out == "-" ? "/dev/stdout" : out);
  if (!st)
    return fail("gen", st.err());
  if (!items_out.empty()) {
    auto st2 = write_items_csv(ds, items_out);
    if (!st2)
      return fail("gen", st2.err());
  }
  if (out != "-")
    std::cerr << "wrote " << ds.events.size() << " events (" << cfg.users << " users, "
              << cfg.items << " items) to " << out << "\n";
  return 0;
}

int cmd_eval(const std::vector<std::string>& args) {
  po::options_description desc("options");
  std::string train_path, test_path, format, items_path, split = "random", cluster;
  eval_options opt;
  double test_fraction = 0.2;
  std::uint32_t folds = 5;
  bool kfold = false;
  bool json = false, local = false, skip_bad = false, no_tune = false;
  desc.add_options()("local", po::bool_switch(&local),
                     "train and evaluate in this process (required today)")(
      "cluster", po::value(&cluster), "HOST:PORT of a cluster (not available yet)")(
      "train", po::value(&train_path)->required(),
      "training file")("test", po::value(&test_path),
                       "test file; without it --split cuts the training file")(
      "format", po::value(&format),
      "movielens|csv|ml1m|events|online-retail (default: from the file name)")(
      "items", po::value(&items_path),
      "item attributes (u.item, movies.csv or items CSV); default: u.item/movies.csv "
      "next to --train if present")(
      "algo", po::value(&opt.algo.algo)->default_value("hybrid"),
      "baseline|popular|trending|itemknn|userknn|mf|implicit-als|ease|content|hybrid")(
      "k", po::value(&opt.k)->default_value(10), "cut-off of the ranking metrics")(
      "factors", po::value(&opt.algo.factors)->default_value(0),
      "latent factors (0: the algorithm's default)")(
      "iterations", po::value(&opt.algo.iterations)->default_value(0),
      "training iterations (0: the algorithm's default)")(
      "seed", po::value(&opt.algo.seed)->default_value(42), "random seed")(
      "threads", po::value(&opt.algo.threads)->default_value(0),
      "threads (0: all cores)")("weights", po::value(&opt.algo.weights),
                                "hybrid ranking weights, e.g. "
                                "implicit-als=0.85,content=0.1,itemknn=0.05")(
      "solver", po::value(&opt.algo.solver),
      "mf: gibbs (Bayesian MF, default) or als (what the cluster trains)")(
      "rating-weights", po::value(&opt.algo.rating_weights),
      "hybrid rating-prediction weights, e.g. mf=1")(
      "split", po::value(&split)->default_value("random"),
      "without --test: random (seeded holdout of --test-fraction), last (each user's "
      "latest event) or kfold (--folds folds, stratified per user; mean of the folds)")(
      "folds", po::value(&folds)->default_value(5), "folds for --split kfold")(
      "test-fraction", po::value(&test_fraction)->default_value(0.2),
      "holdout share for --split random")("skip-bad-lines", po::bool_switch(&skip_bad),
                                          "skip malformed lines and report how many")(
      "no-tune", po::bool_switch(&no_tune),
      "hybrid: train with the default weights and settings instead of tuning them on "
      "a validation split of the training events (each user's latest event)")(
      "json", po::bool_switch(&json), "print one JSON object on stdout");
  po::variables_map vm;
  if (auto rc = parse("eval", "--local --train FILE [--test FILE] [--algo A] [--json]",
                      args, desc, vm))
    return *rc;
  if (!cluster.empty() || !local)
    return fail("eval",
                make_error(errc::invalid_argument,
                           "only --local evaluation is available in this version; "
                           "add --local"));
  std::optional<data_format> fmt =
      format.empty() ? guess_format(train_path) : parse_data_format(format);
  if (!fmt)
    return fail(
        "eval",
        make_error(errc::invalid_argument,
                   format.empty()
                       ? "cannot tell the format of '" + train_path + "': pass --format"
                       : "unknown --format '" + format
                             + "' (movielens|csv|ml1m|events|online-retail)"));
  opt.tune = !no_tune;
  load_options lopt;
  lopt.skip_bad_lines = skip_bad;
  dataset ds;
  auto tr = load_events(train_path, *fmt, ds, lopt);
  if (!tr)
    return fail("eval", tr.err());
  print_load(*tr);
  std::vector<event> train = ds.events, test;
  if (!test_path.empty()) {
    auto te = load_events(test_path, *fmt, ds, lopt);
    if (!te)
      return fail("eval", te.err());
    print_load(*te);
    test.assign(ds.events.begin() + static_cast<std::ptrdiff_t>(train.size()),
                ds.events.end());
  } else if (split == "kfold") {
    if (folds < 2)
      return fail("eval",
                  make_error(errc::invalid_argument, "--folds must be at least 2"));
    kfold = true;
  } else {
    result<split_result> s =
        split == "last"     ? leave_last_out(train)
        : split == "random" ? random_split(train, test_fraction, opt.algo.seed)
                            : result<split_result>(make_error(
                                errc::invalid_argument,
                                "unknown --split '" + split + "' (random|last|kfold)"));
    if (!s)
      return fail("eval", s.err());
    train = std::move(s->train);
    test = std::move(s->test);
  }
  if (!items_path.empty()) {
    auto r = load_item_attributes(items_path, ds);
    if (!r)
      return fail("eval", r.err());
    print_load(*r);
  } else {
    load_sidecar_items(train_path, ds);
  }
  if (kfold) {
    // Every event is tested once: the mean of the k folds' figures.
    eval_report mean;
    for (std::uint32_t f = 0; f < folds; ++f) {
      auto s = kfold_split(train, folds, f, opt.algo.seed, true);
      if (!s)
        return fail("eval", s.err());
      auto r = evaluate(ds, s->train, s->test, opt);
      if (!r)
        return fail("eval", r.err());
      std::cerr << "fold " << f + 1 << "/" << folds << ": "
                << (r->predicts_ratings ? "RMSE " + std::to_string(r->errors.rmse) + ", "
                                        : "")
                << "P@" << r->k << " " << r->ranking.precision << "\n";
      auto w = 1.0 / folds;
      if (f == 0) {
        mean = *r;
        mean.errors = {};
        mean.ranking = {};
        mean.train_seconds = mean.eval_seconds = 0;
        mean.train_interactions = mean.test_events = 0;
      }
      mean.errors.rmse += w * r->errors.rmse;
      mean.errors.mae += w * r->errors.mae;
      mean.errors.count += r->errors.count;
      mean.ranking.precision += w * r->ranking.precision;
      mean.ranking.recall += w * r->ranking.recall;
      mean.ranking.f1 += w * r->ranking.f1;
      mean.ranking.ndcg += w * r->ranking.ndcg;
      mean.ranking.map += w * r->ranking.map;
      mean.ranking.hit_rate += w * r->ranking.hit_rate;
      mean.ranking.coverage += w * r->ranking.coverage;
      mean.ranking.users += r->ranking.users;
      mean.train_seconds += w * r->train_seconds;
      mean.eval_seconds += w * r->eval_seconds;
      mean.train_interactions += r->train_interactions / folds;
      mean.test_events += r->test_events;
    }
    if (json)
      std::cout << to_json(mean).dump() << "\n";
    else
      print_report(mean);
    return 0;
  }
  auto rep = evaluate(ds, train, test, opt);
  if (!rep)
    return fail("eval", rep.err());
  if (json)
    std::cout << to_json(*rep).dump() << "\n";
  else
    print_report(*rep);
  return 0;
}

int cmd_demo(const std::vector<std::string>& args) {
  po::options_description desc("options");
  std::string data_dir;
  std::size_t show_users = 3, n = 10;
  algo_options opt;
  desc.add_options()(
      "data", po::value(&data_dir)->default_value("../shared/data"),
      "folder with ml-100k/; when absent a synthetic data set is generated")(
      "users", po::value(&show_users)->default_value(show_users),
      "how many users to show")("n,n", po::value(&n)->default_value(n),
                                "recommendations per user")(
      "seed", po::value(&opt.seed)->default_value(42), "random seed")(
      "threads", po::value(&opt.threads)->default_value(0), "threads (0: all cores)");
  po::variables_map vm;
  if (auto rc = parse("demo", "[--data DIR] [--users N] [-n N]", args, desc, vm))
    return *rc;

  dataset ds;
  auto udata = fs::path(data_dir) / "ml-100k" / "u.data";
  if (fs::exists(udata)) {
    auto r = load_events(udata.string(), data_format::movielens, ds, {});
    if (!r)
      return fail("demo", r.err());
    print_load(*r);
    load_sidecar_items(udata.string(), ds);
  } else {
    generator_config g;
    g.users = 2000;
    g.items = 1000;
    g.events = 100000;
    g.seed = opt.seed;
    ds = generate(g);
    std::cerr << "no " << udata.string() << ": generated " << ds.events.size()
              << " synthetic events (" << g.users << " users, " << g.items << " items)\n";
  }
  auto m = interaction_matrix::build(ds.users.size(), ds.items.size(), ds.events,
                                     merge_policy_for(ds.events));
  auto t0 = std::chrono::steady_clock::now();
  opt.algo = "hybrid";
  auto trained = train_algorithm(opt, ds, m);
  if (!trained)
    return fail("demo", trained.err());
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& h = static_cast<const hybrid_model&>(**trained);
  std::printf("trained hybrid on %zu users x %zu items, %zu interactions in %.2f s\n",
              m.n_users(), m.n_items(), m.nnz(), secs);
  std::printf("components:");
  for (const auto& p : h.parts())
    std::printf(" %s (rank weight %.2f, rating weight %.2f)", p.name.c_str(), p.weight,
                p.rating_weight);
  std::printf("\n");

  auto title = [&](index_t i) {
    const std::string& id = ds.items.external(i);
    if (i < ds.item_meta.size() && !ds.item_meta[i].title.empty())
      return ds.item_meta[i].title + " [" + id + "]";
    return "item " + id;
  };
  for (index_t u = 0; u < std::min<std::size_t>(show_users, m.n_users()); ++u) {
    auto row = m.user_row(u);
    std::printf("\nuser %s (%zu interactions)\n", ds.users.external(u).c_str(), row.size);
    auto recs = h.recommend(u, n, row.index, row.size, 2);
    int rank = 1;
    for (const auto& r : recs) {
      std::printf("%3d. %-50s score %+.3f", rank++, title(r.item).c_str(), r.score);
      if (h.predicts_ratings())
        std::printf("  predicted rating %.2f", h.predict(u, r.item));
      std::printf("\n      ");
      for (const auto& c : r.components)
        std::printf(" %s %+.2f", c.name.c_str(), c.contribution);
      if (!r.because.empty()) {
        std::printf("\n       because of (%s):", r.because_from.c_str());
        for (const auto& b : r.because)
          std::printf(" %s (%.2f);", title(b.item).c_str(), b.weight);
      }
      std::printf("\n");
    }
  }
  // Similar items: item-item neighbour lists.
  knn_config kc;
  kc.threads = opt.threads ? opt.threads : 1;
  auto neigh = item_neighbors(m, kc);
  for (index_t i = 0; i < std::min<std::size_t>(2, m.n_items()); ++i) {
    std::printf("\nsimilar to %s:\n", title(i).c_str());
    for (std::size_t k = 0; k < std::min<std::size_t>(5, neigh[i].size()); ++k)
      std::printf("  %-50s similarity %.3f\n", title(neigh[i][k].id).c_str(),
                  static_cast<double>(neigh[i][k].similarity));
  }
  return 0;
}

} // namespace shardrec::node
