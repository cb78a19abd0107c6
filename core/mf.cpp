#include "core/mf.hpp"

#include <algorithm>
#include <cmath>

#include <Eigen/Cholesky>

#include "core/error.hpp"
#include "core/ials.hpp" // key_order, renumbered
#include "core/parallel.hpp"

namespace shardrec::core {

namespace {

using mat_d = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using mat_f = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// splitmix64 (Steele et al. 2014): used both to derive per-entity seeds from
// (seed, sweep, side, index) and as the generator of each short stream.
std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class rng {
public:
  explicit rng(std::uint64_t seed) : s_(seed) {}
  static rng stream(std::uint64_t seed, std::uint64_t sweep, std::uint64_t side,
                    std::uint64_t index) {
    std::uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL);
    h = mix64(h ^ (sweep + 0x632be59bd9b4e019ULL));
    h = mix64(h ^ (side + 0x85ebca6b0c3e9b37ULL));
    h = mix64(h ^ (index + 0xc2b2ae3d27d4eb4fULL));
    return rng(h);
  }
  std::uint64_t next() {
    s_ += 0x9e3779b97f4a7c15ULL;
    return mix64(s_);
  }
  // Uniform in (0, 1), never 0 so that log() is finite.
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
  // Standard normal by Box-Muller; the second value of each pair is kept.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double r = std::sqrt(-2.0 * std::log(uniform()));
    double t = 6.283185307179586 * uniform(); // 2 pi
    spare_ = r * std::sin(t);
    has_spare_ = true;
    return r * std::cos(t);
  }
  // Gamma(shape, scale 1) by Marsaglia & Tsang (2000); shape < 1 by boosting.
  double gamma(double shape) {
    if (shape < 1.0)
      return gamma(shape + 1.0) * std::pow(uniform(), 1.0 / shape);
    const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x, v;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      double u = uniform();
      if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v))
        return d * v;
    }
  }

private:
  std::uint64_t s_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

// Stream ids for rng::stream's `side` argument.
enum : std::uint64_t {
  side_user = 0,
  side_item = 1,
  side_init = 2,
  side_hyper = 3,
  side_init_keyed = 4,
};

// One side's view of the ratings: for entity e the other side's indices and
// the ratings, as CSR spans of the interaction matrix.
struct side_view {
  const interaction_matrix* m;
  bool users;
  std::size_t size() const { return users ? m->n_users() : m->n_items(); }
  interaction_matrix::span row(index_t e) const {
    return users ? m->user_row(e) : m->item_col(e);
  }
};

// Prior of one half-step. ALS: precision reg * n_e * I, mean 0, noise
// precision 1. Gibbs: precision Lambda, mean mu, noise precision alpha.
struct half_step_prior {
  bool sample = false;
  double reg = 0.0;
  double alpha = 1.0;
  Eigen::MatrixXd lambda;    // D x D
  Eigen::VectorXd lambda_mu; // Lambda * mu
};

// Per-thread buffers of the row solve.
struct row_buffers {
  explicit row_buffers(Eigen::Index d) : rhs(d), eps(d), a(d, d), llt(d) {}
  std::vector<double> zbuf, ybuf;
  Eigen::VectorXd rhs, eps;
  Eigen::MatrixXd a;
  Eigen::LLT<Eigen::MatrixXd> llt;
};

