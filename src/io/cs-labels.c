/* cs-labels.c: disc labels, vertebral labels and level maps -> discs -> segment spans. */
#include "io/cs-labels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CS_MAX_LABEL_VALUE 255     /* SCT uses up to 50 (PMJ) and 60 (spinal cord end) */
#define CS_MAX_DISC_ORDERED 25     /* discs 1..25 must run superior to inferior */
#define CS_GRID_TOLERANCE_MM 0.05

static const char *const disc_names[] = {
  NULL, NULL, "C1-2", "C2-3", "C3-4", "C4-5", "C5-6", "C6-7", "C7-T1",
  "T1-2", "T2-3", "T3-4", "T4-5", "T5-6", "T6-7", "T7-8", "T8-9", "T9-10", "T10-11",
  "T11-12", "T12-L1", "L1-2", "L2-3", "L3-4", "L4-5", "L5-S1",
};

const char *
cs_disc_name (int disc_value)
{
  if (disc_value < 0 || disc_value >= (int) G_N_ELEMENTS (disc_names))
    return NULL;
  return disc_names[disc_value];
}

/* For messages: a name even for values no disc has. */
static const char *
disc_label (int disc_value)
{
  const char *name = cs_disc_name (disc_value);
  return name ? name : "disc";
}

const char *
cs_segment_name (int disc_value)
{
  if (disc_value < CS_SEGMENT_FIRST_DISC || disc_value > CS_SEGMENT_LAST_DISC)
    return NULL;
  return disc_names[disc_value];
}

static gboolean
has_suffix_before_ext (const char *base, const char *suffix)
{
  static const char *const exts[] = { ".nii.gz", ".nii" };
  for (guint e = 0; e < G_N_ELEMENTS (exts); e++)
    {
      g_autofree char *full = g_strconcat (suffix, exts[e], NULL);
      if (g_str_has_suffix (base, full))
        return TRUE;
    }
  return FALSE;
}

gboolean
cs_label_file_kind_from_name (const char *path, CsLabelFileKind *kind)
{
  g_autofree char *base = g_path_get_basename (path);
  static const char *const disc_suffixes[] = {
    "_labels-disc", "_labels-disc-manual", "_label-discs_dlabel",
  };
  for (guint i = 0; i < G_N_ELEMENTS (disc_suffixes); i++)
    if (has_suffix_before_ext (base, disc_suffixes[i]))
      {
        *kind = CS_LABEL_FILE_DISCS;
        return TRUE;
      }
  if (has_suffix_before_ext (base, "_labels-vert"))
    {
      *kind = CS_LABEL_FILE_VERTEBRAE;
      return TRUE;
    }
  if (has_suffix_before_ext (base, "_levels"))
    {
      *kind = CS_LABEL_FILE_LEVELS;
      return TRUE;
    }
  return FALSE;
}

static const char *
volume_name (const CsVolume *v)
{
  return v->path ? v->path : "(label volume)";
}

/* Reads whole-number label values; fails on fractions, NaN or values past the range. */
static gboolean
label_value_at (const CsVolume *labels, gsize index, int *value, GError **error)
{
  float raw = labels->data[index];
  if (!isfinite (raw) || raw < -0.5f || raw > CS_MAX_LABEL_VALUE + 0.5f
      || fabsf (raw - roundf (raw)) > 1e-3f)
    {
      gsize nx = labels->dim[0], ny = labels->dim[1];
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES,
                   "%s: label value %g at voxel (%zu, %zu, %zu) is not a whole number "
                   "in 0..%d", volume_name (labels), raw, index % nx, (index / nx) % ny,
                   index / (nx * ny), CS_MAX_LABEL_VALUE);
      return FALSE;
    }
  *value = (int) lroundf (raw);
  return TRUE;
}

