/* cs-curve-view.c: the anomaly curve, drawn with cairo on the slice view's row geometry. */
#include "cs-config.h"

#include <math.h>
#include <glib/gi18n.h>

#include "cs-curve-view.h"

#define SIDE_PADDING 10.0

struct _CsCurveView
{
  GtkWidget       parent_instance;

  CsSliceView    *slice_view;
  gulong          geometry_handler;
  GArray         *rows;       /* double */
  GArray         *values;     /* double */
  CsCurveSegment  segments[CS_N_SEGMENTS];
  int             n_segments;
  double          threshold;
  double          hover_y;    /* < 0: none */
};

G_DEFINE_FINAL_TYPE (CsCurveView, cs_curve_view, GTK_TYPE_WIDGET)

static void
lookup_colour (GtkWidget  *widget,
               const char *name,
               const char *fallback,
               GdkRGBA    *colour)
{
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  /* GTK 4.8 has no other way to read the theme's named colours. */
  if (!gtk_style_context_lookup_color (gtk_widget_get_style_context (widget), name, colour))
    gdk_rgba_parse (colour, fallback);
  G_GNUC_END_IGNORE_DEPRECATIONS
}

static double
cs_curve_view_max_value (CsCurveView *self)
{
  double max = isfinite (self->threshold) ? self->threshold : 0.0;
  for (guint i = 0; i < self->values->len; i++)
    max = MAX (max, g_array_index (self->values, double, i));
  return max > 0 ? max * 1.15 : 1.0;
}

double
cs_curve_view_value_at_row (CsCurveView *self,
                            double       row)
{
  g_return_val_if_fail (CS_IS_CURVE_VIEW (self), NAN);

  const double *rows = (const double *) self->rows->data;
  const double *values = (const double *) self->values->data;
  guint n = self->rows->len;
  if (n == 0 || row < rows[0] || row > rows[n - 1])
    return NAN;
  for (guint i = 1; i < n; i++)
    if (row <= rows[i])
      {
        double span = rows[i] - rows[i - 1];
        double f = span > 0 ? (row - rows[i - 1]) / span : 0;
        return values[i - 1] * (1 - f) + values[i] * f;
      }
  return values[n - 1];
}

static void
set_source (cairo_t *cr, const GdkRGBA *c, double alpha)
{
  cairo_set_source_rgba (cr, c->red, c->green, c->blue, c->alpha * alpha);
}

static void
show_text (cairo_t *cr, GtkWidget *widget, const char *text, double x, double y,
           gboolean right_aligned)
{
  g_autoptr(PangoLayout) layout = gtk_widget_create_pango_layout (widget, text);
  int w, h;
  pango_layout_get_pixel_size (layout, &w, &h);
  cairo_move_to (cr, right_aligned ? x - w : x, y - h / 2.0);
  pango_cairo_show_layout (cr, layout);
}

static void
cs_curve_view_snapshot (GtkWidget   *widget,
                        GtkSnapshot *snapshot)
{
  CsCurveView *self = CS_CURVE_VIEW (widget);
  double width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  graphene_rect_t image;
  GdkRGBA fg, accent, danger;

  if (self->slice_view == NULL || !cs_slice_view_get_image_rect (self->slice_view, &image))
    return;

  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &fg);
  lookup_colour (widget, "accent_color", "#78aeed", &accent);
  lookup_colour (widget, "error_color", "#ff7b63", &danger);

  cairo_t *cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, width, height));
  double plot_w = width - 2 * SIDE_PADDING;
  double vmax = cs_curve_view_max_value (self);
