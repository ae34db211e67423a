/* test-masking: ROI patches, context dropping, random / EU-guided masking, AU-guided exclusion
 * and the Monte-Carlo schedules, against hand-counted truth. */
#include <math.h>
#include <string.h>

#include "engine/cs-detect.h"
#include "engine/cs-masking.h"

static void
test_roi_patches (void)
{
  /* 16 x 16 pixels, patch 4: a 4 x 4 grid. */
  guint8 roi[16 * 16] = { 0 };
  roi[0 * 16 + 0] = 1;   /* patch (0,0) = 0 */
  roi[5 * 16 + 6] = 1;   /* patch (1,1) = 5 */
  roi[7 * 16 + 7] = 1;   /* patch (1,1) again */
  roi[15 * 16 + 15] = 1; /* patch (3,3) = 15 */
  roi[3 * 16 + 12] = 1;  /* patch (0,3) = 3 */
  guint8 is_roi[16];
  g_assert_cmpint (cs_roi_patches_from_mask (roi, 16, 16, 4, is_roi), ==, 4);
  for (int p = 0; p < 16; p++)
    g_assert_cmpint (is_roi[p], ==, p == 0 || p == 5 || p == 15 || p == 3);
}

static void
test_context_states (void)
{
  /* 5 x 5 grid, ROI patch in the middle (12). */
  guint8 is_roi[25] = { 0 }, states[25];
  is_roi[12] = 1;
  cs_context_states (is_roi, 5, 5, -1, states);
  for (int p = 0; p < 25; p++)
    g_assert_cmpint (states[p], ==, CS_PATCH_VISIBLE);
  cs_context_states (is_roi, 5, 5, 0, states);
  for (int p = 0; p < 25; p++)
    g_assert_cmpint (states[p], ==, p == 12 ? CS_PATCH_VISIBLE : CS_PATCH_DROPPED);
  /* Margin 1 keeps the 3 x 3 block around the middle (Chebyshev: diagonals too). */
  cs_context_states (is_roi, 5, 5, 1, states);
  int kept = 0;
  for (int p = 0; p < 25; p++)
    {
      int r = p / 5, c = p % 5;
      gboolean inner = r >= 1 && r <= 3 && c >= 1 && c <= 3;
      g_assert_cmpint (states[p], ==, inner ? CS_PATCH_VISIBLE : CS_PATCH_DROPPED);
      kept += states[p] == CS_PATCH_VISIBLE;
    }
  g_assert_cmpint (kept, ==, 9);
  cs_context_states (is_roi, 5, 5, 2, states);
  for (int p = 0; p < 25; p++)
    g_assert_cmpint (states[p], ==, CS_PATCH_VISIBLE);

  /* Two ROI patches, corner (0) and (3,4) = 19 in a 5-wide grid; margin 1. */
  memset (is_roi, 0, sizeof is_roi);
  is_roi[0] = is_roi[19] = 1;
  cs_context_states (is_roi, 5, 5, 1, states);
  const int expected_kept[] = { 0, 1, 5, 6, 13, 14, 18, 19, 23, 24 };
  guint8 expect[25];
  memset (expect, CS_PATCH_DROPPED, sizeof expect);
  for (gsize i = 0; i < G_N_ELEMENTS (expected_kept); i++)
    expect[expected_kept[i]] = CS_PATCH_VISIBLE;
  g_assert_cmpmem (states, 25, expect, 25);

  /* No ROI at all: nothing is within the margin. */
  memset (is_roi, 0, sizeof is_roi);
  cs_context_states (is_roi, 5, 5, 3, states);
  for (int p = 0; p < 25; p++)
    g_assert_cmpint (states[p], ==, CS_PATCH_DROPPED);
}

static void
test_mask_count (void)
{
  g_assert_cmpint (cs_mask_count (100, 0.75), ==, 75);
  g_assert_cmpint (cs_mask_count (10, 0.75), ==, 8); /* 7.5 rounds up */
  g_assert_cmpint (cs_mask_count (9, 0.75), ==, 7);  /* 6.75 */
  g_assert_cmpint (cs_mask_count (3, 0.1), ==, 1);   /* 0.3, but a pass masks something */
  g_assert_cmpint (cs_mask_count (4, 1.0), ==, 4);
  g_assert_cmpint (cs_mask_count (0, 0.75), ==, 0);
  g_assert_cmpint (cs_mask_count (10, 0.0), ==, 0);
}

