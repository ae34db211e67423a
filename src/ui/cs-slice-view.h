/* cs-slice-view.h: a sagittal MRI slice, drawn in physical proportions with its
 * orientation labels, under a linear window/level, with the detector's maps and the
 * case's labels laid over it; zoom, pan, crosshair and a cursor readout. */
#pragma once

#include <gtk/gtk.h>

#include "io/cs-labels.h"
#include "io/cs-volume.h"

G_BEGIN_DECLS

#define CS_TYPE_SLICE_VIEW (cs_slice_view_get_type ())
G_DECLARE_FINAL_TYPE (CsSliceView, cs_slice_view, CS, SLICE_VIEW, GtkWidget)

/* The default window: these percentiles of the slice's intensities. */
#define CS_SLICE_VIEW_AUTO_LOW_PERCENTILE   0.5
#define CS_SLICE_VIEW_AUTO_HIGH_PERCENTILE 99.5

/* What can be laid over the slice. The maps (anomaly, EU, AU) are coloured above their
 * threshold; the mean reconstruction replaces the image while visible. */
typedef enum
{
  CS_OVERLAY_ANOMALY,   /* hot */
  CS_OVERLAY_EU,        /* viridis */
  CS_OVERLAY_AU,        /* ice */
  CS_OVERLAY_MEAN,      /* mean reconstruction, swapped with the image */
  CS_OVERLAY_CORD,      /* cord outline */
  CS_OVERLAY_DISCS,     /* disc markers C2-3 .. C7-T1 */
  CS_OVERLAY_LESION,    /* lesion truth outline */
  CS_N_OVERLAYS
} CsOverlay;

/* The overlay's name in settings and action names ("anomaly", "eu", ...). */
const char       *cs_overlay_get_id            (CsOverlay overlay);
gboolean          cs_overlay_from_id           (const char *id,
                                                CsOverlay  *overlay);

GtkWidget        *cs_slice_view_new            (void);
/* Shows SAGITTAL (taken over; NULL clears the view and its layers), slice SAGITTAL->slice
 * of N_SLICES, with the automatic window. */
void              cs_slice_view_set_sagittal   (CsSliceView *self,
                                                CsSagittal  *sagittal,
                                                int          n_slices);
/* The same, keeping the current window/level, zoom and pan when KEEP_VIEW. */
void              cs_slice_view_set_image      (CsSliceView *self,
                                                CsSagittal  *sagittal,
                                                int          n_slices,
                                                gboolean     keep_view);
const CsSagittal *cs_slice_view_get_sagittal   (CsSliceView *self);
/* A layer on the image's pixel grid (taken over; NULL removes it). For CORD and LESION a
 * mask (> 0.5 inside); for the maps their values. Ignored when its size differs. */
void              cs_slice_view_set_layer      (CsSliceView *self,
                                                CsOverlay    overlay,
                                                CsSagittal  *layer);
gboolean          cs_slice_view_has_layer      (CsSliceView *self,
                                                CsOverlay    overlay);
/* Disc markers from the six segments (their present discs); NULL removes them. */
void              cs_slice_view_set_discs      (CsSliceView     *self,
                                                const CsSegment *segments);
/* Disc markers at DISCS (CsDisc, voxel positions; NULL removes them), those of values
 * 3..8, each named by its segment (3 = C2-3 ...): what the annotator places and moves. */
#define CS_SLICE_VIEW_MAX_DISCS 25
void              cs_slice_view_set_disc_points (CsSliceView  *self,
                                                 const GArray *discs);
/* Placing discs: a primary click places a disc ("disc-dropped" with value -1), a drag
 * from a marker moves it (its value); NEXT_NAME (may be NULL) is shown at the pointer. */
void              cs_slice_view_set_placing_discs (CsSliceView *self,
                                                   gboolean     placing,
                                                   const char  *next_name);
gboolean          cs_slice_view_get_placing_discs (CsSliceView *self);
/* The value of the disc marker under the pointer, or 0. */
int               cs_slice_view_get_hovered_disc (CsSliceView *self);
/* Where disc VALUE's marker is drawn, in widget coordinates; FALSE when it is not. */
gboolean          cs_slice_view_get_disc_point (CsSliceView *self,
                                                int          value,
                                                double      *x,
                                                double      *y);

void              cs_slice_view_set_overlay_visible   (CsSliceView *self,
                                                       CsOverlay    overlay,
                                                       gboolean     visible);
gboolean          cs_slice_view_get_overlay_visible   (CsSliceView *self,
                                                       CsOverlay    overlay);
/* 0..1 */
void              cs_slice_view_set_overlay_opacity   (CsSliceView *self,
                                                       CsOverlay    overlay,
                                                       double       opacity);
double            cs_slice_view_get_overlay_opacity   (CsSliceView *self,
                                                       CsOverlay    overlay);
/* Fraction 0..1 of the map's colour scale (0 .. its largest value) below which it is
 * not drawn. */
void              cs_slice_view_set_overlay_threshold (CsSliceView *self,
                                                       CsOverlay    overlay,
                                                       double       threshold);
double            cs_slice_view_get_overlay_threshold (CsSliceView *self,
                                                       CsOverlay    overlay);

/* Intensities at or below LOW are black, at or above HIGH white. */
void              cs_slice_view_set_window     (CsSliceView *self,
                                                double       low,
                                                double       high);
void              cs_slice_view_get_window     (CsSliceView *self,
                                                double      *low,
                                                double      *high);
void              cs_slice_view_reset_window   (CsSliceView *self);
/* The window after a right-drag of (DX, DY) pixels from LOW..HIGH: 200 px right double its
 * width, 200 px down lower its level by one width (the image brightens); up and left undo. */
void              cs_slice_view_window_after_drag (double  low,
                                                   double  high,
                                                   double  dx,
                                                   double  dy,
                                                   double *new_low,
                                                   double *new_high);

/* Zoom by FACTOR keeping widget point (X, Y) still; fit shows the whole slice. */
void              cs_slice_view_zoom_at        (CsSliceView *self,
                                                double       factor,
                                                double       x,
                                                double       y);
void              cs_slice_view_zoom_fit       (CsSliceView *self);
double            cs_slice_view_get_zoom       (CsSliceView *self);
void              cs_slice_view_pan            (CsSliceView *self,
                                                double       dx,
                                                double       dy);
/* Where the slice is drawn, in widget coordinates (with zoom and pan); FALSE when nothing
 * is shown. */
gboolean          cs_slice_view_get_image_rect (CsSliceView     *self,
                                                graphene_rect_t *rect);
/* Display row (may be fractional) to widget y and back, for views that share the rows. */
double            cs_slice_view_row_to_y       (CsSliceView *self,
                                                double       row);
double            cs_slice_view_y_to_row       (CsSliceView *self,
                                                double       y);
/* A row marked across the slice (e.g. the one hovered in the curve); < 0 for none. */
void              cs_slice_view_set_marked_row (CsSliceView *self,
                                                double       row);
/* The cursor at display pixel (COL, ROW) for the crosshair and readout; COL < 0: none. */
void              cs_slice_view_set_cursor     (CsSliceView *self,
                                                double       col,
                                                double       row);
/* The readout's text for the cursor, or NULL when it is off the slice. */
char             *cs_slice_view_dup_readout    (CsSliceView *self);

G_END_DECLS
