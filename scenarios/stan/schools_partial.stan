// Schools, partial pooling (sbc schools `partial_stan`): the generative process of
// scenarios/schools.py, as its PyMC `partial` model writes it. School means centred (the
// Gamma prior keeps kappa away from zero), school concentrations non-centred on the log
// scale. Stan's gamma(shape, rate) is PyMC's Gamma(alpha, beta). The scores of a school
// share one Beta, so their log-likelihood is summed per school from the sufficient
// statistics sum(log y) and sum(log(1 - y)), as the PyMC model does.
data {
  int<lower=1> J;
  int<lower=1> N;
  array[N] int<lower=1, upper=J> school;
  vector<lower=0, upper=1>[N] score;
  vector<lower=0>[2] pop_mean_beta;   // Beta shapes of pop_mean
  vector<lower=0>[2] kappa_gamma;     // Gamma shape and rate of kappa
  vector<lower=0>[2] nu_gamma;        // Gamma shape and rate of nu
  real<lower=0> nu_spread_scale;
}
transformed data {
  vector[J] n = rep_vector(0, J);
  vector[J] log_y = rep_vector(0, J);
  vector[J] log1m_y = rep_vector(0, J);
  for (i in 1:N) {
    n[school[i]] += 1;
    log_y[school[i]] += log(score[i]);
    log1m_y[school[i]] += log1m(score[i]);
  }
}
parameters {
  real<lower=0, upper=1> pop_mean;
  real<lower=0> kappa;
  vector<lower=0, upper=1>[J] school_mean;
  real<lower=0> nu;
  real<lower=0> nu_spread;
  vector[J] z;
}
transformed parameters {
  vector[J] nu_school = nu * exp(nu_spread * z);
}
model {
  pop_mean ~ beta(pop_mean_beta[1], pop_mean_beta[2]);
  kappa ~ gamma(kappa_gamma[1], kappa_gamma[2]);
  school_mean ~ beta(pop_mean * kappa, (1 - pop_mean) * kappa);
  nu ~ gamma(nu_gamma[1], nu_gamma[2]);
  nu_spread ~ normal(0, nu_spread_scale);
  z ~ std_normal();
  {
    vector[J] a = school_mean .* nu_school;
    vector[J] b = (1 - school_mean) .* nu_school;
    target += dot_product(a - 1, log_y) + dot_product(b - 1, log1m_y) - dot_product(n, lbeta(a, b));
  }
}
