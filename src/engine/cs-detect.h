/* cs-detect.h: U2AD detection numerics on one 2-D slice: Monte-Carlo aggregation, anomaly
 * map post-processing, anomaly curve, segment and patient scores, z-score baseline.
 *
 * Images are float32, row-major, height x width; masks are uint8 (non-zero = inside).
 * Anomaly maps are non-negative; "non-zero" below means strictly positive. */
#pragma once

#include <glib.h>

#include "engine/cs-masking.h"

G_BEGIN_DECLS

#define CS_DETECT_ERROR (cs_detect_error_quark ())
GQuark cs_detect_error_quark (void);

typedef enum {
  CS_DETECT_ERROR_DISC_ORDER, /* disc rows are not increasing from C2-3 down to C7-T1 */
} CsDetectError;

/* The six intervertebral segments, superior to inferior (SCT disc labels 3..8). */
#define CS_N_SEGMENTS 6
extern const char *const cs_segment_names[CS_N_SEGMENTS];

/* Image rows [row_start, row_end] (inclusive) of one segment; present FALSE when its disc is
 * missing or it lies outside the image. */
typedef struct {
  int row_start;
  int row_end;
  gboolean present;
} CsSegmentSpan;

/* Percentile q (0..100) of the strictly positive values, numpy's default ('linear')
 * definition: sorted v[0..n-1], position q/100 * (n-1), linear interpolation.
 * Returns NAN when there is no positive value. */
double cs_percentile_positive (const float *values, gsize n_values, double q);

/* Labels the 8-connected components of the non-zero pixels of foreground in raster order
 * of their first pixel: labels 1..n, 0 for background. Returns n. */
int cs_components_label8 (const guint8 *foreground, int height, int width, int *labels);

/* Per-element mean and population variance of k samples laid out k x n_values. */
void cs_mc_moments (const float *samples, int k, gsize n_values, float *mean, float *variance);

/* Pastes one pass's predictions into an image: tokens holds one P*P vector (row-major within
 * the patch) per non-dropped patch, in ascending patch order (the decoder head's output,
 * engine contract). Masked patches take their token; every other pixel takes image. */
void cs_paste_predictions (const float  *tokens,
                           const guint8 *states,
                           const float  *image,
                           int           height,
                           int           width,
                           int           patch,
                           float        *out);

/* Aggregates a Monte-Carlo schedule's reconstructions (n_passes x height x width, each the
 * model's prediction pasted into the image; only masked, counted patches are read) into
 * mean reconstruction, EU (population variance over the K counted samples) and AU
 * (|image - mean| on roi_mask pixels, 0 elsewhere). Pixels of patches that are never
 * masked (non-ROI patches) get mean = image and EU = 0. */
void cs_mc_aggregate (const CsMcSchedule *schedule,
                      const float        *reconstructions,
                      const float        *image,
                      const guint8       *roi_mask,
                      int                 height,
                      int                 width,
                      int                 patch,
                      float              *mean,
                      float              *eu,
                      float              *au);

/* In place: zeroes positive values below the drop_percentile-th percentile of the positive
 * values (values equal to it are kept), then keeps only the keep_components 8-connected
 * components with the largest sum (ties: the earlier in raster order). Negative values are
 * set to 0. Returns the number of components kept. Reference: 20, 3. */
int cs_anomaly_postprocess (float *map, int height, int width, double drop_percentile,
                            int keep_components);

/* Cord interior for scoring: the pixels of cord_mask whose whole disc of radius inset_px
 * (dx*dx + dy*dy <= inset_px*inset_px; pixels off the image are ignored, the cord runs off
 * the grid) lies in cord_mask. A row that has cord pixels but no interior ones keeps its cord pixels, so the
 * curve never loses a row of the cord. inset_px <= 0 copies cord_mask. Returns the number
 * of pixels set in interior. */
gsize cs_cord_interior (const guint8 *cord_mask, int height, int width, int inset_px,
                        guint8 *interior);

/* Anomaly curve, one value per row. For a row r that contains cord_mask pixels:
 * curve[r] = mean of map over the cord_mask pixels of rows max(0, r-h)..min(H-1, r+h);
 * rows without cord_mask pixels get 0. h = half_window (reference: 2). Pass the mask the
 * map is defined on (the ROI) so that signal at the cord's border is counted. */
void cs_anomaly_curve (const float  *map,
                       const guint8 *cord_mask,
                       int           height,
                       int           width,
                       int           half_window,
                       float        *curve);

/* Segment spans from the six disc rows (C2-3..C7-T1, superior first; NAN = disc absent).
 * Boundary between neighbouring present discs a < c: (a + c) / 2; the first and last present
 * disc extend by half the gap to their one neighbour. A segment covers rows r with
 * lo <= r < hi, i.e. row_start = ceil(lo), row_end = ceil(hi) - 1, clipped to the image, so
 * neighbouring segments never share a row. A segment is absent when its disc is absent,
 * when fewer than two discs are present or when its span misses the image. Fails when the
 * present discs are not strictly increasing in row. */
gboolean cs_segments_from_disc_rows (const double  *disc_rows,
                                     int            height,
                                     CsSegmentSpan *spans,
                                     GError       **error);

/* Segment score = peak of the curve over the segment's rows; NAN for an absent segment. */
void cs_segment_scores (const float         *curve,
                        int                  height,
                        const CsSegmentSpan *spans,
                        int                  n_spans,
                        double              *scores);

/* Patient score = peak of the curve over all rows (the curve is 0 off the cord). */
double cs_patient_score (const float *curve, int height);

/* Patient score over the labelled levels: peak of the curve over the rows of the present
 * segments (C2-3..C7-T1), leaving out the cord above and below them, where the field of
 * view ends. NAN when no segment is present. */
double cs_patient_score_segments (const float         *curve,
                                  int                  height,
                                  const CsSegmentSpan *spans,
                                  int                  n_spans);

/* Baseline detector: z = (x - mean) / sd with mean and population sd over roi_mask pixels,
 * negative z clipped to 0 (only hyperintensity is anomalous), 0 outside the ROI; all 0 when
 * the ROI is empty or constant. */
void cs_zscore_map (const float *image, const guint8 *roi_mask, gsize n_pixels, float *z);

/* The common scoring path for any raw anomaly map (U2AD's AU or the z-score map): reference
 * post-processing (20th percentile, top 3 components) in place, curve (half window 2) over
 * cord_mask, segment scores (may be NULL when n_spans is 0) and the patient score. */
double cs_detection_score (float               *map,
                           const guint8        *cord_mask,
                           int                  height,
                           int                  width,
                           const CsSegmentSpan *spans,
                           int                  n_spans,
                           float               *curve,
                           double              *segment_scores);

G_END_DECLS
