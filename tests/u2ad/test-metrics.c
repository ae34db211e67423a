/* test-metrics: thresholds, binary metrics, ROC AUC, stratified folds, cross-validation and
 * reconstruction metrics on small lists worked out by hand in the comments. */
#include <math.h>
#include <string.h>

#include "engine/cs-metrics.h"

/* Eight items, descending scores; abnormal ones at 0.9, 0.8, 0.6, 0.3. */
static const double scores8[8] = { 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2 };
static const guint8 truth8[8] = { 1, 1, 0, 1, 0, 0, 1, 0 };

static void
test_binary_metrics (void)
{
  /* Threshold 0.55: predicted 0.9 0.8 0.7 0.6 -> tp 3, fp 1 (0.7); fn 1 (0.3), tn 3.
   * Accuracy 6/8, precision 3/4, recall 3/4, specificity 3/4, F1 6 / (6 + 1 + 1). */
  CsBinaryMetrics m;
  cs_binary_metrics (scores8, truth8, 8, 0.55, &m);
  g_assert_cmpint (m.tp, ==, 3);
  g_assert_cmpint (m.fp, ==, 1);
  g_assert_cmpint (m.tn, ==, 3);
  g_assert_cmpint (m.fn, ==, 1);
  g_assert_cmpfloat_with_epsilon (m.accuracy, 0.75, 1e-12);
  g_assert_cmpfloat_with_epsilon (m.precision, 0.75, 1e-12);
  g_assert_cmpfloat_with_epsilon (m.recall, 0.75, 1e-12);
  g_assert_cmpfloat_with_epsilon (m.specificity, 0.75, 1e-12);
  g_assert_cmpfloat_with_epsilon (m.f1, 0.75, 1e-12);

  /* score >= threshold: 0.6 is still positive at 0.6, not at 0.61 (tp 2, fn 2: F1 4/7). */
  cs_binary_metrics (scores8, truth8, 8, 0.6, &m);
  g_assert_cmpint (m.tp, ==, 3);
  cs_binary_metrics (scores8, truth8, 8, 0.61, &m);
  g_assert_cmpint (m.tp, ==, 2);
  g_assert_cmpfloat_with_epsilon (m.accuracy, 5.0 / 8, 1e-12);
  g_assert_cmpfloat_with_epsilon (m.f1, 4.0 / 7, 1e-12);

  /* Nothing predicted, no abnormal item: precision, recall and F1 undefined. */
  const double s[2] = { 0.1, 0.2 };
  const guint8 t[2] = { 0, 0 };
  cs_binary_metrics (s, t, 2, 1.0, &m);
  g_assert_true (isnan (m.precision));
  g_assert_true (isnan (m.recall));
  g_assert_true (isnan (m.f1));
  g_assert_cmpfloat (m.specificity, ==, 1.0);

  /* NAN scores (absent segments) are skipped. */
  const double with_nan[3] = { 0.9, NAN, 0.1 };
  const guint8 t3[3] = { 1, 1, 0 };
  cs_binary_metrics (with_nan, t3, 3, 0.5, &m);
  g_assert_cmpint (m.tp + m.fp + m.tn + m.fn, ==, 2);
  g_assert_cmpfloat (m.recall, ==, 1.0);
}

static void
test_threshold_recall (void)
{
  /* Recall 0.9 of 4 abnormal needs all 4: the lowest abnormal score, 0.3. 0.75 needs 3: 0.6.
   * 0.5 needs 2: 0.8. */
  g_assert_cmpfloat (cs_threshold_for_recall (scores8, truth8, 8, 0.9), ==, 0.3);
  g_assert_cmpfloat (cs_threshold_for_recall (scores8, truth8, 8, 0.75), ==, 0.6);
  g_assert_cmpfloat (cs_threshold_for_recall (scores8, truth8, 8, 0.5), ==, 0.8);
  /* 10 abnormal with scores 10..1, recall 0.9 = 9 of 10: threshold 2 (9/10 is exactly 0.9). */
  double s[12];
  guint8 t[12];
  for (int i = 0; i < 10; i++)
    {
      s[i] = 10 - i;
      t[i] = 1;
    }
  s[10] = 5.5;
  s[11] = 0.5;
  t[10] = t[11] = 0;
  g_assert_cmpfloat (cs_threshold_for_recall (s, t, 12, 0.9), ==, 2.0);
  /* Tied scores are one threshold: 0.5 0.5 (one abnormal) 0.2 (abnormal), recall 0.5: 0.5. */
  const double tied[3] = { 0.5, 0.5, 0.2 };
  const guint8 tied_truth[3] = { 1, 0, 1 };
  g_assert_cmpfloat (cs_threshold_for_recall (tied, tied_truth, 3, 0.5), ==, 0.5);
  const guint8 none[3] = { 0, 0, 0 };
  g_assert_true (isnan (cs_threshold_for_recall (tied, none, 3, 0.9)));
}

