/* cs-centerline.c: cord ROI around an interpolated centerline, optionally refined by the
 * image (CSF excluded). */
#include "io/cs-centerline.h"

#include <math.h>
#include <string.h>

#include "io/cs-labels.h"
#include "io/cs-slice2d.h"

static CsDisplayPoint
catmull_rom (CsDisplayPoint p0, CsDisplayPoint p1, CsDisplayPoint p2, CsDisplayPoint p3,
             double t)
{
  double t2 = t * t, t3 = t2 * t;
  CsDisplayPoint out;
  out.col = 0.5 * (2 * p1.col + (-p0.col + p2.col) * t
                   + (2 * p0.col - 5 * p1.col + 4 * p2.col - p3.col) * t2
                   + (-p0.col + 3 * p1.col - 3 * p2.col + p3.col) * t3);
  out.row = 0.5 * (2 * p1.row + (-p0.row + p2.row) * t
                   + (2 * p0.row - 5 * p1.row + 4 * p2.row - p3.row) * t2
                   + (-p0.row + 3 * p1.row - 3 * p2.row + p3.row) * t3);
  return out;
}

GArray *
cs_centerline_interpolate (const CsDisplayPoint *points, guint n_points, double step_px)
{
  g_return_val_if_fail (points != NULL && n_points >= 1 && step_px > 0, NULL);
  GArray *out = g_array_new (FALSE, FALSE, sizeof (CsDisplayPoint));
  g_array_append_val (out, points[0]);
  for (guint i = 0; i + 1 < n_points; i++)
    {
      CsDisplayPoint p1 = points[i], p2 = points[i + 1], p0, p3;
      /* Ghost points continue the end chords, so the curve is straight at its ends. */
      if (i > 0)
        p0 = points[i - 1];
      else
        p0 = (CsDisplayPoint) { 2 * p1.col - p2.col, 2 * p1.row - p2.row };
      if (i + 2 < n_points)
        p3 = points[i + 2];
      else
        p3 = (CsDisplayPoint) { 2 * p2.col - p1.col, 2 * p2.row - p1.row };
      /* The spline's arc is at most the control polygon's length p0..p3 (convex hull). */
      double bound = hypot (p1.col - p0.col, p1.row - p0.row)
        + hypot (p2.col - p1.col, p2.row - p1.row) + hypot (p3.col - p2.col, p3.row - p2.row);
      guint n = MAX (1, (guint) ceil (bound / step_px));
      for (guint k = 1; k <= n; k++)
        {
          CsDisplayPoint q = k == n ? p2 : catmull_rom (p0, p1, p2, p3, (double) k / n);
          g_array_append_val (out, q);
        }
    }
  return out;
}

/* Squared mm distance from (x, y) to segment a-b, all in mm. */
static double
segment_distance2 (double x, double y, double ax, double ay, double bx, double by)
{
  double dx = bx - ax, dy = by - ay;
  double len2 = dx * dx + dy * dy;
  double t = len2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / len2 : 0;
  t = CLAMP (t, 0.0, 1.0);
  double ex = ax + t * dx - x, ey = ay + t * dy - y;
  return ex * ex + ey * ey;
}

static gboolean
check_points (const CsDisplayPoint *points, guint n_points, double width_mm, GError **error)
{
  if (n_points < 2)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "a centerline needs at least 2 points (%u given)", n_points);
      return FALSE;
    }
  if (!(width_mm > 0) || !isfinite (width_mm))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "the centerline width must be > 0 mm (%g given)", width_mm);
      return FALSE;
    }
  for (guint i = 0; i < n_points; i++)
    if (!isfinite (points[i].col) || !isfinite (points[i].row))
      {
        g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                     "centerline point %u is not a finite position", i + 1);
        return FALSE;
      }
  return TRUE;
}

/* Drops from MASK, row by row, the tube pixels outside the core that lie beyond the first
 * pixel brighter than the CSF threshold, seen from the row's pixel nearest the line. */
static void
refine_by_image (const CsSagittal *image, const float *dist2, double radius, float *mask)
{
  int w = image->width, h = image->height;
  double core2 = (radius / 2) * (radius / 2);
  g_autoptr (GArray) core = g_array_new (FALSE, FALSE, sizeof (float));
  g_autoptr (GArray) tube = g_array_new (FALSE, FALSE, sizeof (float));
  for (gsize p = 0; p < (gsize) w * h; p++)
    if (mask[p] > 0)
      {
        g_array_append_val (tube, image->data[p]);
        if (dist2[p] <= core2)
          g_array_append_val (core, image->data[p]);
      }
  if (core->len == 0)
    return;
  double c = cs_slice2d_percentile ((const float *) core->data, core->len, 50);
  g_autoptr (GArray) deviation = g_array_new (FALSE, FALSE, sizeof (float));
  for (guint i = 0; i < core->len; i++)
    {
      float d = fabsf (g_array_index (core, float, i) - (float) c);
      g_array_append_val (deviation, d);
    }
  double s = 1.4826 * cs_slice2d_percentile ((const float *) deviation->data, deviation->len, 50);
  double b = cs_slice2d_percentile ((const float *) tube->data, tube->len, 99);
  double threshold = c + MAX ((b - c) / 2, 3 * s);

  for (int r = 0; r < h; r++)
    {
      float *row = mask + (gsize) r * w;
      const float *d2 = dist2 + (gsize) r * w;
      const float *v = image->data + (gsize) r * w;
      int centre = -1;
      for (int col = 0; col < w; col++)
        if (row[col] > 0 && (centre < 0 || d2[col] < d2[centre]))
          centre = col;
      if (centre < 0)
        continue;
      for (int dir = -1; dir <= 1; dir += 2)
        {
          gboolean cut = FALSE;
          for (int col = centre; col >= 0 && col < w; col += dir)
            {
              if (row[col] == 0)
                continue;   /* the tube is convex per row near the line; skip gaps */
              if (d2[col] <= core2)
                continue;
              if (!cut && v[col] > threshold)
                cut = TRUE;
              if (cut)
                row[col] = 0;
            }
        }
    }
}

