// Heights, partial pooling (sbc heights `partial_stan`): the generative process
//   grand_mean ~ normal(mean_location, mean_scale); between_sd ~ half-normal(between_sd_scale)
//   country_mean[j] ~ normal(grand_mean, between_sd); sigma ~ half-normal(within_sd_scale)
//   height[i] ~ normal(country_mean[country[i]], sigma)
// with the normal levels integrated out, as the PyMC `partial` model does: given between_sd
// and sigma the country sample means are jointly normal and the within-country sums of
// squares carry sigma alone, so NUTS explores two parameters and meets no funnel. The grand
// mean and then the country means are drawn from their exact normal conditional posteriors
// (m + s * e, e ~ std_normal(), which the likelihood does not involve).
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
transformed data {
  vector[J] n = rep_vector(0, J);
  vector[J] total = rep_vector(0, J);
  for (i in 1:N) {
    n[country[i]] += 1;
    total[country[i]] += height[i];
  }
  vector[J] sample_mean = total ./ n;
  vector[J] squares = rep_vector(0, J);
  for (i in 1:N) {
    squares[country[i]] += square(height[i] - sample_mean[country[i]]);
  }
  real b = square(mean_scale);
  vector[J] r = sample_mean - mean_location;
}
parameters {
  real<lower=0> between_sd;
  real<lower=0> sigma;
  real grand_mean_e;
  vector[J] country_mean_e;
}
transformed parameters {
  real grand_mean;
  vector[J] country_mean;
  {
    vector[J] d = square(between_sd) + square(sigma) ./ n;
    real precision = 1 / b + sum(1 ./ d);
    grand_mean = (mean_location / b + sum(sample_mean ./ d)) / precision
                 + grand_mean_e / sqrt(precision);
    vector[J] v = n * square(between_sd) + square(sigma);
    country_mean = grand_mean + (n * square(between_sd) ./ v) .* (sample_mean - grand_mean)
                   + (between_sd * sigma) * country_mean_e ./ sqrt(v);
  }
}
model {
  between_sd ~ normal(0, between_sd_scale);
  sigma ~ normal(0, within_sd_scale);
  grand_mean_e ~ std_normal();
  country_mean_e ~ std_normal();
  {
    vector[J] d = square(between_sd) + square(sigma) ./ n;
    real s1 = 1 + b * sum(1 ./ d);
    target += -0.5 * (sum(log(d)) + log(s1) + sum(square(r) ./ d) - b * square(sum(r ./ d)) / s1);
    target += sum(-(n - 1) * log(sigma) - squares / (2 * square(sigma)));
  }
}
