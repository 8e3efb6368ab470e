// Heights, no pooling (sbc heights `none_stan`; Bambi `height ~ 0 + country`): independent
// country means with a fixed, wide prior. Not the generative process.
data {
  int<lower=1> J;
  int<lower=1> N;
  array[N] int<lower=1, upper=J> country;
  vector[N] height;
  real mean_location;
  real<lower=0> mean_scale;
  real<lower=0> between_sd_scale;
  real<lower=0> within_sd_scale;
}
parameters {
  vector[J] country_mean;
  real<lower=0> sigma;
}
model {
  country_mean ~ normal(mean_location, mean_scale + between_sd_scale);
  sigma ~ normal(0, within_sd_scale);
  height ~ normal(country_mean[country], sigma);
}
