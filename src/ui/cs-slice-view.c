/* cs-slice-view.c: draws a CsSagittal as a GdkMemoryTexture in snapshot(). */
#include "cs-config.h"

#include <math.h>
#include <glib/gi18n.h>

#include "cs-slice-view.h"

/* Space around the slice for the orientation labels, beyond the text itself. */
#define LABEL_PADDING 6.0

struct _CsSliceView
{
  GtkWidget   parent_instance;

  CsSagittal *sagittal;
  int         n_slices;
  double      window_low;
  double      window_high;
  GdkTexture *texture;       /* the slice under the current window; NULL when stale */
};

enum {
  PROP_0,
  PROP_WINDOW_LOW,
  PROP_WINDOW_HIGH,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (CsSliceView, cs_slice_view, GTK_TYPE_WIDGET)

static int
compare_floats (const void *a,
                const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return (x > y) - (x < y);
}

/* Percentiles P_LOW and P_HIGH (0..100, nearest rank) of the finite values in DATA. */
static gboolean
finite_percentiles (const float *data,
                    gsize        n,
                    double       p_low,
                    double       p_high,
                    double      *low,
                    double      *high)
{
  g_autofree float *values = g_new (float, MAX (n, 1));
  gsize n_finite = 0;

  for (gsize i = 0; i < n; i++)
    if (isfinite (data[i]))
      values[n_finite++] = data[i];
  if (n_finite == 0)
    return FALSE;

  /* A slice is at most a few hundred thousand pixels: sorting takes milliseconds. */
  qsort (values, n_finite, sizeof (float), compare_floats);
  *low = values[(gsize) lround (p_low / 100.0 * (double) (n_finite - 1))];
  *high = values[(gsize) lround (p_high / 100.0 * (double) (n_finite - 1))];
  return TRUE;
}

static GdkTexture *
cs_slice_view_create_texture (CsSliceView *self)
{
  const CsSagittal *s = self->sagittal;
  gsize stride = (gsize) s->width * 3;
  guint8 *rgb = g_malloc ((gsize) s->height * stride);
  double scale = 255.0 / (self->window_high - self->window_low);

  for (int row = 0; row < s->height; row++)
    {
      const float *src = s->data + (gsize) row * s->width;
      guint8 *dst = rgb + (gsize) row * stride;
      for (int col = 0; col < s->width; col++)
        {
          double v = isfinite (src[col]) ? (src[col] - self->window_low) * scale : 0.0;
          guint8 grey = (guint8) CLAMP (lround (v), 0, 255);
          dst[3 * col] = dst[3 * col + 1] = dst[3 * col + 2] = grey;
        }
    }

  g_autoptr(GBytes) bytes = g_bytes_new_take (rgb, (gsize) s->height * stride);
  return gdk_memory_texture_new (s->width, s->height, GDK_MEMORY_R8G8B8, bytes, stride);
}

/* The slice's rectangle: as large as fits inside the label margins, with its physical
 * proportions (columns and rows often differ in mm per pixel). */
static gboolean
cs_slice_view_compute_image_rect (CsSliceView     *self,
                                  double           margin,
                                  graphene_rect_t *rect)
{
  const CsSagittal *s = self->sagittal;
  double avail_w = gtk_widget_get_width (GTK_WIDGET (self)) - 2 * margin;
  double avail_h = gtk_widget_get_height (GTK_WIDGET (self)) - 2 * margin;

  if (s == NULL || avail_w < 1 || avail_h < 1)
    return FALSE;

  double mm_w = s->width * s->spacing[0];
  double mm_h = s->height * s->spacing[1];
  double px_per_mm = MIN (avail_w / mm_w, avail_h / mm_h);
  double w = mm_w * px_per_mm, h = mm_h * px_per_mm;

  graphene_rect_init (rect, floor (margin + (avail_w - w) / 2), floor (margin + (avail_h - h) / 2),
                      w, h);
  return TRUE;
}

static double
cs_slice_view_label_margin (CsSliceView *self)
{
  g_autoptr(PangoLayout) layout = gtk_widget_create_pango_layout (GTK_WIDGET (self), "S");
  int w, h;

  pango_layout_get_pixel_size (layout, &w, &h);
  return MAX (w, h) + 2 * LABEL_PADDING;
}

/* Draws TEXT with its centre at (X, Y), or its left edge at X when LEFT_ALIGNED. */
static void
append_text (GtkSnapshot   *snapshot,
             GtkWidget     *widget,
             const char    *text,
             double         x,
             double         y,
             gboolean       left_aligned,
             const GdkRGBA *color)
{
  g_autoptr(PangoLayout) layout = gtk_widget_create_pango_layout (widget, text);
  int w, h;

  pango_layout_get_pixel_size (layout, &w, &h);
  gtk_snapshot_save (snapshot);
  gtk_snapshot_translate (snapshot,
                          &GRAPHENE_POINT_INIT (round (left_aligned ? x : x - w / 2.0),
                                                round (y - h / 2.0)));
  gtk_snapshot_append_layout (snapshot, layout, color);
  gtk_snapshot_restore (snapshot);
}

static void
cs_slice_view_snapshot (GtkWidget   *widget,
                        GtkSnapshot *snapshot)
{
  CsSliceView *self = CS_SLICE_VIEW (widget);
  double margin = cs_slice_view_label_margin (self);
  graphene_rect_t r;
  GdkRGBA color;

  if (!cs_slice_view_compute_image_rect (self, margin, &r))
    return;

  if (self->texture == NULL)
    self->texture = cs_slice_view_create_texture (self);
  gtk_snapshot_append_texture (snapshot, self->texture, &r);

  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &color);
  double half = margin / 2;
  /* Display orientation: superior up, anterior left (cs_volume_extract_sagittal). */
  /* Translators: orientation label, Superior */
  append_text (snapshot, widget, C_("orientation", "S"), r.origin.x + r.size.width / 2,
               r.origin.y - half, FALSE, &color);
  /* Translators: orientation label, Inferior */
  append_text (snapshot, widget, C_("orientation", "I"), r.origin.x + r.size.width / 2,
               r.origin.y + r.size.height + half, FALSE, &color);
  /* Translators: orientation label, Anterior */
  append_text (snapshot, widget, C_("orientation", "A"), r.origin.x - half,
               r.origin.y + r.size.height / 2, FALSE, &color);
  /* Translators: orientation label, Posterior */
  append_text (snapshot, widget, C_("orientation", "P"), r.origin.x + r.size.width + half,
               r.origin.y + r.size.height / 2, FALSE, &color);

