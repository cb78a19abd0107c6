#include "core/ials.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include <Eigen/Cholesky>

#include "core/parallel.hpp"

namespace shardrec::core {

namespace {

std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and its output is fixed by
// its definition, unlike std::normal_distribution's.
struct splitmix64 {
  std::uint64_t state;
  std::uint64_t next() { return mix64(state += 0x9e3779b97f4a7c15ULL); }
  // Uniform on (0, 1].
  double uniform() { return static_cast<double>((next() >> 11) + 1) * 0x1.0p-53; }
};

// r of a stored cell: 1 when binary, else its value; cells with r <= 0 carry
// no preference and contribute like unobserved cells.
inline float cell_r(bool binary, float value) {
  return binary ? 1.0f : value;
}

error bad_config(const char* field, const std::string& why) {
  return make_error(errc::invalid_argument,
                    std::string("ials_config.") + field + ": " + why);
}

// N(0, stddev^2) values for one row: Box-Muller, two normals per pair of
// uniforms.
void fill_normal_row(splitmix64& g, float stddev, Eigen::Ref<ials_matrix> out,
                     Eigen::Index r) {
  for (Eigen::Index c = 0; c < out.cols(); c += 2) {
    double rad = std::sqrt(-2.0 * std::log(g.uniform()));
    double ang = 6.283185307179586 * g.uniform();
    out(r, c) = static_cast<float>(stddev * rad * std::cos(ang));
    if (c + 1 < out.cols())
      out(r, c + 1) = static_cast<float>(stddev * rad * std::sin(ang));
  }
}

void solve_side(const interaction_matrix& train, bool users, const ials_matrix& other,
                const ials_config& cfg, ials_matrix& self) {
  Eigen::MatrixXf gram = ials_gram(other, cfg.threads);
  std::size_t n = users ? train.n_users() : train.n_items();
  parallel_for(
      n, cfg.threads,
      [&](std::size_t b, std::size_t e) {
        ials_row_solver solver(gram, other, cfg);
        for (std::size_t r = b; r < e; ++r) {
          auto idx = static_cast<index_t>(r);
          solver.solve(users ? train.user_row(idx) : train.item_col(idx),
                       self.row(r).data());
        }
      },
      32);
}

} // namespace

status validate(const ials_config& cfg) {
  if (cfg.factors < 1)
    return bad_config("factors", "must be >= 1");
  if (cfg.iterations < 0)
    return bad_config("iterations", "must be >= 0");
  if (!(cfg.reg > 0) || !std::isfinite(cfg.reg))
    return bad_config("reg", "must be finite and > 0");
  if (!(cfg.alpha > 0) || !std::isfinite(cfg.alpha))
    return bad_config("alpha", "must be finite and > 0");
  if (!(cfg.reg_exponent >= 0 && cfg.reg_exponent <= 1))
    return bad_config("reg_exponent", "must lie in [0, 1]");
  if (!cfg.exact_solve && cfg.cg_steps < 1)
    return bad_config("cg_steps", "must be >= 1 unless exact_solve");
  if (cfg.init_std == 0 || !std::isfinite(cfg.init_std))
    return bad_config("init_std", "must be > 0 (or < 0 for 0.1/sqrt(factors))");
  return {};
}

// ---- model ----

ials_model::ials_model(ials_matrix user, ials_matrix item, std::vector<float> popularity)
    : user_(std::move(user)), item_(std::move(item)), popularity_(std::move(popularity)) {
  SHARDREC_ASSERT(user_.cols() == item_.cols());
  SHARDREC_ASSERT(popularity_.size() == static_cast<std::size_t>(item_.rows()));
}

void ials_model::score_items(index_t user, Eigen::Ref<Eigen::VectorXf> out) const {
  SHARDREC_ASSERT(static_cast<std::size_t>(out.size()) == n_items());
  if (user >= n_users() || user_.row(user).isZero(0.0f)) {
    out = Eigen::Map<const Eigen::VectorXf>(popularity_.data(), item_.rows());
    return;
  }
  out.noalias() = item_ * user_.row(user).transpose();
}

// ---- building blocks ----

void ials_init_rows(std::uint64_t seed, int side, std::size_t first, float stddev,
                    Eigen::Ref<ials_matrix> out) {
  for (Eigen::Index r = 0; r < out.rows(); ++r) {
    auto row = static_cast<std::uint64_t>(first) + static_cast<std::uint64_t>(r);
    splitmix64 g{mix64(seed ^ mix64((static_cast<std::uint64_t>(side) << 56) ^ row))};
    fill_normal_row(g, stddev, out, r);
  }
}

void ials_init_keyed_rows(std::uint64_t seed, int side, const std::uint64_t* keys,
                          float stddev, Eigen::Ref<ials_matrix> out) {
  // A key spans all 64 bits, so the side enters through a separate mixing
  // round rather than the top byte used for indices.
  const std::uint64_t side_salt =
      mix64(0x6b657965645f7273ULL + static_cast<std::uint64_t>(side));
  for (Eigen::Index r = 0; r < out.rows(); ++r) {
    splitmix64 g{mix64(seed ^ mix64(side_salt ^ mix64(keys[r])))};
    fill_normal_row(g, stddev, out, r);
  }
}

std::vector<index_t> key_order(const std::uint64_t* keys, std::size_t n) {
  std::vector<index_t> order(n);
  for (std::size_t r = 0; r < n; ++r)
    order[r] = static_cast<index_t>(r);
  std::sort(order.begin(), order.end(), [keys](index_t a, index_t b) {
    return keys[a] != keys[b] ? keys[a] < keys[b] : a < b;
  });
  return order;
}

key_renumbering make_key_renumbering(std::size_t n_users, std::size_t n_items,
                                     const std::vector<std::uint64_t>* user_keys,
                                     const std::vector<std::uint64_t>* item_keys) {
  SHARDREC_ASSERT(!user_keys || user_keys->size() == n_users);
  SHARDREC_ASSERT(!item_keys || item_keys->size() == n_items);
  auto side = [](std::size_t n, const std::vector<std::uint64_t>* keys,
                 std::vector<index_t>& order, std::vector<std::uint64_t>& sorted_keys) {
    if (!keys) {
      order.resize(n);
      for (std::size_t r = 0; r < n; ++r)
        order[r] = static_cast<index_t>(r);
      return;
    }
    order = key_order(keys->data(), n);
    sorted_keys.reserve(n);
    for (index_t r : order)
      sorted_keys.push_back((*keys)[r]);
  };
  key_renumbering k;
  side(n_users, user_keys, k.user_order, k.user_keys);
  side(n_items, item_keys, k.item_order, k.item_keys);
  return k;
}

interaction_matrix renumbered(const interaction_matrix& m,
                              const std::vector<index_t>& user_order,
                              const std::vector<index_t>& item_order) {
  SHARDREC_ASSERT(user_order.size() == m.n_users() && item_order.size() == m.n_items());
  std::vector<index_t> new_item(m.n_items());
  for (std::size_t i = 0; i < item_order.size(); ++i)
    new_item[item_order[i]] = static_cast<index_t>(i);
  std::vector<event> ev;
  ev.reserve(m.nnz());
  for (std::size_t u = 0; u < user_order.size(); ++u) {
    auto row = m.user_row(user_order[u]);
    for (std::size_t j = 0; j < row.size; ++j) {
      event e;
      e.user = static_cast<index_t>(u);
      e.item = new_item[row.index[j]];
      e.value = row.value[j];
      ev.push_back(e);
    }
  }
  // Cells are unique, so the policy never applies.
  return interaction_matrix::build(m.n_users(), m.n_items(), ev, merge_policy::last);
}

float ials_init_std(const ials_config& cfg) {
  return cfg.init_std < 0 ? 0.1f / std::sqrt(static_cast<float>(cfg.factors))
                          : cfg.init_std;
}

float ials_regularization(interaction_matrix::span row, std::size_t n_other,
                          const ials_config& cfg) {
  double total = static_cast<double>(n_other);
  for (std::size_t j = 0; j < row.size; ++j) {
    float r = cell_r(cfg.binary, row.value[j]);
    if (r > 0)
      total += static_cast<double>(cfg.alpha) * r;
  }
  return static_cast<float>(cfg.reg
                            * std::pow(total, static_cast<double>(cfg.reg_exponent)));
}

Eigen::MatrixXd ials_gram_partial(Eigen::Ref<const ials_matrix> rows) {
  Eigen::MatrixXd d = rows.cast<double>();
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(d.cols(), d.cols());
  g.selfadjointView<Eigen::Lower>().rankUpdate(d.transpose());
  g.triangularView<Eigen::StrictlyUpper>() = g.transpose();
  return g;
}

Eigen::MatrixXf ials_gram(const ials_matrix& f, unsigned threads) {
  auto n = static_cast<std::size_t>(f.rows());
  std::size_t blocks = (n + ials_gram_block - 1) / ials_gram_block;
  std::vector<Eigen::MatrixXd> partial(blocks);
  parallel_for(
      blocks, threads,
      [&](std::size_t b, std::size_t e) {
        for (std::size_t k = b; k < e; ++k) {
          auto first = static_cast<Eigen::Index>(k * ials_gram_block);
          auto count = static_cast<Eigen::Index>(
              std::min(ials_gram_block, n - k * ials_gram_block));
          partial[k] = ials_gram_partial(f.middleRows(first, count));
        }
      },
      1);
  Eigen::MatrixXd sum = Eigen::MatrixXd::Zero(f.cols(), f.cols());
  for (const auto& p : partial)
    sum += p;
  return sum.cast<float>();
}

ials_row_solver::ials_row_solver(const Eigen::MatrixXf& gram, const ials_matrix& other,
                                 const ials_config& cfg)
    : ials_row_solver(gram, other, cfg, static_cast<std::size_t>(other.rows())) {}

ials_row_solver::ials_row_solver(const Eigen::MatrixXf& gram, const ials_matrix& other,
                                 const ials_config& cfg, std::size_t n_other)
    : gram_(gram), other_(other), n_other_(n_other), alpha_(cfg.alpha), reg_(cfg.reg),
      nu_(cfg.reg_exponent), cg_steps_(cfg.cg_steps), exact_(cfg.exact_solve),
      binary_(cfg.binary) {
  SHARDREC_ASSERT(gram_.rows() == other_.cols() && gram_.cols() == other_.cols());
  auto k = other_.cols();
  x_.resize(k);
  r_.resize(k);
  p_.resize(k);
  ap_.resize(k);
  b_.resize(k);
  if (exact_)
    a_.resize(k, k);
}

float ials_row_solver::regularization(interaction_matrix::span row) const {
  double total = static_cast<double>(n_other_);
  for (std::size_t j = 0; j < row.size; ++j) {
    float r = cell_r(binary_, row.value[j]);
    if (r > 0)
      total += static_cast<double>(alpha_) * r;
  }
  return static_cast<float>(reg_ * std::pow(total, static_cast<double>(nu_)));
}

void ials_row_solver::solve(interaction_matrix::span row, float* xp) {
  const auto k = other_.cols();
  Eigen::Map<Eigen::VectorXf> x(xp, k);
  bool any = false;
  for (std::size_t j = 0; j < row.size && !any; ++j)
    any = cell_r(binary_, row.value[j]) > 0;
  if (!any) {
    x.setZero();
    return;
  }
  const float lambda = regularization(row);
  auto y_of = [&](std::size_t j) {
    SHARDREC_ASSERT(row.index[j] < other_.rows());
    return Eigen::Map<const Eigen::VectorXf>(other_.data() + row.index[j] * k, k);
  };

  if (exact_) {
    a_ = gram_;
    a_.diagonal().array() += lambda;
    b_.setZero();
    for (std::size_t j = 0; j < row.size; ++j) {
      float r = cell_r(binary_, row.value[j]);
      if (r <= 0)
        continue;
      auto y = y_of(j);
      a_.selfadjointView<Eigen::Lower>().rankUpdate(y, alpha_ * r);
      b_ += (1 + alpha_ * r) * y;
    }
    Eigen::LLT<Eigen::Ref<Eigen::MatrixXf>, Eigen::Lower> llt(a_);
    SHARDREC_ASSERT(llt.info() == Eigen::Success);
    x = llt.solve(b_);
    return;
  }

  switch (k) {
    case 32: solve_cg<32>(row, lambda, xp); break;
    case 64: solve_cg<64>(row, lambda, xp); break;
    case 128: solve_cg<128>(row, lambda, xp); break;
    default: solve_cg<Eigen::Dynamic>(row, lambda, xp); break;
  }
}

template <int K>
void ials_row_solver::solve_cg(interaction_matrix::span row, float lambda, float* xp) {
  using vec = Eigen::Matrix<float, K, 1>;
  using cmap = Eigen::Map<const vec>;
  const Eigen::Index k = other_.cols();
  // x is worked on in an aligned copy: Eigen's dynamic-size kernels peel
  // loops by address, so working in place would make the rounding depend on
  // where the caller's row happens to sit (a shard's local matrix).
  Eigen::Map<vec> x(x_.data(), k), r(r_.data(), k), p(p_.data(), k), ap(ap_.data(), k);
  x = Eigen::Map<const vec>(xp, k);
  Eigen::Map<const Eigen::Matrix<float, K, K>> gram(gram_.data(), k, k);
  if (weight_.size() < static_cast<Eigen::Index>(row.size)) {
    gathered_.resize(static_cast<Eigen::Index>(row.size) * k);
    weight_.resize(static_cast<Eigen::Index>(row.size));
  }

  // One pass gathers the positive cells' factors y_j (scattered over the
  // fixed side, so prefetched a few rows ahead) into a contiguous n x k
  // block and accumulates the sparse part of the residual
  //   r = b - A x = sum_j (c_j - w_j y_j.x) y_j - G x - lambda x.
  constexpr std::size_t ahead = 6;
  const float* base = other_.data();
  r.setZero();
  Eigen::Index n = 0;
  for (std::size_t j = 0; j < row.size; ++j) {
    if (j + ahead < row.size) {
      const float* next = base + static_cast<Eigen::Index>(row.index[j + ahead]) * k;
      for (Eigen::Index c = 0; c < k; c += 16)
        __builtin_prefetch(next + c);
    }
    float w = alpha_ * cell_r(binary_, row.value[j]);
    if (w <= 0)
      continue;
    SHARDREC_ASSERT(row.index[j] < other_.rows());
    float* dst = gathered_.data() + n * k;
    Eigen::Map<vec>(dst, k) = cmap(base + static_cast<Eigen::Index>(row.index[j]) * k, k);
    cmap y(dst, k);
    r += (1 + w - w * y.dot(x)) * y;
    weight_[n++] = w;
  }
  r.noalias() -= gram * x;
  r -= lambda * x;

  p = r;
  float rs_old = r.squaredNorm();
  for (int step = 0; step < cg_steps_; ++step) {
    if (rs_old < 1e-20f)
      break;
    ap.noalias() = gram * p;
    ap += lambda * p;
    for (Eigen::Index j = 0; j < n; ++j) {
      cmap y(gathered_.data() + j * k, k);
      ap += (weight_[j] * y.dot(p)) * y;
    }
    float step_len = rs_old / p.dot(ap);
    x += step_len * p;
    r -= step_len * ap;
    float rs_new = r.squaredNorm();
    p = r + (rs_new / rs_old) * p;
    rs_old = rs_new;
  }
  Eigen::Map<vec>(xp, k) = x;
}

double ials_loss(const interaction_matrix& train, const ials_matrix& user,
                 const ials_matrix& item, const ials_config& cfg) {
  SHARDREC_ASSERT(static_cast<std::size_t>(user.rows()) == train.n_users());
  SHARDREC_ASSERT(static_cast<std::size_t>(item.rows()) == train.n_items());
  Eigen::MatrixXd gu = Eigen::MatrixXd::Zero(user.cols(), user.cols());
  Eigen::MatrixXd gi = gu;
  gu.selfadjointView<Eigen::Lower>().rankUpdate(user.cast<double>().transpose());
  gi.selfadjointView<Eigen::Lower>().rankUpdate(item.cast<double>().transpose());
  gu.triangularView<Eigen::StrictlyUpper>() = gu.transpose();
  gi.triangularView<Eigen::StrictlyUpper>() = gi.transpose();
  // Every cell as if unobserved (c = 1, p = 0), then the observed correction.
  double loss = gu.cwiseProduct(gi).sum();
  Eigen::MatrixXf gram_i = gi.cast<float>(), gram_u = gu.cast<float>();
  ials_row_solver user_side(gram_i, item, cfg), item_side(gram_u, user, cfg);
  for (index_t u = 0; u < train.n_users(); ++u) {
    auto row = train.user_row(u);
    for (std::size_t j = 0; j < row.size; ++j) {
      double r = cell_r(cfg.binary, row.value[j]);
      if (r <= 0)
        continue;
      double s = user.row(u).cast<double>().dot(item.row(row.index[j]).cast<double>());
      double c = 1 + cfg.alpha * r;
      loss += c * (1 - s) * (1 - s) - s * s;
    }
    loss += user_side.regularization(row) * user.row(u).cast<double>().squaredNorm();
  }
  for (index_t i = 0; i < train.n_items(); ++i)
    loss += item_side.regularization(train.item_col(i))
            * item.row(i).cast<double>().squaredNorm();
  return loss;
}

// ---- training ----

namespace {

// The trainer proper. keys: nullptr or already in the order of train's rows.
std::unique_ptr<ials_model> train_in_order(const interaction_matrix& train,
                                           const ials_config& cfg,
                                           const std::uint64_t* user_keys,
                                           const std::uint64_t* item_keys,
                                           std::vector<double>* loss_trace) {
  const auto k = static_cast<Eigen::Index>(cfg.factors);
  ials_matrix user(static_cast<Eigen::Index>(train.n_users()), k);
  ials_matrix item(static_cast<Eigen::Index>(train.n_items()), k);
  const float init_std = ials_init_std(cfg);
  if (user_keys)
    ials_init_keyed_rows(cfg.seed, 0, user_keys, init_std, user);
  else
    ials_init_rows(cfg.seed, 0, 0, init_std, user);
  if (item_keys)
    ials_init_keyed_rows(cfg.seed, 1, item_keys, init_std, item);
  else
    ials_init_rows(cfg.seed, 1, 0, init_std, item);

  for (int it = 0; it < cfg.iterations; ++it) {
    solve_side(train, true, item, cfg, user);
    solve_side(train, false, user, cfg, item);
    if (loss_trace)
      loss_trace->push_back(ials_loss(train, user, item, cfg));
  }

  std::vector<float> popularity(train.n_items(), 0.0f);
  for (index_t i = 0; i < train.n_items(); ++i) {
    auto col = train.item_col(i);
    for (std::size_t j = 0; j < col.size; ++j)
      if (cell_r(cfg.binary, col.value[j]) > 0)
        popularity[i] += 1.0f;
  }
  return std::make_unique<ials_model>(std::move(user), std::move(item),
                                      std::move(popularity));
}

} // namespace

std::unique_ptr<ials_model> train_ials_model(const interaction_matrix& train,
                                             const ials_config& cfg,
                                             std::vector<double>* loss_trace) {
  SHARDREC_ASSERT(validate(cfg).ok());
  if (!cfg.user_keys && !cfg.item_keys)
    return train_in_order(train, cfg, nullptr, nullptr, loss_trace);

  // Keyed: train on the matrix renumbered in key order, then put the rows
  // back where the caller's indices say.
  auto k = make_key_renumbering(train.n_users(), train.n_items(), cfg.user_keys,
                                cfg.item_keys);
  const auto& uo = k.user_order;
  const auto& io = k.item_order;
  auto m = train_in_order(renumbered(train, uo, io), cfg, k.user_key_data(),
                          k.item_key_data(), loss_trace);
  ials_matrix user(m->user_factors().rows(), m->user_factors().cols());
  ials_matrix item(m->item_factors().rows(), m->item_factors().cols());
  std::vector<float> popularity(train.n_items());
  for (std::size_t r = 0; r < uo.size(); ++r)
    user.row(uo[r]) = m->user_factors().row(static_cast<Eigen::Index>(r));
  for (std::size_t r = 0; r < io.size(); ++r) {
    item.row(io[r]) = m->item_factors().row(static_cast<Eigen::Index>(r));
    popularity[io[r]] = m->popularity()[r];
  }
  return std::make_unique<ials_model>(std::move(user), std::move(item),
                                      std::move(popularity));
}

std::unique_ptr<model> train_ials(const interaction_matrix& train, const ials_config& cfg,
                                  std::vector<double>* loss_trace) {
  return train_ials_model(train, cfg, loss_trace);
}

} // namespace shardrec::core
