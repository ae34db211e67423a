/* cs-slice-view.c: draws a CsSagittal and its layers as GdkMemoryTextures in snapshot(). */
#include "cs-config.h"

#include <math.h>
#include <glib/gi18n.h>

#include "cs-slice-view.h"

/* Space around the slice for the orientation labels, beyond the text itself. */
#define LABEL_PADDING 6.0
/* Room right of the slice for the colour bar and its scale. */
#define COLOUR_BAR_ROOM 78.0
#define COLOUR_BAR_WIDTH 14.0
#define MIN_ZOOM 0.25
#define MAX_ZOOM 32.0
/* Right-drag: this many pixels double (or halve) the window's width. */
#define WINDOW_DRAG_PIXELS 200.0

typedef struct
{
  gboolean visible;
  double   opacity;
  double   threshold;
} OverlaySettings;

typedef struct
{
  char name[16];
  int value;            /* the disc's label value (3 = C2-3 ...) */
  double col, row;
} DiscMarker;

/* How near (px) the pointer must be to a marker to grab or hover it. */
#define DISC_GRAB_RADIUS 10.0

struct _CsSliceView
{
  GtkWidget        parent_instance;

  CsSagittal      *sagittal;
  int              n_slices;
  double           window_low;
  double           window_high;
  GdkTexture      *texture;                 /* the base (image or mean) under the window */

  CsSagittal      *layers[CS_N_OVERLAYS];   /* maps and masks on the image's grid */
  double           layer_max[CS_N_OVERLAYS];
  GdkTexture      *layer_textures[CS_N_OVERLAYS];
  OverlaySettings  overlays[CS_N_OVERLAYS];
  DiscMarker       discs[CS_SLICE_VIEW_MAX_DISCS];
  int              n_discs;
  gboolean         placing;                 /* clicks place discs instead of panning */
  char            *next_disc_name;          /* shown at the cursor while placing, or NULL */
  int              drag_disc;               /* the marker index dragged, -1: a new one */
  gboolean         dragging_disc;
  double           drag_x, drag_y;          /* where the dragged marker is (widget) */
  int              hovered_disc;            /* marker index under the pointer, -1: none */

  double           zoom;                    /* 1 = the whole slice fits */
  double           offset_x, offset_y;      /* of the zoomed slice from the fitted one */
  double           cursor_col, cursor_row;  /* display pixel under the pointer, col < 0: none */
  double           marked_row;
  double           pointer_x, pointer_y;

  double           drag_low, drag_high;     /* the window when a right-drag began */
  double           drag_last_x, drag_last_y;
};

enum {
  PROP_0,
  PROP_WINDOW_LOW,
  PROP_WINDOW_HIGH,
  PROP_ZOOM,
  N_PROPS
};

enum {
  SIGNAL_STEP_SLICE,
  SIGNAL_GEOMETRY_CHANGED,
  SIGNAL_OVERLAYS_CHANGED,
  SIGNAL_DISC_DROPPED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (CsSliceView, cs_slice_view, GTK_TYPE_WIDGET)

static const char *const overlay_ids[CS_N_OVERLAYS] = {
  "anomaly", "eu", "au", "mean", "cord", "discs", "lesion",
};

const char *
cs_overlay_get_id (CsOverlay overlay)
{
  g_return_val_if_fail (overlay < CS_N_OVERLAYS, NULL);
  return overlay_ids[overlay];
}

gboolean
cs_overlay_from_id (const char *id,
                    CsOverlay  *overlay)
{
  for (int i = 0; i < CS_N_OVERLAYS; i++)
    if (g_strcmp0 (id, overlay_ids[i]) == 0)
      {
        *overlay = i;
        return TRUE;
      }
  return FALSE;
}

static gboolean
overlay_is_colour_map (CsOverlay overlay)
{
  return overlay == CS_OVERLAY_ANOMALY || overlay == CS_OVERLAY_EU || overlay == CS_OVERLAY_AU;
}

/* The K-th smallest of VALUES[0..N-1] (reorders them): Hoare's selection, O(n) expected,
 * so the automatic window costs the main loop well under a millisecond. */
static float
select_kth (float *values,
            gsize  n,
            gsize  k)
{
  gsize lo = 0, hi = n - 1;
  while (lo < hi)
    {
      float pivot = values[lo + (hi - lo) / 2];
      gsize i = lo, j = hi;
      while (i <= j)
        {
          while (values[i] < pivot)
            i++;
          while (values[j] > pivot)
            j--;
          if (i <= j)
            {
              float t = values[i];
              values[i] = values[j];
              values[j] = t;
              i++;
              if (j == 0)
                break;
              j--;
            }
        }
      if (k <= j)
        hi = j;
      else if (k >= i)
        lo = i;
      else
        return values[k];
    }
  return values[k];
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

  *low = select_kth (values, n_finite, (gsize) lround (p_low / 100.0 * (double) (n_finite - 1)));
  *high = select_kth (values, n_finite,
                      (gsize) lround (p_high / 100.0 * (double) (n_finite - 1)));
  return TRUE;
}

/* Colour maps: T in 0..1 to RGB bytes. */
static void
colour_hot (double t, guint8 rgb[3])
{
  rgb[0] = (guint8) lround (255 * CLAMP (3 * t, 0, 1));
  rgb[1] = (guint8) lround (255 * CLAMP (3 * t - 1, 0, 1));
  rgb[2] = (guint8) lround (255 * CLAMP (3 * t - 2, 0, 1));
}

static void
colour_viridis (double t, guint8 rgb[3])
{
  /* matplotlib's viridis at 0, 1/8, ..., 1 */
  static const guint8 anchors[9][3] = {
    { 68, 1, 84 }, { 71, 44, 122 }, { 59, 81, 139 }, { 44, 113, 142 }, { 33, 144, 141 },
    { 39, 173, 129 }, { 92, 200, 99 }, { 170, 220, 50 }, { 253, 231, 37 },
  };
  double x = CLAMP (t, 0, 1) * 8;
  int i = MIN ((int) x, 7);
  double f = x - i;
  for (int c = 0; c < 3; c++)
    rgb[c] = (guint8) lround (anchors[i][c] * (1 - f) + anchors[i + 1][c] * f);
}

static void
colour_ice (double t, guint8 rgb[3])
{
  t = CLAMP (t, 0, 1);
  rgb[0] = (guint8) lround (255 * CLAMP (2 * t - 1, 0, 1));
  rgb[1] = (guint8) lround (255 * CLAMP (1.5 * t, 0, 1));
  rgb[2] = 255;
}

static void
overlay_colour (CsOverlay overlay, double t, guint8 rgb[3])
{
  if (overlay == CS_OVERLAY_EU)
    colour_viridis (t, rgb);
  else if (overlay == CS_OVERLAY_AU)
    colour_ice (t, rgb);
  else
    colour_hot (t, rgb);
}

static GdkTexture *
grey_texture (const CsSagittal *s,
              double            low,
              double            high)
{
  gsize stride = (gsize) s->width * 3;
  guint8 *rgb = g_malloc ((gsize) s->height * stride);
  float fl = (float) low, scale = (float) (255.0 / (high - low));

  for (int row = 0; row < s->height; row++)
    {
      const float *src = s->data + (gsize) row * s->width;
      guint8 *dst = rgb + (gsize) row * stride;
      for (int col = 0; col < s->width; col++)
        {
          float v = isfinite (src[col]) ? (src[col] - fl) * scale : 0.0f;
          guint8 grey = (guint8) (v <= 0.0f ? 0 : v >= 255.0f ? 255 : (int) (v + 0.5f));
          dst[3 * col] = dst[3 * col + 1] = dst[3 * col + 2] = grey;
        }
    }

  g_autoptr(GBytes) bytes = g_bytes_new_take (rgb, (gsize) s->height * stride);
  return gdk_memory_texture_new (s->width, s->height, GDK_MEMORY_R8G8B8, bytes, stride);
}

/* A colour map of S's values in 0..MAX, transparent below THRESHOLD (fraction of MAX). */
static GdkTexture *
map_texture (const CsSagittal *s,
             CsOverlay         overlay,
             double            max,
             double            threshold)
{
  gsize stride = (gsize) s->width * 4;
  guint8 *rgba = g_malloc0 ((gsize) s->height * stride);
  guint8 lut[256][3];

  for (int i = 0; i < 256; i++)
    overlay_colour (overlay, i / 255.0, lut[i]);
  for (gsize i = 0; max > 0 && i < (gsize) s->width * s->height; i++)
    {
      double t = s->data[i] / max;
      if (!(s->data[i] > 0) || t < threshold)
        continue;
      int index = (int) lround (CLAMP (t, 0, 1) * 255);
      memcpy (rgba + 4 * i, lut[index], 3);
      rgba[4 * i + 3] = 255;
    }

  g_autoptr(GBytes) bytes = g_bytes_new_take (rgba, (gsize) s->height * stride);
  return gdk_memory_texture_new (s->width, s->height, GDK_MEMORY_R8G8B8A8, bytes, stride);
}

/* The border pixels of a mask (inside, with a 4-neighbour outside or off the slice). */
static GdkTexture *
outline_texture (const CsSagittal *s,
                 const GdkRGBA    *colour)
{
  gsize stride = (gsize) s->width * 4;
  guint8 *rgba = g_malloc0 ((gsize) s->height * stride);
  const guint8 c[4] = { (guint8) lround (colour->red * 255), (guint8) lround (colour->green * 255),
                        (guint8) lround (colour->blue * 255), 255 };
#define INSIDE(r, q) ((r) >= 0 && (r) < s->height && (q) >= 0 && (q) < s->width \
                      && s->data[(gsize) (r) * s->width + (q)] > 0.5f)

