# Pinned R reference for pipeline/stats/logit.py (tests/test_regression.py).
#
# R version 4.2.2 Patched (2022-11-10 r83330), Debian bookworm packages:
#   stats 4.2.2, sandwich 3.0.2 (r-cran-sandwich 3.0-2-1), lmtest 0.9.40 (not needed
#   by this script; coeftest would only add p-values).
#
# Run from the repository root:
#   Rscript tests/reference_r/logit/fit.R              # refit data.csv -> results.csv
#   Rscript tests/reference_r/logit/fit.R --make-data  # first rewrite data.csv (seeded)
#
# Models (same design as pipeline.stats.logit.fit_logit):
#   logit: glm(y ~ treated + region + education + age, family = binomial)
#   lpm:   lm(y ~ treated + region + education + age)
# Reference level of each factor = its most frequent level, ties by the smallest name
# in C (code-point) order -- the pipeline's rule, re-implemented here.
#
# Covariances written (column `vcov`), the conventions the test reconciles:
#   model        vcov(glm): inverse Fisher information (= statsmodels' inverse Hessian;
#                identical for the canonical logit link).
#   cluster_hc1  sandwich::vcovCL(fit, cluster = ~id, type = "HC1"), cadjust = TRUE:
#                G/(G-1) * (N-1)/(N-K) * H^-1 B H^-1; this is statsmodels
#                cov_type = "cluster" with use_correction = True (the pipeline's choice).
#   cluster_hc0  vcovCL(type = "HC0"): G/(G-1) only = Stata `logit, vce(cluster id)`.
#   hc1          (lpm) sandwich::vcovHC(fit, type = "HC1") = N/(N-K) * HC0
#                = statsmodels OLS cov_type = "HC1" = Stata `regress, vce(robust)`.
# AME of treated (percentage points): mean over rows of
#   plogis(x_i1 b) - plogis(x_i0 b), times 100, with x_i1 / x_i0 = row i with treated
#   set to 1 / 0; delta-method SE sqrt(g' V g) with a central-difference numeric gradient
#   g (independent of the pipeline's analytic gradient). For the lpm the AME is the
#   coefficient times 100.

suppressPackageStartupMessages(library(sandwich))

dir <- file.path("tests", "reference_r", "logit")
data_path <- file.path(dir, "data.csv")
results_path <- file.path(dir, "results.csv")

make_data <- function() {
  # 1 200 rows, 500 persons (1-4 rows each), person-level random intercept so the
  # cluster-robust SEs differ visibly from the model-based ones.
  set.seed(20260601)
  n_persons <- 500
  n_rows <- 1200
  id <- sort(c(seq_len(n_persons), sample(n_persons, n_rows - n_persons, replace = TRUE)))
  u <- rnorm(n_persons, sd = 1)[id]
  person_treated <- rbinom(n_persons, 1, 0.35)[id]
  treated <- ifelse(runif(n_rows) < 0.85, person_treated, 1 - person_treated)
  region <- sample(c("03", "05", "12", "14"), n_persons, replace = TRUE,
                   prob = c(0.2, 0.3, 0.3, 0.2))[id]
  education <- sample(c("eftergymnasial", "forgymnasial", "gymnasial", "saknas"),
                      n_rows, replace = TRUE, prob = c(0.35, 0.15, 0.45, 0.05))
  age <- sample(20:66, n_persons, replace = TRUE)[id]
  eta <- -0.2 + 0.4 * treated +
    c("03" = 0, "05" = 0.3, "12" = -0.2, "14" = 0.5)[region] +
    c(eftergymnasial = 0.4, forgymnasial = -0.5, gymnasial = 0, saknas = -0.3)[education] +
    0.02 * (age - 45) + u
  y <- rbinom(n_rows, 1, plogis(eta))
  out <- data.frame(id = id, y = y, treated = treated, region = region,
                    education = education, age = age)
  write.csv(out, data_path, row.names = FALSE, quote = TRUE)
}

if ("--make-data" %in% commandArgs(trailingOnly = TRUE)) make_data()

d <- read.csv(data_path, colClasses = c(id = "integer", y = "integer", treated = "integer",
                                        region = "character", education = "character",
                                        age = "integer"))

as_factor <- function(x) {
  counts <- table(factor(x, levels = sort(unique(x), method = "radix")))
  ref <- names(counts)[which.max(counts)]  # first maximum = smallest name among ties
  relevel(factor(x, levels = names(counts)), ref = ref)
}
d$region <- as_factor(d$region)
d$education <- as_factor(d$education)

# R term names -> the pipeline's names ("region[05]", "intercept").
term_names <- function(b) {
  nm <- names(b)
  nm[nm == "(Intercept)"] <- "intercept"
  for (f in c("region", "education")) {
    hit <- startsWith(nm, f)
    nm[hit] <- sprintf("%s[%s]", f, substring(nm[hit], nchar(f) + 1))
  }
  nm
}

ame_logit <- function(fit, b) {
  x1 <- model.matrix(fit)
  x0 <- x1
  x1[, "treated"] <- 1
  x0[, "treated"] <- 0
  100 * mean(plogis(x1 %*% b) - plogis(x0 %*% b))
}

numeric_gradient <- function(f, b) {
  vapply(seq_along(b), function(j) {
    h <- 1e-6 * max(1, abs(b[j]))
    up <- b
    dn <- b
    up[j] <- b[j] + h
    dn[j] <- b[j] - h
    (f(up) - f(dn)) / (2 * h)
  }, numeric(1))
}

rows_for <- function(model, vcov_name, b, v, ame, ame_grad) {
  ame_se <- sqrt(drop(t(ame_grad) %*% v %*% ame_grad))
  data.frame(model = model, vcov = vcov_name,
             term = c(term_names(b), "AME_pp(treated)"),
             estimate = c(unname(b), ame), std_err = c(sqrt(diag(v)), ame_se))
}

form <- y ~ treated + region + education + age

logit <- glm(form, family = binomial, data = d,
             control = glm.control(epsilon = 1e-14, maxit = 100))
b <- coef(logit)
stopifnot(logit$converged, !anyNA(b))
ame <- ame_logit(logit, b)
grad <- numeric_gradient(function(bb) ame_logit(logit, bb), b)
logit_vcov <- list(
  model = vcov(logit),
  cluster_hc1 = vcovCL(logit, cluster = ~id, type = "HC1"),
  cluster_hc0 = vcovCL(logit, cluster = ~id, type = "HC0")
)

lpm <- lm(form, data = d)
bl <- coef(lpm)
lpm_grad <- 100 * (names(bl) == "treated")
lpm_vcov <- list(
  hc1 = vcovHC(lpm, type = "HC1"),
  cluster_hc1 = vcovCL(lpm, cluster = ~id, type = "HC1")
)

out <- rbind(
  do.call(rbind, lapply(names(logit_vcov), function(v)
    rows_for("logit", v, b, logit_vcov[[v]], ame, grad))),
  do.call(rbind, lapply(names(lpm_vcov), function(v)
    rows_for("lpm", v, bl, lpm_vcov[[v]], 100 * unname(bl["treated"]), lpm_grad)))
)
out$estimate <- sprintf("%.17g", out$estimate)
out$std_err <- sprintf("%.17g", out$std_err)
write.csv(out, results_path, row.names = FALSE, quote = TRUE)