/* Centroid of every non-zero value: sums[v*3+a], counts[v]. */
static gboolean
label_centroids (const CsVolume *labels, double *sums, gint64 *counts, GError **error)
{
  int nx = labels->dim[0], ny = labels->dim[1], nz = labels->dim[2];
  gsize index = 0;
  for (int k = 0; k < nz; k++)
    for (int j = 0; j < ny; j++)
      for (int i = 0; i < nx; i++, index++)
        {
          int value;
          if (labels->data[index] == 0.0f)
            continue;
          if (!label_value_at (labels, index, &value, error))
            return FALSE;
          if (value == 0)
            continue;
          sums[value * 3 + 0] += i;
          sums[value * 3 + 1] += j;
          sums[value * 3 + 2] += k;
          counts[value]++;
        }
  return TRUE;
}

static void
append_disc (GArray *discs, int value, double i, double j, double k, CsDiscSource source)
{
  CsDisc disc = { .value = value, .voxel = { i, j, k }, .source = source };
  g_array_append_val (discs, disc);
}

static GArray *
discs_from_disc_labels (const CsVolume *labels, GError **error)
{
  g_autofree double *sums = g_new0 (double, (CS_MAX_LABEL_VALUE + 1) * 3);
  g_autofree gint64 *counts = g_new0 (gint64, CS_MAX_LABEL_VALUE + 1);
  if (!label_centroids (labels, sums, counts, error))
    return NULL;
  GArray *discs = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  for (int v = 1; v <= CS_MAX_LABEL_VALUE; v++)
    if (counts[v] > 0)
      append_disc (discs, v, sums[v * 3] / counts[v], sums[v * 3 + 1] / counts[v],
                   sums[v * 3 + 2] / counts[v], CS_DISC_SOURCE_FILE);
  return discs;
}

/* Vertebra N's centre and vertebra N-1's centre give disc N, the disc above vertebra N. */
static GArray *
discs_from_vertebrae (const CsVolume *labels, GError **error)
{
  g_autofree double *sums = g_new0 (double, (CS_MAX_LABEL_VALUE + 1) * 3);
  g_autofree gint64 *counts = g_new0 (gint64, CS_MAX_LABEL_VALUE + 1);
  if (!label_centroids (labels, sums, counts, error))
    return NULL;
  for (int v = 31; v <= CS_MAX_LABEL_VALUE; v++)
    if (counts[v] > 0)
      {
        g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES,
                     "%s: value %d is not a vertebra number (vertebral labels are 1..30)",
                     volume_name (labels), v);
        return NULL;
      }
  GArray *discs = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  for (int v = 2; v <= 30; v++)
    if (counts[v] > 0 && counts[v - 1] > 0)
      {
        double c[3];
        for (int a = 0; a < 3; a++)
          c[a] = 0.5 * (sums[v * 3 + a] / counts[v] + sums[(v - 1) * 3 + a] / counts[v - 1]);
        append_disc (discs, v, c[0], c[1], c[2], CS_DISC_SOURCE_DERIVED);
      }
  return discs;
}

/* Disc N+1 lies on the interface between levels N and N+1: mean of the face midpoints. */
static GArray *
discs_from_levels (const CsVolume *levels, GError **error)
{
  int nx = levels->dim[0], ny = levels->dim[1], nz = levels->dim[2];
  const gsize stride[3] = { 1, (gsize) nx, (gsize) nx * ny };
  g_autofree double *sums = g_new0 (double, (CS_MAX_LABEL_VALUE + 1) * 3);
  g_autofree gint64 *counts = g_new0 (gint64, CS_MAX_LABEL_VALUE + 1);
  gsize index = 0;
  for (int k = 0; k < nz; k++)
    for (int j = 0; j < ny; j++)
      for (int i = 0; i < nx; i++, index++)
        {
          int here, there;
          const int pos[3] = { i, j, k };
          if (levels->data[index] == 0.0f)
            continue;
          if (!label_value_at (levels, index, &here, error))
            return NULL;
          if (here == 0)
            continue;
          for (int a = 0; a < 3; a++)
            {
              if (pos[a] + 1 >= levels->dim[a])
                continue;
              if (!label_value_at (levels, index + stride[a], &there, error))
                return NULL;
              if (abs (there - here) != 1 || there == 0)
                continue;
              int disc = MAX (here, there);
              for (int b = 0; b < 3; b++)
                sums[disc * 3 + b] += pos[b] + (a == b ? 0.5 : 0.0);
              counts[disc]++;
            }
        }
  GArray *discs = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  for (int v = 2; v <= CS_MAX_LABEL_VALUE; v++)
    if (counts[v] > 0)
      append_disc (discs, v, sums[v * 3] / counts[v], sums[v * 3 + 1] / counts[v],
                   sums[v * 3 + 2] / counts[v], CS_DISC_SOURCE_DERIVED);
  return discs;
}

