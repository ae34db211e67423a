/* cs-mc.c: Monte-Carlo inference of one slice through the network (see cs-mc.h). */
#include "engine/cs-mc.h"
#include "engine/cs-detect.h"
#include "engine/cs-model.h"

#include <string.h>

gboolean
cs_mc_infer (CsModel *model, const float *image, const guint8 *roi_mask, int k,
             CsMcScheduleKind kind, guint64 seed, GCancellable *cancellable, float *mean,
             float *eu, float *au, int *counts, CsMcStats *stats, GError **error)
{
  const CsModelConfig geo = *cs_model_get_config (model);
  int S = geo.img_size, P = geo.patch, G = S / P, N = G * G, PP = P * P;
  gsize HW = (gsize) S * S;

  if (k < 1)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "Monte-Carlo inference: K must be >= 1 (got %d)", k);
      return FALSE;
    }
  g_autofree guint8 *is_roi = g_new0 (guint8, N);
  int n_roi = cs_roi_patches_from_mask (roi_mask, S, S, P, is_roi);
  if (n_roi == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "Monte-Carlo inference: the ROI is empty on this slice");
      return FALSE;
    }
  g_autofree guint8 *base = g_new0 (guint8, N);
  cs_context_states (is_roi, G, G, geo.context_margin, base);

  /* A GRand per call: no shared state between threads. */
  guint32 seed_words[2] = { (guint32) seed, (guint32) (seed >> 32) };
  GRand *rng = g_rand_new_with_seed_array (seed_words, 2);
  CsMcSchedule *schedule = kind == CS_MC_SCHEDULE_BALANCED
    ? cs_mc_schedule_new_balanced (is_roi, base, N, k, geo.mask_ratio, rng)
    : cs_mc_schedule_new_random (is_roi, base, N, k, geo.mask_ratio, rng);
  g_rand_free (rng);
  int B = schedule->n_passes;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    {
      cs_mc_schedule_free (schedule);
      return FALSE;
    }

  /* The same image in every pass; only the masks differ. */
  g_autofree float *images = g_new (float, (gsize) B * HW);
  for (int b = 0; b < B; b++)
    memcpy (images + (gsize) b * HW, image, HW * sizeof (float));
  g_autofree float *pred = g_new (float, (gsize) B * N * PP);
  gint64 t0 = g_get_monotonic_time ();
  CsBatch batch = { B, images, schedule->states };
  CsForwardOut out = { 0 };
  out.pred_img = pred;
  if (!cs_model_forward_backward (model, &batch, FALSE, &out, error))
    {
      cs_mc_schedule_free (schedule);
      return FALSE;
    }
  double forward_s = (g_get_monotonic_time () - t0) / 1e6;

  /* Each pass's reconstruction: its masked patches' predictions pasted into the image
   * (reusing the images buffer, which now holds one copy of the image per pass). */
  for (int b = 0; b < B; b++)
    {
      float *rec = images + (gsize) b * HW;
      const guint8 *st = schedule->states + (gsize) b * N;
      for (int p = 0; p < N; p++)
        {
          if (st[p] != CS_PATCH_MASKED)
            continue;
          const float *tok = pred + ((gsize) b * N + p) * PP;
          int r0 = (p / G) * P, c0 = (p % G) * P;
          for (int y = 0; y < P; y++)
            memcpy (rec + (gsize) (r0 + y) * S + c0, tok + y * P, P * sizeof (float));
        }
    }
  g_autofree float *m = g_new (float, HW), *e = g_new (float, HW), *a = g_new (float, HW);
  cs_mc_aggregate (schedule, images, image, roi_mask, S, S, P, m, e, a);
  if (mean)
    memcpy (mean, m, HW * sizeof (float));
  if (eu)
    memcpy (eu, e, HW * sizeof (float));
  if (au)
    memcpy (au, a, HW * sizeof (float));
  if (counts)
    {
      memset (counts, 0, N * sizeof (int));
      for (int b = 0; b < B; b++)
        for (int p = 0; p < N; p++)
          counts[p] += schedule->counted[(gsize) b * N + p];
    }
  if (stats)
    {
      stats->n_passes = B;
      stats->n_roi = n_roi;
      stats->k = k;
      stats->forward_s = forward_s;
    }
  cs_mc_schedule_free (schedule);
  return TRUE;
}
