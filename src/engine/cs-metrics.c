/* cs-metrics.c: thresholds, binary metrics, ROC AUC, cross-validation and reconstruction
 * quality for U2AD's evaluation. */
#include "engine/cs-metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK (cs-metrics-error-quark, cs_metrics_error)

/* 0 / 0 is undefined here, not 0: the caller decides how to report it. */
static double
ratio_or_nan (double numerator, double denominator)
{
  return denominator > 0.0 ? numerator / denominator : NAN;
}

void
cs_binary_metrics (const double *scores, const guint8 *truth, int n, double threshold,
                   CsBinaryMetrics *metrics)
{
  memset (metrics, 0, sizeof *metrics);
  for (int i = 0; i < n; i++)
    {
      if (isnan (scores[i]))
        continue;
      gboolean predicted = scores[i] >= threshold;
      if (truth[i])
        predicted ? metrics->tp++ : metrics->fn++;
      else
        predicted ? metrics->fp++ : metrics->tn++;
    }
  int tp = metrics->tp, fp = metrics->fp, tn = metrics->tn, fn = metrics->fn;
  metrics->accuracy = ratio_or_nan (tp + tn, tp + tn + fp + fn);
  metrics->precision = ratio_or_nan (tp, tp + fp);
  metrics->recall = ratio_or_nan (tp, tp + fn);
  metrics->specificity = ratio_or_nan (tn, tn + fp);
  metrics->f1 = ratio_or_nan (2.0 * tp, 2.0 * tp + fp + fn);
}

typedef struct {
  double score;
  gboolean abnormal;
} ScoredItem;

static int
compare_descending (const void *a, const void *b)
{
  double x = ((const ScoredItem *) a)->score, y = ((const ScoredItem *) b)->score;
  return (x < y) - (x > y);
}

/* The non-NAN items sorted by descending score; returns their count, *n_abnormal set. */
static int
sorted_items (const double *scores, const guint8 *truth, int n, ScoredItem *items,
              int *n_abnormal)
{
  int count = 0;
  *n_abnormal = 0;
  for (int i = 0; i < n; i++)
    if (!isnan (scores[i]))
      {
        items[count++] = (ScoredItem) { scores[i], truth[i] != 0 };
        *n_abnormal += truth[i] != 0;
      }
  qsort (items, (gsize) count, sizeof (ScoredItem), compare_descending);
  return count;
}

double
cs_threshold_for_recall (const double *scores, const guint8 *truth, int n,
                         double target_recall)
{
  g_autofree ScoredItem *items = g_new (ScoredItem, MAX (n, 1));
  int n_abnormal;
  int count = sorted_items (scores, truth, n, items, &n_abnormal);
  if (n_abnormal == 0)
    return NAN;
  /* Lowering the threshold through the distinct scores only raises recall: stop at the
   * first (highest) that reaches the target. */
  int tp = 0;
  for (int i = 0; i < count; i++)
    {
      tp += items[i].abnormal;
      gboolean last_of_value = i == count - 1 || items[i + 1].score != items[i].score;
      if (last_of_value && tp >= target_recall * n_abnormal - 1e-9)
        return items[i].score;
    }
  return items[count - 1].score;
}

double
cs_threshold_best_f1 (const double *scores, const guint8 *truth, int n)
{
  g_autofree ScoredItem *items = g_new (ScoredItem, MAX (n, 1));
  int n_abnormal;
  int count = sorted_items (scores, truth, n, items, &n_abnormal);
  if (n_abnormal == 0)
    return NAN;
  double best_threshold = NAN, best_f1 = -1.0;
  int tp = 0, fp = 0;
  for (int i = 0; i < count; i++)
    {
      items[i].abnormal ? tp++ : fp++;
      if (i < count - 1 && items[i + 1].score == items[i].score)
        continue;
      double f1 = 2.0 * tp / (2.0 * tp + fp + (n_abnormal - tp));
      /* Strictly better only: on a tie the earlier, higher threshold stays. */
      if (f1 > best_f1)
        {
          best_f1 = f1;
          best_threshold = items[i].score;
        }
    }
  return best_threshold;
}

double
cs_roc_auc (const double *scores, const guint8 *truth, int n)
{
  double wins = 0.0;
  gsize pairs = 0;
  /* All abnormal/normal pairs: exact, and a few hundred items make it cheap. */
  for (int i = 0; i < n; i++)
    {
      if (!truth[i] || isnan (scores[i]))
        continue;
      for (int j = 0; j < n; j++)
        {
          if (truth[j] || isnan (scores[j]))
            continue;
          wins += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0.0;
          pairs++;
        }
    }
  return pairs ? wins / (double) pairs : NAN;
}

