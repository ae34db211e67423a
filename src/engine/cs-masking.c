/* cs-masking.c: ROI patches, context dropping, random / EU-guided masking, AU-guided
 * exclusion and the Monte-Carlo schedules of U2AD. */
#include "engine/cs-masking.h"

#include <math.h>
#include <string.h>

#include "engine/cs-detect.h"

int
cs_roi_patches_from_mask (const guint8 *roi_mask, int height, int width, int patch,
                          guint8 *patch_is_roi)
{
  g_return_val_if_fail (patch > 0 && height % patch == 0 && width % patch == 0, 0);
  int grid_cols = width / patch;
  int n_patches = (height / patch) * grid_cols;
  memset (patch_is_roi, 0, (gsize) n_patches);
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      if (roi_mask[(gsize) y * width + x])
        patch_is_roi[(y / patch) * grid_cols + x / patch] = 1;
  int n_roi = 0;
  for (int p = 0; p < n_patches; p++)
    n_roi += patch_is_roi[p];
  return n_roi;
}

void
cs_context_states (const guint8 *patch_is_roi, int grid_rows, int grid_cols, int margin,
                   guint8 *states)
{
  int n_patches = grid_rows * grid_cols;
  memset (states, CS_PATCH_VISIBLE, (gsize) n_patches);
  if (margin < 0)
    return;
  g_autofree int *roi = g_new (int, n_patches);
  int n_roi = 0;
  for (int p = 0; p < n_patches; p++)
    if (patch_is_roi[p])
      roi[n_roi++] = p;
  /* Brute force is exact and cheap at 32 x 32 patches (about 100 ROI patches). */
  for (int p = 0; p < n_patches; p++)
    {
      if (patch_is_roi[p])
        continue;
      int pr = p / grid_cols, pc = p % grid_cols;
      gboolean near = FALSE;
      for (int i = 0; i < n_roi && !near; i++)
        {
          int dr = ABS (roi[i] / grid_cols - pr), dc = ABS (roi[i] % grid_cols - pc);
          near = MAX (dr, dc) <= margin;
        }
      if (!near)
        states[p] = CS_PATCH_DROPPED;
    }
}

int
cs_mask_count (int n_candidates, double ratio)
{
  if (n_candidates <= 0 || !(ratio > 0.0))
    return 0;
  int m = (int) floor (ratio * n_candidates + 0.5);
  return CLAMP (m, 1, n_candidates);
}

/* Gathers the indices of the non-zero entries of flags; returns their count. */
static int
collect_flagged (const guint8 *flags, int n, int *indices)
{
  int count = 0;
  for (int i = 0; i < n; i++)
    if (flags[i])
      indices[count++] = i;
  return count;
}

