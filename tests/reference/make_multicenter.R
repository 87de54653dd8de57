# R reference values for the multi-center analyses (issue 18); tests/test_multicenter.py reads
# the output. Run from the repository root:   Rscript tests/reference/make_multicenter.R
# Writes tests/reference/r_multicenter.json (committed; CI has no R).
# Needs: R >= 4.2, jsonlite, geepack (Debian 12: r-base-core r-cran-jsonlite r-cran-geepack).
# Data: tests/reference/data/mc_patients.csv, mc_transfusions.csv (make_multicenter_datasets.py).

options(warn = 1)
suppressPackageStartupMessages({
  library(jsonlite)
  library(geepack)
})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
data_dir <- file.path(here, "data")
pt <- read.csv(file.path(data_dir, "mc_patients.csv"), stringsAsFactors = FALSE)
tr <- read.csv(file.path(data_dir, "mc_transfusions.csv"), stringsAsFactors = FALSE)

# Breslow-Day around the Mantel-Haenszel estimate (DescTools::BreslowDayTest algorithm, as in
# make_reference.R), with and without Tarone's correction.
breslow_day <- function(x, tarone = FALSE) {
  psi <- unname(mantelhaen.test(x, exact = FALSE)$estimate)
  K <- dim(x)[3]
  stat <- 0; resid <- 0; vsum <- 0
  for (k in seq_len(K)) {
    a <- x[1, 1, k]; n1 <- sum(x[1, , k]); m1 <- sum(x[, 1, k]); n <- sum(x[, , k])
    lo <- max(0, n1 + m1 - n); hi <- min(n1, m1)
    f <- function(A) A * (n - n1 - m1 + A) - psi * (n1 - A) * (m1 - A)
    ea <- uniroot(f, c(lo, hi), tol = 1e-14, maxiter = 10000)$root
    v <- 1 / (1 / ea + 1 / (n1 - ea) + 1 / (m1 - ea) + 1 / (n - n1 - m1 + ea))
    stat <- stat + (a - ea)^2 / v
    resid <- resid + (a - ea); vsum <- vsum + v
  }
  if (tarone) stat <- stat - resid^2 / vsum
  list(statistic = stat, p_value = pchisq(stat, K - 1, lower.tail = FALSE), df = K - 1)
}

# 2 x 2 x K: rows exposure yes/no, columns PTR yes/no, strata centers (sorted)
strat <- function(d, exposure) {
  x <- table(factor(d[[exposure]], c(1, 0)), factor(d$ptr, c(1, 0)), d$center)
  m <- mantelhaen.test(x, correct = FALSE, exact = FALSE)
  bdt <- breslow_day(x, TRUE)
  list(tables = lapply(seq_len(dim(x)[3]), function(k) unname(unclass(x[, , k]))),
       centers = dimnames(x)[[3]],
       statistic = unname(m$statistic), p_value = m$p.value,
       common_odds_ratio = unname(m$estimate), ci_low = m$conf.int[1], ci_high = m$conf.int[2],
       breslow_day_tarone_statistic = bdt$statistic, breslow_day_tarone_p_value = bdt$p_value)
}

coefs <- function(fit, se = NULL) {
  s <- summary(fit)$coefficients
  list(variables = rownames(s), estimate = unname(s[, 1]), se = unname(s[, 2]),
       p_value = unname(s[, 4]))
}

out <- list(meta = list(r_version = R.version.string,
                        geepack = as.character(packageVersion("geepack")),
                        generated = format(Sys.time(), "%Y-%m-%d")))

cart <- pt[pt$car_t == 1, ]
out$cmh <- list(car_t_ptr = strat(pt, "car_t"), crs3_ptr_cart = strat(cart, "crs3"))

# logistic regression, center as a fixed effect; heterogeneity: LR test of exposure x center
pt$center <- factor(pt$center)
fe <- glm(ptr ~ car_t + center, family = binomial, data = pt,
          control = glm.control(epsilon = 1e-14, maxit = 100))
int <- glm(ptr ~ car_t * center, family = binomial, data = pt,
           control = glm.control(epsilon = 1e-14, maxit = 100))
lr <- anova(fe, int, test = "Chisq")
out$logistic_center_fixed <- c(coefs(fe), list(
  interaction_lr_statistic = lr$Deviance[2], interaction_lr_df = lr$Df[2],
  interaction_lr_p_value = lr[["Pr(>Chi)"]][2]))

# GEE, center as the cluster (sandwich SEs), exchangeable and independence working correlation
pt <- pt[order(pt$center), ]
for (cs in c("exchangeable", "independence")) {
  g <- geeglm(ptr ~ car_t, id = center, family = binomial, corstr = cs, data = pt,
              control = geese.control(epsilon = 1e-12, maxit = 100))
  r <- coefs(g)
  if (cs == "exchangeable") r$alpha <- unname(summary(g)$corr[1, 1])
  out[[paste0("gee_center_", cs)]] <- r
}

# CCI ~ IL-6, transfusions of one patient as a cluster
tr <- tr[order(tr$patient), ]
out$cci_il6_lm <- coefs(lm(cci ~ il6, data = tr))
for (cs in c("exchangeable", "independence")) {
  g <- geeglm(cci ~ il6, id = factor(patient), family = gaussian, corstr = cs, data = tr,
              control = geese.control(epsilon = 1e-12, maxit = 100))
  r <- coefs(g)
  if (cs == "exchangeable") r$alpha <- unname(summary(g)$corr[1, 1])
  out[[paste0("cci_il6_gee_", cs)]] <- r
}

# platelet use: dose (x10^11) pooled; units only within a center; dose heterogeneity by center
w <- wilcox.test(pt$dose[pt$ptr == 1], pt$dose[pt$ptr == 0], exact = FALSE, correct = TRUE)
out$dose_pooled <- list(statistic = unname(w$statistic), p_value = w$p.value)
out$units_within_center <- lapply(split(pt, pt$center), function(d) {
  w <- suppressWarnings(wilcox.test(d$units[d$ptr == 1], d$units[d$ptr == 0]))
  list(statistic = unname(w$statistic), p_value = w$p.value)
})
kw <- kruskal.test(dose ~ center, data = pt)
out$dose_by_center_kruskal <- list(statistic = unname(kw$statistic), df = unname(kw$parameter),
                                   p_value = kw$p.value)

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "r_multicenter.json"))
