/* test-detect: Monte-Carlo statistics, post-processing, anomaly curve, segment spans and
 * scores, z-score baseline, all against values counted by hand in the comments. */
#include <math.h>
#include <string.h>

#include "engine/cs-detect.h"

static void
test_percentile (void)
{
  /* Positive values sorted: 1 2 3 4. q20: position 0.6 -> 1.6; q90: 2.7 -> 3.7. */
  const float values[] = { 0.0f, 3.0f, 1.0f, 0.0f, 2.0f, 4.0f, -5.0f };
  g_assert_cmpfloat_with_epsilon (cs_percentile_positive (values, 7, 20.0), 1.6, 1e-6);
  g_assert_cmpfloat_with_epsilon (cs_percentile_positive (values, 7, 90.0), 3.7, 1e-6);
  g_assert_cmpfloat_with_epsilon (cs_percentile_positive (values, 7, 0.0), 1.0, 1e-6);
  g_assert_cmpfloat_with_epsilon (cs_percentile_positive (values, 7, 100.0), 4.0, 1e-6);
  const float one[] = { 0.0f, 2.5f };
  g_assert_cmpfloat_with_epsilon (cs_percentile_positive (one, 2, 20.0), 2.5, 1e-6);
  const float none[] = { 0.0f, -1.0f };
  g_assert_true (isnan (cs_percentile_positive (none, 2, 20.0)));
}

static void
test_components (void)
{
  /* 8-connected: {(0,0),(0,1)}, {(0,4),(1,4)}, {(2,1),(3,2)} (diagonal), {(4,0)}, {(4,4)}:
   * five components, labelled in raster order of their first pixel. */
  const guint8 fg[25] = {
    1, 1, 0, 0, 1,
    0, 0, 0, 0, 1,
    0, 1, 0, 0, 0,
    0, 0, 1, 0, 0,
    1, 0, 0, 0, 1,
  };
  const int expected[25] = {
    1, 1, 0, 0, 2,
    0, 0, 0, 0, 2,
    0, 3, 0, 0, 0,
    0, 0, 3, 0, 0,
    4, 0, 0, 0, 5,
  };
  int labels[25];
  g_assert_cmpint (cs_components_label8 (fg, 5, 5, labels), ==, 5);
  g_assert_cmpmem (labels, sizeof labels, expected, sizeof expected);

  /* A U shape is one component although its first row holds two separate runs. */
  const guint8 u[12] = {
    1, 0, 1,
    1, 0, 1,
    1, 1, 1,
    0, 0, 0,
  };
  int u_labels[12];
  g_assert_cmpint (cs_components_label8 (u, 4, 3, u_labels), ==, 1);
  g_assert_cmpint (u_labels[2], ==, 1);
}

static void
test_moments (void)
{
  /* Element 0: 1 2 3 4 -> mean 2.5, population variance 1.25; element 1: 5 5 5 5 -> 5, 0. */
  const float samples[8] = { 1, 5, 2, 5, 3, 5, 4, 5 };
  float mean[2], variance[2];
  cs_mc_moments (samples, 4, 2, mean, variance);
  g_assert_cmpfloat_with_epsilon (mean[0], 2.5, 1e-6);
  g_assert_cmpfloat_with_epsilon (variance[0], 1.25, 1e-6);
  g_assert_cmpfloat_with_epsilon (mean[1], 5.0, 1e-6);
  g_assert_cmpfloat (variance[1], ==, 0.0f);
}

