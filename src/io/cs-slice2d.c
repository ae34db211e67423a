/* cs-slice2d.c: the engine's 2-D slice and its exact way back to the volume.
 * The geometry is described in cs-slice2d.h. */
#include "io/cs-slice2d.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CS_SLICE2D_CLIP_LOW 0.2
#define CS_SLICE2D_CLIP_HIGH 99.8
/* foreground: brighter than this fraction of the 99th percentile of the slice */
#define CS_SLICE2D_FOREGROUND_FRACTION 0.1
#define CS_SLICE2D_MIN_FOREGROUND 16
/* a grid point this close outside the slice's edge still counts as on it */
#define CS_SLICE2D_EDGE_EPS 1e-9

static void
mat4_mul (const double a[4][4], const double b[4][4], double out[4][4])
{
  double r[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      {
        double sum = 0.0;
        for (int k = 0; k < 4; k++)
          sum += a[i][k] * b[k][j];
        r[i][j] = sum;
      }
  memcpy (out, r, sizeof r);
}

void
cs_slice2d_grid_to_px (const CsSlice2d *s, double u, double v, double *col, double *row)
{
  *col = (u + s->offset[0]) / s->spacing[0];
  *row = (v + s->offset[1]) / s->spacing[1];
}

void
cs_slice2d_px_to_grid (const CsSlice2d *s, double col, double row, double *u, double *v)
{
  *u = col * s->spacing[0] - s->offset[0];
  *v = row * s->spacing[1] - s->offset[1];
}

static int
compare_float (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x > y) - (x < y);
}

double
cs_slice2d_percentile (const float *values, gsize n, double q)
{
  g_autofree float *sorted = NULL;
  double pos, frac;
  gsize lo;

  g_return_val_if_fail (values != NULL && n > 0, 0.0);
  sorted = g_memdup2 (values, n * sizeof (float));
  qsort (sorted, n, sizeof (float), compare_float);
  pos = CLAMP (q, 0.0, 100.0) / 100.0 * (double) (n - 1);
  lo = (gsize) floor (pos);
  frac = pos - (double) lo;
  if (lo + 1 >= n)
    return sorted[n - 1];
  return sorted[lo] + frac * ((double) sorted[lo + 1] - sorted[lo]);
}

/* Pixel (x, y) of a display slice, extended linearly beyond its edges. */
static double
pixel_extended (const CsSagittal *img, int x, int y)
{
  int w = img->width, h = img->height;
  if (x < 0)
    return w < 2 ? pixel_extended (img, 0, y)
                 : 2.0 * pixel_extended (img, 0, y) - pixel_extended (img, 1, y);
  if (x >= w)
    return w < 2 ? pixel_extended (img, w - 1, y)
                 : 2.0 * pixel_extended (img, w - 1, y) - pixel_extended (img, w - 2, y);
  if (y < 0)
    return h < 2 ? pixel_extended (img, x, 0)
                 : 2.0 * pixel_extended (img, x, 0) - pixel_extended (img, x, 1);
  if (y >= h)
    return h < 2 ? pixel_extended (img, x, h - 1)
                 : 2.0 * pixel_extended (img, x, h - 1) - pixel_extended (img, x, h - 2);
  return img->data[(gsize) y * w + x];
}

/* Catmull-Rom (Keys, a = -0.5) weights for taps -1, 0, 1, 2 at fraction t. */
static void
keys_weights (double t, double w[4])
{
  double t2 = t * t, t3 = t2 * t;
  w[0] = 0.5 * (-t3 + 2.0 * t2 - t);
  w[1] = 0.5 * (3.0 * t3 - 5.0 * t2 + 2.0);
  w[2] = 0.5 * (-3.0 * t3 + 4.0 * t2 + t);
  w[3] = 0.5 * (t3 - t2);
}

