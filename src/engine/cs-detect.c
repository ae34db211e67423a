/* cs-detect.c: U2AD detection numerics: Monte-Carlo statistics, post-processing, anomaly
 * curve, segment and patient scores, and the z-score baseline. */
#include "engine/cs-detect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK (cs-detect-error-quark, cs_detect_error)

const char *const cs_segment_names[CS_N_SEGMENTS] = {
  "C2-3", "C3-4", "C4-5", "C5-6", "C6-7", "C7-T1",
};

static int
compare_float (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x > y) - (x < y);
}

double
cs_percentile_positive (const float *values, gsize n_values, double q)
{
  g_autofree float *positive = g_new (float, MAX (n_values, 1));
  gsize n = 0;
  for (gsize i = 0; i < n_values; i++)
    if (values[i] > 0.0f)
      positive[n++] = values[i];
  if (n == 0)
    return NAN;
  qsort (positive, n, sizeof (float), compare_float);
  double position = CLAMP (q, 0.0, 100.0) / 100.0 * (double) (n - 1);
  gsize below = (gsize) floor (position);
  gsize above = MIN (below + 1, n - 1);
  double fraction = position - (double) below;
  return positive[below] + fraction * ((double) positive[above] - positive[below]);
}

int
cs_components_label8 (const guint8 *foreground, int height, int width, int *labels)
{
  gsize n_pixels = (gsize) height * width;
  memset (labels, 0, sizeof (int) * n_pixels);
  g_autofree gsize *stack = g_new (gsize, MAX (n_pixels, 1));
  int n_labels = 0;
  for (gsize seed = 0; seed < n_pixels; seed++)
    {
      if (!foreground[seed] || labels[seed])
        continue;
      /* Flood fill from the first pixel in raster order, so labels follow raster order. */
      n_labels++;
      gsize top = 0;
      stack[top++] = seed;
      labels[seed] = n_labels;
      while (top > 0)
        {
          gsize i = stack[--top];
          int y = (int) (i / width), x = (int) (i % width);
          for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++)
              {
                int ny = y + dy, nx = x + dx;
                if (ny < 0 || ny >= height || nx < 0 || nx >= width)
                  continue;
                gsize j = (gsize) ny * width + nx;
                if (foreground[j] && !labels[j])
                  {
                    labels[j] = n_labels;
                    stack[top++] = j;
                  }
              }
        }
    }
  return n_labels;
}

void
cs_mc_moments (const float *samples, int k, gsize n_values, float *mean, float *variance)
{
  g_return_if_fail (k > 0);
  for (gsize i = 0; i < n_values; i++)
    {
      /* Two passes in double: the variance of near-equal samples stays accurate. */
      double sum = 0.0;
      for (int s = 0; s < k; s++)
        sum += samples[(gsize) s * n_values + i];
      double mu = sum / k, squares = 0.0;
      for (int s = 0; s < k; s++)
        {
          double d = samples[(gsize) s * n_values + i] - mu;
          squares += d * d;
        }
      mean[i] = (float) mu;
      variance[i] = (float) (squares / k);
    }
}

void
cs_paste_predictions (const float  *tokens,
                      const guint8 *states,
                      const float  *image,
                      int           height,
                      int           width,
                      int           patch,
                      float        *out)
{
  g_return_if_fail (patch > 0 && height % patch == 0 && width % patch == 0);
  int grid_cols = width / patch, n_patches = (height / patch) * grid_cols;
  memcpy (out, image, sizeof (float) * (gsize) height * width);
  int token = 0;
  for (int p = 0; p < n_patches; p++)
    {
      if (states[p] == CS_PATCH_DROPPED)
        continue;
      if (states[p] == CS_PATCH_MASKED)
        {
          const float *vector = tokens + (gsize) token * patch * patch;
          int y0 = (p / grid_cols) * patch, x0 = (p % grid_cols) * patch;
          for (int dy = 0; dy < patch; dy++)
            memcpy (out + (gsize) (y0 + dy) * width + x0, vector + dy * patch,
                    sizeof (float) * patch);
        }
      token++;
    }
}

