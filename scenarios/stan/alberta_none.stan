// Alberta, no pooling (sbc alberta `none_stan`): independent school means with the seed's
// unpooled Beta(3, 1) prior; the likelihood of each observed school mean is normal with the
// variance of a mean of Beta(mu nu, (1 - mu) nu) scores over its writers.
data {
  int<lower=1> S;                                // schools
  int<lower=1> A;                                // authorities
  int<lower=1> M;                                // observed means (S; 2 S in posterior SBC)
  array[M] int<lower=1, upper=S> school;         // school of each observed mean
  array[S] int<lower=1, upper=A> authority;      // authority of each school
  vector[M] school_mean;                         // observed school means (proportions)
  vector<lower=0>[M] writers;                    // writers behind each mean
  real<lower=0> pop_mean_a;
  real<lower=0> pop_mean_b;
  real<lower=0> kappa_median;
  real<lower=0> kappa_log_sd;
  real<lower=0> nu_median;
  real<lower=0> nu_log_sd;
}
parameters {
  real<lower=0> nu;
  vector<lower=0, upper=1>[S] mu;
}
model {
  nu ~ lognormal(log(nu_median), nu_log_sd);
  mu ~ beta(3, 1);
  {
    vector[M] m = mu[school];
    school_mean ~ normal(m, sqrt(m .* (1 - m) / (nu + 1) ./ writers));
  }
}