/* Partial Fisher-Yates: the first count entries of items become a uniform random subset. */
static void
shuffle_prefix (int *items, int n_items, int count, GRand *rng)
{
  for (int i = 0; i < count && i < n_items - 1; i++)
    {
      int j = g_rand_int_range (rng, i, n_items);
      int tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
}

int
cs_mask_random (const guint8 *maskable, int n_patches, double ratio, GRand *rng,
                guint8 *states)
{
  g_autofree int *candidates = g_new (int, MAX (n_patches, 1));
  int n = collect_flagged (maskable, n_patches, candidates);
  int m = cs_mask_count (n, ratio);
  shuffle_prefix (candidates, n, m, rng);
  for (int i = 0; i < m; i++)
    states[candidates[i]] = CS_PATCH_MASKED;
  return m;
}

void
cs_patch_sums (const float *map, int height, int width, int patch, double *patch_sums)
{
  g_return_if_fail (patch > 0 && height % patch == 0 && width % patch == 0);
  int grid_cols = width / patch;
  memset (patch_sums, 0, sizeof (double) * (gsize) ((height / patch) * grid_cols));
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      patch_sums[(y / patch) * grid_cols + x / patch] += map[(gsize) y * width + x];
}

/* One standard exponential per call from exactly one 32-bit draw: u in (0, 1), never 0 or 1. */
static double
exponential_draw (GRand *rng)
{
  double u = ((double) g_rand_int (rng) + 0.5) / 4294967296.0;
  return -log (u);
}

int
cs_mask_by_logits (const guint8 *maskable, const double *logits, int n_patches, double ratio,
                   GRand *rng, guint8 *states)
{
  g_autofree double *key = g_new (double, MAX (n_patches, 1));
  g_autofree int *candidates = g_new (int, MAX (n_patches, 1));
  int n = 0;
  for (int p = 0; p < n_patches; p++)
    {
      /* Drawn for every patch, maskable or not: the stream advances by n_patches whatever
       * the weights and the exclusions, so two strategies with one seed stay in step. */
      double e = exponential_draw (rng);
      if (!maskable[p])
        continue;
      /* Gumbel-top-k: logit + Gumbel noise, where -log(e) is a standard Gumbel variate. */
      key[p] = (logits ? logits[p] : 0.0) - log (e);
      candidates[n++] = p;
    }
  int m = cs_mask_count (n, ratio);
  /* Partial selection of the m largest keys (ties: the earlier patch). */
  for (int i = 0; i < m; i++)
    {
      int best = i;
      for (int j = i + 1; j < n; j++)
        if (key[candidates[j]] > key[candidates[best]])
          best = j;
      int tmp = candidates[i];
      candidates[i] = candidates[best];
      candidates[best] = tmp;
      states[candidates[i]] = CS_PATCH_MASKED;
    }
  return m;
}

int
cs_mask_eu_guided (const guint8 *maskable, const double *patch_eu, int n_patches,
                   double ratio, double tau, gboolean inverted, GRand *rng, guint8 *states)
{
  g_return_val_if_fail (tau > 0.0, 0);
  g_autofree double *logits = g_new (double, MAX (n_patches, 1));
  double sign = inverted ? -1.0 : 1.0;
  for (int p = 0; p < n_patches; p++)
    logits[p] = maskable[p] ? sign * patch_eu[p] / tau : 0.0;
  return cs_mask_by_logits (maskable, logits, n_patches, ratio, rng, states);
}

int
cs_au_exclusion (const float *au, const guint8 *roi_mask, int height, int width, int patch,
                 double percentile, int min_pixels, int n_components, guint8 *excluded)
{
  g_return_val_if_fail (patch > 0 && height % patch == 0 && width % patch == 0, 0);
  gsize n_pixels = (gsize) height * width;
  int grid_cols = width / patch;
  memset (excluded, 0, (gsize) ((height / patch) * grid_cols));

  g_autofree float *au_roi = g_new (float, n_pixels);
  for (gsize i = 0; i < n_pixels; i++)
    au_roi[i] = roi_mask[i] && au[i] > 0.0f ? au[i] : 0.0f;
  double threshold = cs_percentile_positive (au_roi, n_pixels, percentile);
  if (isnan (threshold))
    return 0;

  g_autofree guint8 *hot = g_new (guint8, n_pixels);
  for (gsize i = 0; i < n_pixels; i++)
    hot[i] = au_roi[i] > 0.0f && au_roi[i] >= threshold;
  g_autofree int *labels = g_new (int, n_pixels);
  int n_labels = cs_components_label8 (hot, height, width, labels);
  if (n_labels == 0)
    return 0;

  g_autofree double *sum = g_new0 (double, n_labels + 1);
  g_autofree int *count = g_new0 (int, n_labels + 1);
  for (gsize i = 0; i < n_pixels; i++)
    if (labels[i])
      {
        sum[labels[i]] += au_roi[i];
        count[labels[i]]++;
      }

  /* Selection of the best n_components by mean x sum; small n, so repeated arg-max. */
  g_autofree guint8 *chosen = g_new0 (guint8, n_labels + 1);
  int n_chosen = 0;
  for (; n_chosen < n_components; n_chosen++)
    {
      int best = 0;
      double best_score = -1.0;
      for (int l = 1; l <= n_labels; l++)
        {
          if (chosen[l] || count[l] < min_pixels)
            continue;
          double score = (sum[l] / count[l]) * sum[l];
          if (score > best_score)
            {
              best = l;
              best_score = score;
            }
        }
      if (best == 0)
        break;
      chosen[best] = 1;
    }

  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      if (chosen[labels[(gsize) y * width + x]])
        excluded[(y / patch) * grid_cols + x / patch] = 1;
  return n_chosen;
}

CsAdaptSchedule
cs_adapt_schedule_reference (CsAdaptStrategy strategy)
{
  return (CsAdaptSchedule) { .strategy = strategy, .eu_refresh_every = 10,
                             .au_from_epoch = 150 };
}

void
cs_adapt_plan_epoch (const CsAdaptSchedule *schedule, int epoch, CsAdaptEpochPlan *plan)
{
  plan->refresh_maps = schedule->eu_refresh_every > 0 && epoch % schedule->eu_refresh_every == 0;
  plan->eu_guided = schedule->strategy != CS_ADAPT_RANDOM;
  plan->au_excluded = schedule->strategy == CS_ADAPT_EU_AU && epoch >= schedule->au_from_epoch;
}

int
cs_adapt_mask_item (const CsAdaptEpochPlan *plan,
                    const guint8           *patch_is_roi,
                    const guint8           *base_states,
                    const double           *patch_eu,
                    const guint8           *excluded,
                    int                     n_patches,
                    double                  ratio,
                    double                  tau,
                    gboolean                inverted,
                    GRand                  *rng,
                    guint8                 *states)
{
  g_autofree guint8 *maskable = g_new (guint8, MAX (n_patches, 1));
  for (int p = 0; p < n_patches; p++)
    {
      states[p] = base_states ? base_states[p] : CS_PATCH_VISIBLE;
      maskable[p] = patch_is_roi[p] && !(plan->au_excluded && excluded && excluded[p]);
    }
  /* Both branches draw the same uniforms (cs_mask_by_logits): with one stream, a guided and
   * a uniform run differ only where the EU weights move the keys. */
  if (plan->eu_guided)
    return cs_mask_eu_guided (maskable, patch_eu, n_patches, ratio, tau, inverted, rng, states);
  return cs_mask_by_logits (maskable, NULL, n_patches, ratio, rng, states);
}

/* A schedule with room for its passes; states start from base_states or all visible. */
static CsMcSchedule *
schedule_new (CsMcScheduleKind kind, const guint8 *patch_is_roi, int n_patches, int k,
              double ratio)
{
  CsMcSchedule *schedule = g_new0 (CsMcSchedule, 1);
  schedule->kind = kind;
  schedule->n_patches = n_patches;
  schedule->k = k;
  for (int p = 0; p < n_patches; p++)
    schedule->n_roi += patch_is_roi[p] ? 1 : 0;
  schedule->n_masked = cs_mask_count (schedule->n_roi, ratio);
  return schedule;
}

/* Sets the number of passes and allocates states (copied from base_states) and counted. */
static void
schedule_allocate (CsMcSchedule *schedule, int n_passes, const guint8 *base_states)
{
  gsize n = (gsize) n_passes * schedule->n_patches;
  schedule->n_passes = n_passes;
  schedule->states = g_new0 (guint8, MAX (n, 1));
  schedule->counted = g_new0 (guint8, MAX (n, 1));
  if (base_states)
    for (int pass = 0; pass < n_passes; pass++)
      memcpy (schedule->states + (gsize) pass * schedule->n_patches, base_states,
              (gsize) schedule->n_patches);
}

CsMcSchedule *
cs_mc_schedule_new_random (const guint8 *patch_is_roi, const guint8 *base_states,
                           int n_patches, int k, double ratio, GRand *rng)
{
  g_return_val_if_fail (k > 0 && ratio > 0.0 && ratio <= 1.0, NULL);
  CsMcSchedule *schedule = schedule_new (CS_MC_SCHEDULE_RANDOM, patch_is_roi, n_patches, k,
                                         ratio);
  if (schedule->n_roi == 0)
    {
      schedule_allocate (schedule, 0, base_states);
      return schedule;
    }

  /* Passes are generated into growing arrays: the count is only known at the end. */
  g_autoptr (GByteArray) states = g_byte_array_new ();
  g_autoptr (GByteArray) counted = g_byte_array_new ();
  g_autofree int *samples = g_new0 (int, n_patches);
  g_autofree guint8 *pass_states = g_new (guint8, n_patches);
  g_autofree guint8 *pass_counted = g_new (guint8, n_patches);
  int n_complete = 0, n_passes = 0;
  while (n_complete < schedule->n_roi)
    {
      if (base_states)
        memcpy (pass_states, base_states, (gsize) n_patches);
      else
        memset (pass_states, CS_PATCH_VISIBLE, (gsize) n_patches);
      memset (pass_counted, 0, (gsize) n_patches);
      cs_mask_random (patch_is_roi, n_patches, ratio, rng, pass_states);
      for (int p = 0; p < n_patches; p++)
        if (pass_states[p] == CS_PATCH_MASKED && samples[p] < k)
          {
            pass_counted[p] = 1;
            if (++samples[p] == k)
              n_complete++;
          }
      g_byte_array_append (states, pass_states, (guint) n_patches);
      g_byte_array_append (counted, pass_counted, (guint) n_patches);
      n_passes++;
    }
  schedule->n_passes = n_passes;
  schedule->states = g_byte_array_steal (states, NULL);
  schedule->counted = g_byte_array_steal (counted, NULL);
  return schedule;
}

CsMcSchedule *
cs_mc_schedule_new_balanced (const guint8 *patch_is_roi, const guint8 *base_states,
                             int n_patches, int k, double ratio, GRand *rng)
{
  g_return_val_if_fail (k > 0 && ratio > 0.0 && ratio <= 1.0, NULL);
  CsMcSchedule *schedule = schedule_new (CS_MC_SCHEDULE_BALANCED, patch_is_roi, n_patches, k,
                                         ratio);
  int n = schedule->n_roi, m = schedule->n_masked;
  if (n == 0)
    {
      schedule_allocate (schedule, 0, base_states);
      return schedule;
    }
  gsize n_slots = (gsize) k * n;
  int n_passes = (int) ((n_slots + m - 1) / m);
  schedule_allocate (schedule, n_passes, base_states);

  /* The sequence: k permutations of the ROI patches (plus one for the top-up), end to end. */
  int n_perms = k + 1;
  g_autofree int *sequence = g_new (int, (gsize) n_perms * n);
  g_autofree int *roi = g_new (int, n);
  collect_flagged (patch_is_roi, n_patches, roi);
  g_autofree guint8 *taken = g_new (guint8, n_patches);
  g_autofree int *pool = g_new (int, n);
  for (int c = 0; c < n_perms; c++)
    {
      gsize start = (gsize) c * n;
      /* The pass window that straddles this permutation's start, if any. */
      gsize window = start / m * m;
      int head = 0;
      memset (taken, 0, (gsize) n_patches);
      if (c > 0 && window < start)
        {
          head = (int) (window + m - start);
          for (gsize i = window; i < start; i++)
            taken[sequence[i]] = 1;
        }
      /* Head: patches that window has not masked yet, in random order; then the rest. */
      int n_free = 0, n_rest = 0;
      for (int i = 0; i < n; i++)
        if (!taken[roi[i]])
          pool[n_free++] = roi[i];
      shuffle_prefix (pool, n_free, head, rng);
      for (int i = 0; i < head; i++)
        {
          sequence[start + i] = pool[i];
          taken[pool[i]] = 2;
        }
      for (int i = 0; i < n; i++)
        if (taken[roi[i]] != 2)
          pool[n_rest++] = roi[i];
      shuffle_prefix (pool, n_rest, n_rest, rng);
      memcpy (sequence + start + head, pool, sizeof (int) * (gsize) n_rest);
    }

  for (int pass = 0; pass < n_passes; pass++)
    {
      guint8 *states = schedule->states + (gsize) pass * n_patches;
      guint8 *counted = schedule->counted + (gsize) pass * n_patches;
      for (gsize i = (gsize) pass * m; i < (gsize) (pass + 1) * m; i++)
        {
          states[sequence[i]] = CS_PATCH_MASKED;
          counted[sequence[i]] = i < n_slots;
        }
    }
  return schedule;
}

void
cs_mc_schedule_free (CsMcSchedule *schedule)
{
  if (schedule == NULL)
    return;
  g_free (schedule->states);
  g_free (schedule->counted);
  g_free (schedule);
}
