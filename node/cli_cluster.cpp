// Subcommands of `shardrec --cluster HOST:PORT ...`: parse the options, call
// client/ (every request has a timeout; errors name what went wrong), print
// as text or --json. Scripts parse this output (tests/cluster, bench/*.sh):
// keep every line and JSON key as it is.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "client/connection.hpp"
#include "client/evaluate.hpp"
#include "client/load_generator.hpp"
#include "client/loader.hpp"
#include "core/loaders.hpp"
#include "node/cli.hpp"

namespace po = boost::program_options;
using namespace shardrec;

namespace shardrec::node {

namespace {

// "HOST:PORT" -> connection; prints why not.
std::optional<client::connection> connect(const std::string& where) {
  auto colon = where.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "shardrec: --cluster expects HOST:PORT, got '" << where << "'\n";
    return std::nullopt;
  }
  std::uint16_t port = 0;
  try {
    port = static_cast<std::uint16_t>(std::stoul(where.substr(colon + 1)));
  } catch (...) {
    std::cerr << "shardrec: bad port in --cluster '" << where << "'\n";
    return std::nullopt;
  }
  auto c = client::connect(where.substr(0, colon), port);
  if (!c) {
    std::cerr << "shardrec: " << c.err().message << "\n";
    return std::nullopt;
  }
  return std::move(*c);
}

// The value of r, or nullopt after printing its error as "PREFIX: message".
template <class T>
std::optional<T> or_report(core::result<T> r, const char* prefix = "shardrec") {
  if (!r) {
    std::cerr << prefix << ": " << r.err().message << "\n";
    return std::nullopt;
  }
  return std::move(*r);
}

int parse(const char* cmd, const std::vector<std::string>& args,
          po::options_description& desc, po::variables_map& vm, const char* synopsis,
          po::positional_options_description* pos = nullptr) {
  desc.add_options()("help,h", "show this help");
  try {
    auto parser = po::command_line_parser(args).options(desc);
    if (pos)
      parser.positional(*pos);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: shardrec --cluster HOST:PORT " << cmd << " " << synopsis
                << "\n\n"
                << desc << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "shardrec " << cmd << ": " << e.what() << "\n";
    return 2;
  }
  return -1;
}

// Connects to every node of the cluster's map; prints why not.
bool connect_every_node(client::connection& c, const char* cmd) {
  auto status = or_report(client::status(c));
  if (!status)
    return false;
  if (auto s = client::connect_every_node(c, status->map); !s) {
    std::cerr << "shardrec " << cmd << ": " << s.err().message << "\n";
    return false;
  }
  return true;
}

int cmd_status(client::connection& c, const std::string& what, bool json) {
  auto s = or_report(client::status(c));
  if (!s)
    return 1;
  std::uint64_t users = 0, items = 0, events = 0;
  // The model every partition serves: the lowest version (0: some
  // partition serves none, or did not answer).
  std::uint64_t model_version = s->partitions.empty() || !s->missing.empty()
                                    ? 0
                                    : s->partitions.front().model_version;
  for (const auto& p : s->partitions) {
    users += p.users;
    items += p.items;
    events += p.user_events;
    model_version = std::min(model_version, p.model_version);
  }
  if (json) {
    nlohmann::json j;
    j["map_version"] = s->map.version;
    j["partitions"] = s->map.partitions;
    j["missing_partitions"] = s->missing;
    auto& nodes = j["nodes"] = nlohmann::json::array();
    for (const auto& n : s->map.nodes) {
      std::size_t owned = 0, followed = 0;
      for (auto o : s->map.owner)
        owned += o == n.id;
      for (std::uint32_t p = 0; p < s->map.partitions; ++p)
        followed += s->map.follows(p, n.id);
      // Without etcd a node of the map serves (a dead one shows in
      // missing_partitions); with etcd its state comes from there.
      nodes.push_back({{"id", n.id},
                       {"host", n.host},
                       {"port", n.port},
                       {"partitions", owned},
                       {"followed", followed},
                       {"state", n.state.empty() ? "serving" : n.state},
                       {"controller", n.controller}});
    }
    if (what == "partitions") {
      auto& parts = j["partition_status"] = nlohmann::json::array();
      for (const auto& p : s->partitions)
        parts.push_back(
            {{"partition", p.partition},
             {"node", p.node},
             {"primary",
              p.partition < s->map.owner.size() ? s->map.owner[p.partition] : p.node},
             {"epoch", s->map.epoch_of(p.partition)},
             {"followers", p.partition < s->map.followers.size()
                               ? s->map.followers[p.partition]
                               : std::vector<std::uint32_t>{}},
             {"users", p.users},
             {"items", p.items},
             {"user_events", p.user_events},
             {"item_events", p.item_events},
             {"model_version", p.model_version},
             {"log_seq", p.log_seq},
             {"snapshot_seq", p.snapshot_seq},
             {"log_bytes", p.log_bytes}});
    }
    j["users"] = users;
    j["items"] = items;
    j["events"] = events;
    j["model_version"] = model_version;
    std::cout << j.dump() << "\n";
    return 0;
  }
  if (what == "status") {
    std::printf("cluster: %zu nodes, %u partitions (map version %llu)\n",
                s->map.nodes.size(), s->map.partitions,
                static_cast<unsigned long long>(s->map.version));
    std::printf("data:    %llu users, %llu items, %llu events\n",
                static_cast<unsigned long long>(users),
                static_cast<unsigned long long>(items),
                static_cast<unsigned long long>(events));
    if (model_version == 0)
      std::printf("model:   none served yet (run `shardrec train`)\n");
    else
      std::printf("model:   version %llu\n",
                  static_cast<unsigned long long>(model_version));
    if (!s->missing.empty())
      std::printf("WARNING: %zu partitions did not answer\n", s->missing.size());
  } else if (what == "nodes") {
    std::printf("%-4s %-22s %-10s %s\n", "id", "address", "state", "partitions");
    for (const auto& n : s->map.nodes) {
      std::size_t owned = 0;
      for (auto o : s->map.owner)
        owned += o == n.id;
      const std::string state = n.state.empty() ? "serving" : n.state;
      std::printf("%-4u %-22s %-10s %zu%s\n", n.id,
                  (n.host + ":" + std::to_string(n.port)).c_str(), state.c_str(), owned,
                  n.controller ? "  (controller)" : "");
    }
  } else {
    std::printf("%-9s %-5s %-6s %-10s %10s %10s %12s %12s %8s %10s %10s %12s\n",
                "partition", "node", "epoch", "followers", "users", "items",
                "user-events", "item-events", "model", "log-seq", "snap-seq",
                "log-bytes");
    for (const auto& p : s->partitions) {
      std::string followers;
      if (p.partition < s->map.followers.size())
        for (auto f : s->map.followers[p.partition])
          followers += (followers.empty() ? "" : ",") + std::to_string(f);
      std::printf(
          "%-9u %-5u %-6llu %-10s %10llu %10llu %12llu %12llu %8llu %10llu %10llu "
          "%12llu\n",
          p.partition, p.node,
          static_cast<unsigned long long>(s->map.epoch_of(p.partition)),
          followers.empty() ? "-" : followers.c_str(),
          static_cast<unsigned long long>(p.users),
          static_cast<unsigned long long>(p.items),
          static_cast<unsigned long long>(p.user_events),
          static_cast<unsigned long long>(p.item_events),
          static_cast<unsigned long long>(p.model_version),
          static_cast<unsigned long long>(p.log_seq),
          static_cast<unsigned long long>(p.snapshot_seq),
          static_cast<unsigned long long>(p.log_bytes));
    }
    for (auto m : s->missing)
      std::printf("%-9u (no answer)\n", m);
  }
  return 0;
}

int cmd_load(client::connection& c, const std::vector<std::string>& args) {
  po::options_description desc("options");
  std::string path, format, items;
  client::load_options opt;
  bool skip_bad = false, quiet = false;
  desc.add_options()("file", po::value(&path)->required(), "events or ratings file")(
      "format", po::value(&format)->default_value("movielens"),
      "movielens|csv|ml1m|events|online-retail")(
      "items", po::value(&items), "item attributes file (u.item, movies.csv, items CSV)")(
      "batch", po::value(&opt.batch)->default_value(opt.batch), "events per message")(
      "window", po::value(&opt.window)->default_value(opt.window),
      "batches in flight per partition (back-pressure: the next goes out when one is "
      "acknowledged); 'accepted' counts events every partition acknowledged")(
      "skip-bad-lines", po::bool_switch(&skip_bad),
      "skip malformed lines and count them")("quiet", po::bool_switch(&quiet),
                                             "no progress bar");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (int rc = parse("load", args, desc, vm, "FILE [--format F]", &pos); rc >= 0)
    return rc;
  auto fmt = core::parse_data_format(format);
  if (!fmt) {
    std::cerr << "shardrec load: unknown --format '" << format << "'\n";
    return 2;
  }
  if (opt.batch == 0 || opt.window == 0) {
    std::cerr << "shardrec load: --batch and --window must be at least 1\n";
    return 2;
  }
  core::dataset ds;
  core::load_options lo;
  lo.skip_bad_lines = skip_bad;
  auto rep = core::load_events(path, *fmt, ds, lo);
  if (!rep) {
    std::cerr << "shardrec load: " << rep.err().message << "\n";
    return 1;
  }
  if (!connect_every_node(c, "load"))
    return 1;
  client::load_observer obs;
  if (!quiet)
    obs.progress = [&](std::size_t sent, std::size_t total, double secs) {
      std::fprintf(stderr, "\rloading %s: %3.0f%% (%zu / %zu events, %.0f events/s)",
                   path.c_str(),
                   100.0 * static_cast<double>(sent) / static_cast<double>(total), sent,
                   total, secs > 0 ? static_cast<double>(sent) / secs : 0.0);
    };
  obs.failed = [](const std::string& what) {
    std::cerr << "\nshardrec load: " << what << "\n";
  };
  auto r = or_report(client::load_events(c, ds, *rep, opt, obs), "shardrec load");
  if (!r)
    return 1;
  if (!quiet)
    std::fprintf(stderr, "\n");
  std::printf("loaded %s: %llu accepted, %llu rejected in %.2f s (%.0f events/s)\n",
              path.c_str(), static_cast<unsigned long long>(r->accepted),
              static_cast<unsigned long long>(r->rejected), r->seconds,
              r->seconds > 0 ? static_cast<double>(r->accepted) / r->seconds : 0.0);
  if (r->unconfirmed > 0)
    std::printf("  %llu events sent were not acknowledged (some may be stored): load "
                "from there again once every node is up\n",
                static_cast<unsigned long long>(r->unconfirmed));
  for (const auto& p : r->problems)
    std::printf("  %s\n", p.c_str());
  bool failed = !r->failure.empty();
  // Item information in the events file itself (Online Retail's
  // descriptions), as `eval --local` reads it.
  if (!failed && !ds.item_meta.empty()) {
    auto stored = client::load_items(c, ds, opt);
    if (!stored.failure.empty()) {
      std::cerr << "shardrec load: " << stored.failure << "\n";
      failed = true;
    } else if (stored.stored > 0) {
      std::printf("stored the attributes of %llu items named in %s\n",
                  static_cast<unsigned long long>(stored.stored), path.c_str());
    }
  }
  if (!items.empty() && !failed) {
    core::dataset side;
    auto ir = core::load_item_attributes(items, side);
    if (!ir) {
      std::cerr << "shardrec load: " << ir.err().message << "\n";
      return 1;
    }
    auto stored = client::load_items(c, side, opt);
    if (!stored.failure.empty()) {
      std::cerr << "shardrec load: " << stored.failure << "\n";
      failed = true;
    }
    std::printf("loaded %s: attributes of %llu items\n", items.c_str(),
                static_cast<unsigned long long>(stored.stored));
  }
  return failed ? 1 : 0;
}

// One event, acknowledged once every partition it goes to has it in its log
// (per the nodes' --sync): what a shop's backend sends on each page view,
// cart or purchase.
int cmd_event(client::connection& c, const std::vector<std::string>& args, bool json) {
  po::options_description desc("options");
  dist::raw_event e;
  std::string type = "view";
  std::optional<std::int64_t> when;
  desc.add_options()("user", po::value(&e.user)->required(),
                     "user id")("item", po::value(&e.item)->required(),
                                "item id")("type", po::value(&type)->default_value(type),
                                           "view|click|cart|purchase|rating|cancel")(
      "value", po::value(&e.value)->default_value(1.0f),
      "the rating, quantity or weight of the event")(
      "time", po::value<std::int64_t>()->notifier([&](std::int64_t t) { when = t; }),
      "seconds since the Unix epoch (default: now)")("device", po::value(&e.device),
                                                     "device, e.g. mobile")(
      "location", po::value(&e.location), "location, e.g. a country or city");
  po::positional_options_description pos;
  pos.add("user", 1).add("item", 1);
  po::variables_map vm;
  if (int rc = parse("event", args, desc, vm,
                     "USER ITEM [--type T] [--value V] [--time T] [--device D] "
                     "[--location L] [--json]",
                     &pos);
      rc >= 0)
    return rc;
  auto t = core::parse_event_type(type);
  if (!t) {
    std::cerr << "shardrec event: unknown --type '" << type
              << "' (view|click|cart|purchase|rating|cancel)\n";
    return 2;
  }
  e.type = *t;
  e.timestamp = when ? *when : static_cast<std::int64_t>(std::time(nullptr));
  auto r = or_report(client::send_events(c, {e}), "shardrec event");
  if (!r)
    return 1;
  if (json) {
    nlohmann::json j{
        {"user", e.user},          {"item", e.item},           {"type", type},
        {"value", e.value},        {"timestamp", e.timestamp}, {"accepted", r->accepted},
        {"rejected", r->rejected}, {"problems", r->problems}};
    std::cout << j.dump() << "\n";
  } else if (r->accepted == 1) {
    std::printf("event stored: user %s, item %s, %s %g at %lld\n", e.user.c_str(),
                e.item.c_str(), type.c_str(), static_cast<double>(e.value),
                static_cast<long long>(e.timestamp));
  }
  if (r->accepted != 1) {
    std::cerr << "shardrec event: rejected"
              << (r->problems.empty() ? std::string() : ": " + r->problems.front())
              << "\n";
    return 1;
  }
  return 0;
}

int cmd_train(client::connection& c, const std::vector<std::string>& args, bool json) {
  po::options_description desc("options");
  actors::train_request req;
  desc.add_options()(
      "algo", po::value(&req.algo)->default_value("all"),
      "all (the hybrid and every part) | implicit-als | mf | itemknn | content | "
      "popular | ease")("factors", po::value(&req.factors)->default_value(0),
                        "latent factors (0: default)")(
      "iterations", po::value(&req.iterations)->default_value(0),
      "iterations (0: the defaults: implicit ALS 15; MF 100 Gibbs sweeps, 20 of "
      "them burn-in, or a fifth when fewer)")(
      "seed", po::value(&req.seed)->default_value(42),
      "random seed")("weights", po::value(&req.weights),
                     "all: serve this blend, e.g. ease=0.7,implicit-als=0.3 (no tuning)")(
      "no-tune", po::bool_switch(&req.no_tune),
      "all: serve the default blend and settings instead of tuning them on a "
      "validation split of the stored events (each user's latest event), as "
      "`eval --local` does")(
      "ease-max-items", po::value(&req.ease_max_items)->default_value(0),
      "largest catalogue EASE trains on (0: 10000); EASE keeps n^2 weights, so "
      "beyond it the hybrid blends the other parts and says so");
  po::variables_map vm;
  if (int rc =
          parse("train", args, desc, vm, "[--algo A] [--factors N] [--iterations N]");
      rc >= 0)
    return rc;
  auto r = or_report(client::train(c, req));
  if (!r)
    return 1;
  if (json) {
    nlohmann::json j{{"algo", r->algo},
                     {"seconds", r->seconds},
                     {"bytes_sent", r->bytes_sent},
                     {"messages", r->messages},
                     {"loss", r->loss}};
    auto& phases = j["phases"] = nlohmann::json::object();
    for (const auto& [name, secs] : r->phases)
      phases[name] = secs;
    j["blend"] = r->blend;
    j["notes"] = r->notes;
    if (r->tuning)
      j["tuning"] = tuning_json(*r->tuning);
    std::cout << j.dump() << "\n";
  } else {
    std::printf(
        "trained %s in %.2f s (%llu messages, %llu payload bytes between shards)\n",
        r->algo.c_str(), r->seconds, static_cast<unsigned long long>(r->messages),
        static_cast<unsigned long long>(r->bytes_sent));
    for (const auto& [name, secs] : r->phases)
      std::printf("  %-8s %.2f s\n", name.c_str(), secs);
    if (!r->blend.empty())
      std::printf("serving the blend %s\n", r->blend.c_str());
    if (r->tuning)
      print_tuning(*r->tuning);
    for (const auto& n : r->notes)
      std::printf("note: %s\n", n.c_str());
  }
  return 0;
}

int cmd_recommend(client::connection& c, const std::vector<std::string>& args,
                  bool json) {
  po::options_description desc("options");
  actors::recommend_request req;
  desc.add_options()("user", po::value(&req.user)->required(), "user id")(
      "n,n", po::value(&req.n)->default_value(10), "how many items")(
      "algo", po::value(&req.algo)->default_value("hybrid"),
      "hybrid: the blend `train` built (train --algo X to serve X alone)");
  po::positional_options_description pos;
  pos.add("user", 1);
  po::variables_map vm;
  if (int rc = parse("recommend", args, desc, vm, "USER [-n N] [--json]", &pos); rc >= 0)
    return rc;
  auto r = or_report(client::recommend(c, req));
  if (!r)
    return 1;
  if (json) {
    nlohmann::json j;
    j["user"] = r->user;
    j["partial"] = r->partial;
    j["missing_partitions"] = r->missing;
    j["cold_start"] = r->cold_start;
    if (!r->note.empty())
      j["note"] = r->note;
    auto& items = j["items"] = nlohmann::json::array();
    for (const auto& x : r->items) {
      nlohmann::json comps = nlohmann::json::object();
      for (const auto& cs : x.components)
        comps[cs.name] = {{"raw", cs.raw}, {"contribution", cs.contribution}};
      items.push_back({{"item", x.item},
                       {"score", x.score},
                       {"components", comps},
                       {"because", x.because},
                       {"because_from", x.because_from}});
    }
    std::cout << j.dump() << "\n";
    return 0;
  }
  if (r->partial) {
    std::printf("PARTIAL answer: partitions");
    for (auto m : r->missing)
      std::printf(" %u", m);
    std::printf(" did not answer in time\n");
  }
  if (!r->note.empty())
    std::printf("(%s)\n", r->note.c_str());
  int rank = 1;
  for (const auto& x : r->items) {
    std::printf("%3d. %-24s score %+.3f  ", rank++, x.item.c_str(), x.score);
    for (const auto& cs : x.components)
      std::printf(" %s %+.2f", cs.name.c_str(), cs.contribution);
    if (!x.because.empty()) {
      std::printf("  because of (%s)", x.because_from.c_str());
      for (const auto& b : x.because)
        std::printf(" %s", b.c_str());
    }
    std::printf("\n");
  }
  return 0;
}

int cmd_similar(client::connection& c, const std::vector<std::string>& args, bool json) {
  po::options_description desc("options");
  actors::similar_request req;
  desc.add_options()("item", po::value(&req.item)->required(), "item id")(
      "n,n", po::value(&req.n)->default_value(10), "how many items");
  po::positional_options_description pos;
  pos.add("item", 1);
  po::variables_map vm;
  if (int rc = parse("similar", args, desc, vm, "ITEM [-n N] [--json]", &pos); rc >= 0)
    return rc;
  auto r = or_report(client::similar(c, req));
  if (!r)
    return 1;
  if (json) {
    nlohmann::json j{{"item", r->item}, {"partial", r->partial}};
    if (!r->note.empty())
      j["note"] = r->note;
    auto& list = j["neighbors"] = nlohmann::json::array();
    for (const auto& [id, sim] : r->neighbors)
      list.push_back({{"item", id}, {"similarity", sim}});
    std::cout << j.dump() << "\n";
    return 0;
  }
  if (!r->note.empty())
    std::printf("(%s)\n", r->note.c_str());
  for (const auto& [id, sim] : r->neighbors)
    std::printf("  %-24s similarity %.4f\n", id.c_str(), static_cast<double>(sim));
  return 0;
}

int cmd_popular(client::connection& c, const std::vector<std::string>& args, bool json) {
  po::options_description desc("options");
  actors::popular_request req;
  desc.add_options()("n,n", po::value(&req.n)->default_value(10),
                     "how many items (1..1000)")(
      "trending", po::bool_switch(&req.trending),
      "rank by trending: each event weighs 2^(-age / 7 days), age from the latest "
      "event time (default: the number of users with an event on the item)");
  po::variables_map vm;
  if (int rc = parse("popular", args, desc, vm, "[-n N] [--trending] [--json]"); rc >= 0)
    return rc;
  auto r = or_report(client::popular(c, req));
  if (!r)
    return 1;
  if (json) {
    nlohmann::json j{{"trending", r->trending}, {"partial", r->partial}};
    auto& list = j["items"] = nlohmann::json::array();
    for (const auto& [id, score] : r->items)
      list.push_back({{"item", id}, {"score", score}});
    if (r->partial)
      j["missing_partitions"] = r->missing;
    std::cout << j.dump() << "\n";
    return 0;
  }
  if (r->partial)
    std::printf("(partial: %zu partitions did not answer)\n", r->missing.size());
  for (const auto& [id, score] : r->items)
    if (r->trending)
      std::printf("  %-24s trending %.3f\n", id.c_str(), score);
    else
      std::printf("  %-24s %.0f users\n", id.c_str(), score);
  return 0;
}

int cmd_eval(client::connection& c, const std::vector<std::string>& args, bool json) {
  po::options_description desc("options");
  std::string path, format;
  client::eval_options opt;
  desc.add_options()("test", po::value(&path)->required(), "test file (held-out events)")(
      "format", po::value(&format)->default_value("movielens"),
      "movielens|csv|ml1m|events|online-retail")(
      "k", po::value(&opt.k)->default_value(opt.k), "cut-off of the ranking metrics")(
      "window", po::value(&opt.window)->default_value(opt.window), "queries in flight");
  po::variables_map vm;
  if (int rc =
          parse("eval", args, desc, vm, "--test FILE [--format F] [--k 10] [--json]");
      rc >= 0)
    return rc;
  auto fmt = core::parse_data_format(format);
  if (!fmt || opt.k == 0 || opt.window == 0) {
    std::cerr << "shardrec eval: bad --format, --k or --window\n";
    return 2;
  }
  core::dataset ds;
  auto rep = core::load_events(path, *fmt, ds, {});
  if (!rep) {
    std::cerr << "shardrec eval: " << rep.err().message << "\n";
    return 1;
  }
  auto r = or_report(client::evaluate(c, ds, opt));
  if (!r)
    return 1;
  for (const auto& w : r->warnings)
    std::cerr << "shardrec eval: " << w << "\n";
  const auto k = opt.k;
  const auto& m = r->ranking;
  nlohmann::json j;
  j["algo"] = "hybrid";
  j["k"] = k;
  if (r->has_rating_error) {
    j["rmse"] = r->rating.rmse;
    j["mae"] = r->rating.mae;
  }
  j["precision_at_k"] = m.precision;
  j["recall_at_k"] = m.recall;
  j["f1_at_k"] = m.f1;
  j["ndcg_at_k"] = m.ndcg;
  j["map_at_k"] = m.map;
  j["hit_rate_at_k"] = m.hit_rate;
  j["coverage"] = m.coverage;
  j["ranking_users"] = m.users;
  j["partial_answers"] = r->partial_answers;
  j["train_seconds"] = nullptr; // training ran earlier, in `shardrec train`
  j["eval_seconds"] = r->query_seconds;
  j["users"] = r->users;
  j["items"] = r->items;
  j["train_interactions"] = r->train_interactions;
  j["test_events"] = r->test_events;
  if (json) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  if (r->has_rating_error)
    std::printf("RMSE / MAE       %.4f / %.4f\n", r->rating.rmse, r->rating.mae);
  std::printf("P@%zu / R@%zu       %.4f / %.4f\n", k, k, m.precision, m.recall);
  std::printf("NDCG@%zu / MAP@%zu   %.4f / %.4f  (%zu test users, %zu partial answers)\n",
              k, k, m.ndcg, m.map, m.users, r->partial_answers);
  std::printf("queries          %.2f s (%.0f per second)\n", r->query_seconds,
              static_cast<double>(r->queries) / std::max(r->query_seconds, 1e-9));
  return 0;
}

// Load generator: top-n hybrid queries for random users with `window`
// queries in flight; prints latency percentiles and throughput.
int cmd_bench(client::connection& c, const std::vector<std::string>& args, bool json) {
  po::options_description desc("options");
  client::load_generator_options opt;
  std::string route = "owner";
  desc.add_options()("queries", po::value(&opt.queries)->default_value(opt.queries),
                     "queries to send")(
      "window", po::value(&opt.window)->default_value(opt.window),
      "queries in flight")("users", po::value(&opt.users)->default_value(opt.users),
                           "user ids PREFIX0..PREFIX<users-1>")(
      "prefix", po::value(&opt.prefix)->default_value(opt.prefix),
      "user id prefix (gen uses 'u')")("n,n", po::value(&opt.n)->default_value(opt.n),
                                       "recommendations per query")(
      "seed", po::value(&opt.seed)->default_value(opt.seed),
      "random seed of the user choice")(
      "route", po::value(&route)->default_value(route),
      "owner: send each query to the node owning the user's partition, as a "
      "partition-aware client does (the user's profile is then local); entry: send "
      "every query to the --cluster node");
  po::variables_map vm;
  if (int rc = parse("bench", args, desc, vm, "[--queries N] [--window W] [--users U]");
      rc >= 0)
    return rc;
  if (opt.queries == 0 || opt.window == 0 || opt.users == 0) {
    std::cerr << "shardrec bench: --queries, --window and --users must be >= 1\n";
    return 2;
  }
  if (route != "owner" && route != "entry") {
    std::cerr << "shardrec bench: --route must be owner or entry, got '" << route
              << "'\n";
    return 2;
  }
  opt.route = route == "owner" ? client::query_route::owner : client::query_route::entry;
  if (opt.route == client::query_route::owner && !connect_every_node(c, "bench"))
    return 1;
  auto r = or_report(client::generate_load(c, opt), "shardrec bench");
  if (!r)
    return 1;
  if (json) {
    nlohmann::json j{
        {"queries", opt.queries},  {"window", opt.window}, {"route", route},
        {"answered", r->answered}, {"failed", r->failed},  {"partial", r->partial},
        {"seconds", r->seconds},   {"qps", r->qps},        {"p50_ms", r->p50_ms},
        {"p99_ms", r->p99_ms},     {"max_ms", r->max_ms}};
    std::cout << j.dump() << "\n";
  } else {
    std::printf(
        "%zu queries, window %zu, route %s: %.0f queries/s, p50 %.3f ms, p99 %.3f ms, "
        "max %.3f ms (%zu failed, %zu partial)\n",
        opt.queries, opt.window, route.c_str(), r->qps, r->p50_ms, r->p99_ms, r->max_ms,
        r->failed, r->partial);
  }
  return r->failed ? 1 : 0;
}

} // namespace

