#include "core/generator.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <string>

#include "core/error.hpp"

namespace shardrec::core {

namespace {

// splitmix64: a tiny generator that passes BigCrush; one stream per purpose
// and entity keeps results independent of generation order.
class rng {
public:
  explicit rng(std::uint64_t state) : s_(state) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // [0, 1)
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // [0, n), n > 0; the modulo bias is below 2^-40 for the sizes used here.
  std::uint64_t below(std::uint64_t n) { return next() % n; }
  bool chance(double p) { return uniform() < p; }
  double normal() {
    double u1 = 1.0 - uniform(); // (0, 1]
    double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

private:
  std::uint64_t s_;
};

enum stream_tag : std::uint64_t {
  tag_categories = 1,
  tag_items = 2,
  tag_users = 3,
  tag_events = 4,
  tag_popularity = 5,
};

rng stream(std::uint64_t seed, std::uint64_t tag, std::uint64_t index) {
  rng mix(seed ^ (tag * 0xd1b54a32d192ed03ull));
  std::uint64_t a = mix.next();
  rng mix2(a ^ (index * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull));
  return rng(mix2.next());
}

struct category_def {
  const char* name;
  std::array<const char*, 4> words;
};

constexpr std::array<category_def, 24> category_table{{
    {"books", {"novel", "paperback", "author", "chapter"}},
    {"music", {"album", "vinyl", "guitar", "melody"}},
    {"movies", {"film", "director", "bluray", "cinema"}},
    {"games", {"console", "puzzle", "arcade", "player"}},
    {"toys", {"plush", "blocks", "doll", "playset"}},
    {"garden", {"plant", "seeds", "soil", "hose"}},
    {"kitchen", {"pan", "knife", "blender", "spice"}},
    {"sports", {"ball", "racket", "training", "jersey"}},
    {"outdoors", {"tent", "hiking", "camping", "lantern"}},
    {"beauty", {"lipstick", "serum", "makeup", "fragrance"}},
    {"health", {"vitamin", "fitness", "supplement", "massage"}},
    {"fashion", {"dress", "jacket", "cotton", "denim"}},
    {"shoes", {"sneaker", "boot", "leather", "sandal"}},
    {"jewelry", {"ring", "necklace", "silver", "bracelet"}},
    {"electronics", {"speaker", "cable", "battery", "charger"}},
    {"computers", {"laptop", "keyboard", "monitor", "mouse"}},
    {"phones", {"smartphone", "case", "screen", "headset"}},
    {"cameras", {"lens", "tripod", "photo", "zoom"}},
    {"office", {"paper", "pen", "stapler", "notebook"}},
    {"pets", {"dog", "cat", "leash", "treats"}},
    {"baby", {"diaper", "stroller", "bottle", "blanket"}},
    {"automotive", {"tyre", "engine", "wiper", "motor"}},
    {"tools", {"drill", "hammer", "wrench", "saw"}},
    {"grocery", {"coffee", "tea", "snack", "organic"}},
}};

constexpr std::array<const char*, 10> generic_words{
    "new", "classic", "premium", "deluxe",   "compact",
    "set", "pack",    "edition", "original", "mini"};

constexpr std::array<const char*, 3> device_names{"mobile", "desktop", "tablet"};
constexpr std::array<double, 3> device_share{0.55, 0.35, 0.10};
constexpr std::array<const char*, 5> region_names{"north", "south", "east", "west",
                                                  "central"};
constexpr std::array<const char*, 5> age_bands{"18-24", "25-34", "35-44", "45-54", "55+"};
constexpr std::size_t brands_per_category = 3;

// Relative activity by hour of day (UTC): quiet nights, evening peak.
constexpr std::array<double, 24> hour_weight{1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5,
                                             2.0, 2.2, 2.3, 2.4, 2.6, 2.4, 2.3, 2.3,
                                             2.5, 2.8, 3.2, 3.6, 3.8, 3.4, 2.6, 1.7};
constexpr std::int64_t start_time = 1704067200; // 2024-01-01T00:00:00Z
constexpr int days = 90;
constexpr double affinity_strength = 4.0;
constexpr double zipf_exponent = 0.6;

void normalize(float* v, std::size_t k) {
  double n = 0;
  for (std::size_t d = 0; d < k; ++d)
    n += static_cast<double>(v[d]) * v[d];
  n = std::sqrt(n);
  if (n == 0)
    return;
  for (std::size_t d = 0; d < k; ++d)
    v[d] = static_cast<float>(v[d] / n);
}

std::string brand_name(std::size_t category, std::size_t b) {
  static constexpr std::array<const char*, 12> syllables{
      "ka", "lo", "mi", "ren", "to", "sa", "vex", "dor", "pi", "lun", "zo", "ar"};
  std::size_t x = category * brands_per_category + b;
  std::string s = syllables[x % 12];
  s += syllables[(x / 12 + 5 * x + 3) % 12];
  s += syllables[(x * 7 + 1) % 12];
  s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

// Splits `total` in proportion to `weight` (largest remainder), so the counts
// sum to exactly `total` without a random draw.
std::vector<std::size_t> apportion(std::size_t total, const std::vector<double>& weight) {
  double sum = std::accumulate(weight.begin(), weight.end(), 0.0);
  std::vector<std::size_t> count(weight.size());
  std::vector<std::pair<double, std::size_t>> rest(weight.size());
  std::size_t given = 0;
  for (std::size_t k = 0; k < weight.size(); ++k) {
    double exact = static_cast<double>(total) * weight[k] / sum;
    count[k] = static_cast<std::size_t>(std::floor(exact));
    given += count[k];
    rest[k] = {exact - std::floor(exact), k};
  }
  std::sort(rest.begin(), rest.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (std::size_t k = 0; given < total; ++k, ++given)
    ++count[rest[k % rest.size()].second];
  return count;
}

float dot(const float* a, const float* b, std::size_t k) {
  float s = 0;
  for (std::size_t d = 0; d < k; ++d)
    s += a[d] * b[d];
  return s;
}

} // namespace

float generator_truth::affinity(index_t u, index_t i) const {
  return dot(user_factors.data() + static_cast<std::size_t>(u) * factors,
             item_factors.data() + static_cast<std::size_t>(i) * factors, factors);
}

dataset generate(const generator_config& cfg, generator_truth* truth_out) {
  SHARDREC_ASSERT(cfg.factors > 0);
  SHARDREC_ASSERT(cfg.events == 0 || (cfg.users > 0 && cfg.items > 0));
  SHARDREC_ASSERT(cfg.events < (std::size_t{1} << 32)
                  && cfg.users < (std::size_t{1} << 32)
                  && cfg.items < (std::size_t{1} << 32));
  const std::size_t k = cfg.factors, n_users = cfg.users, n_items = cfg.items;
  const std::size_t n_cat =
      std::max<std::size_t>(1, std::min(n_items, std::clamp<std::size_t>(2 * k, 2, 24)));

  generator_truth t;
  t.factors = k;

  // Categories: unit centroids.
  std::vector<float> centroid(n_cat * k);
  {
    rng r = stream(cfg.seed, tag_categories, 0);
    for (std::size_t c = 0; c < n_cat; ++c) {
      for (std::size_t d = 0; d < k; ++d)
        centroid[c * k + d] = static_cast<float>(r.normal());
      normalize(&centroid[c * k], k);
      t.category_names.emplace_back(category_table[c].name);
    }
  }

  // Items: category, hidden vector, brand, popularity.
  t.item_factors.resize(n_items * k);
  t.item_category.resize(n_items);
  t.item_popularity.resize(n_items);
  std::vector<std::uint32_t> item_brand(n_items);
  const double item_noise = 0.6 / std::sqrt(static_cast<double>(k));
  for (std::size_t i = 0; i < n_items; ++i) {
    rng r = stream(cfg.seed, tag_items, i);
    // Every category gets items even when items are few.
    auto c = static_cast<std::uint32_t>(i < n_cat ? i : r.below(n_cat));
    t.item_category[i] = c;
    float* v = &t.item_factors[i * k];
    for (std::size_t d = 0; d < k; ++d)
      v[d] = static_cast<float>(centroid[c * k + d] + item_noise * r.normal());
    normalize(v, k);
    item_brand[i] = static_cast<std::uint32_t>(r.below(brands_per_category));
  }
  {
    std::vector<std::size_t> rank(n_items);
    std::iota(rank.begin(), rank.end(), std::size_t{0});
    rng r = stream(cfg.seed, tag_popularity, 0);
    for (std::size_t i = n_items; i > 1; --i) // Fisher-Yates
      std::swap(rank[i - 1], rank[r.below(i)]);
    for (std::size_t i = 0; i < n_items; ++i)
      t.item_popularity[i] =
          static_cast<float>(std::pow(static_cast<double>(rank[i] + 1), -zipf_exponent));
  }

  // Users: age band, region, favourite categories, hidden vector, activity,
  // device, rating bias.
  t.user_factors.resize(n_users * k);
  std::vector<double> activity(n_users);
  std::vector<std::uint8_t> user_device(n_users), user_region(n_users),
      user_band(n_users);
  std::vector<float> user_bias(n_users);
  const double user_noise = 0.5 / std::sqrt(static_cast<double>(k));
  for (std::size_t u = 0; u < n_users; ++u) {
    rng r = stream(cfg.seed, tag_users, u);
    auto band = static_cast<std::uint8_t>(r.below(age_bands.size()));
    user_band[u] = band;
    user_region[u] = static_cast<std::uint8_t>(r.below(region_names.size()));
    double x = r.uniform();
    std::uint8_t dev = 0;
    while (dev + 1u < device_share.size() && x >= device_share[dev]) {
      x -= device_share[dev];
      ++dev;
    }
    user_device[u] = dev;
    std::size_t fav = r.chance(0.5) ? (band * 5 + r.below(5)) % n_cat : r.below(n_cat);
    float* v = &t.user_factors[u * k];
    for (std::size_t d = 0; d < k; ++d)
      v[d] = centroid[fav * k + d];
    if (r.chance(0.5)) {
      std::size_t second = r.below(n_cat);
      for (std::size_t d = 0; d < k; ++d)
        v[d] += 0.5f * centroid[second * k + d];
    }
    for (std::size_t d = 0; d < k; ++d)
      v[d] = static_cast<float>(v[d] + user_noise * r.normal());
    normalize(v, k);
    activity[u] = std::exp(0.9 * r.normal());
    user_bias[u] = static_cast<float>(0.4 * r.normal());
  }

  dataset ds;
  for (std::size_t u = 0; u < n_users; ++u)
    ds.users.intern("u" + std::to_string(u));
  for (std::size_t i = 0; i < n_items; ++i)
    ds.items.intern("i" + std::to_string(i));
  for (auto d : device_names)
    ds.devices.intern(d);
  for (auto reg : region_names)
    ds.locations.intern(reg);
  ds.scale = rating_scale{1.0f, 5.0f};

  // Side information.
  ds.item_meta.resize(n_items);
  std::vector<float> item_bias(n_items);
  for (std::size_t i = 0; i < n_items; ++i) {
    rng r = stream(cfg.seed, tag_items, i + n_items); // separate from the item's vector
    const auto c = t.item_category[i];
    const auto& def = category_table[c];
    auto& info = ds.item_meta[i];
    std::string brand = brand_name(c, item_brand[i]);
    info.genres = {def.name};
    info.tags = {brand};
    info.title = brand + " " + def.words[r.below(4)] + " " + std::to_string(i);
    for (int w = 0; w < 3; ++w) {
      if (!info.text.empty())
        info.text += ' ';
      info.text += def.words[r.below(4)];
    }
    for (int w = 0; w < 2; ++w) {
      info.text += ' ';
      info.text += generic_words[r.below(generic_words.size())];
    }
    item_bias[i] = static_cast<float>(0.3 * r.normal());
  }
  ds.user_meta.resize(n_users);
  for (std::size_t u = 0; u < n_users; ++u)
    ds.user_meta[u].attributes = {{"age", age_bands[user_band[u]]},
                                  {"region", region_names[user_region[u]]}};

  // Events, user by user: each user's slice is filled from its own stream.
  std::vector<double> hour_cum(hour_weight.size());
  std::partial_sum(hour_weight.begin(), hour_weight.end(), hour_cum.begin());
  std::vector<float> log_pop(n_items);
  for (std::size_t i = 0; i < n_items; ++i)
    log_pop[i] = std::log(t.item_popularity[i]);
  const std::vector<std::size_t> per_user = cfg.events > 0
                                                ? apportion(cfg.events, activity)
                                                : std::vector<std::size_t>(n_users, 0);
  ds.events.resize(cfg.events);
  std::vector<double> cum(n_items);
  std::vector<float> aff(n_items);
  // Factor-major copy (factors x items) so the affinity of one user with all
  // items is a vectorisable sum of scaled rows.
  std::vector<float> item_t(k * n_items);
  for (std::size_t i = 0; i < n_items; ++i)
    for (std::size_t d = 0; d < k; ++d)
      item_t[d * n_items + i] = t.item_factors[i * k + d];
  std::size_t pos = 0;
  for (std::size_t u = 0; u < n_users; ++u) {
    const std::size_t n_ev = per_user[u];
    if (n_ev == 0)
      continue;
    rng r = stream(cfg.seed, tag_events, u);
    const float* uv = &t.user_factors[u * k];
    std::fill(aff.begin(), aff.end(), 0.0f);
    for (std::size_t d = 0; d < k; ++d) {
      const float w = uv[d];
      const float* row = &item_t[d * n_items];
      for (std::size_t i = 0; i < n_items; ++i)
        aff[i] += w * row[i];
    }
    double total = 0;
    for (std::size_t i = 0; i < n_items; ++i) {
      total += std::exp(static_cast<float>(affinity_strength) * aff[i] + log_pop[i]);
      cum[i] = total;
    }
    for (std::size_t e = 0; e < n_ev; ++e) {
      event& ev = ds.events[pos++];
      ev.user = static_cast<index_t>(u);
      auto it = std::upper_bound(cum.begin(), cum.end(), r.uniform() * total);
      const auto i = static_cast<std::size_t>(std::min<std::ptrdiff_t>(
          it - cum.begin(), static_cast<std::ptrdiff_t>(n_items) - 1));
      ev.item = static_cast<index_t>(i);
      const double a = aff[i];
      if (cfg.explicit_ratings) {
        double score =
            3.4 + 2.0 * (a - 0.5) + user_bias[u] + item_bias[i] + 0.6 * r.normal();
        ev.type = event_type::rating;
        ev.value = static_cast<float>(std::clamp(std::round(score), 1.0, 5.0));
      } else {
        // Funnel: each further step is taken with a probability rising with
        // affinity.
        const double step = 0.15 + 0.45 / (1.0 + std::exp(-4.0 * (a - 0.5)));
        int depth = 0;
        while (depth < 3 && r.chance(step))
          ++depth;
        ev.type = static_cast<event_type>(depth);
        ev.value = 1.0f;
        if (ev.type == event_type::purchase)
          ev.value = static_cast<float>(1 + r.chance(0.3) + r.chance(0.1));
      }
      ev.device = static_cast<std::uint16_t>(
          1 + (r.chance(0.8) ? user_device[u] : r.below(device_names.size())));
      ev.location = static_cast<std::uint16_t>(
          1 + (r.chance(0.95) ? user_region[u] : r.below(region_names.size())));
      const auto day = static_cast<std::int64_t>(r.below(days));
      const double h = r.uniform() * hour_cum.back();
      const auto hour = static_cast<std::int64_t>(
          std::upper_bound(hour_cum.begin(), hour_cum.end(), h) - hour_cum.begin());
      ev.timestamp = start_time + day * 86400 + std::min<std::int64_t>(hour, 23) * 3600
                     + static_cast<std::int64_t>(r.below(3600));
    }
  }
  SHARDREC_ASSERT(pos == cfg.events);
  // Time order; ties keep generation order. Sorting (time, position) keys is
  // much faster than a stable sort of the 24-byte events.
  {
    std::vector<std::uint64_t> key(cfg.events);
    for (std::size_t e = 0; e < cfg.events; ++e)
      key[e] = static_cast<std::uint64_t>(ds.events[e].timestamp - start_time) << 32 | e;
    std::sort(key.begin(), key.end());
    std::vector<event> sorted(cfg.events);
    for (std::size_t e = 0; e < cfg.events; ++e)
      sorted[e] = ds.events[key[e] & 0xffffffffu];
    ds.events = std::move(sorted);
  }

  if (truth_out != nullptr)
    *truth_out = std::move(t);
  return ds;
}

} // namespace shardrec::core