  for (int row = 0; row < s->height; row++)
    for (int col = 0; col < s->width; col++)
      if (INSIDE (row, col) && (!INSIDE (row - 1, col) || !INSIDE (row + 1, col)
                                || !INSIDE (row, col - 1) || !INSIDE (row, col + 1)))
        memcpy (rgba + (gsize) row * stride + 4 * col, c, 4);
#undef INSIDE

  g_autoptr(GBytes) bytes = g_bytes_new_take (rgba, (gsize) s->height * stride);
  return gdk_memory_texture_new (s->width, s->height, GDK_MEMORY_R8G8B8A8, bytes, stride);
}

static double
cs_slice_view_label_margin (CsSliceView *self)
{
  g_autoptr(PangoLayout) layout = gtk_widget_create_pango_layout (GTK_WIDGET (self), "S");
  int w, h;

  pango_layout_get_pixel_size (layout, &w, &h);
  return MAX (w, h) + 2 * LABEL_PADDING;
}

/* The slice's rectangle at zoom 1: as large as fits inside the margins, with its physical
 * proportions (columns and rows often differ in mm per pixel). */
static gboolean
cs_slice_view_fit_rect (CsSliceView     *self,
                        double           margin,
                        graphene_rect_t *rect)
{
  const CsSagittal *s = self->sagittal;
  double avail_w = gtk_widget_get_width (GTK_WIDGET (self)) - 2 * margin - COLOUR_BAR_ROOM;
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

static gboolean
cs_slice_view_compute_image_rect (CsSliceView     *self,
                                  double           margin,
                                  graphene_rect_t *rect)
{
  if (!cs_slice_view_fit_rect (self, margin, rect))
    return FALSE;
  rect->origin.x += self->offset_x;
  rect->origin.y += self->offset_y;
  rect->size.width *= self->zoom;
  rect->size.height *= self->zoom;
  return TRUE;
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

static void
append_line (GtkSnapshot   *snapshot,
             const GdkRGBA *colour,
             double         x,
             double         y,
             double         w,
             double         h)
{
  gtk_snapshot_append_color (snapshot, colour, &GRAPHENE_RECT_INIT (x, y, w, h));
}

/* The topmost visible colour map with a layer: the one the colour bar explains. */
static int
cs_slice_view_scale_overlay (CsSliceView *self)
{
  static const CsOverlay order[] = { CS_OVERLAY_ANOMALY, CS_OVERLAY_EU, CS_OVERLAY_AU };
  for (guint i = 0; i < G_N_ELEMENTS (order); i++)
    if (self->overlays[order[i]].visible && self->layers[order[i]] != NULL)
      return order[i];
  return -1;
}

static const char *
overlay_title (CsOverlay overlay)
{
  switch (overlay)
    {
    case CS_OVERLAY_ANOMALY:
      return _("Anomaly");
    case CS_OVERLAY_EU:
      /* Translators: epistemic uncertainty, the model's own doubt */
      return _("EU");
    case CS_OVERLAY_AU:
      /* Translators: aleatoric uncertainty */
      return _("AU");
    default:
      return "";
    }
}

static void
cs_slice_view_append_colour_bar (CsSliceView   *self,
                                 GtkSnapshot   *snapshot,
                                 const GdkRGBA *fg)
{
  int overlay = cs_slice_view_scale_overlay (self);
  if (overlay < 0)
    return;

  GtkWidget *widget = GTK_WIDGET (self);
  double width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  graphene_rect_t r;
  double margin = cs_slice_view_label_margin (self);
  double bar_h = MIN (240.0, height * 0.5), x = width - COLOUR_BAR_ROOM + 8;
  double y = (height - bar_h) / 2;
  /* Beside the slice (past its P label) when it leaves room, else at the right edge. */
  if (cs_slice_view_compute_image_rect (self, margin, &r))
    x = MIN (x, r.origin.x + r.size.width + margin + 8);
  double threshold = self->overlays[overlay].threshold;
  guint8 rgba[256 * 4];

  /* Bottom to top: threshold .. the map's largest value. */
  for (int i = 0; i < 256; i++)
    {
      overlay_colour (overlay, threshold + (1 - threshold) * (255 - i) / 255.0, rgba + 4 * i);
      rgba[4 * i + 3] = 255;
    }
  g_autoptr(GBytes) bytes = g_bytes_new (rgba, sizeof rgba);
  g_autoptr(GdkTexture) bar = gdk_memory_texture_new (1, 256, GDK_MEMORY_R8G8B8A8, bytes, 4);

  double max = self->layer_max[overlay];
  g_autofree char *top = g_strdup_printf ("%.3g", max);
  g_autofree char *bottom = g_strdup_printf ("%.3g", threshold * max);
  /* On a dark plate: when zoomed, the bar and its scale lie over the image. */
  GdkRGBA plate = { 0, 0, 0, 0.65f };
  gtk_snapshot_append_color (snapshot, &plate,
                             &GRAPHENE_RECT_INIT (x - 6, y - 26, COLOUR_BAR_ROOM - 4, bar_h + 32));
  gtk_snapshot_append_texture (snapshot, bar, &GRAPHENE_RECT_INIT (x, y, COLOUR_BAR_WIDTH, bar_h));
  append_text (snapshot, widget, overlay_title (overlay), x + COLOUR_BAR_WIDTH / 2, y - 14, FALSE,
               fg);
  append_text (snapshot, widget, top, x + COLOUR_BAR_WIDTH + 4, y + 6, TRUE, fg);
  append_text (snapshot, widget, bottom, x + COLOUR_BAR_WIDTH + 4, y + bar_h - 6, TRUE, fg);
}

static void
cs_slice_view_snapshot (GtkWidget   *widget,
                        GtkSnapshot *snapshot)
{
  CsSliceView *self = CS_SLICE_VIEW (widget);
  double margin = cs_slice_view_label_margin (self);
  graphene_rect_t r;
  GdkRGBA fg, accent, cord, lesion;

  if (!cs_slice_view_compute_image_rect (self, margin, &r))
    return;

  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &fg);
  lookup_colour (widget, "accent_color", "#78aeed", &accent);
  lookup_colour (widget, "warning_color", "#f8e45c", &cord);
  lookup_colour (widget, "success_color", "#8ff0a4", &lesion);

  gboolean swapped = self->overlays[CS_OVERLAY_MEAN].visible
                     && self->layers[CS_OVERLAY_MEAN] != NULL;
  if (self->texture == NULL)
    self->texture = grey_texture (swapped ? self->layers[CS_OVERLAY_MEAN] : self->sagittal,
                                  self->window_low, self->window_high);
  gtk_snapshot_append_texture (snapshot, self->texture, &r);

  /* Bottom to top: AU, EU, anomaly, then the outlines. */
  static const CsOverlay order[] = { CS_OVERLAY_AU, CS_OVERLAY_EU, CS_OVERLAY_ANOMALY,
                                     CS_OVERLAY_LESION, CS_OVERLAY_CORD };
  for (guint i = 0; i < G_N_ELEMENTS (order); i++)
    {
      CsOverlay o = order[i];
      if (!self->overlays[o].visible || self->layers[o] == NULL)
        continue;
      if (self->layer_textures[o] == NULL)
        self->layer_textures[o] =
          overlay_is_colour_map (o)
            ? map_texture (self->layers[o], o, self->layer_max[o], self->overlays[o].threshold)
            : outline_texture (self->layers[o], o == CS_OVERLAY_CORD ? &cord : &lesion);
      gtk_snapshot_push_opacity (snapshot, self->overlays[o].opacity);
      gtk_snapshot_append_texture (snapshot, self->layer_textures[o], &r);
      gtk_snapshot_pop (snapshot);
    }

  const CsSagittal *s = self->sagittal;
  double px_w = r.size.width / s->width, px_h = r.size.height / s->height;

  if (self->overlays[CS_OVERLAY_DISCS].visible)
    {
      gtk_snapshot_push_opacity (snapshot, self->overlays[CS_OVERLAY_DISCS].opacity);
      for (int i = 0; i < self->n_discs; i++)
        {
          double x = r.origin.x + (self->discs[i].col + 0.5) * px_w;
          double y = r.origin.y + (self->discs[i].row + 0.5) * px_h;
          if (self->dragging_disc && self->drag_disc == i)
            {
              x = self->drag_x;
              y = self->drag_y;
            }
          if (self->placing && i == self->hovered_disc)
            {
              /* The marker Delete or a drag would act on. */
              GskRoundedRect ring;
              gsk_rounded_rect_init_from_rect (&ring, &GRAPHENE_RECT_INIT (x - 7, y - 7, 14, 14),
                                               7);
              gtk_snapshot_append_border (snapshot, &ring, (float[4]) { 2, 2, 2, 2 },
                                          (GdkRGBA[4]) { fg, fg, fg, fg });
            }
          GskRoundedRect dot;
          gsk_rounded_rect_init_from_rect (&dot, &GRAPHENE_RECT_INIT (x - 4, y - 4, 8, 8), 4);
          gtk_snapshot_push_rounded_clip (snapshot, &dot);
          gtk_snapshot_append_color (snapshot, &accent, &dot.bounds);
          gtk_snapshot_pop (snapshot);
          /* Names sit anterior (left) of the disc, over the vertebral bodies' side. */
          g_autoptr(PangoLayout) layout =
            gtk_widget_create_pango_layout (widget, self->discs[i].name);
          int tw, th;
          pango_layout_get_pixel_size (layout, &tw, &th);
          /* On a dark plate: the names must read over bright fat and bone too. */
          GdkRGBA plate = { 0, 0, 0, 0.65f };
          gtk_snapshot_append_color (snapshot, &plate,
                                     &GRAPHENE_RECT_INIT (x - 12 - tw, y - th / 2.0 - 1, tw + 4,
                                                          th + 2));
          append_text (snapshot, widget, self->discs[i].name, x - 10 - tw, y, TRUE, &fg);
        }
      gtk_snapshot_pop (snapshot);
    }

  if (self->placing && self->next_disc_name != NULL && self->cursor_col >= 0
      && !self->dragging_disc)
    {
      /* The disc a click places now, at the pointer. */
      g_autoptr(PangoLayout) layout = gtk_widget_create_pango_layout (widget,
                                                                      self->next_disc_name);
      int tw, th;
      pango_layout_get_pixel_size (layout, &tw, &th);
      GdkRGBA plate = accent;
      plate.alpha = 0.85f;
      double x = self->pointer_x + 14, y = self->pointer_y - th - 6;
      gtk_snapshot_append_color (snapshot, &plate,
                                 &GRAPHENE_RECT_INIT (x - 3, y - 1, tw + 6, th + 2));
      gtk_snapshot_save (snapshot);
      gtk_snapshot_translate (snapshot, &GRAPHENE_POINT_INIT (x, y));
      gtk_snapshot_append_layout (snapshot, layout, &(GdkRGBA) { 0, 0, 0, 1 });
      gtk_snapshot_restore (snapshot);
    }

  if (self->marked_row >= 0)
    {
      GdkRGBA mark = accent;
      mark.alpha = 0.8f;
      append_line (snapshot, &mark, r.origin.x, r.origin.y + (self->marked_row + 0.5) * px_h - 0.5,
                   r.size.width, 1.5);
    }
  if (self->cursor_col >= 0)
    {
      GdkRGBA hair = accent;
      hair.alpha = 0.55f;
      double x = r.origin.x + (floor (self->cursor_col) + 0.5) * px_w;
      double y = r.origin.y + (floor (self->cursor_row) + 0.5) * px_h;
      append_line (snapshot, &hair, x - 0.5, r.origin.y, 1, r.size.height);
      append_line (snapshot, &hair, r.origin.x, y - 0.5, r.size.width, 1);
    }

  /* The labels stay at the widget's edges when the slice is zoomed beyond them. */
  double half = margin / 2;
  double width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  double cx = CLAMP (r.origin.x + r.size.width / 2, margin, width - margin - COLOUR_BAR_ROOM);
  double cy = CLAMP (r.origin.y + r.size.height / 2, margin, height - margin);
  double top = MAX (half, r.origin.y - half);
  double bottom = MIN (height - half, r.origin.y + r.size.height + half);
  double left = MAX (half, r.origin.x - half);
  double right = MIN (width - COLOUR_BAR_ROOM - half, r.origin.x + r.size.width + half);
  /* Display orientation: superior up, anterior left (cs_volume_extract_sagittal). */
  /* Translators: orientation label, Superior */
  append_text (snapshot, widget, C_("orientation", "S"), cx, top, FALSE, &fg);
  /* Translators: orientation label, Inferior */
  append_text (snapshot, widget, C_("orientation", "I"), cx, bottom, FALSE, &fg);
  /* Translators: orientation label, Anterior */
  append_text (snapshot, widget, C_("orientation", "A"), left, cy, FALSE, &fg);
  /* Translators: orientation label, Posterior */
  append_text (snapshot, widget, C_("orientation", "P"), right, cy, FALSE, &fg);

  /* Slices are counted from 1 for people; the index along the sagittal axis is 0-based. */
  g_autofree char *slice_text = g_strdup_printf (_("Slice %d of %d"), s->slice + 1,
                                                 self->n_slices);
  append_text (snapshot, widget, slice_text, LABEL_PADDING, half, TRUE, &fg);

  g_autofree char *readout = cs_slice_view_dup_readout (self);
  if (readout != NULL)
    {
      g_autoptr(PangoLayout) layout = gtk_widget_create_pango_layout (widget, readout);
      int tw, th;
      pango_layout_get_pixel_size (layout, &tw, &th);
      GdkRGBA shade = { 0, 0, 0, 0.6f };
      double y = height - th - 2 * LABEL_PADDING;
      gtk_snapshot_append_color (snapshot, &shade,
                                 &GRAPHENE_RECT_INIT (0, y, tw + 2 * LABEL_PADDING,
                                                      th + 2 * LABEL_PADDING));
      gtk_snapshot_save (snapshot);
      gtk_snapshot_translate (snapshot, &GRAPHENE_POINT_INIT (LABEL_PADDING, y + LABEL_PADDING));
      gtk_snapshot_append_layout (snapshot, layout, &fg);
      gtk_snapshot_restore (snapshot);
    }

  cs_slice_view_append_colour_bar (self, snapshot, &fg);
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
cs_slice_view_size_allocate (GtkWidget *widget,
                             int        width,
                             int        height,
                             int        baseline)
{
  g_signal_emit (widget, signals[SIGNAL_GEOMETRY_CHANGED], 0);
}

static void
cs_slice_view_invalidate_textures (CsSliceView *self)
{
  g_clear_object (&self->texture);
  for (int i = 0; i < CS_N_OVERLAYS; i++)
    g_clear_object (&self->layer_textures[i]);
}

static void
cs_slice_view_css_changed (GtkWidget         *widget,
                           GtkCssStyleChange *change)
{
  GTK_WIDGET_CLASS (cs_slice_view_parent_class)->css_changed (widget, change);
  /* Label and outline colours come from CSS and the theme. */
  cs_slice_view_invalidate_textures (CS_SLICE_VIEW (widget));
  gtk_widget_queue_draw (widget);
}

/* Widget point to display pixel coordinates (fractional); FALSE off the slice. */
static gboolean
cs_slice_view_point_to_pixel (CsSliceView *self,
                              double       x,
                              double       y,
                              double      *col,
                              double      *row)
{
  graphene_rect_t r;
  if (!cs_slice_view_get_image_rect (self, &r))
    return FALSE;
  *col = (x - r.origin.x) / r.size.width * self->sagittal->width;
  *row = (y - r.origin.y) / r.size.height * self->sagittal->height;
  return *col >= 0 && *row >= 0 && *col < self->sagittal->width && *row < self->sagittal->height;
}

/* The marker within DISC_GRAB_RADIUS of widget point (X, Y), nearest first, or -1. */
static int
cs_slice_view_disc_at (CsSliceView *self,
                       double       x,
                       double       y)
{
  graphene_rect_t r;
  int best = -1;
  double best_d2 = DISC_GRAB_RADIUS * DISC_GRAB_RADIUS;
  if (self->sagittal == NULL || !cs_slice_view_get_image_rect (self, &r))
    return -1;
  for (int i = 0; i < self->n_discs; i++)
    {
      double mx = r.origin.x + (self->discs[i].col + 0.5) * r.size.width / self->sagittal->width;
      double my = r.origin.y + (self->discs[i].row + 0.5) * r.size.height / self->sagittal->height;
      double d2 = (mx - x) * (mx - x) + (my - y) * (my - y);
      if (d2 <= best_d2)
        {
          best = i;
          best_d2 = d2;
        }
    }
  return best;
}

static void
on_motion (GtkEventControllerMotion *controller,
           double                    x,
           double                    y,
           CsSliceView              *self)
{
  double col, row;
  self->pointer_x = x;
  self->pointer_y = y;
  int hovered = cs_slice_view_disc_at (self, x, y);
  if (hovered != self->hovered_disc)
    {
      self->hovered_disc = hovered;
      gtk_widget_queue_draw (GTK_WIDGET (self));
    }
  if (self->placing)
    gtk_widget_queue_draw (GTK_WIDGET (self));
  if (cs_slice_view_point_to_pixel (self, x, y, &col, &row))
    cs_slice_view_set_cursor (self, col, row);
  else
    cs_slice_view_set_cursor (self, -1, -1);
}

static void
on_leave (GtkEventControllerMotion *controller,
          CsSliceView              *self)
{
  cs_slice_view_set_cursor (self, -1, -1);
}

static gboolean
on_scroll (GtkEventControllerScroll *controller,
           double                    dx,
           double                    dy,
           CsSliceView              *self)
{
  GdkModifierType state =
    gtk_event_controller_get_current_event_state (GTK_EVENT_CONTROLLER (controller));

  if (dy == 0 || self->sagittal == NULL)
    return FALSE;
  if (state & GDK_CONTROL_MASK)
    cs_slice_view_zoom_at (self, pow (1.2, -dy), self->pointer_x, self->pointer_y);
  else
    g_signal_emit (self, signals[SIGNAL_STEP_SLICE], 0, dy > 0 ? 1 : -1);
  return TRUE;
}

static void
on_pan_begin (GtkGestureDrag *gesture,
              double          x,
              double          y,
              CsSliceView    *self)
{
  self->drag_last_x = 0;
  self->drag_last_y = 0;
  self->dragging_disc = self->placing && self->sagittal != NULL;
  if (self->dragging_disc)
    {
      /* Grab the marker under the pointer, else a new disc goes where the button lifts. */
      self->drag_disc = cs_slice_view_disc_at (self, x, y);
      self->drag_x = x;
      self->drag_y = y;
    }
}

static void
on_pan_end (GtkGestureDrag *gesture,
            double          dx,
            double          dy,
            CsSliceView    *self)
{
  double x, y, col, row;
  if (!self->dragging_disc)
    return;
  self->dragging_disc = FALSE;
  gtk_gesture_drag_get_start_point (gesture, &x, &y);
  int value = self->drag_disc >= 0 ? self->discs[self->drag_disc].value : -1;
  if (cs_slice_view_point_to_pixel (self, x + dx, y + dy, &col, &row))
    g_signal_emit (self, signals[SIGNAL_DISC_DROPPED], 0, value, floor (col), floor (row));
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_pan_update (GtkGestureDrag *gesture,
               double          dx,
               double          dy,
               CsSliceView    *self)
{
  if (self->dragging_disc)
    {
      double x, y;
      gtk_gesture_drag_get_start_point (gesture, &x, &y);
      self->drag_x = x + dx;
      self->drag_y = y + dy;
      gtk_widget_queue_draw (GTK_WIDGET (self));
      return;
    }
  cs_slice_view_pan (self, dx - self->drag_last_x, dy - self->drag_last_y);
  self->drag_last_x = dx;
  self->drag_last_y = dy;
}

static void
on_window_begin (GtkGestureDrag *gesture,
                 double          x,
                 double          y,
                 CsSliceView    *self)
{
  self->drag_low = self->window_low;
  self->drag_high = self->window_high;
}

void
cs_slice_view_window_after_drag (double  low,
                                 double  high,
                                 double  dx,
                                 double  dy,
                                 double *new_low,
                                 double *new_high)
{
  double width = high - low, level = (high + low) / 2;
  double new_width = width * pow (2.0, dx / WINDOW_DRAG_PIXELS);
  double new_level = level - dy * width / WINDOW_DRAG_PIXELS;
  *new_low = new_level - new_width / 2;
  *new_high = new_level + new_width / 2;
}

static void
on_window_update (GtkGestureDrag *gesture,
                  double          dx,
                  double          dy,
                  CsSliceView    *self)
{
  double low, high;
  cs_slice_view_window_after_drag (self->drag_low, self->drag_high, dx, dy, &low, &high);
  cs_slice_view_set_window (self, low, high);
}

static void
cs_slice_view_finalize (GObject *object)
{
  CsSliceView *self = CS_SLICE_VIEW (object);

  g_clear_pointer (&self->sagittal, cs_sagittal_free);
  g_clear_pointer (&self->next_disc_name, g_free);
  for (int i = 0; i < CS_N_OVERLAYS; i++)
    g_clear_pointer (&self->layers[i], cs_sagittal_free);
  cs_slice_view_invalidate_textures (self);

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
    case PROP_ZOOM:
      g_value_set_double (value, self->zoom);
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
  widget_class->size_allocate = cs_slice_view_size_allocate;
  widget_class->css_changed = cs_slice_view_css_changed;

  properties[PROP_WINDOW_LOW] =
    g_param_spec_double ("window-low", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 0.0,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_WINDOW_HIGH] =
    g_param_spec_double ("window-high", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 1.0,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_ZOOM] =
    g_param_spec_double ("zoom", NULL, NULL, MIN_ZOOM, MAX_ZOOM, 1.0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /* The wheel asks for another slice; the owner of the volume answers. */
  signals[SIGNAL_STEP_SLICE] =
    g_signal_new ("step-slice", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 1, G_TYPE_INT);
  /* The rows moved on screen (zoom, pan, size, another image): views sharing them redraw. */
  /* Placing discs: a marker (VALUE, -1 for a new disc) dropped at display pixel (COL, ROW). */
  signals[SIGNAL_DISC_DROPPED] =
    g_signal_new ("disc-dropped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 3, G_TYPE_INT, G_TYPE_DOUBLE, G_TYPE_DOUBLE);
  signals[SIGNAL_GEOMETRY_CHANGED] =
    g_signal_new ("geometry-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                  NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_OVERLAYS_CHANGED] =
    g_signal_new ("overlays-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                  NULL, NULL, G_TYPE_NONE, 0);

  gtk_widget_class_set_css_name (widget_class, "sliceview");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
cs_slice_view_init (CsSliceView *self)
{
  GtkWidget *widget = GTK_WIDGET (self);

  self->window_low = 0.0;
  self->window_high = 1.0;
  self->zoom = 1.0;
  self->hovered_disc = -1;
  self->cursor_col = self->cursor_row = -1;
  self->marked_row = -1;
  for (int i = 0; i < CS_N_OVERLAYS; i++)
    self->overlays[i] = (OverlaySettings) { TRUE, 0.7, 0.0 };
  self->overlays[CS_OVERLAY_ANOMALY].threshold = 0.2;
  /* Near-zero uncertainty is everywhere the model looked: only the upper part is news. */
  self->overlays[CS_OVERLAY_EU].threshold = 0.1;
  self->overlays[CS_OVERLAY_AU].threshold = 0.1;
  self->overlays[CS_OVERLAY_EU].visible = FALSE;
  self->overlays[CS_OVERLAY_AU].visible = FALSE;
  self->overlays[CS_OVERLAY_MEAN].visible = FALSE;
  self->overlays[CS_OVERLAY_CORD].opacity = 0.6;
  self->overlays[CS_OVERLAY_DISCS].opacity = 0.9;
  self->overlays[CS_OVERLAY_LESION].opacity = 0.9;
  gtk_widget_set_overflow (widget, GTK_OVERFLOW_HIDDEN);
  gtk_widget_set_focusable (widget, TRUE);

  GtkEventController *motion = gtk_event_controller_motion_new ();
  g_signal_connect (motion, "motion", G_CALLBACK (on_motion), self);
  g_signal_connect (motion, "leave", G_CALLBACK (on_leave), self);
  gtk_widget_add_controller (widget, motion);

  GtkEventController *scroll =
    gtk_event_controller_scroll_new (GTK_EVENT_CONTROLLER_SCROLL_VERTICAL
                                     | GTK_EVENT_CONTROLLER_SCROLL_DISCRETE);
  g_signal_connect (scroll, "scroll", G_CALLBACK (on_scroll), self);
  gtk_widget_add_controller (widget, scroll);

  GtkGesture *pan = gtk_gesture_drag_new ();
  gtk_gesture_single_set_button (GTK_GESTURE_SINGLE (pan), GDK_BUTTON_PRIMARY);
  g_signal_connect (pan, "drag-begin", G_CALLBACK (on_pan_begin), self);
  g_signal_connect (pan, "drag-update", G_CALLBACK (on_pan_update), self);
  g_signal_connect (pan, "drag-end", G_CALLBACK (on_pan_end), self);
  gtk_widget_add_controller (widget, GTK_EVENT_CONTROLLER (pan));

  GtkGesture *window = gtk_gesture_drag_new ();
  gtk_gesture_single_set_button (GTK_GESTURE_SINGLE (window), GDK_BUTTON_SECONDARY);
  g_signal_connect (window, "drag-begin", G_CALLBACK (on_window_begin), self);
  g_signal_connect (window, "drag-update", G_CALLBACK (on_window_update), self);
  gtk_widget_add_controller (widget, GTK_EVENT_CONTROLLER (window));
}

GtkWidget *
cs_slice_view_new (void)
{
  return g_object_new (CS_TYPE_SLICE_VIEW, NULL);
}

void
cs_slice_view_set_image (CsSliceView *self,
                         CsSagittal  *sagittal,
                         int          n_slices,
                         gboolean     keep_view)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self));

  gboolean same_size = self->sagittal != NULL && sagittal != NULL
                       && self->sagittal->width == sagittal->width
                       && self->sagittal->height == sagittal->height;
  g_clear_pointer (&self->sagittal, cs_sagittal_free);
  g_clear_object (&self->texture);
  self->sagittal = sagittal;
  self->n_slices = n_slices;
  /* Layers of another slice or case would lie: the owner sets this slice's. */
  for (int i = 0; i < CS_N_OVERLAYS; i++)
    {
      g_clear_pointer (&self->layers[i], cs_sagittal_free);
      g_clear_object (&self->layer_textures[i]);
    }
  self->n_discs = 0;
  if (!same_size)
    self->cursor_col = self->cursor_row = -1;
  if (sagittal != NULL)
    {
      g_autofree char *description =
        g_strdup_printf (_("Sagittal slice %d of %d"), sagittal->slice + 1, n_slices);
      gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      description, -1);
      if (!keep_view)
        {
          cs_slice_view_reset_window (self);
          cs_slice_view_zoom_fit (self);
        }
    }
  else
    gtk_accessible_reset_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL);
  g_signal_emit (self, signals[SIGNAL_GEOMETRY_CHANGED], 0);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
cs_slice_view_set_sagittal (CsSliceView *self,
                            CsSagittal  *sagittal,
                            int          n_slices)
{
  cs_slice_view_set_image (self, sagittal, n_slices, FALSE);
}

const CsSagittal *
cs_slice_view_get_sagittal (CsSliceView *self)
{
  g_return_val_if_fail (CS_IS_SLICE_VIEW (self), NULL);
  return self->sagittal;
}

void
cs_slice_view_set_layer (CsSliceView *self,
                         CsOverlay    overlay,
                         CsSagittal  *layer)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self));
  g_return_if_fail (overlay < CS_N_OVERLAYS && overlay != CS_OVERLAY_DISCS);

  g_clear_pointer (&self->layers[overlay], cs_sagittal_free);
  g_clear_object (&self->layer_textures[overlay]);
  if (overlay == CS_OVERLAY_MEAN)
    g_clear_object (&self->texture);
  if (layer != NULL && (self->sagittal == NULL || layer->width != self->sagittal->width
                        || layer->height != self->sagittal->height))
    {
      g_warning ("Layer %s does not match the slice's grid; not shown", overlay_ids[overlay]);
      cs_sagittal_free (layer);
      layer = NULL;
    }
  self->layers[overlay] = layer;
  self->layer_max[overlay] = 0;
  for (gsize i = 0; layer != NULL && i < (gsize) layer->width * layer->height; i++)
    if (isfinite (layer->data[i]))
      self->layer_max[overlay] = MAX (self->layer_max[overlay], layer->data[i]);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

gboolean
cs_slice_view_has_layer (CsSliceView *self,
                         CsOverlay    overlay)
{
  g_return_val_if_fail (CS_IS_SLICE_VIEW (self) && overlay < CS_N_OVERLAYS, FALSE);
  if (overlay == CS_OVERLAY_DISCS)
    return self->n_discs > 0;
  return self->layers[overlay] != NULL;
}

void
cs_slice_view_set_discs (CsSliceView     *self,
                         const CsSegment *segments)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self));

  self->n_discs = 0;
  self->hovered_disc = -1;
  for (int i = 0; segments != NULL && i < CS_N_SEGMENTS; i++)
    if (segments[i].present)
      {
        DiscMarker *m = &self->discs[self->n_discs++];
        g_strlcpy (m->name, segments[i].name, sizeof m->name);
        m->value = segments[i].disc_value;
        m->col = segments[i].disc_col;
        m->row = segments[i].disc_row;
      }
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
cs_slice_view_set_disc_points (CsSliceView *self,
                               const GArray *discs)
{
  static const char *const names[] = { "C2-3", "C3-4", "C4-5", "C5-6", "C6-7", "C7-T1" };
  g_return_if_fail (CS_IS_SLICE_VIEW (self));

  self->n_discs = 0;
  self->hovered_disc = -1;
  for (guint i = 0; discs != NULL && self->sagittal != NULL && i < discs->len
                    && self->n_discs < CS_SLICE_VIEW_MAX_DISCS; i++)
    {
      const CsDisc *d = &g_array_index (discs, CsDisc, i);
      if (d->value < 3 || d->value > 8)
        continue;  /* only the six that bound Cordscope's segments */
      DiscMarker *m = &self->discs[self->n_discs++];
      m->value = d->value;
      if (d->value >= 3 && d->value <= 8)
        g_strlcpy (m->name, names[d->value - 3], sizeof m->name);
      else
        g_snprintf (m->name, sizeof m->name, "%d", d->value);
      cs_sagittal_voxel_to_display (self->sagittal, d->voxel, &m->col, &m->row);
    }
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
cs_slice_view_set_placing_discs (CsSliceView *self,
                                 gboolean     placing,
                                 const char  *next_name)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self));
  self->placing = placing;
  g_free (self->next_disc_name);
  self->next_disc_name = g_strdup (next_name);
  gtk_widget_set_cursor_from_name (GTK_WIDGET (self), placing ? "crosshair" : NULL);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

