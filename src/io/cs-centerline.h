/* cs-centerline.h: a cord ROI from a few centerline points clicked on a sagittal slice,
 * for cases without a `_seg` file. No GTK here.
 *
 * The points (display col, row; superior to inferior) are joined by a uniform
 * Catmull-Rom spline, which passes through every point (the ends continue the first
 * and last chords, so two points give a straight line). Distances are measured in mm
 * (the slice's column and row spacing), so the tube is round on anisotropic pixels.
 *
 * Mask: the pixels whose centre lies within width/2 mm of the curve (a tube with round
 * ends). Refined by the image (optional): the tube's core (within width/4) always stays,
 * which keeps an intramedullary lesion on the line; outside the core each row keeps the
 * pixels from the core outwards up to the first one brighter than the CSF threshold
 * t = c + max((b - c) / 2, 3 s), where c is the median and s the MAD-based sigma of the
 * core, and b the 99th percentile of the tube (bright CSF). So CSF and whatever lies
 * beyond it are cut off. */
#pragma once

#include <glib.h>

#include "io/cs-sidecar.h"
#include "io/cs-volume.h"

G_BEGIN_DECLS

/* A point on a sagittal display slice: column (anterior to posterior), row (S to I). */
typedef struct
{
  double col, row;
} CsDisplayPoint;

/* The curve through POINTS as a polyline (CsDisplayPoint) with steps of at most STEP_PX
 * display pixels; holds every input point. N_POINTS >= 1. */
GArray  *cs_centerline_interpolate      (const CsDisplayPoint *points, guint n_points,
                                         double step_px);

/* width*height floats (1 in the ROI, else 0) on IMAGE's display slice. Errors
 * (CS_IO_ERROR_GEOMETRY): fewer than 2 points, a width not > 0, a point that is not
 * finite. */
float   *cs_centerline_mask_sagittal    (const CsSagittal *image, const CsDisplayPoint *points,
                                         guint n_points, double width_mm, gboolean refine,
                                         GError **error);

/* The same from voxel points (the sidecar's centerline) on IMAGE: the sagittal slice is
 * the points' mean position along the sagittal axis, rounded. A float32 volume on IMAGE's
 * grid, 1 in the ROI on that slice and 0 elsewhere (a `_seg` for detection). *SLICE (may
 * be NULL) receives the slice. Errors as above, and when the slice lies off the grid or
 * the ROI is empty (points off the slice). */
CsVolume *cs_centerline_mask_volume     (const CsVolume *image,
                                         const CsCenterlinePoint *points, guint n_points,
                                         double width_mm, gboolean refine, int *slice,
                                         GError **error);

G_END_DECLS