// Solves one entity's system given the other side `o` (rows indexed by
// row.index, D wide): (prior + alpha Z^T Z) x = prior_mean_term + alpha Z^T y
// with Z rows [o_j(0..k-1), 1] and y_j = r_j - mu - o_j(k); Gibbs adds
// L^-T eps (eps ~ N(0, I) from the stream of (seed, sweep, side, e), L L^T
// the precision) for a draw from the conditional posterior. An entity
// without ratings gets 0. Writes D values to x.
void solve_entity(interaction_matrix::span row, const mat_d& o, double mu,
                  const half_step_prior& prior, std::uint64_t seed, int sweep,
                  std::uint64_t side, std::size_t e, row_buffers& buf, double* xp) {
  const auto d = o.cols();
  const auto k = d - 1;
  Eigen::Map<Eigen::RowVectorXd> x(xp, d);
  auto n = static_cast<Eigen::Index>(row.size);
  if (n == 0) {
    x.setZero();
    return;
  }
  auto& zbuf = buf.zbuf;
  auto& ybuf = buf.ybuf;
  auto& rhs = buf.rhs;
  auto& eps = buf.eps;
  auto& a = buf.a;
  auto& llt = buf.llt;
  if (zbuf.size() < static_cast<std::size_t>(n * d)) {
    zbuf.resize(static_cast<std::size_t>(n * d));
    ybuf.resize(static_cast<std::size_t>(n));
  }
  // Z is gathered column-major so that each entry of Z^T Z is one
  // contiguous, vectorised dot product; for k ~ 10 and a few hundred
  // ratings this is several times faster than a blocked rank update.
  Eigen::Map<Eigen::MatrixXd> z(zbuf.data(), n, d);
  Eigen::Map<Eigen::VectorXd> y(ybuf.data(), n);
  for (Eigen::Index j = 0; j < n; ++j) {
    SHARDREC_ASSERT(static_cast<Eigen::Index>(row.index[j]) < o.rows());
    const double* other = o.data() + static_cast<Eigen::Index>(row.index[j]) * d;
    for (Eigen::Index t = 0; t < k; ++t)
      z(j, t) = other[t];
    y[j] = row.value[j] - mu - other[k];
  }
  z.col(k).setOnes();
  if (prior.sample) {
    a = prior.lambda;
    rhs = prior.lambda_mu;
  } else {
    a.setZero();
    a.diagonal().setConstant(prior.reg * static_cast<double>(n));
    rhs.setZero();
  }
  for (Eigen::Index s = 0; s < d; ++s) {
    for (Eigen::Index t = 0; t <= s; ++t)
      a(s, t) += prior.alpha * z.col(s).dot(z.col(t));
    rhs[s] += prior.alpha * z.col(s).dot(y);
  }
  llt.compute(a);
  SHARDREC_ASSERT(llt.info() == Eigen::Success);
  rhs = llt.solve(rhs);
  if (prior.sample) {
    rng r = rng::stream(seed, static_cast<std::uint64_t>(sweep), side, e);
    for (Eigen::Index t = 0; t < d; ++t)
      eps[t] = r.normal();
    llt.matrixU().solveInPlace(eps);
    rhs += eps;
  }
  x = rhs.transpose();
}

// Updates every row of `x` (entities of `view`, n x D, last column the bias)
// given the other side `o` (n_other x D) by solve_entity.
// keys: nullptr (draws keyed by the row index) or one key per row: a row's
// draws then depend on its id alone, as a partition that holds some of the
// rows can reproduce them.
void half_step(const side_view& view, mat_d& x, const mat_d& o, double mu,
               const half_step_prior& prior, const mf_config& cfg, int sweep,
               const std::uint64_t* keys = nullptr) {
  const auto d = x.cols();
  const std::uint64_t side = view.users ? side_user : side_item;
  parallel_for(
      view.size(), cfg.threads,
      [&](std::size_t begin, std::size_t end) {
        row_buffers buf(d);
        for (std::size_t e = begin; e < end; ++e)
          solve_entity(view.row(static_cast<index_t>(e)), o, mu, prior, cfg.seed, sweep,
                       side, keys ? keys[e] : e, buf,
                       x.row(static_cast<Eigen::Index>(e)).data());
      },
      32);
}

// Squared training error of the current factors: each cell's
// mf_squared_residual added exactly, so the total does not depend on the
// thread count, nor on how a cluster groups the cells.
exact_sum squared_error(const interaction_matrix& m, const mat_d& xu, const mat_d& xi,
                        double mu, unsigned threads) {
  const auto k = xu.cols() - 1;
  std::vector<exact_sum> per_user(m.n_users());
  parallel_for(m.n_users(), threads, [&](std::size_t begin, std::size_t end) {
    for (std::size_t u = begin; u < end; ++u) {
      auto row = m.user_row(static_cast<index_t>(u));
      const double* pu = xu.data() + static_cast<Eigen::Index>(u) * xu.cols();
      for (std::size_t j = 0; j < row.size; ++j)
        per_user[u].add(mf_squared_residual(
            row.value[j], pu, xi.data() + static_cast<Eigen::Index>(row.index[j]) * xi.cols(),
            k, mu));
    }
  });
  exact_sum total;
  for (const auto& s : per_user)
    total.add(s);
  return total;
}