static void
test_mask_random (void)
{
  /* 8 patches, 0..5 maskable, 6 and 7 dropped context. */
  guint8 maskable[8] = { 1, 1, 1, 1, 1, 1, 0, 0 };
  int frequency[8] = { 0 };
  g_autoptr (GRand) rng = g_rand_new_with_seed (7);
  const int n_draws = 30000;
  for (int draw = 0; draw < n_draws; draw++)
    {
      guint8 states[8] = { 0, 0, 0, 0, 0, 0, CS_PATCH_DROPPED, CS_PATCH_DROPPED };
      g_assert_cmpint (cs_mask_random (maskable, 8, 0.5, rng, states), ==, 3);
      int masked = 0;
      for (int p = 0; p < 8; p++)
        {
          masked += states[p] == CS_PATCH_MASKED;
          frequency[p] += states[p] == CS_PATCH_MASKED;
        }
      g_assert_cmpint (masked, ==, 3);
      g_assert_cmpint (states[6], ==, CS_PATCH_DROPPED);
      g_assert_cmpint (states[7], ==, CS_PATCH_DROPPED);
    }
  /* Uniform: each maskable patch in 3/6 of the draws (sd of the rate ~0.003). */
  for (int p = 0; p < 6; p++)
    g_assert_cmpfloat (fabs (frequency[p] / (double) n_draws - 0.5), <, 0.02);

  /* Same seed, same mask. */
  guint8 a[8] = { 0 }, b[8] = { 0 };
  g_autoptr (GRand) r1 = g_rand_new_with_seed (99);
  g_autoptr (GRand) r2 = g_rand_new_with_seed (99);
  cs_mask_random (maskable, 8, 0.5, r1, a);
  cs_mask_random (maskable, 8, 0.5, r2, b);
  g_assert_cmpmem (a, 8, b, 8);
}