static double
sample_cubic (const CsSagittal *img, double col, double row)
{
  int x0 = (int) floor (col), y0 = (int) floor (row);
  double wx[4], wy[4], sum = 0.0;
  keys_weights (col - x0, wx);
  keys_weights (row - y0, wy);
  for (int b = 0; b < 4; b++)
    {
      double line = 0.0;
      if (wy[b] == 0.0)
        continue;
      for (int a = 0; a < 4; a++)
        if (wx[a] != 0.0)
          line += wx[a] * pixel_extended (img, x0 - 1 + a, y0 - 1 + b);
      sum += wy[b] * line;
    }
  return sum;
}

static gboolean
on_slice (double col, double row, int width, int height)
{
  return col >= -CS_SLICE2D_EDGE_EPS && col <= width - 1 + CS_SLICE2D_EDGE_EPS
         && row >= -CS_SLICE2D_EDGE_EPS && row <= height - 1 + CS_SLICE2D_EDGE_EPS;
}

static gboolean
same_geometry (const CsSagittal *a, const CsSagittal *b)
{
  if (a->width != b->width || a->height != b->height)
    return FALSE;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      if (fabs (a->px2mm[i][j] - b->px2mm[i][j]) > 1e-4 * (1.0 + fabs (a->px2mm[i][j])))
        return FALSE;
  return TRUE;
}

static float *
resample (const CsSlice2d *s, const CsSagittal *img, gboolean nearest)
{
  gsize n = (gsize) s->size * s->size;
  float *out = g_new0 (float, n);

  for (int v = 0; v < s->size; v++)
    for (int u = 0; u < s->size; u++)
      {
        double col, row;
        cs_slice2d_grid_to_px (s, u, v, &col, &row);
        if (!on_slice (col, row, img->width, img->height))
          continue;
        if (nearest)
          {
            int x = CLAMP ((int) floor (col + 0.5), 0, img->width - 1);
            int y = CLAMP ((int) floor (row + 0.5), 0, img->height - 1);
            out[(gsize) v * s->size + u] = img->data[(gsize) y * img->width + x];
          }
        else
          {
            col = CLAMP (col, 0.0, img->width - 1.0);
            row = CLAMP (row, 0.0, img->height - 1.0);
            out[(gsize) v * s->size + u] = (float) sample_cubic (img, col, row);
          }
      }
  return out;
}

/* Clips to the foreground's 0.2/99.8 percentiles and min-max normalises in place. */
static void
normalise (CsSlice2d *s)
{
  gsize n = (gsize) s->size * s->size, n_in = 0, n_fg = 0;
  g_autofree float *in = g_new (float, n);
  g_autofree float *fg = NULL;
  double threshold, lo, hi, mn = G_MAXDOUBLE, mx = -G_MAXDOUBLE;

  for (gsize p = 0; p < n; p++)
    if (s->inside[p])
      in[n_in++] = s->image[p];
  if (n_in == 0)
    {
      s->clip_lo = s->clip_hi = 0.0;
      return;
    }
  threshold = CS_SLICE2D_FOREGROUND_FRACTION * cs_slice2d_percentile (in, n_in, 99.0);
  fg = g_new (float, n_in);
  for (gsize p = 0; p < n_in; p++)
    if (in[p] > threshold)
      fg[n_fg++] = in[p];
  if (n_fg < CS_SLICE2D_MIN_FOREGROUND)
    {
      memcpy (fg, in, n_in * sizeof (float));
      n_fg = n_in;
    }
  lo = cs_slice2d_percentile (fg, n_fg, CS_SLICE2D_CLIP_LOW);
  hi = cs_slice2d_percentile (fg, n_fg, CS_SLICE2D_CLIP_HIGH);
  for (gsize p = 0; p < n; p++)
    if (s->inside[p])
      {
        double x = CLAMP ((double) s->image[p], lo, hi);
        mn = MIN (mn, x);
        mx = MAX (mx, x);
      }
  s->clip_lo = mn;
  s->clip_hi = mx;
  for (gsize p = 0; p < n; p++)
    {
      if (!s->inside[p] || mx <= mn)
        {
          s->image[p] = 0.0f;
          continue;
        }
      s->image[p] = (float) ((CLAMP ((double) s->image[p], lo, hi) - mn) / (mx - mn));
    }
}