// sum_e n_e |x_e|^2, the ALS-WR penalty of one side before the reg factor.
double weighted_norm(const side_view& view, const mat_d& x) {
  double s = 0.0;
  for (std::size_t e = 0; e < view.size(); ++e)
    s += static_cast<double>(view.row(static_cast<index_t>(e)).size)
         * x.row(static_cast<Eigen::Index>(e)).squaredNorm();
  return s;
}

// (Lambda, Lambda mu) from the moments of the rows that have ratings.
// The scatter is outer - n mean mean^T (one pass, so that a cluster can sum
// the moments over partitions).
void hyper_from_moments(const mf_row_moments& m, Eigen::Index d, rng& r,
                        Eigen::MatrixXd& lambda, Eigen::VectorXd& lambda_mu) {
  const double beta0 = 2.0, nu0 = static_cast<double>(d);
  const double n = static_cast<double>(m.n);
  Eigen::VectorXd mean = Eigen::VectorXd::Zero(d);
  Eigen::MatrixXd scatter = Eigen::MatrixXd::Zero(d, d);
  if (m.n > 0) {
    SHARDREC_ASSERT(m.sum.size() == static_cast<std::size_t>(d)
                    && m.outer.size() == static_cast<std::size_t>(d * d));
    for (Eigen::Index s = 0; s < d; ++s) {
      mean[s] = m.sum[static_cast<std::size_t>(s)].value() / n;
      for (Eigen::Index t = 0; t < d; ++t)
        scatter(s, t) = m.outer[static_cast<std::size_t>(s * d + t)].value();
    }
    scatter -= n * mean * mean.transpose();
  }
  Eigen::MatrixXd w_inv = Eigen::MatrixXd::Identity(d, d) + scatter
                          + (beta0 * n / (beta0 + n)) * mean * mean.transpose();
  w_inv = 0.5 * (w_inv + w_inv.transpose());
  Eigen::MatrixXd w = w_inv.llt().solve(Eigen::MatrixXd::Identity(d, d));
  const double nu = nu0 + n, beta = beta0 + n;
  Eigen::VectorXd mu_post = (n / (beta0 + n)) * mean;

  // Wishart(W, nu) by the Bartlett decomposition: Lambda = L A A^T L^T with
  // W = L L^T, A lower triangular, A_tt^2 ~ chi2(nu - t), A_st ~ N(0, 1).
  Eigen::MatrixXd l = Eigen::MatrixXd(w.llt().matrixL());
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(d, d);
  for (Eigen::Index t = 0; t < d; ++t) {
    a(t, t) = std::sqrt(2.0 * r.gamma(0.5 * (nu - static_cast<double>(t))));
    for (Eigen::Index s = t + 1; s < d; ++s)
      a(s, t) = r.normal();
  }
  Eigen::MatrixXd la = l * a;
  lambda = la * la.transpose();

  // mu ~ N(mu_post, (beta Lambda)^-1).
  Eigen::LLT<Eigen::MatrixXd> lam_llt(beta * lambda);
  Eigen::VectorXd eps(d);
  for (Eigen::Index t = 0; t < d; ++t)
    eps[t] = r.normal();
  lam_llt.matrixU().solveInPlace(eps);
  Eigen::VectorXd mu_draw = mu_post + eps;
  lambda_mu = lambda * mu_draw;
}

// Draws (mu, Lambda) of one side from the Normal-Wishart posterior given the
// rows of x that belong to entities with ratings (BPMF eq. 14 with mu_0 = 0,
// beta_0 = 2, nu_0 = D, W_0 = I).
void sample_hyper(const side_view& view, const mat_d& x, rng& r, half_step_prior& prior) {
  const auto d = x.cols();
  mf_row_moments m;
  for (std::size_t e = 0; e < view.size(); ++e)
    if (view.row(static_cast<index_t>(e)).size > 0)
      add_row(m, x.row(static_cast<Eigen::Index>(e)).data(), d);
  hyper_from_moments(m, d, r, prior.lambda, prior.lambda_mu);
}

// keys: nullptr (seed by index) or one key per row of x.
void init_factors(mat_d& x, const mf_config& cfg, std::uint64_t side,
                  const std::uint64_t* keys) {
  if (keys) {
    mf_init_keyed_rows(cfg, side == side_user ? 0 : 1, keys, x);
    return;
  }
  const auto k = x.cols() - 1;
  for (Eigen::Index e = 0; e < x.rows(); ++e) {
    rng r = rng::stream(cfg.seed, 0, side_init, 2 * static_cast<std::uint64_t>(e) + side);
    for (Eigen::Index t = 0; t < k; ++t)
      x(e, t) = cfg.init_std * r.normal();
    x(e, k) = 0.0;
  }
}

} // namespace

