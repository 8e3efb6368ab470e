// Schools in districts (sbc districts `partial_stan`): the generative process of
// scenarios/districts.py, as its PyMC `partial` model writes it (Beta levels, centred: the
// Gamma priors keep the concentrations away from zero). Stan's gamma(shape, rate) is PyMC's
// Gamma(alpha, beta). Scores are summed per school from their sufficient statistics.
data {
  int<lower=1> D;                              // districts
  int<lower=1> K;                              // schools
  int<lower=1> N;                              // students
  array[K] int<lower=1, upper=D> district;     // district of each school
  array[N] int<lower=1, upper=K> school;       // school of each student
  vector<lower=0, upper=1>[N] score;
  vector<lower=0>[2] pop_mean_beta;            // Beta shapes of pop_mean
  vector<lower=0>[2] district_gamma;           // Gamma shape and rate of district_conc
  vector<lower=0>[2] school_gamma;             // ... of school_conc
  vector<lower=0>[2] nu_gamma;                 // ... of nu
}
transformed data {
  vector[K] n = rep_vector(0, K);
  vector[K] log_y = rep_vector(0, K);
  vector[K] log1m_y = rep_vector(0, K);
  for (i in 1:N) {
    n[school[i]] += 1;
    log_y[school[i]] += log(score[i]);
    log1m_y[school[i]] += log1m(score[i]);
  }
}
parameters {
  real<lower=0, upper=1> pop_mean;
  real<lower=0> district_conc;
  vector<lower=0, upper=1>[D] district_mean;
  real<lower=0> school_conc;
  vector<lower=0, upper=1>[K] school_mean;
  real<lower=0> nu;
}
model {
  pop_mean ~ beta(pop_mean_beta[1], pop_mean_beta[2]);
  district_conc ~ gamma(district_gamma[1], district_gamma[2]);
  district_mean ~ beta(pop_mean * district_conc, (1 - pop_mean) * district_conc);
  school_conc ~ gamma(school_gamma[1], school_gamma[2]);
  school_mean ~ beta(district_mean[district] * school_conc,
                     (1 - district_mean[district]) * school_conc);
  nu ~ gamma(nu_gamma[1], nu_gamma[2]);
  {
    vector[K] a = school_mean * nu;
    vector[K] b = (1 - school_mean) * nu;
    target += dot_product(a - 1, log_y) + dot_product(b - 1, log1m_y) - dot_product(n, lbeta(a, b));
  }
}