// drain NODE: the node's partitions move to the others, then it leaves;
// waits for that (or --timeout), unless --no-wait.
int cmd_drain(client::connection& c, const std::vector<std::string>& args, bool json) {
  po::options_description desc("options");
  std::uint32_t node = 0;
  bool no_wait = false, help = false;
  unsigned timeout = 600;
  desc.add_options()("node", po::value(&node)->required(), "the node's id (see `nodes`)")(
      "no-wait", po::bool_switch(&no_wait), "return once the drain is recorded")(
      "timeout", po::value(&timeout)->default_value(timeout),
      "seconds to wait for the node to leave")("help,h", po::bool_switch(&help),
                                               "this help");
  po::positional_options_description pos;
  pos.add("node", 1);
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
    if (help) {
      std::cout
          << "usage: shardrec --cluster HOST:PORT drain NODE [--no-wait] [--timeout S] "
             "[--json]\n\nMoves every partition of node NODE to the other nodes "
             "(their data copied while it keeps serving), then the node leaves the "
             "cluster and stops. Needs nodes started with --etcd.\n\n"
          << desc << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "shardrec: drain: " << e.what() << "\n";
    return 2;
  }
  auto said = client::drain(c, node);
  if (!said) {
    std::cerr << "shardrec: drain: " << said.err().message << "\n";
    return 1;
  }
  if (!json)
    std::printf("%s\n", said->c_str());
  const auto t0 = std::chrono::steady_clock::now();
  bool gone = no_wait;
  while (!gone && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(timeout)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    auto s = client::status(c);
    if (!s)
      continue;
    gone = std::none_of(s->map.nodes.begin(), s->map.nodes.end(),
                        [&](const actors::node_info& n) { return n.id == node; });
  }
  if (json)
    std::cout << nlohmann::json{{"node", node},
                                {"drained", gone && !no_wait},
                                {"message", *said}}
                     .dump()
              << "\n";
  else if (!no_wait)
    std::printf(gone ? "node %u has left the cluster\n"
                     : "node %u has not left yet (see `nodes`)\n",
                node);
  return gone ? 0 : 1;
}