static void
test_patch_sums (void)
{
  /* 8 x 8 map with value = row, patch 4: top patches sum 4 * (0+1+2+3) = 24, bottom 88. */
  float map[64];
  for (int i = 0; i < 64; i++)
    map[i] = (float) (i / 8);
  map[0 * 8 + 7] += 10.0f; /* into patch 1 */
  double sums[4];
  cs_patch_sums (map, 8, 8, 4, sums);
  g_assert_cmpfloat_with_epsilon (sums[0], 24.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (sums[1], 34.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (sums[2], 88.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (sums[3], 88.0, 1e-9);
}

/* How often each of n maskable patches is the one masked (ratio 1 / n: one draw). */
static void
single_draw_rates (const double *v, int n, double tau, gboolean inverted, guint32 seed,
                   double *rates)
{
  guint8 maskable[4] = { 1, 1, 1, 1 };
  int frequency[4] = { 0 };
  const int n_draws = 100000;
  g_assert_cmpint (n, <=, (int) G_N_ELEMENTS (maskable));
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  for (int draw = 0; draw < n_draws; draw++)
    {
      guint8 states[4] = { 0 };
      g_assert_cmpint (cs_mask_eu_guided (maskable, v, n, 1.0 / n, tau, inverted, rng, states),
                       ==, 1);
      for (int p = 0; p < n; p++)
        frequency[p] += states[p] == CS_PATCH_MASKED;
    }
  for (int p = 0; p < n; p++)
    rates[p] = frequency[p] / (double) n_draws;
}

static void
test_eu_weights (void)
{
  /* One draw masks patch p with probability softmax(s v / tau)_p (sd of a rate <= 0.0016). */
  double rates[3];
  /* v = (0, ln 2, ln 3), tau 1: (1, 2, 3) / 6. */
  const double v[3] = { 0.0, log (2.0), log (3.0) };
  single_draw_rates (v, 3, 1.0, FALSE, 5, rates);
  g_assert_cmpfloat (fabs (rates[0] - 1.0 / 6), <, 0.008);
  g_assert_cmpfloat (fabs (rates[1] - 2.0 / 6), <, 0.008);
  g_assert_cmpfloat (fabs (rates[2] - 3.0 / 6), <, 0.008);
  /* Inverted: (1, 1/2, 1/3) / (11/6) = (6, 3, 2) / 11. */
  single_draw_rates (v, 3, 1.0, TRUE, 6, rates);
  g_assert_cmpfloat (fabs (rates[0] - 6.0 / 11), <, 0.008);
  g_assert_cmpfloat (fabs (rates[1] - 3.0 / 11), <, 0.008);
  g_assert_cmpfloat (fabs (rates[2] - 2.0 / 11), <, 0.008);
  /* tau 2 halves the logits: v = (0, 2 ln 2) gives (1, 2) / 3. */
  const double v2[2] = { 0.0, 2.0 * log (2.0) };
  single_draw_rates (v2, 2, 2.0, FALSE, 7, rates);
  g_assert_cmpfloat (fabs (rates[0] - 1.0 / 3), <, 0.008);
  /* Huge EU values neither overflow nor swamp a difference of 1: 1 / (1 + e^-1). */
  const double big[2] = { 1e6, 1e6 + 1.0 };
  single_draw_rates (big, 2, 1.0, FALSE, 8, rates);
  g_assert_cmpfloat (fabs (rates[1] - 1.0 / (1.0 + exp (-1.0))), <, 0.008);
}

static void
test_eu_inclusion_exact (void)
{
  /* Weights (1, 2, 3) / 6, two of three drawn by successive sampling. By hand:
   * P(0 left out) = w1 w2 / (1 - w1) + w2 w1 / (1 - w2) = 1/4 + 1/3 = 7/12 -> in 5/12;
   * P(1 left out) = w0 w2 / (1 - w0) + w2 w0 / (1 - w2) = 1/10 + 1/6 = 4/15 -> in 11/15;
   * P(2 left out) = w0 w1 / (1 - w0) + w1 w0 / (1 - w1) = 1/15 + 1/12 = 3/20 -> in 17/20. */
  guint8 maskable[3] = { 1, 1, 1 };
  double v[3] = { 0.0, log (2.0), log (3.0) };
  const double expected[3] = { 5.0 / 12, 11.0 / 15, 17.0 / 20 };
  int frequency[3] = { 0 };
  const int n_draws = 100000;
  g_autoptr (GRand) rng = g_rand_new_with_seed (2024);
  for (int draw = 0; draw < n_draws; draw++)
    {
      guint8 states[3] = { 0 };
      g_assert_cmpint (cs_mask_eu_guided (maskable, v, 3, 2.0 / 3.0, 1.0, FALSE, rng, states),
                       ==, 2);
      for (int p = 0; p < 3; p++)
        frequency[p] += states[p] == CS_PATCH_MASKED;
    }
  for (int p = 0; p < 3; p++)
    {
      double rate = frequency[p] / (double) n_draws;
      g_test_message ("patch %d: masked %.4f, exact inclusion probability %.4f", p, rate,
                      expected[p]);
      g_assert_cmpfloat (fabs (rate - expected[p]), <, 0.008); /* sd ~0.0016 */
    }
}

static void
test_eu_guided_ordering (void)
{
  /* 100 ROI patches with EU rising with the index; masking 75 by EU. */
  enum { N = 100 };
  guint8 maskable[N];
  double v[N];
  for (int p = 0; p < N; p++)
    {
      maskable[p] = 1;
      v[p] = 4.0 * p / (N - 1); /* logits 0..4 */
    }
  for (int inverted = 0; inverted <= 1; inverted++)
    {
      int frequency[N] = { 0 };
      const int n_draws = 4000;
      g_autoptr (GRand) rng = g_rand_new_with_seed (11 + inverted);
      for (int draw = 0; draw < n_draws; draw++)
        {
          guint8 states[N] = { 0 };
          g_assert_cmpint (cs_mask_eu_guided (maskable, v, N, 0.75, 1.0, inverted, rng,
                                              states), ==, 75);
        for (int p = 0; p < N; p++)
          frequency[p] += states[p] == CS_PATCH_MASKED;
        }
      /* Deciles of EU: their masking rates must be ordered (rising, or falling inverted). */
      double decile[10] = { 0 };
      for (int p = 0; p < N; p++)
        decile[p / 10] += frequency[p] / (double) n_draws / 10.0;
      g_test_message ("%s: decile masking rates %.3f %.3f ... %.3f %.3f",
                      inverted ? "inverted" : "paper", decile[0], decile[1], decile[8],
                      decile[9]);
      for (int d = 0; d < 9; d++)
        if (inverted)
          g_assert_cmpfloat (decile[d], >, decile[d + 1]);
        else
          g_assert_cmpfloat (decile[d], <, decile[d + 1]);
      /* Uniform masking would give 0.75 everywhere: the guidance must be strong. */
      double low = inverted ? decile[9] : decile[0], high = inverted ? decile[0] : decile[9];
      g_assert_cmpfloat (high - low, >, 0.3);
    }
}

static void
test_au_exclusion (void)
{
  /* 16 x 16, patch 4, ROI = columns 2..13. Components of high AU:
   *   A (1,5) (2,6) = 1.0, 1.0   (8-connected)   mean x sum = 1.0 x 2.0 = 2.0    patch 1
   *   B (6,8) (6,9) (6,10) = 0.9                  0.9 x 2.7 = 2.43               patch 6
   *   C (10,5) = 5.0, a single pixel              below min_pixels               patch 9
   *   D (13,9) (14,9) = 0.8                       0.8 x 1.6 = 1.28               patch 14
   *   E (15,5) (15,6) = 0.85                      0.85 x 1.7 = 1.445             patch 13
   *   F (9,10) (9,11) (10,10) (10,11) = 0.55      0.55 x 2.2 = 1.21              patch 10
   * plus 120 low pixels of 0.1 on the ROI, and 9.0 at (8,0) (8,1), outside the ROI.
   * 134 positive ROI values: 90th percentile at position 0.9 x 133 = 119.7, between the last
   * low (0.1) and the first high (0.55): 0.1 + 0.7 x 0.45 = 0.415. Top 3: B, A, E -> patches
   * 6, 1, 13 (by sum alone F, large but faint, would beat A and E). */
  enum { H = 16, W = 16 };
  float au[H * W] = { 0 };
  guint8 roi[H * W] = { 0 };
  for (int y = 0; y < H; y++)
    for (int x = 2; x <= 13; x++)
      roi[y * W + x] = 1;
  struct { int y, x; float value; } high[] = {
    { 1, 5, 1.0f }, { 2, 6, 1.0f }, { 6, 8, 0.9f }, { 6, 9, 0.9f }, { 6, 10, 0.9f },
    { 10, 5, 5.0f }, { 13, 9, 0.8f }, { 14, 9, 0.8f }, { 15, 5, 0.85f }, { 15, 6, 0.85f },
    { 9, 10, 0.55f }, { 9, 11, 0.55f }, { 10, 10, 0.55f }, { 10, 11, 0.55f },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (high); i++)
    au[high[i].y * W + high[i].x] = high[i].value;
  int n_low = 0;
  for (int i = 0; i < H * W && n_low < 120; i++)
    if (roi[i] && au[i] == 0.0f)
      {
        au[i] = 0.1f;
        n_low++;
      }
  g_assert_cmpint (n_low, ==, 120);
  au[8 * W + 0] = au[8 * W + 1] = 9.0f;

  g_autofree float *au_roi = g_new0 (float, H * W);
  for (int i = 0; i < H * W; i++)
    au_roi[i] = roi[i] ? au[i] : 0.0f;
  g_assert_cmpfloat_with_epsilon (cs_percentile_positive (au_roi, H * W, 90.0), 0.415, 1e-6);

  guint8 excluded[16];
  g_assert_cmpint (cs_au_exclusion (au, roi, H, W, 4, 90.0, 2, 3, excluded), ==, 3);
  for (int p = 0; p < 16; p++)
    g_assert_cmpint (excluded[p], ==, p == 1 || p == 6 || p == 13);

  /* Single pixels allowed: C (5 x 5 = 25) comes first; then B, A. */
  cs_au_exclusion (au, roi, H, W, 4, 90.0, 1, 3, excluded);
  for (int p = 0; p < 16; p++)
    g_assert_cmpint (excluded[p], ==, p == 1 || p == 6 || p == 9);

  /* Excluded patches are never masked. */
  guint8 is_roi[16], maskable[16];
  cs_roi_patches_from_mask (roi, H, W, 4, is_roi);
  cs_au_exclusion (au, roi, H, W, 4, 90.0, 2, 3, excluded);
  for (int p = 0; p < 16; p++)
    maskable[p] = is_roi[p] && !excluded[p];
  g_autoptr (GRand) rng = g_rand_new_with_seed (5);
  for (int draw = 0; draw < 200; draw++)
    {
      guint8 states[16] = { 0 };
      cs_mask_random (maskable, 16, 0.9, rng, states);
      g_assert_cmpint (states[1], ==, 0);
      g_assert_cmpint (states[6], ==, 0);
      g_assert_cmpint (states[13], ==, 0);
    }

  /* No AU on the ROI: nothing excluded. */
  memset (au, 0, sizeof au);
  g_assert_cmpint (cs_au_exclusion (au, roi, H, W, 4, 90.0, 2, 3, excluded), ==, 0);
  for (int p = 0; p < 16; p++)
    g_assert_cmpint (excluded[p], ==, 0);
}

static void
test_adapt_plan (void)
{
  /* Reference: maps refreshed at epochs 0, 10, ..., EU guidance always on for eu and eu+au,
   * AU exclusion from epoch 150 for eu+au only. */
  CsAdaptEpochPlan plan;
  CsAdaptSchedule eu_au = cs_adapt_schedule_reference (CS_ADAPT_EU_AU);
  CsAdaptSchedule eu = cs_adapt_schedule_reference (CS_ADAPT_EU);
  CsAdaptSchedule random = cs_adapt_schedule_reference (CS_ADAPT_RANDOM);
  const struct { int epoch; gboolean refresh, au; } expect[] = {
    { 0, TRUE, FALSE }, { 5, FALSE, FALSE }, { 10, TRUE, FALSE }, { 149, FALSE, FALSE },
    { 150, TRUE, TRUE }, { 151, FALSE, TRUE }, { 190, TRUE, TRUE }, { 199, FALSE, TRUE },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (expect); i++)
    {
      cs_adapt_plan_epoch (&eu_au, expect[i].epoch, &plan);
      g_assert_cmpint (plan.refresh_maps, ==, expect[i].refresh);
      g_assert_true (plan.eu_guided);
      g_assert_cmpint (plan.au_excluded, ==, expect[i].au);
      cs_adapt_plan_epoch (&eu, expect[i].epoch, &plan);
      g_assert_true (plan.eu_guided);
      g_assert_false (plan.au_excluded);
      cs_adapt_plan_epoch (&random, expect[i].epoch, &plan);
      g_assert_cmpint (plan.refresh_maps, ==, expect[i].refresh);
      g_assert_false (plan.eu_guided);
      g_assert_false (plan.au_excluded);
    }
}

static void
test_adapt_mask_item (void)
{
  /* 6 patches: 0..3 ROI, 4 dropped context, 5 visible context; AU excludes patch 2; EU
   * strongly on patch 3. One of four ROI patches is masked per item (ratio 0.25). */
  const guint8 is_roi[6] = { 1, 1, 1, 1, 0, 0 };
  const guint8 base[6] = { 0, 0, 0, 0, CS_PATCH_DROPPED, 0 };
  const guint8 excluded[6] = { 0, 0, 1, 0, 0, 0 };
  const double eu[6] = { 0, 0, 0, 50, 0, 0 };
  g_autoptr (GRand) rng = g_rand_new_with_seed (8);
  int hits[6] = { 0 }, hits_au[6] = { 0 };
  CsAdaptEpochPlan uniform = { FALSE, FALSE, FALSE }, guided = { FALSE, TRUE, FALSE };
  CsAdaptEpochPlan uniform_au = { FALSE, FALSE, TRUE };
  for (int draw = 0; draw < 400; draw++)
    {
      guint8 states[6];
      g_assert_cmpint (cs_adapt_mask_item (&guided, is_roi, base, eu, excluded, 6, 0.25, 1.0,
                                           FALSE, rng, states), ==, 1);
      g_assert_cmpint (states[3], ==, CS_PATCH_MASKED); /* e^50 : 3 */
      g_assert_cmpint (states[4], ==, CS_PATCH_DROPPED);
      cs_adapt_mask_item (&uniform, is_roi, base, eu, excluded, 6, 0.25, 1.0, FALSE, rng,
                          states);
      for (int p = 0; p < 6; p++)
        hits[p] += states[p] == CS_PATCH_MASKED;
      cs_adapt_mask_item (&uniform_au, is_roi, base, eu, excluded, 6, 0.25, 1.0, FALSE, rng,
                          states);
      for (int p = 0; p < 6; p++)
        hits_au[p] += states[p] == CS_PATCH_MASKED;
    }
  /* Without the AU phase the excluded patch is an ordinary ROI patch (about 100 of 400);
   * with it, never masked, and one of three other patches each time (round (0.75) = 1). */
  g_assert_cmpint (hits[2], >, 50);
  g_assert_cmpint (hits_au[2], ==, 0);
  g_assert_cmpint (hits_au[0] + hits_au[1] + hits_au[3], ==, 400);
  g_assert_cmpint (hits[4] + hits[5] + hits_au[4] + hits_au[5], ==, 0);
}

/* Strategies fed one mask stream are paired: the same uniforms whatever the weights. */
static void
test_adapt_masks_paired (void)
{
  enum { N = 40 };
  guint8 is_roi[N], base[N], excluded[N] = { 0 };
  double flat[N], rising[N];
  for (int p = 0; p < N; p++)
    {
      is_roi[p] = p < 32; /* 32 ROI patches, 24 masked at ratio 0.75 */
      base[p] = p < 36 ? CS_PATCH_VISIBLE : CS_PATCH_DROPPED;
      flat[p] = 3.7;
      rising[p] = p / 31.0; /* logits 0..1: tau 1 */
      excluded[p] = p % 5 == 0;
    }
  CsAdaptEpochPlan uniform = { FALSE, FALSE, FALSE }, guided = { FALSE, TRUE, FALSE };
  CsAdaptEpochPlan guided_au = { FALSE, TRUE, TRUE };
  const int n_items = 2000;
  int frequency[N] = { 0 };
  double overlap_paired = 0, overlap_independent = 0;
  g_autoptr (GRand) r_uniform = g_rand_new_with_seed (31);
  g_autoptr (GRand) r_flat = g_rand_new_with_seed (31);
  g_autoptr (GRand) r_rising = g_rand_new_with_seed (31);
  g_autoptr (GRand) r_au = g_rand_new_with_seed (31);
  g_autoptr (GRand) r_other = g_rand_new_with_seed (32);
  for (int item = 0; item < n_items; item++)
    {
      guint8 su[N], sf[N], sr[N], sa[N], so[N];
      g_assert_cmpint (cs_adapt_mask_item (&uniform, is_roi, base, flat, excluded, N, 0.75, 1.0,
                                           FALSE, r_uniform, su), ==, 24);
      /* Flat EU: a guided draw is the uniform draw, patch for patch. */
      cs_adapt_mask_item (&guided, is_roi, base, flat, excluded, N, 0.75, 1.0, FALSE, r_flat,
                          sf);
      g_assert_cmpmem (su, N, sf, N);
      cs_adapt_mask_item (&guided, is_roi, base, rising, excluded, N, 0.75, 1.0, FALSE,
                          r_rising, sr);
      /* Excluding 7 of the 32 ROI patches (round (0.75 x 25) = 19) takes as many draws. */
      g_assert_cmpint (cs_adapt_mask_item (&guided_au, is_roi, base, rising, excluded, N, 0.75,
                                           1.0, FALSE, r_au, sa), ==, 19);
      cs_adapt_mask_item (&uniform, is_roi, base, flat, excluded, N, 0.75, 1.0, FALSE, r_other,
                          so);
      for (int p = 0; p < N; p++)
        {
          frequency[p] += su[p] == CS_PATCH_MASKED;
          overlap_paired += su[p] == CS_PATCH_MASKED && sr[p] == CS_PATCH_MASKED;
          overlap_independent += su[p] == CS_PATCH_MASKED && so[p] == CS_PATCH_MASKED;
          g_assert_true (sa[p] != CS_PATCH_MASKED || !excluded[p]);
        }
      /* All four streams are still in step. */
      guint32 next = g_rand_int (r_uniform);
      g_assert_cmpuint (g_rand_int (r_flat), ==, next);
      g_assert_cmpuint (g_rand_int (r_rising), ==, next);
      g_assert_cmpuint (g_rand_int (r_au), ==, next);
      g_rand_int (r_other);
    }
  /* Uniform: each ROI patch masked in 3/4 of the items (sd of the rate ~0.01), context never. */
  for (int p = 0; p < N; p++)
    {
      double rate = frequency[p] / (double) n_items;
      if (is_roi[p])
        g_assert_cmpfloat (fabs (rate - 0.75), <, 0.04);
      else
        g_assert_cmpint (frequency[p], ==, 0);
    }
  /* Independent masks of 24 of 32 share 24 x 24 / 32 = 18 patches on average; the paired
   * guided mask differs from the uniform one only where EU moves the keys. */
  overlap_paired /= n_items;
  overlap_independent /= n_items;
  g_test_message ("masked patches shared with the uniform draw: paired %.2f, independent %.2f",
                  overlap_paired, overlap_independent);
  g_assert_cmpfloat (fabs (overlap_independent - 18.0), <, 0.2);
  g_assert_cmpfloat (overlap_paired, >, 21.0);
}

/* The reference geometry: a 32 x 32 grid with a cord-like band of 100 ROI patches
 * (rows 0..24, columns 14..17), the rest context, some of it dropped with margin 2. */
static void
reference_geometry (guint8 *is_roi, guint8 *base_states)
{
  for (int p = 0; p < 32 * 32; p++)
    {
      int r = p / 32, c = p % 32;
      is_roi[p] = r <= 24 && c >= 14 && c <= 17;
    }
  cs_context_states (is_roi, 32, 32, 2, base_states);
}

/* Checks what every schedule promises; returns the number of distinct pass masks. */
static int
check_schedule (const CsMcSchedule *s, const guint8 *is_roi, const guint8 *base_states)
{
  g_autofree int *counted = g_new0 (int, s->n_patches);
  int n_distinct = 0;
  for (int pass = 0; pass < s->n_passes; pass++)
    {
      const guint8 *states = s->states + (gsize) pass * s->n_patches;
      const guint8 *cnt = s->counted + (gsize) pass * s->n_patches;
      int masked = 0;
      for (int p = 0; p < s->n_patches; p++)
        {
          if (states[p] == CS_PATCH_MASKED)
            {
              g_assert_true (is_roi[p]);
              masked++;
            }
          else
            g_assert_cmpint (states[p], ==, base_states ? base_states[p] : 0);
          if (cnt[p])
            {
              g_assert_cmpint (states[p], ==, CS_PATCH_MASKED);
              counted[p]++;
            }
        }
      /* Every pass masks exactly m patches, the last one included. */
      g_assert_cmpint (masked, ==, s->n_masked);
      gboolean repeat = FALSE;
      for (int earlier = 0; earlier < pass && !repeat; earlier++)
        repeat = memcmp (states, s->states + (gsize) earlier * s->n_patches,
                         (gsize) s->n_patches) == 0;
      n_distinct += !repeat;
    }
  for (int p = 0; p < s->n_patches; p++)
    g_assert_cmpint (counted[p], ==, is_roi[p] ? s->k : 0);
  return n_distinct;
}

static void
test_balanced_exact (void)
{
  struct { int n_roi, k; double ratio; } cases[] = {
    { 100, 10, 0.75 }, /* reference: m = 75, ceil (1000 / 75) = 14, remainder 50 */
    { 100, 3, 0.75 },  /* 300 / 75 = 4, no remainder */
    { 7, 5, 0.5 },     /* m = round (3.5) = 4, ceil (35 / 4) = 9 */
    { 10, 10, 1.0 },   /* every pass masks all: 10 passes */
    { 13, 4, 0.2 },    /* m = 3, ceil (52 / 3) = 18 */
    { 1, 10, 0.75 },   /* m = 1: 10 passes */
  };
  for (gsize c = 0; c < G_N_ELEMENTS (cases); c++)
    for (guint32 seed = 1; seed <= 20; seed++)
      {
        int n_patches = 3 * cases[c].n_roi + 5;
        g_autofree guint8 *is_roi = g_new0 (guint8, n_patches);
        for (int i = 0; i < cases[c].n_roi; i++)
          is_roi[3 * i + 1] = 1; /* ROI scattered among context patches */
        int n_roi = 0;
        for (int p = 0; p < n_patches; p++)
          n_roi += is_roi[p];
        g_assert_cmpint (n_roi, ==, cases[c].n_roi);
        g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
        g_autoptr (CsMcSchedule) s = cs_mc_schedule_new_balanced (is_roi, NULL, n_patches,
                                                                  cases[c].k, cases[c].ratio,
                                                                  rng);
        int m = cs_mask_count (n_roi, cases[c].ratio);
        int bound = (cases[c].k * n_roi + m - 1) / m;
        g_assert_cmpint (s->n_masked, ==, m);
        g_assert_cmpint (s->n_passes, ==, bound);
        check_schedule (s, is_roi, NULL);
        /* The exact K: every ROI patch is masked K times, plus once at most in the top-up
         * of the last pass. */
        for (int p = 0; p < n_patches; p++)
          {
            int masked = 0;
            for (int pass = 0; pass < s->n_passes; pass++)
              masked += s->states[pass * n_patches + p] == CS_PATCH_MASKED;
            if (is_roi[p])
              g_assert_cmpint (masked - cases[c].k, >=, 0);
            if (is_roi[p])
              g_assert_cmpint (masked - cases[c].k, <=, 1);
          }
      }

  /* Reference geometry with dropped context; the masks vary (not one cycle repeated). */
  guint8 is_roi[1024], base[1024];
  reference_geometry (is_roi, base);
  g_autoptr (GRand) rng = g_rand_new_with_seed (3);
  g_autoptr (CsMcSchedule) s = cs_mc_schedule_new_balanced (is_roi, base, 1024, 10, 0.75, rng);
  g_assert_cmpint (s->n_roi, ==, 100);
  g_assert_cmpint (s->n_passes, ==, 14);
  g_assert_cmpint (check_schedule (s, is_roi, base), ==, 14);
}

static void
test_random_schedule (void)
{
  guint8 is_roi[1024], base[1024];
  reference_geometry (is_roi, base);
  double total_passes = 0.0;
  int min_passes = G_MAXINT, max_passes = 0;
  const int n_seeds = 200;
  for (int seed = 1; seed <= n_seeds; seed++)
    {
      g_autoptr (GRand) rng = g_rand_new_with_seed ((guint32) seed);
      g_autoptr (CsMcSchedule) s = cs_mc_schedule_new_random (is_roi, base, 1024, 10, 0.75,
                                                              rng);
      check_schedule (s, is_roi, base);
      /* The counted reconstructions are each patch's first K, and the schedule stops as
       * soon as the last patch reaches K: the final pass counts something. */
      for (int p = 0; p < 1024; p++)
        {
          int seen = 0;
          for (int pass = 0; pass < s->n_passes; pass++)
            if (s->states[pass * 1024 + p] == CS_PATCH_MASKED)
              {
                seen++;
                g_assert_cmpint (s->counted[pass * 1024 + p], ==, seen <= 10);
              }
        }
      int last_counts = 0;
      for (int p = 0; p < 1024; p++)
        last_counts += s->counted[(s->n_passes - 1) * 1024 + p];
      g_assert_cmpint (last_counts, >, 0);
      total_passes += s->n_passes;
      min_passes = MIN (min_passes, s->n_passes);
      max_passes = MAX (max_passes, s->n_passes);
    }
  double mean = total_passes / n_seeds;
  g_print ("# reference geometry (100 ROI patches, ratio 0.75, K 10), %d seeds: random "
           "%.2f passes on average (min %d, max %d); balanced %d\n", n_seeds, mean,
           min_passes, max_passes, (10 * 100 + 74) / 75);
  /* Each patch is masked in Binomial (P, 0.75) passes; all 100 reach 10 after about 20. */
  g_assert_cmpfloat (mean, >, 17.0);
  g_assert_cmpfloat (mean, <, 23.0);
  g_assert_cmpint (min_passes, >=, 14); /* no random schedule beats the balanced bound */
}

static void
test_schedule_no_roi (void)
{
  guint8 is_roi[16] = { 0 };
  g_autoptr (GRand) rng = g_rand_new_with_seed (1);
  g_autoptr (CsMcSchedule) a = cs_mc_schedule_new_random (is_roi, NULL, 16, 10, 0.75, rng);
  g_autoptr (CsMcSchedule) b = cs_mc_schedule_new_balanced (is_roi, NULL, 16, 10, 0.75, rng);
  g_assert_cmpint (a->n_passes, ==, 0);
  g_assert_cmpint (b->n_passes, ==, 0);
}

static void
test_schedule_deterministic (void)
{
  guint8 is_roi[1024], base[1024];
  reference_geometry (is_roi, base);
  for (int kind = 0; kind < 2; kind++)
    {
      g_autoptr (GRand) r1 = g_rand_new_with_seed (42);
      g_autoptr (GRand) r2 = g_rand_new_with_seed (42);
      g_autoptr (CsMcSchedule) a = kind ? cs_mc_schedule_new_balanced (is_roi, base, 1024, 10,
                                                                       0.75, r1)
                                        : cs_mc_schedule_new_random (is_roi, base, 1024, 10,
                                                                     0.75, r1);
      g_autoptr (CsMcSchedule) b = kind ? cs_mc_schedule_new_balanced (is_roi, base, 1024, 10,
                                                                       0.75, r2)
                                        : cs_mc_schedule_new_random (is_roi, base, 1024, 10,
                                                                     0.75, r2);
      g_assert_cmpint (a->n_passes, ==, b->n_passes);
      g_assert_cmpmem (a->states, a->n_passes * 1024, b->states, b->n_passes * 1024);
      g_assert_cmpmem (a->counted, a->n_passes * 1024, b->counted, b->n_passes * 1024);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/u2ad/masking/roi-patches", test_roi_patches);
  g_test_add_func ("/u2ad/masking/context-states", test_context_states);
  g_test_add_func ("/u2ad/masking/mask-count", test_mask_count);
  g_test_add_func ("/u2ad/masking/random", test_mask_random);
  g_test_add_func ("/u2ad/masking/patch-sums", test_patch_sums);
  g_test_add_func ("/u2ad/masking/eu-weights", test_eu_weights);
  g_test_add_func ("/u2ad/masking/eu-inclusion-exact", test_eu_inclusion_exact);
  g_test_add_func ("/u2ad/masking/eu-guided-ordering", test_eu_guided_ordering);
  g_test_add_func ("/u2ad/masking/au-exclusion", test_au_exclusion);
  g_test_add_func ("/u2ad/masking/adapt-plan", test_adapt_plan);
  g_test_add_func ("/u2ad/masking/adapt-mask-item", test_adapt_mask_item);
  g_test_add_func ("/u2ad/masking/adapt-masks-paired", test_adapt_masks_paired);
  g_test_add_func ("/u2ad/schedule/balanced-exact", test_balanced_exact);
  g_test_add_func ("/u2ad/schedule/random", test_random_schedule);
  g_test_add_func ("/u2ad/schedule/no-roi", test_schedule_no_roi);
  g_test_add_func ("/u2ad/schedule/deterministic", test_schedule_deterministic);
  return g_test_run ();
}
