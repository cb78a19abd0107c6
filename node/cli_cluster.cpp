// Subcommands of `shardrec --cluster HOST:PORT ...`: talk to a node's control
// actor. Every request has a timeout; errors name what went wrong.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include <boost/program_options.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/blocking_actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/codec.hpp"
#include "actors/interfaces.hpp"
#include "actors/interfaces.hpp"
#include "core/loaders.hpp"
#include "core/metrics.hpp"
#include "core/partition.hpp"
#include "dist/partition_store.hpp"
#include "node/cli.hpp"

namespace po = boost::program_options;
using namespace shardrec;

namespace shardrec::node {

namespace {

struct connection {
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor control;
};

std::optional<connection> connect(const std::string& where) {
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
  connection c;
  c.cfg = std::make_unique<caf::actor_system_config>();
  c.cfg->load<caf::io::middleman>();
  actors::add_message_types(*c.cfg);
  c.cfg->set("logger.verbosity", caf::atom("quiet"));
  c.cfg->set("scheduler.max-threads", std::size_t{2});
  c.cfg->set("middleman.workers", std::size_t{0}); // as shardrec-node
  c.cfg->set("middleman.enable-automatic-connections", true);
  c.sys = std::make_unique<caf::actor_system>(*c.cfg);
  auto h = c.sys->middleman().remote_actor(where.substr(0, colon), port);
  if (!h) {
    std::cerr << "shardrec: cannot reach a node at " << where << ": "
              << c.sys->render(h.error()) << "\n";
    return std::nullopt;
  }
  c.control = *h;
  return c;
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

int cmd_status(connection& c, const std::string& what, bool json) {
  caf::scoped_actor self{*c.sys};
  int rc = 1;
  self->request(c.control, actors::admin_timeout, actors::status_atom::value)
      .receive(
          [&](const actors::frame& f) {
            auto s = actors::decode_status_reply(f);
            if (!s) {
              std::cerr << "shardrec: " << s.err().message << "\n";
              return;
            }
            rc = 0;
            std::uint64_t users = 0, items = 0, events = 0;
            for (const auto& p : s->partitions) {
              users += p.users;
              items += p.items;
              events += p.user_events;
            }
            if (json) {
              nlohmann::json j;
              j["map_version"] = s->map.version;
              j["partitions"] = s->map.partitions;
              j["missing_partitions"] = s->missing;
              auto& nodes = j["nodes"] = nlohmann::json::array();
              for (const auto& n : s->map.nodes) {
                std::size_t owned = 0;
                for (auto o : s->map.owner)
                  owned += o == n.id;
                nodes.push_back({{"id", n.id},
                                 {"host", n.host},
                                 {"port", n.port},
                                 {"partitions", owned}});
              }
              if (what == "partitions") {
                auto& parts = j["partition_status"] = nlohmann::json::array();
                for (const auto& p : s->partitions)
                  parts.push_back({{"partition", p.partition},
                                   {"node", p.node},
                                   {"users", p.users},
                                   {"items", p.items},
                                   {"user_events", p.user_events},
                                   {"item_events", p.item_events}});
              }
              j["users"] = users;
              j["items"] = items;
              j["events"] = events;
              std::cout << j.dump() << "\n";
              return;
            }
            if (what == "status") {
              std::printf("cluster: %zu nodes, %u partitions (map version %llu)\n",
                          s->map.nodes.size(), s->map.partitions,
                          static_cast<unsigned long long>(s->map.version));
              std::printf("data:    %llu users, %llu items, %llu events\n",
                          static_cast<unsigned long long>(users),
                          static_cast<unsigned long long>(items),
                          static_cast<unsigned long long>(events));
              if (!s->missing.empty())
                std::printf("WARNING: %zu partitions did not answer\n",
                            s->missing.size());
            } else if (what == "nodes") {
              std::printf("%-4s %-22s %s\n", "id", "address", "partitions");
              for (const auto& n : s->map.nodes) {
                std::size_t owned = 0;
                for (auto o : s->map.owner)
                  owned += o == n.id;
                std::printf("%-4u %-22s %zu\n", n.id,
                            (n.host + ":" + std::to_string(n.port)).c_str(), owned);
              }
            } else {
              std::printf("%-9s %-5s %10s %10s %12s %12s\n", "partition", "node", "users",
                          "items", "user-events", "item-events");
              for (const auto& p : s->partitions)
                std::printf("%-9u %-5u %10llu %10llu %12llu %12llu\n", p.partition,
                            p.node, static_cast<unsigned long long>(p.users),
                            static_cast<unsigned long long>(p.items),
                            static_cast<unsigned long long>(p.user_events),
                            static_cast<unsigned long long>(p.item_events));
              for (auto m : s->missing)
                std::printf("%-9u (no answer)\n", m);
            }
          },
          [&](caf::error& err) {
            std::cerr << "shardrec: " << c.sys->render(err) << "\n";
          });
  return rc;
}

// Sends one admin request and decodes its frame reply with `decode`.
template <class T> struct result_value;
template <class T> struct result_value<core::result<T>> { using type = T; };

template <class Decode>
auto ask(connection& c, caf::message msg, std::chrono::milliseconds timeout,
         Decode decode)
    -> std::optional<typename result_value<decltype(decode(actors::frame{}))>::type> {
  caf::scoped_actor self{*c.sys};
  std::optional<typename result_value<decltype(decode(actors::frame{}))>::type> out;
  self->request(c.control, timeout, std::move(msg))
      .receive(
          [&](const actors::frame& f) {
            auto r = decode(f);
            if (r)
              out = std::move(*r);
            else
              std::cerr << "shardrec: " << r.err().message << "\n";
          },
          [&](caf::error& err) {
            std::cerr << "shardrec: " << c.sys->render(err) << "\n";
          });
  return out;
}

// Connects this process to every node of the cluster's map, node id ->
// control actor. Messages to any actor of a node then take the direct
// connection from the first one on, instead of going through the node we
// asked while CAF sets up a direct connection in the middle of a run (a
// batch sent during that hand-over was once left unanswered).
std::optional<std::map<std::uint32_t, caf::actor>>
connect_every_node(connection& c, const char* cmd, actors::status_reply* status_out) {
  auto status =
      ask(c, caf::make_message(actors::status_atom::value), actors::admin_timeout,
          [](const actors::frame& f) { return actors::decode_status_reply(f); });
  if (!status)
    return std::nullopt;
  std::map<std::uint32_t, caf::actor> node_control;
  for (const auto& nd : status->map.nodes) {
    auto h = c.sys->middleman().remote_actor(nd.host, nd.port);
    if (!h) {
      std::cerr << "shardrec " << cmd << ": cannot reach node " << nd.id << " at "
                << nd.host << ":" << nd.port << ": " << c.sys->render(h.error()) << "\n";
      return std::nullopt;
    }
    node_control[nd.id] = *h;
  }
  if (status_out)
    *status_out = std::move(*status);
  return node_control;
}

int cmd_load(connection& c, const std::vector<std::string>& args) {
  po::options_description desc("options");
  std::string path, format, items;
  std::size_t batch = 20000, window = 4;
  bool skip_bad = false, quiet = false;
  desc.add_options()("file", po::value(&path)->required(), "events or ratings file")(
      "format", po::value(&format)->default_value("movielens"),
      "movielens|csv|ml1m|events|online-retail")(
      "items", po::value(&items), "item attributes file (u.item, movies.csv, items CSV)")(
      "batch", po::value(&batch)->default_value(batch), "events per message")(
      "window", po::value(&window)->default_value(window),
      "batches in flight (back-pressure)")("skip-bad-lines", po::bool_switch(&skip_bad),
                                           "skip malformed lines and count them")(
      "quiet", po::bool_switch(&quiet), "no progress bar");
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
  if (batch == 0 || window == 0) {
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
  if (!connect_every_node(c, "load", nullptr))
    return 1;
  auto t0 = std::chrono::steady_clock::now();
  caf::scoped_actor self{*c.sys};
  std::uint64_t accepted = 0, rejected = rep->skipped, sent = 0;
  std::vector<std::string> problems = rep->problems;
  bool failed = false;
  auto total = ds.events.size();
  // Batches go straight to the shards that own their users and items (the
  // map comes from the node we talk to): no hop through a control actor.
  std::uint32_t parts = 0;
  std::vector<caf::actor> shards;
  self->request(c.control, actors::admin_timeout, actors::shards_atom::value)
      .receive(
          [&](std::uint32_t p, const std::vector<caf::actor>& hs) {
            parts = p;
            shards = hs;
          },
          [&](caf::error& err) {
            std::cerr << "shardrec load: " << c.sys->render(err) << "\n";
            failed = true;
          });
  if (failed)
    return 1;
  if (parts == 0 || shards.size() != parts
      || std::any_of(shards.begin(), shards.end(),
                     [](const caf::actor& a) { return !a; })) {
    std::cerr
        << "shardrec load: the cluster has unavailable partitions; nothing loaded\n";
    return 1;
  }
  std::vector<caf::response_handle<caf::blocking_actor, caf::message, true>> inflight;
  auto await_one = [&] {
    inflight.front().receive(
        [&](const actors::frame& f) {
          if (auto r = actors::decode_ingest_result(f))
            for (auto& p : r->problems)
              if (problems.size() < 10)
                problems.push_back(p);
        },
        [&](caf::error& err) {
          if (!failed)
            std::cerr << "\nshardrec load: a batch was not stored: " << c.sys->render(err)
                      << "\n";
          failed = true;
        });
    inflight.erase(inflight.begin());
  };
  std::vector<actors::event_batch> per(parts);
  for (std::size_t begin = 0; begin < total && !failed; begin += batch) {
    auto end = std::min(total, begin + batch);
    for (auto& b : per) {
      b.events.clear();
      b.scale = ds.scale;
    }
    for (auto k = begin; k < end; ++k) {
      const auto& e = ds.events[k];
      dist::raw_event r;
      r.user = ds.users.external(e.user);
      r.item = ds.items.external(e.item);
      r.value = e.value;
      r.type = e.type;
      r.timestamp = e.timestamp;
      r.device = ds.devices.external(e.device);
      r.location = ds.locations.external(e.location);
      if (auto v = dist::validate(r); !v) {
        ++rejected;
        if (problems.size() < 10)
          problems.push_back("event " + std::to_string(k) + ": " + v.err().message);
        continue;
      }
      ++accepted;
      auto pu = core::partition_of(r.user, parts);
      auto pi = core::partition_of(r.item, parts);
      if (pi != pu)
        per[pi].events.push_back(r);
      per[pu].events.push_back(std::move(r));
    }
    for (std::uint32_t p = 0; p < parts; ++p) {
      if (per[p].events.empty())
        continue;
      inflight.push_back(self->request(shards[p], actors::ingest_timeout,
                                       actors::ingest_atom::value,
                                       actors::encode(per[p])));
      while (inflight.size() >= window * std::max<std::size_t>(parts, 1))
        await_one();
    }
    sent = end;
    if (!quiet) {
      double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "\rloading %s: %3.0f%% (%zu / %zu events, %.0f events/s)",
                   path.c_str(),
                   100.0 * static_cast<double>(sent) / static_cast<double>(total),
                   static_cast<std::size_t>(sent), total,
                   secs > 0 ? static_cast<double>(sent) / secs : 0.0);
    }
  }
  while (!inflight.empty())
    await_one();
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!quiet)
    std::fprintf(stderr, "\n");
  std::printf("loaded %s: %llu accepted, %llu rejected in %.2f s (%.0f events/s)\n",
              path.c_str(), static_cast<unsigned long long>(accepted),
              static_cast<unsigned long long>(rejected), secs,
              secs > 0 ? static_cast<double>(accepted) / secs : 0.0);
  for (const auto& p : problems)
    std::printf("  %s\n", p.c_str());
  if (!items.empty() && !failed) {
    core::dataset side;
    auto ir = core::load_item_attributes(items, side);
    if (!ir) {
      std::cerr << "shardrec load: " << ir.err().message << "\n";
      return 1;
    }
    std::vector<std::pair<std::string, core::item_info>> all;
    for (std::size_t i = 0; i < side.item_meta.size(); ++i)
      all.emplace_back(side.items.external(static_cast<core::index_t>(i)),
                       side.item_meta[i]);
    std::uint64_t stored = 0;
    for (std::size_t b = 0; b < all.size() && !failed; b += batch) {
      actors::item_batch part;
      part.items.assign(
          all.begin() + static_cast<std::ptrdiff_t>(b),
          all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), b + batch)));
      self->request(c.control, actors::ingest_timeout, actors::items_atom::value,
                    actors::encode(part))
          .receive(
              [&](const actors::frame& f) {
                if (auto r = actors::decode_ingest_result(f))
                  stored += r->accepted;
              },
              [&](caf::error& err) {
                std::cerr << "shardrec load: item attributes not stored: "
                          << c.sys->render(err) << "\n";
                failed = true;
              });
    }
    std::printf("loaded %s: attributes of %llu items\n", items.c_str(),
                static_cast<unsigned long long>(stored));
  }
  return failed ? 1 : 0;
}