CsSlice2d *
cs_slice2d_new_from_sagittal (const CsSagittal *image, const CsSagittal *mask, int size,
                              const double *centre_px, GError **error)
{
  CsSlice2d *s;
  double centre[2], grid2px[4][4] = { { 0 } };
  int axis_c, axis_r;

  g_return_val_if_fail (image != NULL && image->data != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (size < 1 || size > 16384)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "the 2-D slice size must be 1 to 16384 pixels, not %d", size);
      return NULL;
    }
  if (mask && !same_geometry (image, mask))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "the cord mask slice (%d x %d) is not on the image slice's grid (%d x %d)",
                   mask->width, mask->height, image->width, image->height);
      return NULL;
    }

  if (centre_px)
    {
      centre[0] = centre_px[0];
      centre[1] = centre_px[1];
    }
  else if (mask)
    {
      double sc = 0.0, sr = 0.0;
      gsize count = 0;
      for (int r = 0; r < mask->height; r++)
        for (int c = 0; c < mask->width; c++)
          if (mask->data[(gsize) r * mask->width + c] > 0.5f)
            {
              sc += c;
              sr += r;
              count++;
            }
      if (count == 0)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                       "the cord mask is empty on sagittal slice %d", mask->slice);
          return NULL;
        }
      centre[0] = sc / (double) count;
      centre[1] = sr / (double) count;
    }
  else
    {
      centre[0] = (image->width - 1) / 2.0;
      centre[1] = (image->height - 1) / 2.0;
    }

  s = g_new0 (CsSlice2d, 1);
  s->size = size;
  s->spacing[0] = image->spacing[0];
  s->spacing[1] = image->spacing[1];
  s->centre_px[0] = centre[0];
  s->centre_px[1] = centre[1];
  /* whole-mm offsets: on a 1 mm scan the grid lands exactly on voxels */
  s->offset[0] = (int) lround (centre[0] * s->spacing[0]) - size / 2;
  s->offset[1] = (int) lround (centre[1] * s->spacing[1]) - size / 2;
  s->slice = image->slice;
  s->sagittal_axis = image->sagittal_axis;
  s->src_width = image->width;
  s->src_height = image->height;

  grid2px[0][0] = 1.0 / s->spacing[0];
  grid2px[0][3] = s->offset[0] / s->spacing[0];
  grid2px[1][1] = 1.0 / s->spacing[1];
  grid2px[1][3] = s->offset[1] / s->spacing[1];
  grid2px[2][2] = 1.0;
  grid2px[3][3] = 1.0;
  memcpy (s->grid2px, grid2px, sizeof grid2px);
  mat4_mul ((const double (*)[4]) image->px2vox, (const double (*)[4]) grid2px, s->grid2vox);
  mat4_mul ((const double (*)[4]) image->px2mm, (const double (*)[4]) grid2px, s->grid2mm);

  /* the volume's grid, recovered from the slice's own mappings: vox2mm = px2mm px2vox^-1;
   * px2vox is a signed permutation with offsets, so its inverse is exact */
  {
    double vox2px[4][4] = { { 0 } };
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++)
        if (image->px2vox[i][j] != 0.0)
          {
            vox2px[j][i] = 1.0 / image->px2vox[i][j];
            vox2px[j][3] = -image->px2vox[i][3] / image->px2vox[i][j];
          }
    vox2px[3][3] = 1.0;
    mat4_mul ((const double (*)[4]) image->px2mm, (const double (*)[4]) vox2px, s->vox2mm);
    axis_c = axis_r = -1;
    for (int i = 0; i < 3; i++)
      {
        if (image->px2vox[i][0] != 0.0)
          axis_c = i;
        if (image->px2vox[i][1] != 0.0)
          axis_r = i;
      }
    s->vol_dim[axis_c] = image->width;
    s->vol_dim[axis_r] = image->height;
    s->vol_dim[s->sagittal_axis] = image->volume_dim[s->sagittal_axis] > image->slice
                                   ? image->volume_dim[s->sagittal_axis]
                                   : image->slice + 1;   /* a slice made by hand */
  }

  s->inside = g_new0 (guint8, (gsize) size * size);
  for (int v = 0; v < size; v++)
    for (int u = 0; u < size; u++)
      {
        double col, row;
        cs_slice2d_grid_to_px (s, u, v, &col, &row);
        s->inside[(gsize) v * size + u] = on_slice (col, row, image->width, image->height);
      }
  s->image = resample (s, image, FALSE);
  normalise (s);
  if (mask)
    {
      gsize n = (gsize) size * size;
      s->roi = resample (s, mask, TRUE);
      for (gsize p = 0; p < n; p++)
        s->roi[p] = s->roi[p] > 0.5f ? 1.0f : 0.0f;
    }
  return s;
}