void
cs_mc_aggregate (const CsMcSchedule *schedule,
                 const float        *reconstructions,
                 const float        *image,
                 const guint8       *roi_mask,
                 int                 height,
                 int                 width,
                 int                 patch,
                 float              *mean,
                 float              *eu,
                 float              *au)
{
  g_return_if_fail (patch > 0 && height % patch == 0 && width % patch == 0);
  g_return_if_fail (schedule->n_patches == (height / patch) * (width / patch));
  gsize n_pixels = (gsize) height * width;
  int grid_cols = width / patch;
  g_autofree double *sum = g_new0 (double, n_pixels);
  g_autofree int *count = g_new0 (int, n_pixels);

  for (int pass = 0; pass < schedule->n_passes; pass++)
    {
      const guint8 *counted = schedule->counted + (gsize) pass * schedule->n_patches;
      const float *recon = reconstructions + (gsize) pass * n_pixels;
      for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
          if (counted[(y / patch) * grid_cols + x / patch])
            {
              gsize i = (gsize) y * width + x;
              sum[i] += recon[i];
              count[i]++;
            }
    }
  for (gsize i = 0; i < n_pixels; i++)
    mean[i] = count[i] ? (float) (sum[i] / count[i]) : image[i];

  /* Second pass for the variance around the final mean (population variance). */
  g_autofree double *squares = g_new0 (double, n_pixels);
  for (int pass = 0; pass < schedule->n_passes; pass++)
    {
      const guint8 *counted = schedule->counted + (gsize) pass * schedule->n_patches;
      const float *recon = reconstructions + (gsize) pass * n_pixels;
      for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
          if (counted[(y / patch) * grid_cols + x / patch])
            {
              gsize i = (gsize) y * width + x;
              double d = recon[i] - (double) mean[i];
              squares[i] += d * d;
            }
    }
  for (gsize i = 0; i < n_pixels; i++)
    {
      eu[i] = count[i] ? (float) (squares[i] / count[i]) : 0.0f;
      au[i] = roi_mask[i] ? fabsf (image[i] - mean[i]) : 0.0f;
    }
}

int
cs_anomaly_postprocess (float *map, int height, int width, double drop_percentile,
                        int keep_components)
{
  gsize n_pixels = (gsize) height * width;
  for (gsize i = 0; i < n_pixels; i++)
    if (!(map[i] > 0.0f))
      map[i] = 0.0f;
  double threshold = cs_percentile_positive (map, n_pixels, drop_percentile);
  if (isnan (threshold))
    return 0;
  g_autofree guint8 *kept = g_new (guint8, n_pixels);
  for (gsize i = 0; i < n_pixels; i++)
    {
      if (map[i] < threshold)
        map[i] = 0.0f;
      kept[i] = map[i] > 0.0f;
    }

  g_autofree int *labels = g_new (int, n_pixels);
  int n_labels = cs_components_label8 (kept, height, width, labels);
  g_autofree double *sum = g_new0 (double, n_labels + 1);
  for (gsize i = 0; i < n_pixels; i++)
    sum[labels[i]] += map[i];

  g_autofree guint8 *chosen = g_new0 (guint8, n_labels + 1);
  int n_chosen = 0;
  for (; n_chosen < keep_components && n_chosen < n_labels; n_chosen++)
    {
      int best = 0;
      for (int l = 1; l <= n_labels; l++)
        if (!chosen[l] && (best == 0 || sum[l] > sum[best]))
          best = l;
      chosen[best] = 1;
    }
  for (gsize i = 0; i < n_pixels; i++)
    if (!chosen[labels[i]])
      map[i] = 0.0f;
  return n_chosen;
}

gsize
cs_cord_interior (const guint8 *cord_mask, int height, int width, int inset_px, guint8 *interior)
{
  gsize n = 0;
  for (int y = 0; y < height; y++)
    {
      gsize row_n = 0;
      for (int x = 0; x < width; x++)
        {
          gsize i = (gsize) y * width + x;
          gboolean inside = cord_mask[i] != 0;
          for (int dy = -inset_px; dy <= inset_px && inside; dy++)
            for (int dx = -inset_px; dx <= inset_px && inside; dx++)
              {
                int yy = y + dy, xx = x + dx;
                if (dx * dx + dy * dy > inset_px * inset_px)
                  continue;
                /* The cord runs off the grid: the grid's border is not a cord edge. */
                if (yy >= 0 && yy < height && xx >= 0 && xx < width)
                  inside = cord_mask[(gsize) yy * width + xx] != 0;
              }
          interior[i] = inside;
          row_n += inside;
        }
      /* A row too thin for the inset keeps its cord pixels rather than vanish. */
      if (row_n == 0)
        for (int x = 0; x < width; x++)
          row_n += interior[(gsize) y * width + x] = cord_mask[(gsize) y * width + x] != 0;
      n += row_n;
    }
  return n;
}

void
cs_anomaly_curve (const float  *map,
                  const guint8 *cord_mask,
                  int           height,
                  int           width,
                  int           half_window,
                  float        *curve)
{
  g_autofree double *row_sum = g_new0 (double, MAX (height, 1));
  g_autofree int *row_count = g_new0 (int, MAX (height, 1));
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      if (cord_mask[(gsize) y * width + x])
        {
          row_sum[y] += map[(gsize) y * width + x];
          row_count[y]++;
        }
  for (int r = 0; r < height; r++)
    {
      curve[r] = 0.0f;
      if (row_count[r] == 0)
        continue;
      double sum = 0.0;
      int count = 0;
      for (int y = MAX (0, r - half_window); y <= MIN (height - 1, r + half_window); y++)
        {
          sum += row_sum[y];
          count += row_count[y];
        }
      curve[r] = (float) (sum / count);
    }
}