GArray *
cs_discs_from_volume (const CsVolume *labels, CsLabelFileKind kind, GError **error)
{
  g_return_val_if_fail (labels != NULL, NULL);
  switch (kind)
    {
    case CS_LABEL_FILE_DISCS:
      return discs_from_disc_labels (labels, error);
    case CS_LABEL_FILE_VERTEBRAE:
      return discs_from_vertebrae (labels, error);
    case CS_LABEL_FILE_LEVELS:
      return discs_from_levels (labels, error);
    default:
      g_return_val_if_reached (NULL);
    }
}

GArray *
cs_discs_read (const char *path, CsLabelFileKind kind, const CsVolume *image, GError **error)
{
  g_autoptr (CsVolume) labels = cs_volume_load (path, error);
  if (labels == NULL)
    return NULL;
  if (image != NULL)
    {
      gboolean same = memcmp (labels->dim, image->dim, sizeof labels->dim) == 0;
      for (int r = 0; r < 3 && same; r++)
        for (int c = 0; c < 4 && same; c++)
          same = fabs (labels->vox2mm[r][c] - image->vox2mm[r][c]) <= CS_GRID_TOLERANCE_MM;
      if (!same)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                       "%s: label grid %dx%dx%d does not match the image %s (%dx%dx%d, "
                       "or a different voxel-to-mm affine)", path, labels->dim[0],
                       labels->dim[1], labels->dim[2], image->path ? image->path : "",
                       image->dim[0], image->dim[1], image->dim[2]);
          return NULL;
        }
    }
  return cs_discs_from_volume (labels, kind, error);
}

void
cs_sagittal_voxel_to_display (const CsSagittal *view, const double voxel[3],
                              double *col, double *row)
{
  /* Least squares on the two in-plane columns of px2vox: exact for an in-plane point, and
   * the orthogonal projection for a point off the slice. */
  double d[3], a[3], b[3];
  for (int r = 0; r < 3; r++)
    {
      d[r] = voxel[r] - view->px2vox[r][3];
      a[r] = view->px2vox[r][0];
      b[r] = view->px2vox[r][1];
    }
  double aa = 0, ab = 0, bb = 0, ad = 0, bd = 0;
  for (int r = 0; r < 3; r++)
    {
      aa += a[r] * a[r];
      ab += a[r] * b[r];
      bb += b[r] * b[r];
      ad += a[r] * d[r];
      bd += b[r] * d[r];
    }
  double det = aa * bb - ab * ab;
  if (det == 0.0)
    {
      *col = *row = NAN;
      return;
    }
  *col = (bb * ad - ab * bd) / det;
  *row = (aa * bd - ab * ad) / det;
}

