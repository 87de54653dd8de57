# R reference values for the heterogeneity between centers (issue 18); tests/test_heterogeneity.py
# reads the output. Run from the repository root:   Rscript tests/reference/make_heterogeneity.R
# Writes tests/reference/r_heterogeneity.json (committed; CI has no R).
# Needs: R >= 4.2, jsonlite, metafor, cmprsk, lme4
#   (Debian 12: r-base-core r-cran-jsonlite r-cran-metafor r-cran-cmprsk r-cran-lme4).
# Data: data/mc_transfusions.csv, data/mc_patients.csv (make_multicenter_datasets.py),
#       data/het_bleeding.csv (make_heterogeneity_datasets.py).

options(warn = 1)
suppressPackageStartupMessages({
  library(jsonlite)
  library(metafor)
  library(cmprsk)
  library(lme4)
})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
data_dir <- file.path(here, "data")
pt <- read.csv(file.path(data_dir, "mc_patients.csv"), stringsAsFactors = FALSE)
tr <- read.csv(file.path(data_dir, "mc_transfusions.csv"), stringsAsFactors = FALSE)
bl <- read.csv(file.path(data_dir, "het_bleeding.csv"), stringsAsFactors = FALSE)

out <- list(meta = list(r_version = R.version.string,
                        metafor = as.character(packageVersion("metafor")),
                        cmprsk = as.character(packageVersion("cmprsk")),
                        lme4 = as.character(packageVersion("lme4")),
                        generated = format(Sys.time(), "%Y-%m-%d")))

# CCI ~ IL-6 slope per center, then Cochran's Q and I^2 (fixed-effect model)
centers <- sort(unique(tr$center))
slopes <- t(sapply(centers, function(c) {
  s <- summary(lm(cci ~ il6, data = tr[tr$center == c, ]))$coefficients
  c(s["il6", 1], s["il6", 2])
}))
fe <- rma(yi = slopes[, 1], sei = slopes[, 2], method = "FE")
out$cci_il6_slopes <- list(centers = centers, slope = unname(slopes[, 1]), se = unname(slopes[, 2]),
                           Q = fe$QE, Q_df = fe$k - 1, Q_p = fe$QEp, I2 = fe$I2,
                           pooled = unname(coef(fe)), pooled_se = fe$se)

# Q and I^2 where the estimates do differ (I^2 > 0): four hand-written estimates
h <- rma(yi = c(0.1, 0.5, 0.9, -0.2), sei = c(0.1, 0.15, 0.2, 0.12), method = "FE")
out$q_heterogeneous <- list(yi = c(0.1, 0.5, 0.9, -0.2), sei = c(0.1, 0.15, 0.2, 0.12),
                            Q = h$QE, Q_p = h$QEp, I2 = h$I2, pooled = unname(coef(h)))

# Table 1 continuous row: group (car_t) x center interaction, F test
pt$center <- factor(pt$center)
a <- anova(lm(temp ~ car_t + center, data = pt), lm(temp ~ car_t * center, data = pt))
out$temp_car_t_interaction <- list(F = a$F[2], df1 = a$Df[2], df2 = a$Res.Df[2], p_value = a[["Pr(>F)"]][2])

# Bleeding CIF: Gray's test across centers within each group
out$gray_between_centers <- lapply(split(bl, bl$group), function(d) {
  ci <- cuminc(d$time, d$status, d$center, rho = 0, cencode = 0)
  list(statistic = unname(ci$Tests["1", "stat"]), p_value = unname(ci$Tests["1", "pv"]),
       df = unname(ci$Tests["1", "df"]))
})

# CCI ~ IL-6 with a random intercept per patient (linear mixed model, REML)
m <- lmer(cci ~ il6 + (1 | patient), data = tr, REML = TRUE,
          control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12)))
s <- summary(m)$coefficients
vc <- as.data.frame(VarCorr(m))
out$cci_il6_lmer_patient <- list(variables = rownames(s), estimate = unname(s[, 1]), se = unname(s[, 2]),
                                 patient_var = vc$vcov[vc$grp == "patient"],
                                 residual_var = vc$vcov[vc$grp == "Residual"],
                                 loglik_reml = as.numeric(logLik(m)))

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "r_heterogeneity.json"))
