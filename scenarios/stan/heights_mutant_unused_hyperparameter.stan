// Heights, the seed's slip (sbc heights `mutant_unused_hyperparameter_stan`): between_sd is
// declared and given its prior but never used; the country means get a fixed sd of 10.
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
  real grand_mean;
  real<lower=0> between_sd;
  vector[J] country_mean;
  real<lower=0> sigma;
}
model {
  grand_mean ~ normal(mean_location, mean_scale);
  between_sd ~ normal(0, between_sd_scale);
  country_mean ~ normal(grand_mean, 10);
  sigma ~ normal(0, within_sd_scale);
  height ~ normal(country_mean[country], sigma);
}