gboolean
cs_slice_view_get_placing_discs (CsSliceView *self)
{
  g_return_val_if_fail (CS_IS_SLICE_VIEW (self), FALSE);
  return self->placing;
}

int
cs_slice_view_get_hovered_disc (CsSliceView *self)
{
  g_return_val_if_fail (CS_IS_SLICE_VIEW (self), 0);
  return self->hovered_disc >= 0 && self->hovered_disc < self->n_discs
           ? self->discs[self->hovered_disc].value : 0;
}

gboolean
cs_slice_view_get_disc_point (CsSliceView *self,
                              int          value,
                              double      *x,
                              double      *y)
{
  graphene_rect_t r;
  g_return_val_if_fail (CS_IS_SLICE_VIEW (self), FALSE);
  if (!cs_slice_view_get_image_rect (self, &r))
    return FALSE;
  for (int i = 0; i < self->n_discs; i++)
    if (self->discs[i].value == value)
      {
        *x = r.origin.x + (self->discs[i].col + 0.5) * r.size.width / self->sagittal->width;
        *y = r.origin.y + (self->discs[i].row + 0.5) * r.size.height / self->sagittal->height;
        return TRUE;
      }
  return FALSE;
}

void
cs_slice_view_set_overlay_visible (CsSliceView *self,
                                   CsOverlay    overlay,
                                   gboolean     visible)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self) && overlay < CS_N_OVERLAYS);
  if (self->overlays[overlay].visible == !!visible)
    return;
  self->overlays[overlay].visible = !!visible;
  if (overlay == CS_OVERLAY_MEAN)
    g_clear_object (&self->texture);
  g_signal_emit (self, signals[SIGNAL_OVERLAYS_CHANGED], 0);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