static void
test_paste (void)
{
  /* 4 x 6 image, patch 2: grid 2 x 3. States 0 1 2 / 1 0 0: tokens for patches 0 1 3 4 5
   * (2 is dropped), token t = 10 t + index in patch. Masked 1 takes token 1 (rows 0-1,
   * columns 2-3), masked 3 takes token 2 (rows 2-3, columns 0-1); the rest is the image. */
  const guint8 states[6] = { 0, 1, 2, 1, 0, 0 };
  float tokens[5 * 4], image[24], out[24];
  for (int t = 0; t < 5; t++)
    for (int j = 0; j < 4; j++)
      tokens[t * 4 + j] = 10.0f * t + j;
  for (int i = 0; i < 24; i++)
    image[i] = -1.0f;
  cs_paste_predictions (tokens, states, image, 4, 6, 2, out);
  const float expected[24] = {
    -1, -1, 10, 11, -1, -1,
    -1, -1, 12, 13, -1, -1,
    20, 21, -1, -1, -1, -1,
    22, 23, -1, -1, -1, -1,
  };
  g_assert_cmpmem (out, sizeof out, expected, sizeof expected);
}

static void
test_mc_aggregate (void)
{
  /* 8 x 8 image, patch 4: patches 0 1 / 2 3. K = 2 over 3 passes. Patch 0 masked in all three,
   * the first two counted; patch 3 masked in passes 1 and 2, both counted. Each pass
   * reconstructs the whole image as one value: 0.2, 0.4, 0.9.
   * Patch 0: samples 0.2 0.4 -> mean 0.3, EU 0.01. Patch 3: 0.4 0.9 -> 0.65, EU 0.0625.
   * Image 0.5 everywhere; ROI = patch 0, pixel (7,7) and pixel (0,5) (patch 1, never
   * masked). AU: 0.2 on patch 0, 0.15 at (7,7), 0 at (0,5) (mean = image there). */
  enum { H = 8, W = 8 };
  guint8 states[3 * 4] = { 1, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1 };
  guint8 counted[3 * 4] = { 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1 };
  CsMcSchedule schedule = {
    .kind = CS_MC_SCHEDULE_RANDOM, .n_patches = 4, .n_roi = 2, .k = 2, .n_masked = 2,
    .n_passes = 3, .states = states, .counted = counted,
  };
  float recon[3 * H * W], image[H * W];
  guint8 roi[H * W] = { 0 };
  const float pass_value[3] = { 0.2f, 0.4f, 0.9f };
  for (int pass = 0; pass < 3; pass++)
    for (int i = 0; i < H * W; i++)
      recon[pass * H * W + i] = pass_value[pass];
  for (int i = 0; i < H * W; i++)
    image[i] = 0.5f;
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++)
      roi[y * W + x] = 1;
  roi[7 * W + 7] = 1;
  roi[0 * W + 5] = 1;

  float mean[H * W], eu[H * W], au[H * W];
  cs_mc_aggregate (&schedule, recon, image, roi, H, W, 4, mean, eu, au);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      {
        int i = y * W + x, patch = (y / 4) * 2 + x / 4;
        double m = patch == 0 ? 0.3 : patch == 3 ? 0.65 : 0.5;
        double v = patch == 0 ? 0.01 : patch == 3 ? 0.0625 : 0.0;
        double a = patch == 0 ? 0.2 : (y == 7 && x == 7) ? 0.15 : 0.0;
        g_assert_cmpfloat_with_epsilon (mean[i], m, 1e-6);
        g_assert_cmpfloat_with_epsilon (eu[i], v, 1e-6);
        g_assert_cmpfloat_with_epsilon (au[i], a, 1e-6);
      }
}

