// Event -> visible: how long after an event is acknowledged a recommendation
// reflects it. One client streams background events at --rate events/s
// (batches of 50, random known users and items; 0: none); another picks a user,
// sends one event on that user's current top item, and from the
// acknowledgement on asks for the user's recommendations until that item is
// gone (seen at once, and the fold-in moved the user's factors). Prints the
// latency percentiles over --probes probes, plus the background rate kept.
//
//   build/shardrec_visibility --cluster HOST:PORT [--rate 5000] [--probes 500]
//                             [--users 943]
// The cluster must hold a trained model over users named 1..--users (e.g.
// ML-100K u1.base).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/connection.hpp"
#include "client/loader.hpp"

using namespace shardrec;
using clock_type = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string where;
  double rate = 5000;
  int probes = 500, users = 943;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--cluster")
      where = argv[i + 1];
    else if (a == "--rate")
      rate = std::stod(argv[i + 1]);
    else if (a == "--probes")
      probes = std::stoi(argv[i + 1]);
    else if (a == "--users")
      users = std::stoi(argv[i + 1]);
  }
  const auto colon = where.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "usage: shardrec_visibility --cluster HOST:PORT [--rate R] "
                         "[--probes N] [--users U]\n");
    return 2;
  }
  const auto host = where.substr(0, colon);
  const auto port = static_cast<std::uint16_t>(std::stoi(where.substr(colon + 1)));
  auto bg = client::connect(host, port);
  auto fg = client::connect(host, port);
  if (!bg || !fg) {
    std::fprintf(stderr, "cannot connect to %s\n", where.c_str());
    return 1;
  }
  std::atomic<bool> stop{false};
  std::atomic<long> streamed{0}, failed{0};
  std::thread streamer([&] {
    std::mt19937 rng(7);
    const auto t0 = clock_type::now();
    while (!stop && rate > 0) {
      std::vector<dist::raw_event> batch(50);
      for (auto& e : batch) {
        e.user = std::to_string(1 + rng() % static_cast<unsigned>(users));
        e.item = std::to_string(1 + rng() % 1682);
        e.value = 3;
      }
      if (client::send_events(*bg, std::move(batch), core::rating_scale{1.0f, 5.0f}))
        streamed += 50;
      else
        ++failed;
      // Hold the rate: sleep until the time the next batch is due.
      const auto due = std::chrono::time_point_cast<clock_type::duration>(
          t0 + std::chrono::duration<double>(static_cast<double>(streamed) / rate));
      while (!stop && clock_type::now() < due)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::vector<double> ms;
  std::mt19937 rng(11);
  const auto start = clock_type::now();
  for (int p = 0; p < probes; ++p) {
    actors::recommend_request req;
    req.user = std::to_string(1 + rng() % static_cast<unsigned>(users));
    req.n = 10;
    auto before = client::recommend(*fg, req);
    if (!before || before->items.empty())
      continue;
    dist::raw_event e;
    e.user = req.user;
    e.item = before->items.front().item;
    e.value = 5;
    e.type = core::event_type::purchase;
    if (!client::send_events(*fg, {e}, core::rating_scale{1.0f, 5.0f}))
      continue;
    const auto acked = clock_type::now();
    for (int tries = 0; tries < 1000; ++tries) {
      auto after = client::recommend(*fg, req);
      if (after
          && std::none_of(after->items.begin(), after->items.end(),
                          [&](const auto& r) { return r.item == e.item; })) {
        ms.push_back(
            std::chrono::duration<double, std::milli>(clock_type::now() - acked).count());
        break;
      }
    }
  }
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  stop = true;
  streamer.join();
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double q) {
    return ms.empty()
               ? 0.0
               : ms[std::min(ms.size() - 1, static_cast<std::size_t>(q * ms.size()))];
  };
  std::printf("event -> visible over %zu probes: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, "
              "max %.2f ms; background %.0f events/s acknowledged (%ld failed batches)\n",
              ms.size(), pct(0.5), pct(0.9), pct(0.99), ms.empty() ? 0.0 : ms.back(),
              static_cast<double>(streamed) / secs, failed.load());
  return ms.size() == static_cast<std::size_t>(probes) ? 0 : 1;
}