  /* Slices are counted from 1 for people; the index along the sagittal axis is 0-based. */
  g_autofree char *slice_text = g_strdup_printf (_("Slice %d of %d"), self->sagittal->slice + 1,
                                                 self->n_slices);
  append_text (snapshot, widget, slice_text, LABEL_PADDING, half, TRUE, &color);
}

static void
cs_slice_view_measure (GtkWidget      *widget,
                       GtkOrientation  orientation,
                       int             for_size,
                       int            *minimum,
                       int            *natural,
                       int            *minimum_baseline,
                       int            *natural_baseline)
{
  *minimum = 96;
  *natural = 512;
}

static void
cs_slice_view_css_changed (GtkWidget         *widget,
                           GtkCssStyleChange *change)
{
  GTK_WIDGET_CLASS (cs_slice_view_parent_class)->css_changed (widget, change);
  /* The label colour and font come from CSS. */
  gtk_widget_queue_draw (widget);
}

static void
cs_slice_view_finalize (GObject *object)
{
  CsSliceView *self = CS_SLICE_VIEW (object);

  g_clear_pointer (&self->sagittal, cs_sagittal_free);
  g_clear_object (&self->texture);

  G_OBJECT_CLASS (cs_slice_view_parent_class)->finalize (object);
}

static void
cs_slice_view_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  CsSliceView *self = CS_SLICE_VIEW (object);

  switch (prop_id)
    {
    case PROP_WINDOW_LOW:
      g_value_set_double (value, self->window_low);
      break;
    case PROP_WINDOW_HIGH:
      g_value_set_double (value, self->window_high);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cs_slice_view_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  CsSliceView *self = CS_SLICE_VIEW (object);

  switch (prop_id)
    {
    case PROP_WINDOW_LOW:
      cs_slice_view_set_window (self, g_value_get_double (value), self->window_high);
      break;
    case PROP_WINDOW_HIGH:
      cs_slice_view_set_window (self, self->window_low, g_value_get_double (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cs_slice_view_class_init (CsSliceViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = cs_slice_view_finalize;
  object_class->get_property = cs_slice_view_get_property;
  object_class->set_property = cs_slice_view_set_property;

  widget_class->snapshot = cs_slice_view_snapshot;
  widget_class->measure = cs_slice_view_measure;
  widget_class->css_changed = cs_slice_view_css_changed;

  properties[PROP_WINDOW_LOW] =
    g_param_spec_double ("window-low", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 0.0,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_WINDOW_HIGH] =
    g_param_spec_double ("window-high", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 1.0,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_css_name (widget_class, "sliceview");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
cs_slice_view_init (CsSliceView *self)
{
  self->window_low = 0.0;
  self->window_high = 1.0;
  gtk_widget_set_overflow (GTK_WIDGET (self), GTK_OVERFLOW_HIDDEN);
}

GtkWidget *
cs_slice_view_new (void)
{
  return g_object_new (CS_TYPE_SLICE_VIEW, NULL);
}

void
cs_slice_view_set_sagittal (CsSliceView *self,
                            CsSagittal  *sagittal,
                            int          n_slices)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self));

  g_clear_pointer (&self->sagittal, cs_sagittal_free);
  g_clear_object (&self->texture);
  self->sagittal = sagittal;
  self->n_slices = n_slices;
  if (sagittal != NULL)
    {
      g_autofree char *description =
        g_strdup_printf (_("Sagittal slice %d of %d"), sagittal->slice + 1, n_slices);
      gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      description, -1);
      cs_slice_view_reset_window (self);
    }
  else
    gtk_accessible_reset_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

const CsSagittal *
cs_slice_view_get_sagittal (CsSliceView *self)
{
  g_return_val_if_fail (CS_IS_SLICE_VIEW (self), NULL);
  return self->sagittal;
}

void
cs_slice_view_set_window (CsSliceView *self,
                          double       low,
                          double       high)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self));

  /* An empty window would divide by zero; keep it at least a hair wide. */
  if (!(high > low))
    high = low + MAX (fabs (low) * 1e-6, 1e-6);
  if (low == self->window_low && high == self->window_high)
    return;

  g_object_freeze_notify (G_OBJECT (self));
  if (low != self->window_low)
    {
      self->window_low = low;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_WINDOW_LOW]);
    }
  if (high != self->window_high)
    {
      self->window_high = high;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_WINDOW_HIGH]);
    }
  g_object_thaw_notify (G_OBJECT (self));

  g_clear_object (&self->texture);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