static void
test_threshold_f1 (void)
{
  /* F1 at each threshold (tp, fp, fn): 0.9 (1,0,3) 2/5; 0.8 (2,0,2) 4/6; 0.7 (2,1,2) 4/7;
   * 0.6 (3,1,1) 6/8 = 0.75; 0.5 (3,2,1) 6/9; 0.4 (3,3,1) 6/10; 0.3 (4,3,0) 8/11 = 0.727;
   * 0.2 (4,4,0) 8/12. Best: 0.6. */
  g_assert_cmpfloat (cs_threshold_best_f1 (scores8, truth8, 8), ==, 0.6);
  /* Tie: scores 4 3 2 1, abnormal 4 and 1: F1 2/3 at 4, 1/2 at 3, 2/5 at 2, 2/3 at 1:
   * the higher threshold, 4, wins the tie. */
  const double s[4] = { 4, 3, 2, 1 };
  const guint8 t[4] = { 1, 0, 0, 1 };
  g_assert_cmpfloat (cs_threshold_best_f1 (s, t, 4), ==, 4.0);
  /* Tied scores: 0.5 0.5 (one abnormal) 0.2 (abnormal): at 0.5 F1 2/4, at 0.2 4/5. */
  const double tied[3] = { 0.5, 0.5, 0.2 };
  const guint8 tied_truth[3] = { 1, 0, 1 };
  g_assert_cmpfloat (cs_threshold_best_f1 (tied, tied_truth, 3), ==, 0.2);
}

static void
test_auc (void)
{
  /* Abnormal 0.9 0.8 0.6 0.3 vs normal 0.7 0.5 0.4 0.2: wins 4 + 4 + 3 + 1 = 12 of 16. */
  g_assert_cmpfloat_with_epsilon (cs_roc_auc (scores8, truth8, 8), 0.75, 1e-12);
  /* Ties count half: abnormal 1, 0.5 vs normal 0.5, 0: 2 + 0.5 + 1 = 3.5 of 4. */
  const double s[4] = { 1.0, 0.5, 0.5, 0.0 };
  const guint8 t[4] = { 1, 1, 0, 0 };
  g_assert_cmpfloat_with_epsilon (cs_roc_auc (s, t, 4), 0.875, 1e-12);
  const guint8 one_class[4] = { 1, 1, 1, 1 };
  g_assert_true (isnan (cs_roc_auc (s, one_class, 4)));
}

static void
test_stratified_folds (void)
{
  /* 23 patients, 8 abnormal. Abnormal dealt to folds 0 1 2 3 4 0 1 2 -> 2 2 2 1 1; normal
   * continue at fold 3: 3 4 0 1 2 3 4 0 1 2 3 4 0 1 2 -> 3 each. Sizes 5 5 5 4 4. */
  guint8 truth[23] = { 0 };
  for (int i = 0; i < 23; i += 3)
    truth[i] = 1; /* 0 3 6 9 12 15 18 21 */
  int fold[23], again[23], other[23];
  cs_stratified_folds (truth, 23, 5, 17, fold);
  int abnormal[5] = { 0 }, size[5] = { 0 };
  for (int i = 0; i < 23; i++)
    {
      g_assert_cmpint (fold[i], >=, 0);
      g_assert_cmpint (fold[i], <, 5);
      size[fold[i]]++;
      abnormal[fold[i]] += truth[i];
    }
  const int expected_abnormal[5] = { 2, 2, 2, 1, 1 }, expected_size[5] = { 5, 5, 5, 4, 4 };
  g_assert_cmpmem (abnormal, sizeof abnormal, expected_abnormal, sizeof expected_abnormal);
  g_assert_cmpmem (size, sizeof size, expected_size, sizeof expected_size);

  cs_stratified_folds (truth, 23, 5, 17, again);
  g_assert_cmpmem (fold, sizeof fold, again, sizeof again);
  /* Another seed shuffles differently (the chance of the same 23-patient split is nil). */
  cs_stratified_folds (truth, 23, 5, 18, other);
  g_assert_true (memcmp (fold, other, sizeof fold) != 0);
}

