/* cs-metrics.h: evaluation numerics for U2AD: thresholds, binary metrics, ROC AUC,
 * stratified cross-validation, and reconstruction quality (MSE, PSNR, SSIM, mean EU).
 *
 * Scores: higher = more anomalous; an item is predicted positive when score >= threshold.
 * NAN scores (an absent segment) are skipped everywhere. Truth: non-zero = abnormal. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CS_METRICS_ERROR (cs_metrics_error_quark ())
GQuark cs_metrics_error_quark (void);

typedef enum {
  CS_METRICS_ERROR_NO_POSITIVES, /* a threshold needs abnormal items to aim at */
  CS_METRICS_ERROR_FOLDS,        /* bad fold count or fold ids */
} CsMetricsError;

typedef struct {
  int tp, fp, tn, fn;
  double accuracy;    /* (tp + tn) / n */
  double precision;   /* tp / (tp + fp); NAN with no predicted positive */
  double recall;      /* sensitivity, tp / (tp + fn); NAN with no abnormal item */
  double specificity; /* tn / (tn + fp); NAN with no normal item */
  double f1;          /* 2 tp / (2 tp + fp + fn); NAN when that is 0 / 0 */
} CsBinaryMetrics;

void cs_binary_metrics (const double *scores, const guint8 *truth, int n, double threshold,
                        CsBinaryMetrics *metrics);

/* The highest threshold (one of the scores) whose recall is >= target_recall (0.9 for the
 * patient level). NAN when there is no abnormal item. */
double cs_threshold_for_recall (const double *scores, const guint8 *truth, int n,
                                double target_recall);

/* The threshold (one of the scores) with the highest F1; ties go to the highest threshold.
 * NAN when there is no abnormal item. */
double cs_threshold_best_f1 (const double *scores, const guint8 *truth, int n);

/* Area under the ROC curve: the probability that an abnormal item outscores a normal one,
 * ties counting one half (Mann-Whitney). NAN without both classes. */
double cs_roc_auc (const double *scores, const guint8 *truth, int n);

/* Stratified split of patients into n_folds folds, fixed by seed: abnormal and normal
 * patients are shuffled separately (GRand), then dealt round-robin, the normal ones
 * continuing where the abnormal ones stopped, so fold sizes and class counts each differ
 * by at most one. fold[i] in 0..n_folds-1. Items of a patient (segments) take its fold. */
void cs_stratified_folds (const guint8 *patient_truth, int n_patients, int n_folds,
                          guint32 seed, int *fold);

typedef enum {
  CS_THRESHOLD_RECALL, /* highest threshold with recall >= target (patient level, 0.9) */
  CS_THRESHOLD_F1,     /* F1-optimal threshold (segment level) */
} CsThresholdRule;

typedef struct {
  double mean;
  double sd; /* population sd over the folds where the value is defined (numpy's std) */
  int n;     /* folds where the value is defined */
} CsMeanSd;

#define CS_CV_MAX_FOLDS 20

typedef struct {
  int n_folds;
  double threshold[CS_CV_MAX_FOLDS];     /* chosen on the other folds */
  CsBinaryMetrics test[CS_CV_MAX_FOLDS]; /* on the fold itself */
  CsMeanSd accuracy, f1, recall, specificity;
  double auc; /* over all items, for reference; no threshold involved */
} CsCvResult;

/* Cross-validation: for each fold f, the threshold is chosen by rule on the items whose fold
 * is not f and applied to the items of fold f. target_recall is used by CS_THRESHOLD_RECALL.
 * Fails when n_folds is out of 2..CS_CV_MAX_FOLDS, a fold id is out of range, or the
 * training part of a fold has no abnormal item. */
gboolean cs_cv_evaluate (const double   *scores,
                         const guint8   *truth,
                         const int      *fold,
                         int             n,
                         int             n_folds,
                         CsThresholdRule rule,
                         double          target_recall,
                         CsCvResult     *result,
                         GError        **error);

/* Mean squared error over the pixels where mask is non-zero (mask NULL: all). NAN if none. */
double cs_mse (const float *a, const float *b, const guint8 *mask, gsize n_pixels);

/* PSNR with data range 1: 10 log10 (1 / MSE); +INFINITY for identical images. */
double cs_psnr (const float *a, const float *b, const guint8 *mask, gsize n_pixels);

/* SSIM (Wang et al. 2004) with data range 1: 11 x 11 Gaussian window, sigma 1.5,
 * K1 0.01, K2 0.03, population (co)variances, computed at every window that fits in the image
 * ('valid', no padding) and averaged; with mask, only over windows whose centre pixel is in
 * the mask. Equals skimage's structural_similarity (gaussian_weights=True, sigma=1.5,
 * use_sample_covariance=False, data_range=1), whose border crop drops the same windows.
 * NAN when the image is smaller than 11 x 11 or no window centre is in the mask. */
double cs_ssim (const float *a, const float *b, int height, int width, const guint8 *mask);

/* Mean of a map over the mask's pixels (mean EU over the ROI); NAN for an empty mask. */
double cs_mean_in_mask (const float *map, const guint8 *mask, gsize n_pixels);

G_END_DECLS
