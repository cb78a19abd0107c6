// A synthetic e-commerce data set with a hidden latent-factor structure that
// recommenders can learn: the project's benchmark data (1,000,000 events for
// 6,000 users x 4,000 items) and a source of test data of any size.
//
// The hidden model:
// - Items fall into categories (genres). Each category has a unit centroid in
//   R^factors; an item's hidden vector is its centroid plus noise, normalised.
//   Item popularity is Zipf-like (weight (rank+1)^-0.6, ranks shuffled).
// - Each user has an age band and a region; a favourite category (half the
//   time tied to the age band) and sometimes a second one. The user's hidden
//   vector is the favourites' centroids plus noise, normalised.
// - affinity(u, i) = <user vector, item vector>, in [-1, 1]. A user's events
//   pick items with probability proportional to
//   popularity(i) * exp(4 * affinity(u, i)).
// - Event types follow a funnel view -> click -> cart -> purchase whose
//   step probabilities rise with affinity; purchases have quantity 1..3 as
//   value, other implicit events value 1. With explicit_ratings every event
//   is an event_type::rating with an integer value 1..5 from affinity plus
//   user bias, item bias and noise (dataset::scale = 1..5).
// - User activity is log-normal. Timestamps: 90 days from 2024-01-01 UTC
//   with an hour-of-day pattern (quiet nights, evening peak); events are
//   returned sorted by timestamp (ties in generation order). Each user has a
//   main device (mobile 55%, desktop 35%, tablet 10% of users) picked for 80%
//   of their events, a random device otherwise; 95% of events carry the
//   user's region as location.
// - Item attributes: genres = {category}, tags = {brand} (brands belong to
//   one category), title "<brand> <word> <n>", text = a few words from the
//   category's vocabulary plus generic words, so content-based filtering has
//   signal. User attributes: ("age", band), ("region", region).
//
// Ids: user index u is "u<u>", item index i is "i<i>" (both 0-based), so
// users.size() == cfg.users and items.size() == cfg.items even for users or
// items without events.
//
// Deterministic: the same config gives the same dataset on every run, with
// or without threads elsewhere. No std:: distributions are used (their
// output differs between standard libraries); each entity draws from its own
// splitmix64 stream derived from (seed, purpose, index). The remaining
// platform dependence is libm's exp/log/cos, which may differ in the last
// bit between C libraries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dataset.hpp"

namespace shardrec::core {

struct generator_config {
  std::size_t users = 1000;
  std::size_t items = 500;
  std::size_t events = 50000; // exactly this many events are generated
  std::uint64_t seed = 42;
  std::size_t factors = 8;       // latent dimension of the hidden taste structure
  bool explicit_ratings = false; // true: every event is a 1..5 rating
};

// The hidden structure behind a generated data set, for tests that check a
// model recovers it.
struct generator_truth {
  std::size_t factors = 0;
  std::vector<float> user_factors;          // users x factors, row-major, unit rows
  std::vector<float> item_factors;          // items x factors, row-major, unit rows
  std::vector<std::uint32_t> item_category; // per item, index into category_names
  std::vector<std::string> category_names;
  std::vector<float> item_popularity; // per item, relative weight in (0, 1]

  // <user vector, item vector>
  float affinity(index_t u, index_t i) const;
};

// REQUIRES: cfg.factors > 0; cfg.users > 0 and cfg.items > 0 unless
// cfg.events == 0; cfg.users, cfg.items, cfg.events < 2^32.
// If `truth` is not null it receives the hidden structure.
dataset generate(const generator_config& cfg, generator_truth* truth = nullptr);

} // namespace shardrec::core