gboolean
cs_segments_compute (const GArray *discs, const CsSagittal *view, const char *source,
                     CsSegment out[CS_N_SEGMENTS], GError **error)
{
  g_return_val_if_fail (discs != NULL && view != NULL, FALSE);
  if (source == NULL)
    source = "disc labels";
  memset (out, 0, sizeof (CsSegment) * CS_N_SEGMENTS);
  for (int s = 0; s < CS_N_SEGMENTS; s++)
    {
      out[s].disc_value = CS_SEGMENT_FIRST_DISC + s;
      out[s].name = cs_segment_name (out[s].disc_value);
    }

  /* Rows of discs 1..25 (the ordered ones), checked superior to inferior by value. */
  double rows[CS_MAX_DISC_ORDERED + 1], cols[CS_MAX_DISC_ORDERED + 1];
  gboolean have[CS_MAX_DISC_ORDERED + 1] = { FALSE };
  for (guint i = 0; i < discs->len; i++)
    {
      const CsDisc *d = &g_array_index (discs, CsDisc, i);
      if (d->value < 1 || d->value > CS_MAX_DISC_ORDERED)
        continue;
      if (have[d->value])
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES,
                       "%s: disc %s (value %d) is labelled twice", source,
                       disc_label (d->value), d->value);
          return FALSE;
        }
      cs_sagittal_voxel_to_display (view, d->voxel, &cols[d->value], &rows[d->value]);
      if (!isfinite (rows[d->value]))
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                       "%s: the sagittal view's pixel-to-voxel mapping is degenerate", source);
          return FALSE;
        }
      have[d->value] = TRUE;
    }
  int previous = -1;
  for (int v = 1; v <= CS_MAX_DISC_ORDERED; v++)
    {
      if (!have[v])
        continue;
      if (previous > 0 && !(rows[v] > rows[previous]))
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES,
                       "%s: discs out of order: %s (value %d, row %.1f) is not below %s "
                       "(value %d, row %.1f); disc values must increase from superior to "
                       "inferior", source, disc_label (v), v, rows[v],
                       disc_label (previous), previous, rows[previous]);
          return FALSE;
        }
      previous = v;
    }

  int present[CS_N_SEGMENTS], n_present = 0;
  for (int v = CS_SEGMENT_FIRST_DISC; v <= CS_SEGMENT_LAST_DISC; v++)
    if (have[v])
      present[n_present++] = v;
  if (n_present < 2)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "%s: %s; segment spans need at least two of the discs C2-3 .. C7-T1 "
                   "(values 3..8)", source,
                   n_present == 0 ? "no disc C2-3 .. C7-T1 is labelled"
                                  : "only one disc C2-3 .. C7-T1 is labelled");
      return FALSE;
    }

  for (int p = 0; p < n_present; p++)
    {
      int v = present[p];
      /* Half the per-value gap to the neighbour above / below; the ends mirror the other. */
      double half_up = 0, half_down = 0;
      if (p > 0)
        half_up = (rows[v] - rows[present[p - 1]]) / (2.0 * (v - present[p - 1]));
      if (p + 1 < n_present)
        half_down = (rows[present[p + 1]] - rows[v]) / (2.0 * (present[p + 1] - v));
      if (p == 0)
        half_up = half_down;
      if (p + 1 == n_present)
        half_down = half_up;
      CsSegment *s = &out[v - CS_SEGMENT_FIRST_DISC];
      s->present = TRUE;
      s->disc_row = rows[v];
      s->disc_col = cols[v];
      s->row_start = rows[v] - half_up;
      s->row_end = rows[v] + half_down;
    }
  return TRUE;
}

static gint
compare_disc_values (gconstpointer a, gconstpointer b)
{
  return ((const CsDisc *) a)->value - ((const CsDisc *) b)->value;
}

GArray *
cs_discs_merge (const GArray *base, const GArray *overrides)
{
  GArray *merged = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  for (guint i = 0; base != NULL && i < base->len; i++)
    {
      const CsDisc *d = &g_array_index (base, CsDisc, i);
      gboolean replaced = FALSE;
      for (guint j = 0; overrides != NULL && j < overrides->len && !replaced; j++)
        replaced = g_array_index (overrides, CsDisc, j).value == d->value;
      if (!replaced)
        g_array_append_val (merged, *d);
    }
  if (overrides != NULL)
    g_array_append_vals (merged, overrides->data, overrides->len);
  g_array_sort (merged, compare_disc_values);
  return merged;
}

int
cs_segment_at_row (const CsSegment segments[CS_N_SEGMENTS], double row)
{
  for (int s = 0; s < CS_N_SEGMENTS; s++)
    if (segments[s].present && row >= segments[s].row_start && row < segments[s].row_end)
      return s;
  return -1;
}