void
cs_stratified_folds (const guint8 *patient_truth, int n_patients, int n_folds,
                     guint32 seed, int *fold)
{
  g_return_if_fail (n_folds > 0);
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  g_autofree int *order = g_new (int, MAX (n_patients, 1));
  int dealt = 0;
  for (int abnormal = 1; abnormal >= 0; abnormal--)
    {
      int count = 0;
      for (int i = 0; i < n_patients; i++)
        if ((patient_truth[i] != 0) == abnormal)
          order[count++] = i;
      for (int i = count - 1; i > 0; i--)
        {
          int j = g_rand_int_range (rng, 0, i + 1);
          int tmp = order[i];
          order[i] = order[j];
          order[j] = tmp;
        }
      for (int i = 0; i < count; i++)
        fold[order[i]] = dealt++ % n_folds;
    }
}

/* Mean and population sd of the defined (non-NAN) values. */
static CsMeanSd
mean_sd (const double *values, int n)
{
  CsMeanSd out = { NAN, NAN, 0 };
  double sum = 0.0;
  for (int i = 0; i < n; i++)
    if (!isnan (values[i]))
      {
        sum += values[i];
        out.n++;
      }
  if (out.n == 0)
    return out;
  out.mean = sum / out.n;
  double squares = 0.0;
  for (int i = 0; i < n; i++)
    if (!isnan (values[i]))
      squares += (values[i] - out.mean) * (values[i] - out.mean);
  out.sd = sqrt (squares / out.n);
  return out;
}

gboolean
cs_cv_evaluate (const double   *scores,
                const guint8   *truth,
                const int      *fold,
                int             n,
                int             n_folds,
                CsThresholdRule rule,
                double          target_recall,
                CsCvResult     *result,
                GError        **error)
{
  memset (result, 0, sizeof *result);
  if (n_folds < 2 || n_folds > CS_CV_MAX_FOLDS)
    {
      g_set_error (error, CS_METRICS_ERROR, CS_METRICS_ERROR_FOLDS,
                   "cross-validation needs 2 to %d folds, not %d", CS_CV_MAX_FOLDS, n_folds);
      return FALSE;
    }
  for (int i = 0; i < n; i++)
    if (fold[i] < 0 || fold[i] >= n_folds)
      {
        g_set_error (error, CS_METRICS_ERROR, CS_METRICS_ERROR_FOLDS,
                     "item %d has fold %d, outside 0..%d", i, fold[i], n_folds - 1);
        return FALSE;
      }

  result->n_folds = n_folds;
  g_autofree double *train_scores = g_new (double, MAX (n, 1));
  g_autofree double *test_scores = g_new (double, MAX (n, 1));
  g_autofree guint8 *train_truth = g_new (guint8, MAX (n, 1));
  g_autofree guint8 *test_truth = g_new (guint8, MAX (n, 1));
  double accuracy[CS_CV_MAX_FOLDS], f1[CS_CV_MAX_FOLDS], recall[CS_CV_MAX_FOLDS],
         specificity[CS_CV_MAX_FOLDS];
  for (int f = 0; f < n_folds; f++)
    {
      int n_train = 0, n_test = 0;
      for (int i = 0; i < n; i++)
        if (fold[i] == f)
          {
            test_scores[n_test] = scores[i];
            test_truth[n_test++] = truth[i];
          }
        else
          {
            train_scores[n_train] = scores[i];
            train_truth[n_train++] = truth[i];
          }
      double threshold = rule == CS_THRESHOLD_RECALL
                           ? cs_threshold_for_recall (train_scores, train_truth, n_train,
                                                      target_recall)
                           : cs_threshold_best_f1 (train_scores, train_truth, n_train);
      if (isnan (threshold))
        {
          g_set_error (error, CS_METRICS_ERROR, CS_METRICS_ERROR_NO_POSITIVES,
                       "the folds other than fold %d hold no abnormal item with a score, "
                       "so no threshold can be chosen for it", f);
          return FALSE;
        }
      result->threshold[f] = threshold;
      cs_binary_metrics (test_scores, test_truth, n_test, threshold, &result->test[f]);
      accuracy[f] = result->test[f].accuracy;
      f1[f] = result->test[f].f1;
      recall[f] = result->test[f].recall;
      specificity[f] = result->test[f].specificity;
    }
  result->accuracy = mean_sd (accuracy, n_folds);
  result->f1 = mean_sd (f1, n_folds);
  result->recall = mean_sd (recall, n_folds);
  result->specificity = mean_sd (specificity, n_folds);
  result->auc = cs_roc_auc (scores, truth, n);
  return TRUE;
}

