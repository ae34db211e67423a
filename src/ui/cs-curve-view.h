/* cs-curve-view.h: the anomaly curve beside the slice, on the slice's own rows (it follows
 * the slice view's zoom and pan), with the segment bands, each segment's peak and the
 * patient threshold; hovering a row shows its value and marks it on the slice. */
#pragma once

#include <gtk/gtk.h>

#include "cs-slice-view.h"

G_BEGIN_DECLS

#define CS_TYPE_CURVE_VIEW (cs_curve_view_get_type ())
G_DECLARE_FINAL_TYPE (CsCurveView, cs_curve_view, CS, CURVE_VIEW, GtkWidget)

typedef struct
{
  const char *name;      /* static */
  gboolean    present;
  double      row_start; /* display rows [row_start, row_end) */
  double      row_end;
  double      score;
} CsCurveSegment;

GtkWidget *cs_curve_view_new            (void);
/* The view whose rows this one shares (not owned; it must outlive this view). */
void       cs_curve_view_set_slice_view (CsCurveView          *self,
                                         CsSliceView          *slice_view);
/* N points (display row, value), rows increasing; N = 0 clears the curve. */
void       cs_curve_view_set_curve      (CsCurveView          *self,
                                         const double         *rows,
                                         const double         *values,
                                         int                   n);
void       cs_curve_view_set_segments   (CsCurveView          *self,
                                         const CsCurveSegment *segments,
                                         int                   n);
/* The patient threshold line; NAN hides it. */
void       cs_curve_view_set_threshold  (CsCurveView          *self,
                                         double                threshold);
/* The curve's value at a display row (linear between points), NAN off the curve. */
double     cs_curve_view_value_at_row   (CsCurveView          *self,
                                         double                row);
/* Hover as the pointer would: at widget y (< 0: leave). */
void       cs_curve_view_hover          (CsCurveView          *self,
                                         double                y);

G_END_DECLS