static void
test_cross_validation (void)
{
  /* Two folds. Fold 0: 0.9 (abn) 0.8 0.3 (abn) 0.2; fold 1: 0.7 (abn) 0.6 (abn) 0.5 0.1.
   * F1 rule. Test fold 0, trained on fold 1: 0.7 -> 2/3, 0.6 -> 1: threshold 0.6; on fold 0
   * tp 1 (0.9) fp 1 (0.8) fn 1 (0.3) tn 1: accuracy 0.5, F1 0.5, recall 0.5, specificity 0.5.
   * Test fold 1, trained on fold 0: 0.9 -> 2/3, 0.8 -> 1/2, 0.3 -> 4/5, 0.2 -> 2/3: threshold
   * 0.3; on fold 1 tp 2 fp 1 (0.5) tn 1: accuracy 0.75, F1 0.8, recall 1, specificity 0.5.
   * Mean +- population sd: accuracy 0.625 +- 0.125, F1 0.65 +- 0.15, recall 0.75 +- 0.25,
   * specificity 0.5 +- 0. */
  const double scores[8] = { 0.9, 0.8, 0.3, 0.2, 0.7, 0.6, 0.5, 0.1 };
  const guint8 truth[8] = { 1, 0, 1, 0, 1, 1, 0, 0 };
  const int fold[8] = { 0, 0, 0, 0, 1, 1, 1, 1 };
  CsCvResult r;
  g_autoptr (GError) error = NULL;
  g_assert_true (cs_cv_evaluate (scores, truth, fold, 8, 2, CS_THRESHOLD_F1, 0.0, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (r.threshold[0], ==, 0.6);
  g_assert_cmpfloat (r.threshold[1], ==, 0.3);
  g_assert_cmpfloat_with_epsilon (r.accuracy.mean, 0.625, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.accuracy.sd, 0.125, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.f1.mean, 0.65, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.f1.sd, 0.15, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.recall.mean, 0.75, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.recall.sd, 0.25, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.specificity.mean, 0.5, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.specificity.sd, 0.0, 1e-12);
  g_assert_cmpint (r.f1.n, ==, 2);

  /* Recall rule, target 0.9: fold 1's training part (fold 0) has abnormal 0.9 and 0.3 -> 0.3;
   * fold 0's (fold 1) has 0.7 and 0.6 -> 0.6. Same thresholds as above. Target 0.5: 0.9 and
   * 0.7; fold 0 at 0.7: tp 1 fp 1 fn 1 tn 1; fold 1 at 0.9: nothing positive: tp 0 fn 2 tn 2,
   * F1 0 / 2 = 0, recall 0, specificity 1. */
  g_assert_true (cs_cv_evaluate (scores, truth, fold, 8, 2, CS_THRESHOLD_RECALL, 0.9, &r,
                                 &error));
  g_assert_cmpfloat (r.threshold[0], ==, 0.6);
  g_assert_cmpfloat (r.threshold[1], ==, 0.3);
  g_assert_true (cs_cv_evaluate (scores, truth, fold, 8, 2, CS_THRESHOLD_RECALL, 0.5, &r,
                                 &error));
  g_assert_cmpfloat (r.threshold[0], ==, 0.7);
  g_assert_cmpfloat (r.threshold[1], ==, 0.9);
  g_assert_cmpfloat_with_epsilon (r.recall.mean, 0.25, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.specificity.mean, 0.75, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.f1.mean, 0.25, 1e-12);
  g_assert_cmpfloat_with_epsilon (r.auc, 12.0 / 16, 1e-12); /* 4 + 2 + 3 + 3 wins */

  /* Refusals: one fold, a fold id out of range, no abnormal item to train on. */
  g_assert_false (cs_cv_evaluate (scores, truth, fold, 8, 1, CS_THRESHOLD_F1, 0.0, &r, &error));
  g_assert_error (error, CS_METRICS_ERROR, CS_METRICS_ERROR_FOLDS);
  g_clear_error (&error);
  const int bad_fold[8] = { 0, 0, 0, 0, 1, 1, 1, 2 };
  g_assert_false (cs_cv_evaluate (scores, truth, bad_fold, 8, 2, CS_THRESHOLD_F1, 0.0, &r,
                                  &error));
  g_assert_error (error, CS_METRICS_ERROR, CS_METRICS_ERROR_FOLDS);
  g_clear_error (&error);
  const guint8 only_fold0[8] = { 1, 0, 1, 0, 0, 0, 0, 0 };
  g_assert_false (cs_cv_evaluate (scores, only_fold0, fold, 8, 2, CS_THRESHOLD_F1, 0.0, &r,
                                  &error));
  g_assert_error (error, CS_METRICS_ERROR, CS_METRICS_ERROR_NO_POSITIVES);
}

static void
test_reconstruction (void)
{
  /* Differences 0, 0.25, 0, 0.5: MSE (0.0625 + 0.25) / 4 = 0.078125, PSNR 10 log10 12.8;
   * without the last pixel: 0.0625 / 3. */
  const float a[4] = { 0.0f, 0.5f, 1.0f, 1.0f }, b[4] = { 0.0f, 0.25f, 1.0f, 0.5f };
  const guint8 mask[4] = { 1, 1, 1, 0 };
  g_assert_cmpfloat_with_epsilon (cs_mse (a, b, NULL, 4), 0.078125, 1e-12);
  g_assert_cmpfloat_with_epsilon (cs_psnr (a, b, NULL, 4), 11.0720996964786, 1e-9);
  g_assert_cmpfloat_with_epsilon (cs_mse (a, b, mask, 4), 0.0625 / 3, 1e-12);
  g_assert_true (isinf (cs_psnr (a, a, NULL, 4)));
  g_assert_cmpfloat_with_epsilon (cs_mean_in_mask (b, mask, 4), 1.25 / 3, 1e-7);

  /* SSIM: identical images give 1; two flat images 0.5 and 0.25 (no variance) give the
   * luminance term only: (2 x 0.125 + 1e-4) / (0.25 + 0.0625 + 1e-4) = 0.2501 / 0.3126. */
  enum { N = 16 };
  float x[N * N], y[N * N], flat_a[N * N], flat_b[N * N];
  for (int i = 0; i < N * N; i++)
    {
      x[i] = (float) ((i * 37) % 101) / 100.0f;
      flat_a[i] = 0.5f;
      flat_b[i] = 0.25f;
    }
  memcpy (y, x, sizeof x);
  g_assert_cmpfloat_with_epsilon (cs_ssim (x, y, N, N, NULL), 1.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (cs_ssim (flat_a, flat_b, N, N, NULL), 0.2501 / 0.3126, 1e-6);
  g_assert_true (isnan (cs_ssim (x, y, 10, 20, NULL)));
  guint8 no_centres[N * N] = { 0 };
  g_assert_true (isnan (cs_ssim (x, y, N, N, no_centres)));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/u2ad/metrics/binary", test_binary_metrics);
  g_test_add_func ("/u2ad/metrics/threshold-recall", test_threshold_recall);
  g_test_add_func ("/u2ad/metrics/threshold-f1", test_threshold_f1);
  g_test_add_func ("/u2ad/metrics/auc", test_auc);
  g_test_add_func ("/u2ad/metrics/stratified-folds", test_stratified_folds);
  g_test_add_func ("/u2ad/metrics/cross-validation", test_cross_validation);
  g_test_add_func ("/u2ad/metrics/reconstruction", test_reconstruction);
  return g_test_run ();
}
