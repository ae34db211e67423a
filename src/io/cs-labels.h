/* cs-labels.h: intervertebral disc labels and the segments they define, in SCT's
 * conventions. No GTK here.
 *
 * Disc labels (`_labels-disc`): value N marks the disc above vertebra N, so 3..8 are the
 * discs C2-3 .. C7-T1 that define Cordscope's six segments; other values are kept but
 * define no segment. A label may be one voxel or a small blob: its centroid is used.
 *
 * Vertebral labels (`_labels-vert`): value N marks the body of vertebra N (C1 = 1 ..
 * C7 = 7, T1 = 8). They are never read as discs: disc N is derived as the midpoint of
 * the centres of vertebrae N-1 and N, only where both are labelled.
 *
 * Level maps (`_levels`): each cord voxel holds its vertebral level N. Disc N+1 is
 * derived as the mean of the face midpoints between 6-connected voxels of levels N and
 * N+1. Derived discs carry CS_DISC_SOURCE_DERIVED. */
#pragma once

#include <glib.h>

#include "io/cs-volume.h"

G_BEGIN_DECLS

#define CS_N_SEGMENTS 6
#define CS_SEGMENT_FIRST_DISC 3   /* disc value of C2-3 */
#define CS_SEGMENT_LAST_DISC 8    /* disc value of C7-T1 */

typedef enum
{
  CS_DISC_SOURCE_FILE,     /* read from a disc-label file */
  CS_DISC_SOURCE_MANUAL,   /* placed or moved by an annotator */
  CS_DISC_SOURCE_DERIVED,  /* computed from vertebral labels or a level map */
} CsDiscSource;

typedef enum
{
  CS_LABEL_FILE_DISCS,      /* `_labels-disc`, `_labels-disc-manual`, `_label-discs_dlabel` */
  CS_LABEL_FILE_VERTEBRAE,  /* `_labels-vert` */
  CS_LABEL_FILE_LEVELS,     /* `_levels` */
} CsLabelFileKind;

/* One disc: SCT value and centroid in the volume's voxel coordinates (i, j, k). */
typedef struct
{
  int value;
  double voxel[3];
  CsDiscSource source;
} CsDisc;

/* One of the six segments C2-3 .. C7-T1 on a sagittal slice's display rows (row 0 is the
 * most superior). The span is [row_start, row_end), row_start < row_end, in fractional
 * display rows; it may reach past the slice's first or last row. */
typedef struct
{
  int disc_value;      /* 3..8 */
  const char *name;    /* "C2-3" .. "C7-T1", static */
  gboolean present;    /* FALSE when its disc is not labelled: the fields below are 0 */
  double disc_row;     /* the disc centroid's display row */
  double disc_col;     /* and column */
  double row_start;
  double row_end;
} CsSegment;

/* "C2-3" for 3 ... "C7-T1" for 8; NULL for values outside the six segments. */
const char *cs_segment_name           (int disc_value);
/* An SCT disc value's name for any value 1..25 ("C1-2", "T1-2", "L5-S1"...), else NULL. */
const char *cs_disc_name              (int disc_value);

/* Disc centroids (CsDisc, sorted by value) from a label volume of the given kind.
 * Values must be whole numbers >= 0 (0 = background); vertebral numbers must be 1..30.
 * Errors (CS_IO_ERROR_VALUES, CS_IO_ERROR_GEOMETRY) name labels->path. A file without
 * any disc (also: vertebral labels with no two consecutive vertebrae) gives an empty
 * array, not an error. */
GArray     *cs_discs_from_volume      (const CsVolume *labels, CsLabelFileKind kind,
                                       GError **error);
/* Loads PATH, checks that it is on IMAGE's voxel grid (when IMAGE is not NULL) and
 * calls cs_discs_from_volume(). */
GArray     *cs_discs_read             (const char *path, CsLabelFileKind kind,
                                       const CsVolume *image, GError **error);

/* The label file kind a file name says (by its suffix before .nii/.nii.gz); returns
 * FALSE when the name is not a disc, vertebral or level file. */
gboolean    cs_label_file_kind_from_name (const char *path, CsLabelFileKind *kind);

/* Display position (col, row) of a voxel-space point on VIEW: the inverse of px2vox,
 * dropping the through-plane offset. */
void        cs_sagittal_voxel_to_display (const CsSagittal *view, const double voxel[3],
                                          double *col, double *row);

/* Segment spans of the six segments on VIEW from DISCS (CsDisc). A segment spans the rows
 * between the midpoints to its neighbouring labelled segment discs; where a neighbour
 * is k values away the boundary lies 1/(2k) of the way to it; the first and last extend
 * by half their gap (per value) to the neighbour. Segments whose disc is missing are
 * absent. Errors (CS_IO_ERROR_GEOMETRY, naming SOURCE, e.g. the file) when fewer than two
 * segment discs are labelled, or when discs 1..25 are not strictly superior to inferior
 * by value. Returns TRUE and fills all CS_N_SEGMENTS entries of OUT. */
gboolean    cs_segments_compute       (const GArray *discs, const CsSagittal *view,
                                       const char *source, CsSegment out[CS_N_SEGMENTS],
                                       GError **error);

/* BASE's discs with each of OVERRIDES (e.g. an annotator's, from the sidecar) replacing
 * the disc of its value or added; either may be NULL. A new array, sorted by value. */
GArray     *cs_discs_merge            (const GArray *base, const GArray *overrides);

/* The segment (0..5) whose span holds display row ROW, or -1. */
int         cs_segment_at_row         (const CsSegment segments[CS_N_SEGMENTS], double row);

G_END_DECLS