cs_slice_view_get_window (CsSliceView *self,
                          double      *low,
                          double      *high)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self));
  if (low != NULL)
    *low = self->window_low;
  if (high != NULL)
    *high = self->window_high;
}

void
cs_slice_view_reset_window (CsSliceView *self)
{
  double low = 0.0, high = 1.0;

  g_return_if_fail (CS_IS_SLICE_VIEW (self));
  if (self->sagittal == NULL)
    return;

  const CsSagittal *s = self->sagittal;
  if (finite_percentiles (s->data, (gsize) s->width * s->height,
                          CS_SLICE_VIEW_AUTO_LOW_PERCENTILE, CS_SLICE_VIEW_AUTO_HIGH_PERCENTILE,
                          &low, &high)
      && !(high > low))
    /* A slice that is nearly uniform: fall back to its full range. */
    finite_percentiles (s->data, (gsize) s->width * s->height, 0.0, 100.0, &low, &high);
  cs_slice_view_set_window (self, low, high);
}

gboolean
cs_slice_view_get_image_rect (CsSliceView     *self,
                              graphene_rect_t *rect)
{
  g_return_val_if_fail (CS_IS_SLICE_VIEW (self), FALSE);
  return cs_slice_view_compute_image_rect (self, cs_slice_view_label_margin (self), rect);
}