static void
test_postprocess (void)
{
  /* Positive values: 5 4 1 2 3 3 1 0.5, sorted 0.5 1 1 2 3 3 4 5; 20th percentile at position
   * 1.4 -> 1 + 0.4 x 0 = 1: only 0.5 goes. Components by sum: {5,4} 9, {3,3} 6, {1,2} 3,
   * {1 at (4,3)} 1 (its 0.5 neighbour dropped): the last one goes. */
  float map[36] = {
    0, 0, 0, 0, 0, 0,
    0, 5, 4, 0, 0, 1,
    0, 0, 0, 0, 0, 2,
    3, 0, 0, 0, 0, 0,
    3, 0, 0, 1, 0, 0,
    0, 0, 0, 0.5f, 0, 0,
  };
  const float expected[36] = {
    0, 0, 0, 0, 0, 0,
    0, 5, 4, 0, 0, 1,
    0, 0, 0, 0, 0, 2,
    3, 0, 0, 0, 0, 0,
    3, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0,
  };
  g_assert_cmpint (cs_anomaly_postprocess (map, 6, 6, 20.0, 3), ==, 3);
  g_assert_cmpmem (map, sizeof map, expected, sizeof expected);

  /* Ties on the sum keep the earlier component in raster order; negatives become 0. */
  float tie[9] = { 2, 0, -3, 0, 0, 0, 0, 0, 2 };
  g_assert_cmpint (cs_anomaly_postprocess (tie, 3, 3, 20.0, 1), ==, 1);
  const float tie_expected[9] = { 2, 0, 0, 0, 0, 0, 0, 0, 0 };
  g_assert_cmpmem (tie, sizeof tie, tie_expected, sizeof tie_expected);

  /* Values equal to the percentile stay: 1 1 1 1 has percentile 1. */
  float flat[4] = { 1, 0, 0, 1 };
  g_assert_cmpint (cs_anomaly_postprocess (flat, 2, 2, 20.0, 3), ==, 1); /* diagonal: one */
  g_assert_cmpfloat (flat[0], ==, 1.0f);
  g_assert_cmpfloat (flat[3], ==, 1.0f);

  float empty[4] = { 0 };
  g_assert_cmpint (cs_anomaly_postprocess (empty, 2, 2, 20.0, 3), ==, 0);
}

/* An 8 x 4 map and cord mask for the curve (values off the mask are 100: must not count).
 *   row 0: no cord
 *   row 1: cols 1-2, values 1 1        sum 2, count 2
 *   row 2: cols 0-3, values 0 0 4 0    sum 4, count 4
 *   row 3: cols 1-2, values 0 0        sum 0, count 2
 *   row 4: col 1, value 6              sum 6, count 1
 *   row 5: no cord
 *   row 6: cols 2-3, values 2 2        sum 4, count 2
 *   row 7: no cord
 * Curve, half window 2: r1 rows 0-3: 6 / 8 = 0.75; r2 rows 0-4: 12 / 9; r3 rows 1-5: 12 / 9;
 * r4 rows 2-6: 14 / 9; r6 rows 4-7: 10 / 3; rows 0, 5, 7 (no cord): 0. */
static void
curve_fixture (float *map, guint8 *mask)
{
  for (int i = 0; i < 32; i++)
    {
      map[i] = 100.0f;
      mask[i] = 0;
    }
  struct { int y, x; float v; } cord[] = {
    { 1, 1, 1 }, { 1, 2, 1 }, { 2, 0, 0 }, { 2, 1, 0 }, { 2, 2, 4 }, { 2, 3, 0 },
    { 3, 1, 0 }, { 3, 2, 0 }, { 4, 1, 6 }, { 6, 2, 2 }, { 6, 3, 2 },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cord); i++)
    {
      map[cord[i].y * 4 + cord[i].x] = cord[i].v;
      mask[cord[i].y * 4 + cord[i].x] = 1;
    }
}

static void
test_curve (void)
{
  float map[32], curve[8];
  guint8 mask[32];
  curve_fixture (map, mask);
  cs_anomaly_curve (map, mask, 8, 4, 2, curve);
  const double expected[8] = { 0, 0.75, 12.0 / 9, 12.0 / 9, 14.0 / 9, 0, 10.0 / 3, 0 };
  for (int r = 0; r < 8; r++)
    g_assert_cmpfloat_with_epsilon (curve[r], expected[r], 1e-6);
  g_assert_cmpfloat_with_epsilon (cs_patient_score (curve, 8), 10.0 / 3, 1e-6);

  /* Half window 0: the plain row means 1, 1, 0, 6, -, 2. */
  cs_anomaly_curve (map, mask, 8, 4, 0, curve);
  const double plain[8] = { 0, 1, 1, 0, 6, 0, 2, 0 };
  for (int r = 0; r < 8; r++)
    g_assert_cmpfloat_with_epsilon (curve[r], plain[r], 1e-6);

  /* Segment scores: rows 1-2 -> 12/9, rows 3-4 -> 14/9, row 5 -> 0, absent -> NAN. */
  cs_anomaly_curve (map, mask, 8, 4, 2, curve);
  CsSegmentSpan spans[4] = {
    { 1, 2, TRUE }, { 3, 4, TRUE }, { 5, 5, TRUE }, { 0, 7, FALSE },
  };
  double scores[4];
  cs_segment_scores (curve, 8, spans, 4, scores);
  g_assert_cmpfloat_with_epsilon (scores[0], 12.0 / 9, 1e-6);
  g_assert_cmpfloat_with_epsilon (scores[1], 14.0 / 9, 1e-6);
  g_assert_cmpfloat (scores[2], ==, 0.0);
  g_assert_true (isnan (scores[3]));
}