gboolean
cs_segments_from_disc_rows (const double  *disc_rows,
                            int            height,
                            CsSegmentSpan *spans,
                            GError       **error)
{
  int present[CS_N_SEGMENTS], n_present = 0;
  for (int s = 0; s < CS_N_SEGMENTS; s++)
    {
      spans[s] = (CsSegmentSpan) { .row_start = 0, .row_end = -1, .present = FALSE };
      if (!isnan (disc_rows[s]))
        {
          if (n_present > 0 && !(disc_rows[s] > disc_rows[present[n_present - 1]]))
            {
              g_set_error (error, CS_DETECT_ERROR, CS_DETECT_ERROR_DISC_ORDER,
                           "disc %s (row %g) is not below disc %s (row %g)",
                           cs_segment_names[s], disc_rows[s],
                           cs_segment_names[present[n_present - 1]],
                           disc_rows[present[n_present - 1]]);
              return FALSE;
            }
          present[n_present++] = s;
        }
    }
  if (n_present < 2)
    return TRUE;

  for (int i = 0; i < n_present; i++)
    {
      double row = disc_rows[present[i]];
      double lo = i > 0 ? (disc_rows[present[i - 1]] + row) / 2.0
                        : row - (disc_rows[present[1]] - row) / 2.0;
      double hi = i < n_present - 1 ? (row + disc_rows[present[i + 1]]) / 2.0
                                    : row + (row - disc_rows[present[i - 1]]) / 2.0;
      /* Rows lo <= r < hi: a boundary row belongs to the lower segment only. */
      int start = MAX ((int) ceil (lo), 0);
      int end = MIN ((int) ceil (hi) - 1, height - 1);
      CsSegmentSpan *span = &spans[present[i]];
      span->row_start = start;
      span->row_end = end;
      span->present = start <= end;
    }
  return TRUE;
}

void
cs_segment_scores (const float         *curve,
                   int                  height,
                   const CsSegmentSpan *spans,
                   int                  n_spans,
                   double              *scores)
{
  for (int s = 0; s < n_spans; s++)
    {
      scores[s] = NAN;
      if (!spans[s].present)
        continue;
      int start = MAX (spans[s].row_start, 0), end = MIN (spans[s].row_end, height - 1);
      if (start > end)
        continue;
      double peak = curve[start];
      for (int r = start + 1; r <= end; r++)
        peak = MAX (peak, curve[r]);
      scores[s] = peak;
    }
}

double
cs_patient_score (const float *curve, int height)
{
  double peak = 0.0;
  for (int r = 0; r < height; r++)
    peak = MAX (peak, curve[r]);
  return peak;
}

double
cs_patient_score_segments (const float         *curve,
                           int                  height,
                           const CsSegmentSpan *spans,
                           int                  n_spans)
{
  double peak = NAN;
  for (int s = 0; s < n_spans; s++)
    {
      if (!spans[s].present)
        continue;
      for (int r = MAX (spans[s].row_start, 0); r <= MIN (spans[s].row_end, height - 1); r++)
        peak = isnan (peak) ? curve[r] : MAX (peak, curve[r]);
    }
  return peak;
}

void
cs_zscore_map (const float *image, const guint8 *roi_mask, gsize n_pixels, float *z)
{
  double sum = 0.0;
  gsize n = 0;
  for (gsize i = 0; i < n_pixels; i++)
    if (roi_mask[i])
      {
        sum += image[i];
        n++;
      }
  double mean = n ? sum / n : 0.0, squares = 0.0;
  for (gsize i = 0; i < n_pixels; i++)
    if (roi_mask[i])
      squares += (image[i] - mean) * (image[i] - mean);
  double sd = n ? sqrt (squares / n) : 0.0;
  for (gsize i = 0; i < n_pixels; i++)
    {
      double value = roi_mask[i] && sd > 0.0 ? (image[i] - mean) / sd : 0.0;
      z[i] = (float) MAX (value, 0.0);
    }
}

double
cs_detection_score (float               *map,
                    const guint8        *cord_mask,
                    int                  height,
                    int                  width,
                    const CsSegmentSpan *spans,
                    int                  n_spans,
                    float               *curve,
                    double              *segment_scores)
{
  cs_anomaly_postprocess (map, height, width, 20.0, 3);
  cs_anomaly_curve (map, cord_mask, height, width, 2, curve);
  if (n_spans > 0)
    cs_segment_scores (curve, height, spans, n_spans, segment_scores);
  return cs_patient_score (curve, height);
}
