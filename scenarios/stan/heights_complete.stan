// Heights, complete pooling (sbc heights `complete_stan`; Bambi `height ~ 1`): one mean for
// everyone, whose sigma absorbs the between-country spread. Not the generative process.
data {
  int<lower=1> N;
  vector[N] height;
  real mean_location;
  real<lower=0> mean_scale;
  real<lower=0> between_sd_scale;
  real<lower=0> within_sd_scale;
}
parameters {
  real Intercept;
  real<lower=0> sigma;
}
model {
  Intercept ~ normal(mean_location, mean_scale);
  sigma ~ normal(0, within_sd_scale + between_sd_scale);
  height ~ normal(Intercept, sigma);
}
