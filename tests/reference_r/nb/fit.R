# Pinned R reference for pipeline/stats/nb2.py (tests/test_nb.py).
#
# R version 4.2.2 Patched (2022-11-10 r83330), Debian bookworm packages:
#   stats 4.2.2, MASS 7.3.58.2 (r-cran-mass 7.3-58.2-1),
#   sandwich 3.0.2 (r-cran-sandwich 3.0-2-1).
#
# Run from the repository root:
#   Rscript tests/reference_r/nb/fit.R              # refit data.csv -> results.csv
#   Rscript tests/reference_r/nb/fit.R --make-data  # first rewrite data.csv (seeded)
#
# Models (same design as pipeline.stats.nb2.fit_nb2), MASS::glm.nb (NB2, log link, theta =
# 1/alpha estimated by alternating IRLS / theta.ml to epsilon = 1e-12):
#   interaction: after_days ~ treated + prior_days + treated:prior_days + sex +
#                diagnosis_group + region + age + offset(log(exposure_days))
#   main:        the same without treated:prior_days (for the LR test)
#   no_offset:   interaction without the offset
# Reference level of each factor = its most frequent level, ties by the smallest name
# in C (code-point) order -- the pipeline's rule, re-implemented here.
#
# Covariances written (column `vcov`); N rows, K coefficients, G clusters (lopnr):
#   glmnb_model    vcov(glm.nb): (X'WX)^-1, W = mu / (1 + mu / theta), the EXPECTED
#                  information with theta held fixed. Row "theta": MASS's SE.theta.
#   glmnb_cluster  sandwich::vcovCL(fit, cluster = ~lopnr, type = "HC1"): bread
#                  (X'WX)^-1 as above, meat from estfun.glm = x (y - mu) / (1 + mu/theta),
#                  factor G/(G-1) * (N-1)/(N-K).
#   joint_model    inverse OBSERVED information of the joint (beta, alpha) NB2
#                  log-likelihood, from the analytic second derivatives coded below
#                  (checked against central differences of the analytic score). Row
#                  "alpha" = 1/theta with its SE. This is statsmodels' model-based
#                  covariance (and Stata nbreg's OIM) -- the pipeline's convention.
#   glmnb_two_way  sandwich::vcovCL(fit, cluster = ~ lopnr + set_id, multi0 = FALSE,
#                  type = "HC1"): Cameron-Gelbach-Miller two-way, each of the three meats
#                  (lopnr, set_id, their intersection, the last subtracted) with its own
#                  G/(G-1), then (N-1)/(N-K); bread as glmnb_model (theta fixed).
#   joint_cluster  cluster sandwich on the joint (beta, alpha) scores with the observed
#                  joint information as bread and statsmodels' use_correction factor
#                  G/(G-1) * (N-1)/(N-(K+1)) (statsmodels counts alpha as a parameter):
#                  the pipeline's cluster convention.
#   joint_set      the same clustered by set_id.
#   joint_two_way  the same two-way: meats G/(G-1) M_g for lopnr + set_id - intersection,
#                  then (N-1)/(N-(K+1)), joint bread: the pipeline's two-way convention.
# Extra days (term extra_days(prior_days=v), v = 0, 90, 180, 365): g-computation, mean
#   over all rows of mu(treated = 1, prior_days = v) - mu(treated = 0, prior_days = v),
#   other covariates as observed, offset log(365) for every row (full window; no offset
#   in no_offset), predicted through predict()'s model frame for the estimate; its
#   delta-method SE sqrt(g' V g) for each V above (beta block), g a central-difference
#   numeric gradient in the coefficients (independent of the pipeline's analytic one).
# Other rows: loglik (logLik, full constant), LR test of the interaction
#   (model lr_interaction: statistic = anova(main, interaction)'s LR stat., df, p from
#   pchisq(upper tail) -- anova.negbin's 1 - pchisq loses digits for small p).

suppressPackageStartupMessages({
  library(MASS)
  library(sandwich)
})

dir <- file.path("tests", "reference_r", "nb")
data_path <- file.path(dir, "data.csv")
results_path <- file.path(dir, "results.csv")
window_days <- 365