static void
assert_span (const CsSegmentSpan *span, int start, int end)
{
  g_assert_true (span->present);
  g_assert_cmpint (span->row_start, ==, start);
  g_assert_cmpint (span->row_end, ==, end);
}

static void
test_segments (void)
{
  CsSegmentSpan spans[CS_N_SEGMENTS];
  g_autoptr (GError) error = NULL;

  /* Discs 10 20 30 42 50 60: boundaries 15 25 36 46 55, ends 10 - 5 = 5 and 60 + 5 = 65. */
  const double discs[6] = { 10, 20, 30, 42, 50, 60 };
  g_assert_true (cs_segments_from_disc_rows (discs, 70, spans, &error));
  g_assert_no_error (error);
  assert_span (&spans[0], 5, 14);
  assert_span (&spans[1], 15, 24);
  assert_span (&spans[2], 25, 35);
  assert_span (&spans[3], 36, 45);
  assert_span (&spans[4], 46, 54);
  assert_span (&spans[5], 55, 64);

  /* C4-5 missing: C3-4 and C5-6 meet half-way between 20 and 42, at 31. */
  const double gap[6] = { 10, 20, NAN, 42, 50, 60 };
  g_assert_true (cs_segments_from_disc_rows (gap, 70, spans, &error));
  assert_span (&spans[1], 15, 30);
  g_assert_false (spans[2].present);
  assert_span (&spans[3], 31, 45);

  /* Half rows: 10.5 and 21 -> first span [5.25, 15.75) = rows 6..15, next from 16. Clipping:
   * the last disc at 60 with gap 10 ends at 65, beyond a 62-row image -> 61. */
  const double half[6] = { 10.5, 21, 30, 40, 50, 60 };
  g_assert_true (cs_segments_from_disc_rows (half, 62, spans, &error));
  assert_span (&spans[0], 6, 15);
  g_assert_cmpint (spans[1].row_start, ==, 16);
  assert_span (&spans[5], 55, 61);

  /* First disc near the top: [2 - 5, 7) -> rows 0..6. */
  const double top[6] = { 2, 12, NAN, NAN, NAN, NAN };
  g_assert_true (cs_segments_from_disc_rows (top, 70, spans, &error));
  assert_span (&spans[0], 0, 6);
  assert_span (&spans[1], 7, 16);
  for (int s = 2; s < 6; s++)
    g_assert_false (spans[s].present);

  /* One disc: no gap to measure, nothing present. */
  const double lone[6] = { NAN, NAN, 30, NAN, NAN, NAN };
  g_assert_true (cs_segments_from_disc_rows (lone, 70, spans, &error));
  for (int s = 0; s < 6; s++)
    g_assert_false (spans[s].present);

  /* Out of order: refused with the discs named. */
  const double swapped[6] = { 10, 30, 20, 40, 50, 60 };
  g_assert_false (cs_segments_from_disc_rows (swapped, 70, spans, &error));
  g_assert_error (error, CS_DETECT_ERROR, CS_DETECT_ERROR_DISC_ORDER);
  g_assert_nonnull (strstr (error->message, "C4-5"));
}