static gboolean
same_grid (const CsVolume *a, const CsVolume *b)
{
  for (int i = 0; i < 3; i++)
    if (a->dim[i] != b->dim[i])
      return FALSE;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      if (fabs (a->vox2mm[i][j] - b->vox2mm[i][j]) > 1e-3 * (1.0 + fabs (a->vox2mm[i][j])))
        return FALSE;
  return TRUE;
}

static const char *
name_of (const CsVolume *v)
{
  return v->path ? v->path : "(volume made in memory)";
}

CsSlice2d *
cs_slice2d_new (const CsVolume *image, const CsVolume *mask, int slice, int size,
                GError **error)
{
  g_autoptr (CsSagittal) img_s = NULL;
  g_autoptr (CsSagittal) mask_s = NULL;
  g_autoptr (GError) local = NULL;
  CsSlice2d *s;
  int axis;

  g_return_val_if_fail (image != NULL, NULL);
  axis = cs_volume_sagittal_axis (image);
  if (slice < 0 || slice >= image->dim[axis])
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "%s: sagittal slice %d does not exist (the image has %d)", name_of (image),
                   slice, image->dim[axis]);
      return NULL;
    }
  if (mask && !same_grid (image, mask))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "%s: the cord mask is not on the image's voxel grid (%s)", name_of (mask),
                   name_of (image));
      return NULL;
    }
  img_s = cs_volume_extract_sagittal (image, slice);
  if (mask)
    mask_s = cs_volume_extract_sagittal (mask, slice);
  s = cs_slice2d_new_from_sagittal (img_s, mask_s, size, NULL, &local);
  if (s == NULL)
    {
      g_set_error (error, local->domain, local->code, "%s: %s",
                   mask ? name_of (mask) : name_of (image), local->message);
      return NULL;
    }
  memcpy (s->vol_dim, image->dim, sizeof s->vol_dim);
  memcpy (s->vox2mm, image->vox2mm, sizeof s->vox2mm);
  return s;
}

void
cs_slice2d_free (CsSlice2d *s)
{
  if (s == NULL)
    return;
  g_free (s->image);
  g_free (s->roi);
  g_free (s->inside);
  g_free (s);
}

static gboolean
check_slice_geometry (const CsSlice2d *s, const CsSagittal *other, GError **error)
{
  if (other->width != s->src_width || other->height != s->src_height)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "a %d x %d slice is not on the 2-D slice's source grid (%d x %d)",
                   other->width, other->height, s->src_width, s->src_height);
      return FALSE;
    }
  return TRUE;
}

float *
cs_slice2d_resample_image (const CsSlice2d *s, const CsSagittal *other, GError **error)
{
  g_return_val_if_fail (s != NULL && other != NULL, NULL);
  if (!check_slice_geometry (s, other, error))
    return NULL;
  return resample (s, other, FALSE);
}

