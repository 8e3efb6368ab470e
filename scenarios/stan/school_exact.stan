// One school (sbc school `exact_stan`): the generative process of scenarios/school.py.
//   mu ~ beta(mu_beta); nu ~ gamma(nu_gamma) (shape, rate); score ~ beta(mu nu, (1 - mu) nu)
data {
  int<lower=1> N;
  vector<lower=0, upper=1>[N] score;
  vector<lower=0>[2] mu_beta;
  vector<lower=0>[2] nu_gamma;
}
parameters {
  real<lower=0, upper=1> mu;
  real<lower=0> nu;
}
model {
  mu ~ beta(mu_beta[1], mu_beta[2]);
  nu ~ gamma(nu_gamma[1], nu_gamma[2]);
  score ~ beta(mu * nu, (1 - mu) * nu);
}
