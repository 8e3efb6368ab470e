// The eight schools, non-centred: the generative process of examples/eight_schools.py,
// written in Stan (its `partial_stan` model). The data block is filled by `_stan_data` in
// that file from the design and each simulated data set.
data {
  int<lower=1> J;                           // schools
  int<lower=1> N;                           // observed effects (8; 16 in posterior SBC)
  array[N] int<lower=1, upper=J> school;    // school of each effect, from 1
  vector[N] y;                              // observed effects
  vector<lower=0>[N] sigma;                 // their known standard errors
  real<lower=0> mu_sd;
  real<lower=0> tau_scale;
}
parameters {
  real mu;
  real<lower=0> tau;
  vector[J] eta;
}
transformed parameters {
  vector[J] theta = mu + tau * eta;         // read by the estimand function, like PyMC's
}
model {
  mu ~ normal(0, mu_sd);
  tau ~ normal(0, tau_scale);               // half-normal: tau is declared positive
  eta ~ std_normal();
  y ~ normal(theta[school], sigma);
}