#define X_OF(v) (SIDE_PADDING + (v) / vmax * plot_w)
#define Y_OF(r) cs_slice_view_row_to_y (self->slice_view, (r))

  /* Segment bands, alternating, named at their top left. */
  for (int i = 0; i < self->n_segments; i++)
    {
      const CsCurveSegment *seg = &self->segments[i];
      if (!seg->present)
        continue;
      double y0 = Y_OF (seg->row_start), y1 = Y_OF (seg->row_end);
      set_source (cr, &fg, i % 2 == 0 ? 0.10 : 0.05);
      cairo_rectangle (cr, 0, y0, width, y1 - y0);
      cairo_fill (cr);
      set_source (cr, &fg, 0.75);
      show_text (cr, widget, seg->name, 4, (y0 + y1) / 2, FALSE);
    }

  /* The zero line: the curve's baseline, where the cord has no signal. */
  set_source (cr, &fg, 0.3);
  cairo_rectangle (cr, X_OF (0) - 0.5, image.origin.y, 1, image.size.height);
  cairo_fill (cr);

  if (isfinite (self->threshold))
    {
      set_source (cr, &danger, 0.9);
      cairo_set_line_width (cr, 1.5);
      double dashes[] = { 5, 3 };
      cairo_set_dash (cr, dashes, 2, 0);
      cairo_move_to (cr, X_OF (self->threshold), image.origin.y);
      cairo_line_to (cr, X_OF (self->threshold), image.origin.y + image.size.height);
      cairo_stroke (cr);
      cairo_set_dash (cr, NULL, 0, 0);
    }

  /* The curve and its marks stay on the slice's rows. */
  cairo_save (cr);
  cairo_rectangle (cr, 0, image.origin.y, width, image.size.height);
  cairo_clip (cr);
  guint n = self->rows->len;
  const double *rows = (const double *) self->rows->data;
  const double *values = (const double *) self->values->data;
  if (n > 0)
    {
      set_source (cr, &accent, 1.0);
      cairo_set_line_width (cr, 1.5);
      for (guint i = 0; i < n; i++)
        if (i == 0)
          cairo_move_to (cr, X_OF (values[i]), Y_OF (rows[i]));
        else
          cairo_line_to (cr, X_OF (values[i]), Y_OF (rows[i]));
      cairo_stroke (cr);
    }

  /* Each segment's peak: a dot and its score. */
  for (int i = 0; i < self->n_segments && n > 0; i++)
    {
      const CsCurveSegment *seg = &self->segments[i];
      if (!seg->present || !isfinite (seg->score))
        continue;
      double best_row = -1, best = -G_MAXDOUBLE;
      for (guint j = 0; j < n; j++)
        if (rows[j] >= seg->row_start && rows[j] < seg->row_end && values[j] > best)
          best = values[j], best_row = rows[j];
      if (best_row < 0)
        continue;
      double x = X_OF (best), y = Y_OF (best_row);
      set_source (cr, seg->score >= self->threshold ? &danger : &fg, 1.0);
      cairo_arc (cr, x, y, 3.5, 0, 2 * G_PI);
      cairo_fill (cr);
      g_autofree char *score = g_strdup_printf ("%.2f", seg->score);
      show_text (cr, widget, score, width - 2, (Y_OF (seg->row_start) + Y_OF (seg->row_end)) / 2,
                 TRUE);
    }
  cairo_restore (cr);

  if (self->hover_y >= 0)
    {
      double row = cs_slice_view_y_to_row (self->slice_view, self->hover_y);
      double value = cs_curve_view_value_at_row (self, row);
      set_source (cr, &accent, 0.8);
      cairo_rectangle (cr, 0, self->hover_y - 0.5, width, 1);
      cairo_fill (cr);
      if (isfinite (value))
        {
          /* Translators: the anomaly curve's value at the hovered row */
          g_autofree char *text = g_strdup_printf (_("Row %d: %.3f"), (int) floor (row), value);
          g_autoptr(PangoLayout) layout = gtk_widget_create_pango_layout (widget, text);
          int tw, th;
          pango_layout_get_pixel_size (layout, &tw, &th);
          double ty = self->hover_y > th + 8 ? self->hover_y - th - 4 : self->hover_y + 4;
          cairo_set_source_rgba (cr, 0, 0, 0, 0.7);
          cairo_rectangle (cr, 2, ty - 2, tw + 6, th + 4);
          cairo_fill (cr);
          set_source (cr, &fg, 1.0);
          cairo_move_to (cr, 5, ty);
          pango_cairo_show_layout (cr, layout);
        }
    }
#undef X_OF
#undef Y_OF
  cairo_destroy (cr);
}

static void
cs_curve_view_measure (GtkWidget      *widget,
                       GtkOrientation  orientation,
                       int             for_size,
                       int            *minimum,
                       int            *natural,
                       int            *minimum_baseline,
                       int            *natural_baseline)
{
  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 120 : 96;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 170 : 512;
}