make_data <- function() {
  # 3 000 rows, 1 200 persons (1-8 rows each) with a shared gamma frailty (variance
  # 0.5) so cluster-robust SEs differ visibly from model-based ones; 20 % of rows have
  # a window cut short (exposure_days < 365).
  set.seed(20260602)
  n_persons <- 1200
  n_rows <- 3000
  lopnr <- sort(c(seq_len(n_persons), sample(n_persons, n_rows - n_persons, replace = TRUE)))
  frailty <- rgamma(n_persons, shape = 2, rate = 2)[lopnr]
  person_treated <- rbinom(n_persons, 1, 0.3)[lopnr]
  treated <- ifelse(runif(n_rows) < 0.9, person_treated, 1 - person_treated)
  prior_days <- ifelse(runif(n_rows) < 0.35, 0L, sample(1:365, n_rows, replace = TRUE))
  sex <- sample(c("K", "M"), n_persons, replace = TRUE, prob = c(0.6, 0.4))[lopnr]
  diagnosis_group <- sample(c("F", "M", "other"), n_rows, replace = TRUE,
                            prob = c(0.45, 0.35, 0.2))
  region <- sample(c("01", "12", "14", "25"), n_persons, replace = TRUE,
                   prob = c(0.35, 0.25, 0.25, 0.15))[lopnr]
  age <- sample(20:66, n_persons, replace = TRUE)[lopnr]
  exposure_days <- ifelse(runif(n_rows) < 0.8, 365L, sample(30:364, n_rows, replace = TRUE))
  eta <- log(exposure_days / 365) + 2.6 + 0.5 * treated + 0.004 * prior_days -
    0.001 * treated * prior_days + 0.1 * (sex == "M") +
    c(F = 0.3, M = 0, other = -0.2)[diagnosis_group] +
    c("01" = 0, "12" = 0.15, "14" = -0.1, "25" = 0.2)[region] + 0.01 * (age - 45)
  after_days <- rnbinom(n_rows, size = 1.25, mu = exp(eta) * frailty)
  # Drawn last (added later, so the columns above are unchanged): a matched set per row,
  # 1 000 sets crossing the persons, for set and two-way clustering.
  set_id <- sample(1000, n_rows, replace = TRUE)
  out <- data.frame(lopnr = lopnr, after_days = after_days, treated = treated,
                    prior_days = prior_days, sex = sex, diagnosis_group = diagnosis_group,
                    region = region, age = age, exposure_days = exposure_days,
                    set_id = set_id)
  write.csv(out, data_path, row.names = FALSE, quote = TRUE)
}

if ("--make-data" %in% commandArgs(trailingOnly = TRUE)) make_data()

d <- read.csv(data_path, colClasses = c(
  lopnr = "integer", after_days = "integer", treated = "integer", prior_days = "integer",
  sex = "character", diagnosis_group = "character", region = "character",
  age = "integer", exposure_days = "integer", set_id = "integer"))

as_factor <- function(x) {
  counts <- table(factor(x, levels = sort(unique(x), method = "radix")))
  ref <- names(counts)[which.max(counts)]  # first maximum = smallest name among ties
  relevel(factor(x, levels = names(counts)), ref = ref)
}
factors <- c("sex", "diagnosis_group", "region")
for (f in factors) d[[f]] <- as_factor(d[[f]])

# R term names -> the pipeline's names ("region[12]", "intercept").
term_names <- function(nm) {
  nm[nm == "(Intercept)"] <- "intercept"
  for (f in factors) {
    hit <- startsWith(nm, f)
    nm[hit] <- sprintf("%s[%s]", f, substring(nm[hit], nchar(f) + 1))
  }
  nm
}