static void
test_zscore (void)
{
  /* ROI 1 2 3 4: mean 2.5, population sd sqrt (1.25). z: -, -, 0.5 / 1.118, 1.5 / 1.118;
   * the 10 outside the ROI is 0. */
  const float image[5] = { 1, 2, 3, 4, 10 };
  const guint8 roi[5] = { 1, 1, 1, 1, 0 };
  float z[5];
  cs_zscore_map (image, roi, 5, z);
  double sd = sqrt (1.25);
  g_assert_cmpfloat (z[0], ==, 0.0f);
  g_assert_cmpfloat (z[1], ==, 0.0f);
  g_assert_cmpfloat_with_epsilon (z[2], 0.5 / sd, 1e-6);
  g_assert_cmpfloat_with_epsilon (z[3], 1.5 / sd, 1e-6);
  g_assert_cmpfloat (z[4], ==, 0.0f);

  const float flat[3] = { 0.5f, 0.5f, 0.5f };
  const guint8 all[3] = { 1, 1, 1 };
  cs_zscore_map (flat, all, 3, z);
  for (int i = 0; i < 3; i++)
    g_assert_cmpfloat (z[i], ==, 0.0f);
}

static void
test_zscore_pipeline (void)
{
  /* A 40 x 8 slice: cord in columns 2..5, intensity 0.3, a bright 2 x 2 lesion at rows
   * 24-25, columns 3-4 (0.9). Segments: discs every 6 rows from row 6. The lesion's
   * segment (rows 21..26 for the disc at 24) must carry the patient score. */
  enum { H = 40, W = 8 };
  float image[H * W], z[H * W], curve[H];
  guint8 cord[H * W] = { 0 };
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      {
        cord[y * W + x] = x >= 2 && x <= 5;
        image[y * W + x] = cord[y * W + x] ? 0.3f : 0.0f;
      }
  for (int y = 24; y <= 25; y++)
    for (int x = 3; x <= 4; x++)
      image[y * W + x] = 0.9f;
  const double discs[6] = { 6, 12, 18, 24, 30, 36 };
  CsSegmentSpan spans[6];
  g_assert_true (cs_segments_from_disc_rows (discs, H, spans, NULL));
  assert_span (&spans[3], 21, 26);

  cs_zscore_map (image, cord, H * W, z);
  double scores[6];
  double patient = cs_detection_score (z, cord, H, W, spans, 6, curve, scores);
  /* 160 cord pixels, 4 at 0.9: mean 0.315, sd = 0.6 sqrt (4 x 156) / 160 = 0.0937; the lesion
   * z = 0.585 / 0.0937 = 6.245, the rest negative -> 0. The lesion is one component. Curve at
   * rows 23..26 (window covers both lesion rows, 5 x 4 cord pixels): 4 z / 20 = 1.249. */
  double sd = 0.6 * sqrt (4.0 * 156.0) / 160.0;
  double lesion_z = (0.9 - 0.315) / sd;
  g_assert_cmpfloat_with_epsilon (patient, 4.0 * lesion_z / 20.0, 1e-4);
  g_assert_cmpfloat_with_epsilon (scores[3], patient, 1e-9);
  for (int s = 0; s < 6; s++)
    if (s != 3)
      g_assert_cmpfloat (scores[s], <, patient);
  g_assert_cmpfloat (scores[0], ==, 0.0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/u2ad/detect/percentile", test_percentile);
  g_test_add_func ("/u2ad/detect/components", test_components);
  g_test_add_func ("/u2ad/detect/moments", test_moments);
  g_test_add_func ("/u2ad/detect/paste", test_paste);
  g_test_add_func ("/u2ad/detect/mc-aggregate", test_mc_aggregate);
  g_test_add_func ("/u2ad/detect/postprocess", test_postprocess);
  g_test_add_func ("/u2ad/detect/curve", test_curve);
  g_test_add_func ("/u2ad/detect/segments", test_segments);
  g_test_add_func ("/u2ad/detect/zscore", test_zscore);
  g_test_add_func ("/u2ad/detect/zscore-pipeline", test_zscore_pipeline);
  return g_test_run ();
}