void
cs_curve_view_hover (CsCurveView *self,
                     double       y)
{
  g_return_if_fail (CS_IS_CURVE_VIEW (self));
  self->hover_y = y;
  if (self->slice_view != NULL)
    cs_slice_view_set_marked_row (self->slice_view,
                                  y >= 0 ? floor (cs_slice_view_y_to_row (self->slice_view, y))
                                         : -1);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_motion (GtkEventControllerMotion *controller,
           double                    x,
           double                    y,
           CsCurveView              *self)
{
  cs_curve_view_hover (self, y);
}

static void
on_leave (GtkEventControllerMotion *controller,
          CsCurveView              *self)
{
  cs_curve_view_hover (self, -1);
}

static void
cs_curve_view_dispose (GObject *object)
{
  CsCurveView *self = CS_CURVE_VIEW (object);
  cs_curve_view_set_slice_view (self, NULL);
  G_OBJECT_CLASS (cs_curve_view_parent_class)->dispose (object);
}

static void
cs_curve_view_finalize (GObject *object)
{
  CsCurveView *self = CS_CURVE_VIEW (object);
  g_array_unref (self->rows);
  g_array_unref (self->values);
  G_OBJECT_CLASS (cs_curve_view_parent_class)->finalize (object);
}

static void
cs_curve_view_class_init (CsCurveViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = cs_curve_view_dispose;
  object_class->finalize = cs_curve_view_finalize;
  widget_class->snapshot = cs_curve_view_snapshot;
  widget_class->measure = cs_curve_view_measure;
  gtk_widget_class_set_css_name (widget_class, "curveview");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
cs_curve_view_init (CsCurveView *self)
{
  self->rows = g_array_new (FALSE, FALSE, sizeof (double));
  self->values = g_array_new (FALSE, FALSE, sizeof (double));
  self->threshold = NAN;
  self->hover_y = -1;
  gtk_widget_set_overflow (GTK_WIDGET (self), GTK_OVERFLOW_HIDDEN);

  GtkEventController *motion = gtk_event_controller_motion_new ();
  g_signal_connect (motion, "motion", G_CALLBACK (on_motion), self);
  g_signal_connect (motion, "leave", G_CALLBACK (on_leave), self);
  gtk_widget_add_controller (GTK_WIDGET (self), motion);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Anomaly curve along the cord"), -1);
}

GtkWidget *
cs_curve_view_new (void)
{
  return g_object_new (CS_TYPE_CURVE_VIEW, NULL);
}

void
cs_curve_view_set_slice_view (CsCurveView *self,
                              CsSliceView *slice_view)
{
  g_return_if_fail (CS_IS_CURVE_VIEW (self));

  if (self->slice_view != NULL)
    g_clear_signal_handler (&self->geometry_handler, self->slice_view);
  self->slice_view = slice_view;
  if (slice_view != NULL)
    self->geometry_handler = g_signal_connect_swapped (slice_view, "geometry-changed",
                                                       G_CALLBACK (gtk_widget_queue_draw), self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
cs_curve_view_set_curve (CsCurveView  *self,
                         const double *rows,
                         const double *values,
                         int           n)
{
  g_return_if_fail (CS_IS_CURVE_VIEW (self));
  g_array_set_size (self->rows, 0);
  g_array_set_size (self->values, 0);
  if (n > 0)
    {
      g_array_append_vals (self->rows, rows, n);
      g_array_append_vals (self->values, values, n);
    }
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
cs_curve_view_set_segments (CsCurveView          *self,
                            const CsCurveSegment *segments,
                            int                   n)
{
  g_return_if_fail (CS_IS_CURVE_VIEW (self));
  self->n_segments = MIN (n, CS_N_SEGMENTS);
  if (self->n_segments > 0)
    memcpy (self->segments, segments, sizeof (CsCurveSegment) * self->n_segments);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
cs_curve_view_set_threshold (CsCurveView *self,
                             double       threshold)
{
  g_return_if_fail (CS_IS_CURVE_VIEW (self));
  self->threshold = threshold;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}
