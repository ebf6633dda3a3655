# Pinned R reference for pipeline/stats/cox.py and pipeline/stats/km.py (tests/test_survival.py).
#
# R version 4.2.2 Patched (2022-11-10 r83330), Debian bookworm packages:
#   survival 3.5.3 (r-cran-survival 3.5-3-1), stats 4.2.2.
#
# Run from the repository root:
#   Rscript tests/reference_r/survival/fit.R              # refit data.csv -> results.csv
#   Rscript tests/reference_r/survival/fit.R --make-data  # first rewrite data.csv (seeded)
#
# data.csv: risk-set-sampled matched sets (one case + 1-4 controls, `set_id`), persons
# `lopnr` recurring across sets, `duration_days` in whole days (many tied times),
# `event` 0 = censored at the data end, `age` in years. Sets 1-4 have no controls and
# in sets 5-7 everyone is censored: R keeps them (they add nothing to the partial
# likelihood or the score residuals), the pipeline drops them with a warning.
#
# Written to results.csv (long format: model, term, group, time, quantity, value):
#   cox_case:     coxph(Surv(duration_days, event) ~ case + strata(set_id),
#                       cluster = lopnr)                      (ties: default "efron")
#   cox_adjusted: the same + age
#     coef, se_naive = sqrt(diag(fit$naive.var)), se_robust = sqrt(diag(fit$var))
#     (Lin-Wei sandwich of dfbeta residuals summed per lopnr, no small-sample factor),
#     p_robust (summary()), and per model concordance (concordance(fit), pairs within
#     strata) and n / nevent over all rows.
#     se_set: the same model with cluster = set_id; se_two_way: sqrt of the diagonal of
#     V(set_id) + V(lopnr) - V(row), V(row) from robust = TRUE without a cluster
#     (Cameron-Gelbach-Miller two-way clustering; see robust_se_mc.R for why).
#   km:           survfit(Surv(duration_days, event) ~ case, conf.type = "log-log")
#     (R's default conf.type is "log"; lifelines uses log-log), summary(times = ...):
#     n_risk, surv, lower, upper per case group at the times below.
#   km_median:    summary(km)$table: median, lower, upper (0.95LCL / 0.95UCL).

suppressPackageStartupMessages(library(survival))

dir <- file.path("tests", "reference_r", "survival")
data_path <- file.path(dir, "data.csv")
results_path <- file.path(dir, "results.csv")
km_times <- c(0, 1, 7, 14, 30, 60, 90, 180, 365)

make_data <- function() {
  set.seed(20260603)
  n_sets <- 240
  n_persons <- 700
  n_ctrl <- sample(1:4, n_sets, replace = TRUE)
  n_ctrl[1:4] <- 0
  size <- 1 + n_ctrl
  set_id <- rep(seq_len(n_sets), size)
  case <- as.integer(sequence(size) == 1)
  lopnr <- unlist(lapply(size, function(s) sample(n_persons, s)))
  person_frailty <- exp(rnorm(n_persons, sd = 0.4))
  set_frailty <- rgamma(n_sets, shape = 2, scale = 0.5)
  age <- sample(20:64, n_persons, replace = TRUE)[lopnr]
  hazard <- (1 / 60) * set_frailty[set_id] * person_frailty[lopnr] *
    exp(0.4 * case - 0.02 * (age - 45))
  t_end <- rexp(length(hazard), hazard)
  censor <- 730 - sample(0:700, n_sets, replace = TRUE)[set_id]
  event <- as.integer(t_end <= censor)
  event[set_id %in% 5:7] <- 0L
  out <- data.frame(set_id = set_id, lopnr = lopnr, case = case,
                    duration_days = floor(pmin(t_end, censor)), event = event, age = age)
  write.csv(out, data_path, row.names = FALSE, quote = TRUE)
}

if ("--make-data" %in% commandArgs(trailingOnly = TRUE)) make_data()

d <- read.csv(data_path, colClasses = "integer")

row <- function(model, quantity, value, term = NA, group = NA, time = NA) {
  data.frame(model = model, term = term, group = group, time = time,
             quantity = quantity, value = sprintf("%.17g", value))
}

control <- coxph.control(eps = 1e-10, iter.max = 50)

cox_rows <- function(model, form) {
  fit <- coxph(form, data = d, cluster = lopnr, control = control)
  stopifnot(fit$method == "efron", is.null(fit$fail))
  v_set <- coxph(form, data = d, cluster = set_id, control = control)$var
  v_row <- coxph(form, data = d, robust = TRUE, control = control)$var
  b <- coef(fit)
  p <- summary(fit)$coefficients[, "Pr(>|z|)"]
  terms <- names(b)
  rbind(
    row(model, "coef", b, terms),
    row(model, "se_naive", sqrt(diag(fit$naive.var)), terms),
    row(model, "se_robust", sqrt(diag(fit$var)), terms),
    row(model, "p_robust", p, terms),
    row(model, "se_set", sqrt(diag(v_set)), terms),
    row(model, "se_two_way", sqrt(diag(v_set + fit$var - v_row)), terms),
    row(model, "concordance", concordance(fit)$concordance),
    row(model, "n", fit$n),
    row(model, "nevent", fit$nevent)
  )
}

km <- survfit(Surv(duration_days, event) ~ case, data = d, conf.type = "log-log")
at <- summary(km, times = km_times)
group <- sub("case=", "", as.character(at$strata))
km_rows <- do.call(rbind, lapply(c("n_risk", "surv", "lower", "upper"), function(q) {
  value <- switch(q, n_risk = at$n.risk, surv = at$surv, lower = at$lower, upper = at$upper)
  row("km", q, value, group = group, time = at$time)
}))
med <- summary(km)$table
med_group <- sub("case=", "", rownames(med))
median_rows <- rbind(
  row("km_median", "median", med[, "median"], group = med_group),
  row("km_median", "lower", med[, "0.95LCL"], group = med_group),
  row("km_median", "upper", med[, "0.95UCL"], group = med_group)
)

out <- rbind(
  cox_rows("cox_case", Surv(duration_days, event) ~ case + strata(set_id)),
  cox_rows("cox_adjusted", Surv(duration_days, event) ~ case + age + strata(set_id)),
  km_rows,
  median_rows
)
write.csv(out, results_path, row.names = FALSE, quote = TRUE, na = "")