int cmd_cluster(const std::string& where, const std::string& cmd,
                const std::vector<std::string>& args) {
  bool json = false;
  std::vector<std::string> rest;
  for (const auto& a : args) {
    if (a == "--json")
      json = true;
    else
      rest.push_back(a);
  }
  static const std::vector<std::string> known{"status",  "nodes", "partitions", "load",
                                              "event",   "train", "recommend",  "similar",
                                              "popular", "eval",  "bench",      "drain"};
  if (std::find(known.begin(), known.end(), cmd) == known.end()) {
    std::cerr << "shardrec: unknown cluster command '" << cmd
              << "' (status|nodes|partitions|load|event|train|recommend|similar|popular|"
                 "eval|bench|drain)\n";
    return 2;
  }
  // --help needs no cluster: the command prints its options and returns
  // before it touches the connection.
  const bool help = std::any_of(rest.begin(), rest.end(), [](const std::string& a) {
    return a == "--help" || a == "-h";
  });
  if (help && (cmd == "status" || cmd == "nodes" || cmd == "partitions")) {
    std::cout
        << "usage: shardrec --cluster HOST:PORT " << cmd
        << " [--json]\n\n  status: nodes, partitions, events, users, items and the "
           "model version\n  nodes: each node's address, state (joining, serving, "
           "down; with "
           "--etcd) and partitions, and which node is the controller\n  "
           "partitions: each partition's node (its primary), epoch and followers (with "
           "--etcd and replicas), counts and model version\n";
    return 0;
  }
  auto c =
      help ? std::optional<client::connection>(client::disconnected()) : connect(where);
  if (!c)
    return 1;
  if (cmd == "load")
    return cmd_load(*c, rest);
  if (cmd == "event")
    return cmd_event(*c, rest, json);
  if (cmd == "train")
    return cmd_train(*c, rest, json);
  if (cmd == "recommend")
    return cmd_recommend(*c, rest, json);
  if (cmd == "similar")
    return cmd_similar(*c, rest, json);
  if (cmd == "popular")
    return cmd_popular(*c, rest, json);
  if (cmd == "bench")
    return cmd_bench(*c, rest, json);
  if (cmd == "eval")
    return cmd_eval(*c, rest, json);
  if (cmd == "drain")
    return cmd_drain(*c, rest, json);
  return cmd_status(*c, cmd, json);
}

} // namespace shardrec::node