mf_model::mf_model(mf_factors f, float min_rating, float max_rating)
    : f_(std::move(f)), min_rating_(min_rating), max_rating_(max_rating) {
  SHARDREC_ASSERT(f_.user.rows() == f_.user_bias.size());
  SHARDREC_ASSERT(f_.item.rows() == f_.item_bias.size());
  SHARDREC_ASSERT(f_.user.cols() == f_.item.cols());
}

void mf_model::score_items(index_t user, Eigen::Ref<Eigen::VectorXf> out) const {
  SHARDREC_ASSERT(out.size() == f_.item_bias.size());
  auto u = static_cast<Eigen::Index>(user);
  if (u < f_.user.rows()) {
    out.noalias() = f_.item * f_.user.row(u).transpose();
    out.array() += f_.item_bias.array() + (f_.mu + f_.user_bias[u]);
  } else {
    out = f_.item_bias.array() + f_.mu;
  }
}

float mf_model::predict(index_t user, index_t item) const {
  auto u = static_cast<Eigen::Index>(user);
  auto i = static_cast<Eigen::Index>(item);
  float p = f_.mu;
  bool known_u = u < f_.user.rows(), known_i = i < f_.item.rows();
  if (known_u)
    p += f_.user_bias[u];
  if (known_i)
    p += f_.item_bias[i];
  if (known_u && known_i)
    p += f_.user.row(u).dot(f_.item.row(i));
  return std::clamp(p, min_rating_, max_rating_);
}

status validate(const mf_config& cfg) {
  auto bad = [](const char* msg) { return make_error(errc::invalid_argument, msg); };
  if (cfg.factors < 1)
    return bad("mf_config.factors: must be >= 1");
  if (cfg.iterations < 1)
    return bad("mf_config.iterations: must be >= 1");
  if (!(cfg.reg >= 0.0f))
    return bad("mf_config.reg: must be >= 0");
  if (!(cfg.init_std >= 0.0f))
    return bad("mf_config.init_std: must be >= 0");
  if (!(cfg.min_rating <= cfg.max_rating))
    return bad("mf_config.min_rating: must be <= max_rating");
  if (cfg.solver == mf_solver::gibbs) {
    if (cfg.burn_in < 0 || cfg.burn_in >= cfg.iterations)
      return bad("mf_config.burn_in: must be in [0, iterations)");
    if (cfg.warm_start < 0 || cfg.warm_start > cfg.burn_in)
      return bad("mf_config.warm_start: must be in [0, burn_in]");
  }
  return {};
}

