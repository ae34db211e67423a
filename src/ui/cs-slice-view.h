/* cs-slice-view.h: a sagittal MRI slice, drawn in physical proportions with its
 * orientation labels, under a linear window/level. */
#pragma once

#include <gtk/gtk.h>

#include "io/cs-volume.h"

G_BEGIN_DECLS

#define CS_TYPE_SLICE_VIEW (cs_slice_view_get_type ())
G_DECLARE_FINAL_TYPE (CsSliceView, cs_slice_view, CS, SLICE_VIEW, GtkWidget)

/* The default window: these percentiles of the slice's intensities. */
#define CS_SLICE_VIEW_AUTO_LOW_PERCENTILE   0.5
#define CS_SLICE_VIEW_AUTO_HIGH_PERCENTILE 99.5

GtkWidget        *cs_slice_view_new            (void);
/* Shows SAGITTAL (taken over; NULL clears the view), slice SAGITTAL->slice of N_SLICES,
 * with the automatic window. */
void              cs_slice_view_set_sagittal   (CsSliceView *self,
                                                CsSagittal  *sagittal,
                                                int          n_slices);
const CsSagittal *cs_slice_view_get_sagittal   (CsSliceView *self);
/* Intensities at or below LOW are black, at or above HIGH white. */
void              cs_slice_view_set_window     (CsSliceView *self,
                                                double       low,
                                                double       high);
void              cs_slice_view_get_window     (CsSliceView *self,
                                                double      *low,
                                                double      *high);
void              cs_slice_view_reset_window   (CsSliceView *self);
/* Where the slice is drawn, in widget coordinates; FALSE when nothing is shown. */
gboolean          cs_slice_view_get_image_rect (CsSliceView     *self,
                                                graphene_rect_t *rect);

G_END_DECLS