double
cs_mse (const float *a, const float *b, const guint8 *mask, gsize n_pixels)
{
  double squares = 0.0;
  gsize n = 0;
  for (gsize i = 0; i < n_pixels; i++)
    if (mask == NULL || mask[i])
      {
        double d = (double) a[i] - b[i];
        squares += d * d;
        n++;
      }
  return n ? squares / (double) n : NAN;
}

double
cs_psnr (const float *a, const float *b, const guint8 *mask, gsize n_pixels)
{
  double mse = cs_mse (a, b, mask, n_pixels);
  if (isnan (mse))
    return NAN;
  return mse > 0.0 ? 10.0 * log10 (1.0 / mse) : INFINITY;
}

#define SSIM_RADIUS 5
#define SSIM_SIZE (2 * SSIM_RADIUS + 1)

/* Valid 1-D Gaussian filtering along rows then columns: out is (h - 10) x (w - 10). */
static void
gaussian_valid (const double *in, int height, int width, const double *kernel, double *tmp,
                double *out)
{
  int out_w = width - 2 * SSIM_RADIUS, out_h = height - 2 * SSIM_RADIUS;
  for (int y = 0; y < height; y++)
    for (int x = 0; x < out_w; x++)
      {
        double sum = 0.0;
        for (int t = 0; t < SSIM_SIZE; t++)
          sum += kernel[t] * in[(gsize) y * width + x + t];
        tmp[(gsize) y * out_w + x] = sum;
      }
  for (int y = 0; y < out_h; y++)
    for (int x = 0; x < out_w; x++)
      {
        double sum = 0.0;
        for (int t = 0; t < SSIM_SIZE; t++)
          sum += kernel[t] * tmp[(gsize) (y + t) * out_w + x];
        out[(gsize) y * out_w + x] = sum;
      }
}

double
cs_ssim (const float *a, const float *b, int height, int width, const guint8 *mask)
{
  if (height < SSIM_SIZE || width < SSIM_SIZE)
    return NAN;
  const double sigma = 1.5, c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  double kernel[SSIM_SIZE], kernel_sum = 0.0;
  for (int t = 0; t < SSIM_SIZE; t++)
    {
      double d = t - SSIM_RADIUS;
      kernel[t] = exp (-d * d / (2.0 * sigma * sigma));
      kernel_sum += kernel[t];
    }
  for (int t = 0; t < SSIM_SIZE; t++)
    kernel[t] /= kernel_sum;

  gsize n_pixels = (gsize) height * width;
  int out_h = height - 2 * SSIM_RADIUS, out_w = width - 2 * SSIM_RADIUS;
  gsize n_out = (gsize) out_h * out_w;
  /* Five filtered planes: E[a], E[b], E[a^2], E[b^2], E[ab] over each window. */
  g_autofree double *planes_in = g_new (double, 5 * n_pixels);
  g_autofree double *planes_out = g_new (double, 5 * n_out);
  g_autofree double *tmp = g_new (double, (gsize) height * out_w);
  for (gsize i = 0; i < n_pixels; i++)
    {
      double x = a[i], y = b[i];
      planes_in[i] = x;
      planes_in[n_pixels + i] = y;
      planes_in[2 * n_pixels + i] = x * x;
      planes_in[3 * n_pixels + i] = y * y;
      planes_in[4 * n_pixels + i] = x * y;
    }
  for (int k = 0; k < 5; k++)
    gaussian_valid (planes_in + k * n_pixels, height, width, kernel, tmp,
                    planes_out + k * n_out);

  double sum = 0.0;
  gsize n = 0;
  for (int y = 0; y < out_h; y++)
    for (int x = 0; x < out_w; x++)
      {
        if (mask && !mask[(gsize) (y + SSIM_RADIUS) * width + x + SSIM_RADIUS])
          continue;
        gsize i = (gsize) y * out_w + x;
        double mu_a = planes_out[i], mu_b = planes_out[n_out + i];
        double var_a = planes_out[2 * n_out + i] - mu_a * mu_a;
        double var_b = planes_out[3 * n_out + i] - mu_b * mu_b;
        double cov = planes_out[4 * n_out + i] - mu_a * mu_b;
        sum += ((2.0 * mu_a * mu_b + c1) * (2.0 * cov + c2))
               / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2));
        n++;
      }
  return n ? sum / (double) n : NAN;
}

double
cs_mean_in_mask (const float *map, const guint8 *mask, gsize n_pixels)
{
  double sum = 0.0;
  gsize n = 0;
  for (gsize i = 0; i < n_pixels; i++)
    if (mask[i])
      {
        sum += map[i];
        n++;
      }
  return n ? sum / (double) n : NAN;
}