gboolean
cs_slice_view_get_overlay_visible (CsSliceView *self,
                                   CsOverlay    overlay)
{
  g_return_val_if_fail (CS_IS_SLICE_VIEW (self) && overlay < CS_N_OVERLAYS, FALSE);
  return self->overlays[overlay].visible;
}

void
cs_slice_view_set_overlay_opacity (CsSliceView *self,
                                   CsOverlay    overlay,
                                   double       opacity)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self) && overlay < CS_N_OVERLAYS);
  opacity = CLAMP (opacity, 0, 1);
  if (self->overlays[overlay].opacity == opacity)
    return;
  self->overlays[overlay].opacity = opacity;
  g_signal_emit (self, signals[SIGNAL_OVERLAYS_CHANGED], 0);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

double
cs_slice_view_get_overlay_opacity (CsSliceView *self,
                                   CsOverlay    overlay)
{
  g_return_val_if_fail (CS_IS_SLICE_VIEW (self) && overlay < CS_N_OVERLAYS, 0);
  return self->overlays[overlay].opacity;
}

void
cs_slice_view_set_overlay_threshold (CsSliceView *self,
                                     CsOverlay    overlay,
                                     double       threshold)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self) && overlay < CS_N_OVERLAYS);
  threshold = CLAMP (threshold, 0, 1);
  if (self->overlays[overlay].threshold == threshold)
    return;
  self->overlays[overlay].threshold = threshold;
  g_clear_object (&self->layer_textures[overlay]);
  g_signal_emit (self, signals[SIGNAL_OVERLAYS_CHANGED], 0);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