float *
cs_slice2d_resample_labels (const CsSlice2d *s, const CsSagittal *labels, GError **error)
{
  g_return_val_if_fail (s != NULL && labels != NULL, NULL);
  if (!check_slice_geometry (s, labels, error))
    return NULL;
  return resample (s, labels, TRUE);
}

float *
cs_slice2d_resample_label_volume (const CsSlice2d *s, const CsVolume *labels, GError **error)
{
  g_autoptr (CsSagittal) view = NULL;
  CsVolume ref;

  g_return_val_if_fail (s != NULL && labels != NULL, NULL);
  memset (&ref, 0, sizeof ref);
  memcpy (ref.dim, s->vol_dim, sizeof ref.dim);
  memcpy (ref.vox2mm, s->vox2mm, sizeof ref.vox2mm);
  if (!same_grid (&ref, labels))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "%s: the label file is not on the case's voxel grid", name_of (labels));
      return NULL;
    }
  view = cs_volume_extract_sagittal (labels, s->slice);
  return resample (s, view, TRUE);
}

/* Every voxel of the slice, with its grid position: the inverse of the forward map. */
static CsVolume *
slice_to_volume (const CsSlice2d *s, const float *map, gboolean nearest)
{
  CsVolume *vol;
  double px2vox[4][4];

  g_return_val_if_fail (s != NULL && map != NULL, NULL);
  vol = cs_volume_new (s->vol_dim, (const double (*)[4]) s->vox2mm);

  /* display -> voxel: grid2vox composed with the inverse of grid2px */
  for (int i = 0; i < 4; i++)
    {
      px2vox[i][0] = s->grid2vox[i][0] * s->spacing[0];
      px2vox[i][1] = s->grid2vox[i][1] * s->spacing[1];
      px2vox[i][2] = s->grid2vox[i][2];
      px2vox[i][3] = s->grid2vox[i][3] - s->grid2vox[i][0] * s->offset[0]
                     - s->grid2vox[i][1] * s->offset[1];
    }

  for (int row = 0; row < s->src_height; row++)
    for (int col = 0; col < s->src_width; col++)
      {
        double u, v, value = 0.0;
        int vox[3];
        cs_slice2d_px_to_grid (s, col, row, &u, &v);
        if (u >= -CS_SLICE2D_EDGE_EPS && u <= s->size - 1 + CS_SLICE2D_EDGE_EPS
            && v >= -CS_SLICE2D_EDGE_EPS && v <= s->size - 1 + CS_SLICE2D_EDGE_EPS)
          {
            u = CLAMP (u, 0.0, s->size - 1.0);
            v = CLAMP (v, 0.0, s->size - 1.0);
            if (nearest)
              value = map[(gsize) lround (v) * s->size + lround (u)];
            else
              {
                int u0 = MIN ((int) floor (u), s->size - 1);
                int v0 = MIN ((int) floor (v), s->size - 1);
                int u1 = MIN (u0 + 1, s->size - 1), v1 = MIN (v0 + 1, s->size - 1);
                double fu = u - u0, fv = v - v0;
                value = (1 - fv) * ((1 - fu) * map[(gsize) v0 * s->size + u0]
                                    + fu * map[(gsize) v0 * s->size + u1])
                        + fv * ((1 - fu) * map[(gsize) v1 * s->size + u0]
                                + fu * map[(gsize) v1 * s->size + u1]);
              }
          }
        for (int a = 0; a < 3; a++)
          vox[a] = (int) lround (px2vox[a][0] * col + px2vox[a][1] * row + px2vox[a][3]);
        vol->data[((gsize) vox[2] * vol->dim[1] + vox[1]) * vol->dim[0] + vox[0]] = (float) value;
      }
  return vol;
}

CsVolume *
cs_slice2d_map_to_volume (const CsSlice2d *s, const float *map)
{
  return slice_to_volume (s, map, FALSE);
}

CsVolume *
cs_slice2d_labels_to_volume (const CsSlice2d *s, const float *labels)
{
  return slice_to_volume (s, labels, TRUE);
}
