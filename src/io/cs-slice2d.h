/* cs-slice2d.h: the 2-D slice the engine sees (DESIGN.md, steps 3-4).
 *
 * A sagittal display slice (superior up, anterior left) is resampled in-plane to 1 mm x
 * 1 mm (Catmull-Rom cubic, i.e. Keys a = -0.5, for images; nearest for labels), cropped
 * or zero-padded to SIZE x SIZE around the cord's centre, clipped to the 0.2 / 99.8
 * percentiles of its foreground and min-max normalised to [0, 1]. The mapping from the
 * grid back to display pixels, voxels and millimetres is kept exactly (4x4 affines), so
 * any SIZE x SIZE map goes back onto the case's own voxel grid.
 *
 * Grid geometry: grid pixel (u, v) is the 1 mm point (u + offset[0], v + offset[1]),
 * measured from display pixel (0, 0), i.e. display (col, row) =
 * ((u + offset[0]) / spacing[0], (v + offset[1]) / spacing[1]). The offsets are whole
 * millimetres, chosen so that grid pixel (SIZE/2, SIZE/2) is the 1 mm point nearest the
 * centre. So on a 1 mm scan grid pixels fall exactly on voxels (no interpolation).
 *
 * Foreground (for the percentiles): the grid pixels on the slice (not padding) brighter
 * than 10% of the 99th percentile of those pixels; all of them when fewer than 16 are.
 * Percentiles interpolate linearly between order statistics (numpy's default).
 * Cubic sampling extends the slice linearly beyond its edge (2 p[0] - p[1]), so linear
 * ramps are reproduced exactly up to the border; grid pixels off the slice are padding
 * (image 0, roi 0, inside 0). No GTK. */
#pragma once

#include "io/cs-volume.h"

G_BEGIN_DECLS

#define CS_SLICE2D_DEFAULT_SIZE 256

typedef struct
{
  int size;                 /* side of the square grid (256 in the reference model) */
  float *image;             /* size*size, row-major, in [0, 1]; 0 on padding */
  float *roi;               /* size*size cord mask on the grid (0/1, nearest), or NULL */
  guint8 *inside;           /* size*size: 1 where the grid pixel lies on the slice */
  int offset[2];            /* whole-mm offsets of grid pixel (0, 0) from display (0, 0) */
  double centre_px[2];      /* display (col, row) the grid is centred on */
  double grid2px[4][4];     /* grid (u, v, 0, 1) -> display (col, row, 0, 1) */
  double grid2vox[4][4];    /* grid (u, v, 0, 1) -> voxel (i, j, k, 1) */
  double grid2mm[4][4];     /* grid (u, v, 0, 1) -> RAS+ mm */
  double clip_lo, clip_hi;  /* source intensities mapped to 0 and 1 */
  double spacing[2];        /* mm per display column / row of the source slice */
  int slice, sagittal_axis; /* which sagittal slice of the volume */
  int src_width, src_height;/* display slice size */
  int vol_dim[3];           /* the volume's grid, for maps back onto it */
  double vox2mm[4][4];
} CsSlice2d;

/* From a display slice IMAGE and optional cord MASK (same slice of a volume on the same
 * grid; voxels > 0.5 are cord). The grid is centred on CENTRE_PX (display col, row) when
 * given, else on the mask's centroid, else on the slice's centre. Errors
 * (CS_IO_ERROR_GEOMETRY): SIZE < 1, a mask of another geometry, an empty mask when it
 * decides the centre. */
CsSlice2d *cs_slice2d_new_from_sagittal (const CsSagittal *image, const CsSagittal *mask,
                                         int size, const double *centre_px, GError **error);
/* The same from volumes: sagittal SLICE of IMAGE and of MASK (optional; on IMAGE's grid).
 * Error messages name the files. */
CsSlice2d *cs_slice2d_new              (const CsVolume *image, const CsVolume *mask, int slice,
                                         int size, GError **error);
void       cs_slice2d_free             (CsSlice2d *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsSlice2d, cs_slice2d_free)

/* Another display slice of the same geometry (e.g. an unnormalised copy or an extra
 * channel) on the grid: cubic for images, nearest for labels; 0 on padding. Returns
 * size*size floats (g_free), NULL (GEOMETRY error) when OTHER's size differs. */
float     *cs_slice2d_resample_image   (const CsSlice2d *s, const CsSagittal *other,
                                         GError **error);
float     *cs_slice2d_resample_labels  (const CsSlice2d *s, const CsSagittal *labels,
                                         GError **error);
/* Sagittal slice s->slice of a label volume on the case's grid, nearest, on the grid.
 * GEOMETRY error naming the file when its grid is not the case's. */
float     *cs_slice2d_resample_label_volume (const CsSlice2d *s, const CsVolume *labels,
                                              GError **error);

/* A size*size MAP back onto the case's voxel grid: a volume of the case's size and
 * affine (datatype float32), zero outside this sagittal slice; each voxel of the slice
 * takes the bilinear sample of MAP at its grid position (0 off the grid). */
CsVolume  *cs_slice2d_map_to_volume    (const CsSlice2d *s, const float *map);
/* The same for a label map: nearest grid pixel instead of bilinear. */
CsVolume  *cs_slice2d_labels_to_volume (const CsSlice2d *s, const float *labels);

/* Grid position of display pixel (col, row), and back. */
void       cs_slice2d_px_to_grid       (const CsSlice2d *s, double col, double row,
                                         double *u, double *v);
void       cs_slice2d_grid_to_px       (const CsSlice2d *s, double u, double v,
                                         double *col, double *row);

/* Percentile Q (0..100) of N values, linear between order statistics (numpy's default).
 * N > 0; VALUES is not changed. */
double     cs_slice2d_percentile       (const float *values, gsize n, double q);

G_END_DECLS