double
cs_slice_view_get_overlay_threshold (CsSliceView *self,
                                     CsOverlay    overlay)
{
  g_return_val_if_fail (CS_IS_SLICE_VIEW (self) && overlay < CS_N_OVERLAYS, 0);
  return self->overlays[overlay].threshold;
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

static void
cs_slice_view_geometry_changed (CsSliceView *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ZOOM]);
  g_signal_emit (self, signals[SIGNAL_GEOMETRY_CHANGED], 0);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
cs_slice_view_zoom_at (CsSliceView *self,
                       double       factor,
                       double       x,
                       double       y)
{
  graphene_rect_t fit;

  g_return_if_fail (CS_IS_SLICE_VIEW (self));
  double zoom = CLAMP (self->zoom * factor, MIN_ZOOM, MAX_ZOOM);
  if (zoom == self->zoom || !cs_slice_view_fit_rect (self, cs_slice_view_label_margin (self), &fit))
    return;

  /* The slice point under (X, Y) stays there. */
  double ox = fit.origin.x + self->offset_x, oy = fit.origin.y + self->offset_y;
  double scale = zoom / self->zoom;
  self->offset_x = x - (x - ox) * scale - fit.origin.x;
  self->offset_y = y - (y - oy) * scale - fit.origin.y;
  self->zoom = zoom;
  cs_slice_view_geometry_changed (self);
}