int cmd_train(connection& c, const std::vector<std::string>& args, bool json) {
  po::options_description desc("options");
  actors::train_request req;
  desc.add_options()("algo", po::value(&req.algo)->default_value("all"),
                     "all|implicit-als|mf|itemknn|userknn|content|popular")(
      "factors", po::value(&req.factors)->default_value(0),
      "latent factors (0: default)")("iterations",
                                     po::value(&req.iterations)->default_value(0),
                                     "iterations (0: default)")(
      "seed", po::value(&req.seed)->default_value(42), "random seed");
  po::variables_map vm;
  if (int rc =
          parse("train", args, desc, vm, "[--algo A] [--factors N] [--iterations N]");
      rc >= 0)
    return rc;
  auto r =
      ask(c, caf::make_message(actors::train_atom::value, actors::encode(req)),
          std::chrono::duration_cast<std::chrono::milliseconds>(actors::train_timeout),
          [](const actors::frame& f) { return actors::decode_train_reply(f); });
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
    std::cout << j.dump() << "\n";
  } else {
    std::printf(
        "trained %s in %.2f s (%llu messages, %llu payload bytes between shards)\n",
        r->algo.c_str(), r->seconds, static_cast<unsigned long long>(r->messages),
        static_cast<unsigned long long>(r->bytes_sent));
    for (const auto& [name, secs] : r->phases)
      std::printf("  %-8s %.2f s\n", name.c_str(), secs);
  }
  return 0;
}