namespace {

// The trainer proper. keys: nullptr or already in the order of train's rows.
mf_factors train_in_order(const interaction_matrix& train, const mf_config& cfg,
                          const std::uint64_t* user_keys, const std::uint64_t* item_keys,
                          std::vector<double>* loss_trace) {
  const bool gibbs = cfg.solver == mf_solver::gibbs;

  const auto k = static_cast<Eigen::Index>(cfg.factors);
  const auto d = k + 1;
  const auto nu = static_cast<Eigen::Index>(train.n_users());
  const auto ni = static_cast<Eigen::Index>(train.n_items());
  const double mu = train.nnz() > 0 ? train.mean_value() : 0.0;
  const side_view users{&train, true}, items{&train, false};

  mat_d xu(nu, d), xi(ni, d);
  init_factors(xu, cfg, side_user, user_keys);
  init_factors(xi, cfg, side_item, item_keys);

  half_step_prior prior_u, prior_i;
  prior_u.sample = prior_i.sample = gibbs;
  if (gibbs) {
    prior_u.lambda = prior_i.lambda = Eigen::MatrixXd::Identity(d, d);
    prior_u.lambda_mu = prior_i.lambda_mu = Eigen::VectorXd::Zero(d);
  }

  // Gibbs: running sums of the samples after burn-in (factors and biases).
  mat_d sum_u = mat_d::Zero(gibbs ? nu : 0, d), sum_i = mat_d::Zero(gibbs ? ni : 0, d);
  int kept = 0;

  double sse = gibbs ? squared_error(train, xu, xi, mu, cfg.threads).value() : 0.0;
  const double n_obs = static_cast<double>(train.nnz());
  for (int sweep = 1; sweep <= cfg.iterations; ++sweep) {
    if (gibbs && sweep > cfg.warm_start) {
      rng r = rng::stream(cfg.seed, static_cast<std::uint64_t>(sweep), side_hyper, 0);
      // Noise precision ~ Gamma(1 + N/2, rate 1 + SSE/2).
      double alpha = r.gamma(1.0 + 0.5 * n_obs) / (1.0 + 0.5 * sse);
      prior_u.alpha = prior_i.alpha = alpha;
      sample_hyper(users, xu, r, prior_u);
      half_step(users, xu, xi, mu, prior_u, cfg, sweep, user_keys);
      sample_hyper(items, xi, r, prior_i);
      half_step(items, xi, xu, mu, prior_i, cfg, sweep, item_keys);
    } else {
      mf_als_half_step(train, true, xi, mu, cfg, xu);
      mf_als_half_step(train, false, xu, mu, cfg, xi);
    }
    sse = squared_error(train, xu, xi, mu, cfg.threads).value();
    if (loss_trace) {
      if (gibbs)
        loss_trace->push_back(n_obs > 0 ? std::sqrt(sse / n_obs) : 0.0);
      else
        loss_trace->push_back(
            sse + cfg.reg * (weighted_norm(users, xu) + weighted_norm(items, xi)));
    }
    if (gibbs && sweep > cfg.burn_in) {
      sum_u += xu;
      sum_i += xi;
      ++kept;
    }
  }
  if (gibbs) {
    xu = sum_u / static_cast<double>(kept);
    xi = sum_i / static_cast<double>(kept);
  }

  mf_factors f;
  f.mu = static_cast<float>(mu);
  f.user_bias = xu.col(k).cast<float>();
  f.item_bias = xi.col(k).cast<float>();
  f.user = xu.leftCols(k).cast<float>();
  f.item = xi.leftCols(k).cast<float>();
  return f;
}

} // namespace

mf_factors train_mf_factors(const interaction_matrix& train, const mf_config& cfg,
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
  mf_factors r = train_in_order(renumbered(train, uo, io), cfg, k.user_key_data(),
                                k.item_key_data(), loss_trace);
  mf_factors f = r;
  for (std::size_t e = 0; e < uo.size(); ++e) {
    f.user.row(uo[e]) = r.user.row(static_cast<Eigen::Index>(e));
    f.user_bias[uo[e]] = r.user_bias[static_cast<Eigen::Index>(e)];
  }
  for (std::size_t e = 0; e < io.size(); ++e) {
    f.item.row(io[e]) = r.item.row(static_cast<Eigen::Index>(e));
    f.item_bias[io[e]] = r.item_bias[static_cast<Eigen::Index>(e)];
  }
  return f;
}

void mf_init_keyed_rows(const mf_config& cfg, int side, const std::uint64_t* keys,
                        Eigen::Ref<mf_rows> out) {
  SHARDREC_ASSERT(out.cols() == static_cast<Eigen::Index>(cfg.factors) + 1);
  const auto k = out.cols() - 1;
  for (Eigen::Index e = 0; e < out.rows(); ++e) {
    rng r =
        rng::stream(cfg.seed, static_cast<std::uint64_t>(side), side_init_keyed, keys[e]);
    for (Eigen::Index t = 0; t < k; ++t)
      out(e, t) = cfg.init_std * r.normal();
    out(e, k) = 0.0;
  }
}

void mf_als_half_step(const interaction_matrix& train, bool users, const mf_rows& other,
                      double mu, const mf_config& cfg, mf_rows& self) {
  const side_view view{&train, users};
  SHARDREC_ASSERT(static_cast<std::size_t>(self.rows()) == view.size());
  SHARDREC_ASSERT(self.cols() == static_cast<Eigen::Index>(cfg.factors) + 1);
  SHARDREC_ASSERT(other.cols() == self.cols());
  half_step_prior prior; // ALS: precision reg * n_e * I, mean 0, noise precision 1
  prior.reg = cfg.reg;
  // Without sampling, the sweep number (which only seeds draws) is irrelevant.
  half_step(view, self, other, mu, prior, cfg, 0);
}

struct mf_als_row_solver::scratch : row_buffers {
  using row_buffers::row_buffers;
  half_step_prior prior;
};

mf_als_row_solver::mf_als_row_solver(const mf_config& cfg, double mu)
    : mu_(mu), s_(std::make_unique<scratch>(static_cast<Eigen::Index>(cfg.factors) + 1)) {
  s_->prior.reg = cfg.reg;
}