void
cs_slice_view_zoom_fit (CsSliceView *self)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self));
  self->zoom = 1.0;
  self->offset_x = self->offset_y = 0.0;
  cs_slice_view_geometry_changed (self);
}

double
cs_slice_view_get_zoom (CsSliceView *self)
{
  g_return_val_if_fail (CS_IS_SLICE_VIEW (self), 1.0);
  return self->zoom;
}

void
cs_slice_view_pan (CsSliceView *self,
                   double       dx,
                   double       dy)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self));
  self->offset_x += dx;
  self->offset_y += dy;
  cs_slice_view_geometry_changed (self);
}

gboolean
cs_slice_view_get_image_rect (CsSliceView     *self,
                              graphene_rect_t *rect)
{
  g_return_val_if_fail (CS_IS_SLICE_VIEW (self), FALSE);
  return cs_slice_view_compute_image_rect (self, cs_slice_view_label_margin (self), rect);
}

double
cs_slice_view_row_to_y (CsSliceView *self,
                        double       row)
{
  graphene_rect_t r;
  if (!cs_slice_view_get_image_rect (self, &r))
    return -1;
  return r.origin.y + row * r.size.height / self->sagittal->height;
}

double
cs_slice_view_y_to_row (CsSliceView *self,
                        double       y)
{
  graphene_rect_t r;
  if (!cs_slice_view_get_image_rect (self, &r))
    return -1;
  return (y - r.origin.y) / r.size.height * self->sagittal->height;
}

