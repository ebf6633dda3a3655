# Pinned R reference for pipeline/stats/fractional.py (tests/test_fractional.py).
#
# R version 4.2.2 Patched (2022-11-10 r83330), Debian bookworm packages:
#   stats 4.2.2, sandwich 3.0.2 (r-cran-sandwich 3.0-2-1).
#
# Run from the repository root:
#   Rscript tests/reference_r/fractional/fit.R   # refit -> results.csv
#
# Data: tests/reference_r/nb/data.csv (the NB2 pins' rows), the rows with a complete
# window (exposure_days = 365) and after_days <= 365; share = after_days / 365.
# Model (the pipeline's design; reference level = most frequent, ties by the smallest
# name in C order -- the pipeline's rule, re-implemented here):
#   glm(share ~ treated + prior_days + sex + diagnosis_group + region + age +
#       treated:prior_days, family = quasibinomial, epsilon = 1e-14)
# Covariances (column `vcov`):
#   model     vcov(fit): phi (X'WX)^-1, phi = Pearson chi-square / (N - K).
#   lopnr     sandwich::vcovCL(fit, cluster = ~lopnr, type = "HC1").
#   set_id    sandwich::vcovCL(fit, cluster = ~set_id, type = "HC1").
#   two_way   sandwich::vcovCL(fit, cluster = ~ lopnr + set_id, multi0 = FALSE,
#             type = "HC1").
# Extra days (term extra_days(prior_days=v), v = 0, 90, 180, 365): 365 x [mean
#   predict(type = "response") with treated = 1, prior_days = v - the same with
#   treated = 0], other covariates as observed; delta-method SE with a central-difference
#   numeric gradient (independent of the pipeline's analytic one).
# Row "dispersion": summary(fit)$dispersion.

suppressPackageStartupMessages(library(sandwich))

dir <- file.path("tests", "reference_r", "fractional")
d <- read.csv(file.path("tests", "reference_r", "nb", "data.csv"), colClasses = c(
  lopnr = "integer", after_days = "integer", treated = "integer", prior_days = "integer",
  sex = "character", diagnosis_group = "character", region = "character",
  age = "integer", exposure_days = "integer", set_id = "integer"))
window_days <- 365
d <- d[d$exposure_days == window_days & d$after_days <= window_days, ]
d$share <- d$after_days / window_days

as_factor <- function(x) {
  counts <- table(factor(x, levels = sort(unique(x), method = "radix")))
  ref <- names(counts)[which.max(counts)]
  relevel(factor(x, levels = names(counts)), ref = ref)
}
factors <- c("sex", "diagnosis_group", "region")
for (f in factors) d[[f]] <- as_factor(d[[f]])
term_names <- function(nm) {
  nm[nm == "(Intercept)"] <- "intercept"
  for (f in factors) {
    hit <- startsWith(nm, f)
    nm[hit] <- sprintf("%s[%s]", f, substring(nm[hit], nchar(f) + 1))
  }
  nm
}

fit <- glm(share ~ treated + prior_days + sex + diagnosis_group + region + age +
             treated:prior_days, family = quasibinomial, data = d,
           control = glm.control(epsilon = 1e-14, maxit = 100))
stopifnot(fit$converged)
b <- coef(fit)
vcovs <- list(
  model = vcov(fit),
  lopnr = vcovCL(fit, cluster = ~lopnr, type = "HC1"),
  set_id = vcovCL(fit, cluster = ~set_id, type = "HC1"),
  two_way = vcovCL(fit, cluster = ~ lopnr + set_id, multi0 = FALSE, type = "HC1")
)

tt <- delete.response(terms(fit))
mean_share <- function(p, nd) {
  xm <- model.matrix(tt, model.frame(tt, nd, xlev = fit$xlevels))
  mean(plogis(drop(xm %*% p)))
}
numeric_gradient <- function(f, p) {
  vapply(seq_along(p), function(j) {
    h <- 1e-6 * max(1, abs(p[j]))
    up <- p
    dn <- p
    up[j] <- p[j] + h
    dn[j] <- p[j] - h
    (f(up) - f(dn)) / (2 * h)
  }, numeric(1))
}
extra <- lapply(c(0, 90, 180, 365), function(v) {
  n1 <- d
  n1$treated <- 1
  n1$prior_days <- v
  n0 <- n1
  n0$treated <- 0
  est <- window_days * (mean(predict(fit, n1, type = "response")) -
                          mean(predict(fit, n0, type = "response")))
  f <- function(p) window_days * (mean_share(p, n1) - mean_share(p, n0))
  stopifnot(abs(est - f(b)) < 1e-9 * abs(est))
  list(term = sprintf("extra_days(prior_days=%g)", v), est = est,
       grad = numeric_gradient(f, b))
})

rows <- lapply(names(vcovs), function(vn) {
  v <- vcovs[[vn]]
  se_extra <- vapply(extra, function(e) sqrt(drop(t(e$grad) %*% v %*% e$grad)), numeric(1))
  data.frame(vcov = vn, term = c(term_names(names(b)), vapply(extra, `[[`, "", "term")),
             estimate = c(unname(b), vapply(extra, `[[`, 0, "est")),
             std_err = c(sqrt(diag(v)), se_extra))
})
out <- rbind(do.call(rbind, rows),
             data.frame(vcov = "none", term = c("dispersion", "n"),
                        estimate = c(summary(fit)$dispersion, nrow(d)), std_err = NA))
out$estimate <- sprintf("%.17g", out$estimate)
out$std_err <- ifelse(is.na(out$std_err), "", sprintf("%.17g", out$std_err))
write.csv(out, file.path(dir, "results.csv"), row.names = FALSE, quote = TRUE, na = "")