float *
cs_centerline_mask_sagittal (const CsSagittal *image, const CsDisplayPoint *points,
                             guint n_points, double width_mm, gboolean refine, GError **error)
{
  g_return_val_if_fail (image != NULL && (points != NULL || n_points == 0), NULL);
  if (!check_points (points, n_points, width_mm, error))
    return NULL;
  int w = image->width, h = image->height;
  double sx = image->spacing[0] > 0 ? image->spacing[0] : 1;
  double sy = image->spacing[1] > 0 ? image->spacing[1] : 1;
  double radius = width_mm / 2;
  /* A step of a quarter of the finer pixel keeps the polyline within far less than a
   * pixel of the spline. */
  g_autoptr (GArray) line = cs_centerline_interpolate (points, n_points, 0.25);

  g_autofree float *dist2 = g_new (float, (gsize) w * h);
  for (gsize p = 0; p < (gsize) w * h; p++)
    dist2[p] = INFINITY;
  /* Each polyline piece only updates the pixels of its bounding box grown by the radius. */
  for (guint i = 0; i + 1 < line->len; i++)
    {
      CsDisplayPoint a = g_array_index (line, CsDisplayPoint, i);
      CsDisplayPoint b = g_array_index (line, CsDisplayPoint, i + 1);
      int c0 = MAX (0, (int) floor (MIN (a.col, b.col) - radius / sx));
      int c1 = MIN (w - 1, (int) ceil (MAX (a.col, b.col) + radius / sx));
      int r0 = MAX (0, (int) floor (MIN (a.row, b.row) - radius / sy));
      int r1 = MIN (h - 1, (int) ceil (MAX (a.row, b.row) + radius / sy));
      for (int r = r0; r <= r1; r++)
        for (int c = c0; c <= c1; c++)
          {
            double d2 = segment_distance2 (c * sx, r * sy, a.col * sx, a.row * sy, b.col * sx,
                                           b.row * sy);
            float *slot = &dist2[(gsize) r * w + c];
            if (d2 < *slot)
              *slot = (float) d2;
          }
    }
  float *mask = g_new0 (float, (gsize) w * h);
  /* A hair of tolerance: a pixel centre exactly at width/2 counts as inside. */
  double limit = radius * radius * (1 + 1e-9);
  for (gsize p = 0; p < (gsize) w * h; p++)
    mask[p] = dist2[p] <= limit ? 1.0f : 0.0f;
  if (refine && image->data != NULL)
    refine_by_image (image, dist2, radius, mask);
  return mask;
}

CsVolume *
cs_centerline_mask_volume (const CsVolume *image, const CsCenterlinePoint *points,
                           guint n_points, double width_mm, gboolean refine, int *slice_out,
                           GError **error)
{
  g_return_val_if_fail (image != NULL, NULL);
  const char *source = image->path ? image->path : "image";
  if (n_points < 2)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "%s: a centerline needs at least 2 points (%u given)", source, n_points);
      return NULL;
    }
  int axis = cs_volume_sagittal_axis (image);
  double mean = 0;
  for (guint i = 0; i < n_points; i++)
    mean += points[i].voxel[axis] / n_points;
  long slice = isfinite (mean) ? lround (mean) : -1;
  if (slice < 0 || slice >= image->dim[axis])
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "%s: the centerline lies off the image (sagittal slice %g of %d)", source,
                   mean, image->dim[axis]);
      return NULL;
    }
  g_autoptr (CsSagittal) view = cs_volume_extract_sagittal (image, (int) slice);
  g_autofree CsDisplayPoint *display = g_new (CsDisplayPoint, n_points);
  for (guint i = 0; i < n_points; i++)
    cs_sagittal_voxel_to_display (view, points[i].voxel, &display[i].col, &display[i].row);
  g_autoptr (GError) local = NULL;
  g_autofree float *mask = cs_centerline_mask_sagittal (view, display, n_points, width_mm,
                                                        refine, &local);
  if (mask == NULL)
    {
      g_set_error (error, local->domain, local->code, "%s: %s", source, local->message);
      return NULL;
    }
  gsize n_inside = 0;
  for (gsize p = 0; p < (gsize) view->width * view->height; p++)
    n_inside += mask[p] > 0;
  if (n_inside == 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "%s: the centerline's cord ROI is empty (its points lie off slice %ld)",
                   source, slice);
      return NULL;
    }
  CsVolume *out = cs_volume_new_like (image);
  out->datatype = 16;   /* NIfTI float32, so a saved ROI reads back as written */
  for (int r = 0; r < view->height; r++)
    for (int c = 0; c < view->width; c++)
      if (mask[(gsize) r * view->width + c] > 0)
        {
          long v[3];
          for (int a = 0; a < 3; a++)
            v[a] = lround (view->px2vox[a][0] * c + view->px2vox[a][1] * r + view->px2vox[a][3]);
          out->data[((gsize) v[2] * out->dim[1] + v[1]) * out->dim[0] + v[0]] = 1.0f;
        }
  if (slice_out != NULL)
    *slice_out = (int) slice;
  return out;
}