void
cs_slice_view_set_marked_row (CsSliceView *self,
                              double       row)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self));
  if (self->marked_row == row)
    return;
  self->marked_row = row;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
cs_slice_view_set_cursor (CsSliceView *self,
                          double       col,
                          double       row)
{
  g_return_if_fail (CS_IS_SLICE_VIEW (self));
  if (col < 0 || row < 0)
    col = row = -1;
  if (self->cursor_col == col && self->cursor_row == row)
    return;
  self->cursor_col = col;
  self->cursor_row = row;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
apply_affine (const double m[4][4], double x, double y, double out[3])
{
  for (int i = 0; i < 3; i++)
    out[i] = m[i][0] * x + m[i][1] * y + m[i][3];
}

char *
cs_slice_view_dup_readout (CsSliceView *self)
{
  g_return_val_if_fail (CS_IS_SLICE_VIEW (self), NULL);

  const CsSagittal *s = self->sagittal;
  if (s == NULL || self->cursor_col < 0)
    return NULL;
  int col = (int) floor (self->cursor_col), row = (int) floor (self->cursor_row);
  if (col >= s->width || row >= s->height)
    return NULL;

  double vox[3], mm[3];
  apply_affine (s->px2vox, col, row, vox);
  apply_affine (s->px2mm, col, row, mm);
  gsize index = (gsize) row * s->width + col;
  GString *text = g_string_new (NULL);
  g_string_append_printf (text, _("Voxel %ld, %ld, %ld"), lround (vox[0]), lround (vox[1]),
                          lround (vox[2]));
  g_string_append_c (text, '\n');
  g_string_append_printf (text, _("%.1f, %.1f, %.1f mm"), mm[0], mm[1], mm[2]);
  g_string_append_c (text, '\n');
  g_string_append_printf (text, _("Intensity %.5g"), s->data[index]);
  if (self->layers[CS_OVERLAY_ANOMALY] != NULL)
    {
      g_string_append_c (text, '\n');
      g_string_append_printf (text, _("Anomaly %.3g"), self->layers[CS_OVERLAY_ANOMALY]->data[index]);
    }
  if (self->layers[CS_OVERLAY_EU] != NULL)
    {
      g_string_append_c (text, '\n');
      g_string_append_printf (text, _("EU %.3g"), self->layers[CS_OVERLAY_EU]->data[index]);
    }
  return g_string_free (text, FALSE);
}