mf_als_row_solver::~mf_als_row_solver() = default;

void mf_als_row_solver::solve(interaction_matrix::span row, const mf_rows& other,
                              double* x) {
  SHARDREC_ASSERT(other.cols() == s_->a.cols());
  solve_entity(row, other, mu_, s_->prior, 0, 0, 0, 0, *s_, x);
}

void add_row(mf_row_moments& m, const double* x, Eigen::Index d) {
  const auto n = static_cast<std::size_t>(d);
  if (m.sum.size() != n) {
    SHARDREC_ASSERT(m.n == 0 && m.sum.empty());
    m.sum.assign(n, exact_sum{});
    m.outer.assign(n * n, exact_sum{});
  }
  ++m.n;
  for (std::size_t s = 0; s < n; ++s) {
    m.sum[s].add(x[s]);
    for (std::size_t t = 0; t < n; ++t)
      m.outer[s * n + t].add(x[s] * x[t]);
  }
}

void merge(mf_row_moments& m, const mf_row_moments& o) {
  if (o.sum.empty())
    return;
  if (m.sum.empty()) {
    m = o;
    return;
  }
  SHARDREC_ASSERT(m.sum.size() == o.sum.size() && m.outer.size() == o.outer.size());
  m.n += o.n;
  for (std::size_t s = 0; s < m.sum.size(); ++s)
    m.sum[s].add(o.sum[s]);
  for (std::size_t s = 0; s < m.outer.size(); ++s)
    m.outer[s].add(o.outer[s]);
}

double mf_squared_residual(double r, const double* pu, const double* qi, Eigen::Index k,
                           double mu) {
  double dot = 0.0;
  for (Eigen::Index t = 0; t < k; ++t)
    dot += pu[t] * qi[t];
  double e = r - (mu + pu[k] + qi[k] + dot);
  return e * e;
}

struct mf_sweep_stream::impl {
  rng r;
};

mf_sweep_stream::mf_sweep_stream(std::uint64_t seed, int sweep)
    : p_(std::make_unique<impl>(
        impl{rng::stream(seed, static_cast<std::uint64_t>(sweep), side_hyper, 0)})) {}
mf_sweep_stream::~mf_sweep_stream() = default;
mf_sweep_stream::mf_sweep_stream(mf_sweep_stream&&) noexcept = default;

double mf_sweep_stream::alpha(double n_obs, double sse) {
  return p_->r.gamma(1.0 + 0.5 * n_obs) / (1.0 + 0.5 * sse);
}

void mf_sweep_stream::hyper(const mf_row_moments& m, Eigen::Index d,
                            mf_gibbs_prior& prior) {
  SHARDREC_ASSERT(d > 0 && (m.n == 0 || m.sum.size() == static_cast<std::size_t>(d)));
  hyper_from_moments(m, d, p_->r, prior.lambda, prior.lambda_mu);
}

struct mf_gibbs_row_solver::state : row_buffers {
  using row_buffers::row_buffers;
  half_step_prior prior;
};

mf_gibbs_row_solver::mf_gibbs_row_solver(const mf_config& cfg, double mu,
                                         const mf_gibbs_prior& prior, int sweep, int side)
    : mu_(mu), seed_(cfg.seed), sweep_(sweep), side_(side),
      s_(std::make_unique<state>(static_cast<Eigen::Index>(cfg.factors) + 1)) {
  s_->prior.sample = true;
  s_->prior.alpha = prior.alpha;
  s_->prior.lambda = prior.lambda;
  s_->prior.lambda_mu = prior.lambda_mu;
}

mf_gibbs_row_solver::~mf_gibbs_row_solver() = default;

void mf_gibbs_row_solver::solve(interaction_matrix::span row, const mf_rows& other,
                                std::uint64_t key, double* x) {
  SHARDREC_ASSERT(other.cols() == s_->a.cols());
  solve_entity(row, other, mu_, s_->prior, seed_, sweep_,
               side_ == 0 ? side_user : side_item, key, *s_, x);
}

std::unique_ptr<model> train_mf(const interaction_matrix& train, const mf_config& cfg,
                                std::vector<double>* loss_trace) {
  return std::make_unique<mf_model>(train_mf_factors(train, cfg, loss_trace),
                                    cfg.min_rating, cfg.max_rating);
}

} // namespace shardrec::core