# NB2 log-likelihood pieces in (beta, alpha), alpha = 1/theta.
nb2_score <- function(x, y, mu, a) {
  cbind(x * ((y - mu) / (1 + a * mu)),
        alpha = (y - mu) / (a * (1 + a * mu)) + log1p(a * mu) / a^2 -
          (digamma(y + 1 / a) - digamma(1 / a)) / a^2)
}
nb2_hessian <- function(x, y, mu, a) {
  h_bb <- -crossprod(x, x * (mu * (1 + a * y) / (1 + a * mu)^2))
  h_ba <- -colSums(x * (mu * (y - mu) / (1 + a * mu)^2))
  h_aa <- sum(-(y - mu) * (1 + 2 * a * mu) / (a^2 * (1 + a * mu)^2) +
                mu / (a^2 * (1 + a * mu)) - 2 * log1p(a * mu) / a^3 +
                2 * (digamma(y + 1 / a) - digamma(1 / a)) / a^3 +
                (trigamma(y + 1 / a) - trigamma(1 / a)) / a^4)
  rbind(cbind(h_bb, h_ba), c(h_ba, h_aa))
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

fit_model <- function(label, form, use_offset) {
  fit <- glm.nb(form, data = d, control = glm.control(epsilon = 1e-12, maxit = 100))
  stopifnot(fit$converged, !anyNA(coef(fit)))
  b <- coef(fit)
  a <- 1 / fit$theta
  x <- model.matrix(fit)
  y <- d$after_days
  off <- if (use_offset) log(d$exposure_days) else 0
  mu <- unname(drop(exp(x %*% b + off)))
  stopifnot(isTRUE(all.equal(mu, unname(fitted(fit)), tolerance = 1e-10)))
  n <- nrow(x)
  k <- ncol(x)
  score <- nb2_score(x, y, mu, a)
  hess <- nb2_hessian(x, y, mu, a)
  # The joint score is ~0 at glm.nb's optimum, and the analytic Hessian agrees with
  # central differences of the analytic score (loose: numeric differences).
  stopifnot(max(abs(colSums(score))) < 1e-4)
  theta_vec <- c(b, a)
  total_score <- function(p) {
    m <- drop(exp(x %*% p[1:k] + off))
    colSums(nb2_score(x, y, m, p[k + 1]))
  }
  scale <- c(apply(abs(x), 2, max), 1)  # step per unit of eta: prior_days runs to 365
  num_hess <- sapply(seq_along(theta_vec), function(j) {
    h <- 1e-5 * max(1, abs(theta_vec[j])) / scale[j]
    up <- theta_vec
    dn <- theta_vec
    up[j] <- up[j] + h
    dn[j] <- dn[j] - h
    (total_score(up) - total_score(dn)) / (2 * h)
  })
  stopifnot(max(abs(num_hess - hess) / pmax(1, abs(hess))) < 1e-5)

  info_inv <- solve(-hess)
  # G/(G-1) * crossprod of the per-cluster score sums, for one clustering.
  adjusted_meat <- function(cl) {
    g <- length(unique(cl))
    g / (g - 1) * crossprod(rowsum(score, cl))
  }
  joint_from_meat <- function(meat) (n - 1) / (n - (k + 1)) * info_inv %*% meat %*% info_inv
  pair <- paste(d$lopnr, d$set_id, sep = "_")
  vcovs <- list(
    glmnb_model = vcov(fit),
    glmnb_cluster = vcovCL(fit, cluster = ~lopnr, type = "HC1"),
    glmnb_two_way = vcovCL(fit, cluster = ~ lopnr + set_id, multi0 = FALSE, type = "HC1"),
    joint_model = info_inv,
    joint_cluster = joint_from_meat(adjusted_meat(d$lopnr)),
    joint_set = joint_from_meat(adjusted_meat(d$set_id)),
    joint_two_way = joint_from_meat(
      adjusted_meat(d$lopnr) + adjusted_meat(d$set_id) - adjusted_meat(pair))
  )

  # g-computation of extra days; predict() builds treated:prior_days from the formula.
  tt <- delete.response(terms(fit))
  at <- c(0, 90, 180, 365)
  frame_at <- function(arm, v) {
    nd <- d
    nd$treated <- arm
    nd$prior_days <- v
    nd$exposure_days <- window_days
    nd
  }
  mean_mu <- function(p, nd) {
    xm <- model.matrix(tt, model.frame(tt, nd, xlev = fit$xlevels))
    mean(exp(drop(xm %*% p) + if (use_offset) log(window_days) else 0))
  }
  extra <- lapply(at, function(v) {
    n1 <- frame_at(1, v)
    n0 <- frame_at(0, v)
    est <- mean(predict(fit, n1, type = "response")) - mean(predict(fit, n0, type = "response"))
    stopifnot(abs(est - (mean_mu(b, n1) - mean_mu(b, n0))) < 1e-9 * abs(est))
    grad <- numeric_gradient(function(p) mean_mu(p, n1) - mean_mu(p, n0), b)
    list(term = sprintf("extra_days(prior_days=%g)", v), est = est, grad = grad)
  })

  rows <- lapply(names(vcovs), function(vn) {
    v <- vcovs[[vn]][1:k, 1:k]
    se_extra <- vapply(extra, function(e) sqrt(drop(t(e$grad) %*% v %*% e$grad)), numeric(1))
    out <- data.frame(model = label, vcov = vn,
                      term = c(term_names(names(b)), vapply(extra, `[[`, "", "term")),
                      estimate = c(unname(b), vapply(extra, `[[`, 0, "est")),
                      std_err = c(sqrt(diag(v)), se_extra))
    if (vn == "glmnb_model") {
      out <- rbind(out, data.frame(model = label, vcov = vn, term = "theta",
                                   estimate = fit$theta, std_err = fit$SE.theta))
    }
    if (startsWith(vn, "joint")) {
      out <- rbind(out, data.frame(model = label, vcov = vn, term = "alpha", estimate = a,
                                   std_err = sqrt(vcovs[[vn]][k + 1, k + 1])))
    }
    out
  })
  rows[[length(rows) + 1]] <- data.frame(model = label, vcov = "none", term = "loglik",
                                         estimate = as.numeric(logLik(fit)), std_err = NA)
  list(fit = fit, rows = do.call(rbind, rows))
}

rhs <- "treated + prior_days + sex + diagnosis_group + region + age"
interaction <- fit_model(
  "interaction",
  as.formula(paste("after_days ~", rhs, "+ treated:prior_days + offset(log(exposure_days))")),
  TRUE)
main <- fit_model(
  "main", as.formula(paste("after_days ~", rhs, "+ offset(log(exposure_days))")), TRUE)
no_offset <- fit_model(
  "no_offset", as.formula(paste("after_days ~", rhs, "+ treated:prior_days")), FALSE)

lr <- anova(main$fit, interaction$fit)
lr_stat <- lr[["LR stat."]][2]
lr_df <- lr[["   df"]][2]
lr_rows <- data.frame(model = "lr_interaction", vcov = "none",
                      term = c("statistic", "df", "p_value"),
                      estimate = c(lr_stat, lr_df, pchisq(lr_stat, lr_df, lower.tail = FALSE)),
                      std_err = NA)

out <- rbind(interaction$rows, main$rows, no_offset$rows, lr_rows)
out$estimate <- sprintf("%.17g", out$estimate)
out$std_err <- ifelse(is.na(out$std_err), "", sprintf("%.17g", out$std_err))
write.csv(out, results_path, row.names = FALSE, quote = TRUE, na = "")