int cmd_recommend(connection& c, const std::vector<std::string>& args, bool json) {
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
  auto r = ask(c, caf::make_message(actors::recommend_atom::value, actors::encode(req)),
               actors::query_timeout * 2,
               [](const actors::frame& f) { return actors::decode_recommend_reply(f); });
  if (!r)
    return 1;
  if (json) {
    nlohmann::json j;
    j["user"] = r->user;
    j["partial"] = r->partial;
    j["missing_partitions"] = r->missing;
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

int cmd_similar(connection& c, const std::vector<std::string>& args, bool json) {
  po::options_description desc("options");
  actors::similar_request req;
  desc.add_options()("item", po::value(&req.item)->required(), "item id")(
      "n,n", po::value(&req.n)->default_value(10), "how many items");
  po::positional_options_description pos;
  pos.add("item", 1);
  po::variables_map vm;
  if (int rc = parse("similar", args, desc, vm, "ITEM [-n N] [--json]", &pos); rc >= 0)
    return rc;
  auto r = ask(c, caf::make_message(actors::similar_atom::value, actors::encode(req)),
               actors::query_timeout * 2,
               [](const actors::frame& f) { return actors::decode_similar_reply(f); });
  if (!r)
    return 1;
  if (json) {
    nlohmann::json j{{"item", r->item}, {"partial", r->partial}};
    auto& list = j["neighbors"] = nlohmann::json::array();
    for (const auto& [id, sim] : r->neighbors)
      list.push_back({{"item", id}, {"similarity", sim}});
    std::cout << j.dump() << "\n";
    return 0;
  }
  for (const auto& [id, sim] : r->neighbors)
    std::printf("  %-24s similarity %.4f\n", id.c_str(), static_cast<double>(sim));
  return 0;
}

int cmd_eval(connection& c, const std::vector<std::string>& args, bool json) {
  po::options_description desc("options");
  std::string path, format;
  std::size_t k = 10, window = 16;
  desc.add_options()("test", po::value(&path)->required(), "test file (held-out events)")(
      "format", po::value(&format)->default_value("movielens"),
      "movielens|csv|ml1m|events|online-retail")("k", po::value(&k)->default_value(k),
                                                 "cut-off of the ranking metrics")(
      "window", po::value(&window)->default_value(window), "queries in flight");
  po::variables_map vm;
  if (int rc =
          parse("eval", args, desc, vm, "--test FILE [--format F] [--k 10] [--json]");
      rc >= 0)
    return rc;
  auto fmt = core::parse_data_format(format);
  if (!fmt || k == 0 || window == 0) {
    std::cerr << "shardrec eval: bad --format, --k or --window\n";
    return 2;
  }
  core::dataset ds;
  auto rep = core::load_events(path, *fmt, ds, {});
  if (!rep) {
    std::cerr << "shardrec eval: " << rep.err().message << "\n";
    return 1;
  }
  // Cluster shape for the report.
  auto status =
      ask(c, caf::make_message(actors::status_atom::value), actors::admin_timeout,
          [](const actors::frame& f) { return actors::decode_status_reply(f); });
  if (!status)
    return 1;
  std::uint64_t users = 0, items = 0, events = 0;
  for (const auto& p : status->partitions) {
    users += p.users;
    items += p.items;
    events += p.user_events;
  }
  caf::scoped_actor self{*c.sys};
  nlohmann::json j;
  j["algo"] = "hybrid";
  j["k"] = k;
  // Rating error, when the cluster holds a rating model.
  bool ratings =
      std::all_of(ds.events.begin(), ds.events.end(), [](const core::event& e) {
        return e.type == core::event_type::rating;
      });
  if (ratings) {
    core::error_accumulator acc;
    bool ok = true;
    for (std::size_t b = 0; b < ds.events.size() && ok; b += 5000) {
      std::vector<std::string> us, is;
      auto e = std::min(ds.events.size(), b + 5000);
      for (auto r = b; r < e; ++r) {
        us.push_back(ds.users.external(ds.events[r].user));
        is.push_back(ds.items.external(ds.events[r].item));
      }
      self->request(c.control, actors::admin_timeout, actors::predict_atom::value, us, is)
          .receive(
              [&](const std::vector<float>& preds) {
                for (auto r = b; r < e; ++r)
                  acc.add(preds[r - b], ds.events[r].value);
              },
              [&](caf::error& err) {
                std::cerr << "shardrec eval: no rating predictions: "
                          << c.sys->render(err) << "\n";
                ok = false;
              });
    }
    if (ok) {
      auto m = acc.result();
      j["rmse"] = m.rmse;
      j["mae"] = m.mae;
    }
  }
  // Ranking: the top-k of every test user against the user's test items.
  std::vector<std::vector<core::index_t>> relevant(ds.users.size());
  for (const auto& e : ds.events)
    relevant[e.user].push_back(e.item);
  std::vector<core::index_t> eval_users;
  for (core::index_t u = 0; u < relevant.size(); ++u) {
    auto& r = relevant[u];
    std::sort(r.begin(), r.end());
    r.erase(std::unique(r.begin(), r.end()), r.end());
    if (!r.empty())
      eval_users.push_back(u);
  }
  std::vector<std::vector<core::index_t>> ranked(eval_users.size());
  std::size_t partial = 0;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::pair<std::size_t,
                        caf::response_handle<caf::blocking_actor, caf::message, true>>>
      inflight;
  auto await_one = [&] {
    auto q = inflight.front().first;
    inflight.front().second.receive(
        [&](const actors::frame& f) {
          if (auto r = actors::decode_recommend_reply(f)) {
            partial += r->partial ? 1 : 0;
            for (const auto& it : r->items)
              ranked[q].push_back(ds.items.intern(it.item));
          }
        },
        [&](caf::error& err) {
          std::cerr << "shardrec eval: query failed: " << c.sys->render(err) << "\n";
        });
    inflight.erase(inflight.begin());
  };
  for (std::size_t q = 0; q < eval_users.size(); ++q) {
    actors::recommend_request req;
    req.user = ds.users.external(eval_users[q]);
    req.n = static_cast<std::uint32_t>(k);
    inflight.emplace_back(q, self->request(c.control, actors::query_timeout * 2,
                                           actors::recommend_atom::value,
                                           actors::encode(req)));
    if (inflight.size() >= window)
      await_one();
  }
  while (!inflight.empty())
    await_one();
  double query_secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  core::ranking_accumulator racc(k, std::max<std::size_t>(items, ds.items.size()));
  for (std::size_t q = 0; q < eval_users.size(); ++q)
    racc.add(ranked[q], relevant[eval_users[q]]);
  auto m = racc.result();
  j["precision_at_k"] = m.precision;
  j["recall_at_k"] = m.recall;
  j["f1_at_k"] = m.f1;
  j["ndcg_at_k"] = m.ndcg;
  j["map_at_k"] = m.map;
  j["hit_rate_at_k"] = m.hit_rate;
  j["coverage"] = static_cast<double>(racc.result().coverage);
  j["ranking_users"] = m.users;
  j["partial_answers"] = partial;
  j["train_seconds"] = nullptr; // training ran earlier, in `shardrec train`
  j["eval_seconds"] = query_secs;
  j["users"] = users;
  j["items"] = items;
  j["train_interactions"] = events;
  j["test_events"] = ds.events.size();
  if (json) {
    std::cout << j.dump() << "\n";
  } else {
    if (j.contains("rmse"))
      std::printf("RMSE / MAE       %.4f / %.4f\n", j["rmse"].get<double>(),
                  j["mae"].get<double>());
    std::printf("P@%zu / R@%zu       %.4f / %.4f\n", k, k, m.precision, m.recall);
    std::printf(
        "NDCG@%zu / MAP@%zu   %.4f / %.4f  (%zu test users, %zu partial answers)\n", k, k,
        m.ndcg, m.map, m.users, partial);
    std::printf("queries          %.2f s (%.0f per second)\n", query_secs,
                static_cast<double>(eval_users.size()) / std::max(query_secs, 1e-9));
  }
  return 0;
}

// Load generator: top-n hybrid queries for random users with `window`
// queries in flight; prints latency percentiles and throughput.
int cmd_bench(connection& c, const std::vector<std::string>& args, bool json) {
  po::options_description desc("options");
  std::size_t queries = 20000, window = 8, users = 6000, n = 10;
  std::string prefix = "u", route = "owner";
  std::uint64_t seed = 1;
  desc.add_options()("queries", po::value(&queries)->default_value(queries),
                     "queries to send")(
      "window", po::value(&window)->default_value(window),
      "queries in flight")("users", po::value(&users)->default_value(users),
                           "user ids PREFIX0..PREFIX<users-1>")(
      "prefix", po::value(&prefix)->default_value(prefix),
      "user id prefix (gen uses 'u')")("n,n", po::value(&n)->default_value(n),
                                       "recommendations per query")(
      "seed", po::value(&seed)->default_value(seed), "random seed of the user choice")(
      "route", po::value(&route)->default_value(route),
      "owner: send each query to the node owning the user's partition, as a "
      "partition-aware client does (the user's profile is then local); entry: send "
      "every query to the --cluster node");
  po::variables_map vm;
  if (int rc = parse("bench", args, desc, vm, "[--queries N] [--window W] [--users U]");
      rc >= 0)
    return rc;
  if (queries == 0 || window == 0 || users == 0) {
    std::cerr << "shardrec bench: --queries, --window and --users must be >= 1\n";
    return 2;
  }
  if (route != "owner" && route != "entry") {
    std::cerr << "shardrec bench: --route must be owner or entry, got '" << route
              << "'\n";
    return 2;
  }
  // Where each partition's queries go: the entry node, or the owner's node.
  std::uint32_t P = 1;
  std::vector<caf::actor> target_of{c.control};
  if (route == "owner") {
    actors::status_reply status;
    auto node_control = connect_every_node(c, "bench", &status);
    if (!node_control)
      return 1;
    const auto& map = status.map;
    P = map.partitions;
    target_of.assign(P, c.control);
    for (std::uint32_t p = 0; p < P && p < map.owner.size(); ++p)
      if (auto it = node_control->find(map.owner[p]); it != node_control->end())
        target_of[p] = it->second;
  }
  using clk = std::chrono::steady_clock;
  // An event-based generator: each reply is taken as it arrives (whatever
  // the order) and immediately replaced by the next query, so `window`
  // queries stay in flight and each latency ends when its reply arrives.
  struct run_state {
    std::vector<double> latency_ms;
    std::size_t failed = 0, partial = 0, sent = 0, left = 0;
    std::uint64_t x = 0;
    std::promise<void> finished;
  };
  auto st = std::make_shared<run_state>();
  st->latency_ms.reserve(queries);
  st->left = queries;
  st->x = seed;
  auto finished = st->finished.get_future();
  auto t0 = clk::now();
  c.sys->spawn([=](caf::event_based_actor* gen) {
    auto next_user = [st, users, prefix] {
      auto& x = st->x;
      x ^= x << 13; // xorshift64: the same users for the same seed everywhere
      x ^= x >> 7;
      x ^= x << 17;
      return prefix + std::to_string(x % users);
    };
    auto send_one = std::make_shared<std::function<void()>>();
    *send_one = [=] {
      if (st->sent == queries)
        return;
      ++st->sent;
      actors::recommend_request req;
      req.user = next_user();
      req.n = static_cast<std::uint32_t>(n);
      const auto& to = target_of[P == 1 ? 0 : core::partition_of(req.user, P)];
      auto sent = clk::now();
      auto after = [=] {
        if (--st->left == 0) {
          st->finished.set_value();
          gen->quit();
        } else {
          (*send_one)();
        }
      };
      gen->request(to, actors::query_timeout * 2, actors::recommend_atom::value,
                   actors::encode(req))
          .then(
              [=](const actors::frame& f) {
                st->latency_ms.push_back(
                    std::chrono::duration<double, std::milli>(clk::now() - sent).count());
                if (auto r = actors::decode_recommend_reply(f); r && r->partial)
                  ++st->partial;
                after();
              },
              [=](caf::error&) {
                ++st->failed;
                after();
              });
    };
    for (std::size_t w = 0; w < window; ++w)
      (*send_one)();
    // The last reply breaks the cycle of the sender holding itself.
    gen->attach_functor([send_one] { *send_one = nullptr; });
  });
  finished.wait();
  auto& latency_ms = st->latency_ms;
  const auto failed = st->failed;
  const auto partial = st->partial;
  double secs = std::chrono::duration<double>(clk::now() - t0).count();
  std::sort(latency_ms.begin(), latency_ms.end());
  auto pct = [&](double p) {
    if (latency_ms.empty())
      return 0.0;
    auto i =
        static_cast<std::size_t>(p * static_cast<double>(latency_ms.size() - 1) + 0.5);
    return latency_ms[std::min(i, latency_ms.size() - 1)];
  };
  double qps = static_cast<double>(latency_ms.size()) / secs;
  if (json) {
    nlohmann::json j{{"queries", queries}, {"window", window},
                     {"route", route},     {"answered", latency_ms.size()},
                     {"failed", failed},   {"partial", partial},
                     {"seconds", secs},    {"qps", qps},
                     {"p50_ms", pct(0.5)}, {"p99_ms", pct(0.99)},
                     {"max_ms", pct(1.0)}};
    std::cout << j.dump() << "\n";
  } else {
    std::printf(
        "%zu queries, window %zu, route %s: %.0f queries/s, p50 %.3f ms, p99 %.3f ms, "
        "max %.3f ms (%zu failed, %zu partial)\n",
        queries, window, route.c_str(), qps, pct(0.5), pct(0.99), pct(1.0), failed,
        partial);
  }
  return failed ? 1 : 0;
}

} // namespace

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
  static const std::vector<std::string> known{"status",  "nodes", "partitions",
                                              "load",    "train", "recommend",
                                              "similar", "eval",  "bench"};
  if (std::find(known.begin(), known.end(), cmd) == known.end()) {
    std::cerr << "shardrec: unknown cluster command '" << cmd
              << "' (status|nodes|partitions|load|train|recommend|similar|eval|bench)\n";
    return 2;
  }
  auto c = connect(where);
  if (!c)
    return 1;
  if (cmd == "load")
    return cmd_load(*c, rest);
  if (cmd == "train")
    return cmd_train(*c, rest, json);
  if (cmd == "recommend")
    return cmd_recommend(*c, rest, json);
  if (cmd == "similar")
    return cmd_similar(*c, rest, json);
  if (cmd == "bench")
    return cmd_bench(*c, rest, json);
  if (cmd == "eval")
    return cmd_eval(*c, rest, json);
  return cmd_status(*c, cmd, json);
}

} // namespace shardrec::node
