/* cs-window.c: the main window: the worklist, the case on screen (slice, curve, segment
 * panel) and detection through the engine worker. */
#include "cs-config.h"

#include <math.h>
#include <string.h>
#include <glib/gi18n.h>

#include "io/cs-labels.h"
#include "cs-window-private.h"

G_DEFINE_FINAL_TYPE (CsWindow, cs_window, ADW_TYPE_APPLICATION_WINDOW)

G_DEFINE_ENUM_TYPE (CsWindowState, cs_window_state,
  G_DEFINE_ENUM_VALUE (CS_WINDOW_STATE_EMPTY, "empty"),
  G_DEFINE_ENUM_VALUE (CS_WINDOW_STATE_LOADING, "loading"),
  G_DEFINE_ENUM_VALUE (CS_WINDOW_STATE_SHOWING, "showing"),
  G_DEFINE_ENUM_VALUE (CS_WINDOW_STATE_FAILED, "failed"))

enum {
  PROP_0,
  PROP_STATE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* How long a case may take to open before the loading page replaces the current one. */
#define LOADING_PAGE_DELAY_MS 250

/* Map layers a detection gives, in CsCaseResult.layers order. */
static const CsOverlay result_layers[4] = {
  CS_OVERLAY_ANOMALY, CS_OVERLAY_EU, CS_OVERLAY_AU, CS_OVERLAY_MEAN,
};

static void cs_window_update_panel (CsWindow *self);
static void cs_window_update_row   (CsWindow *self,
                                    guint     index);

static void
cs_case_result_free (CsCaseResult *result)
{
  g_clear_pointer (&result->detection, cs_detection_free);
  g_free (result->error);
  for (int i = 0; i < 4; i++)
    g_clear_pointer (&result->layers[i], cs_sagittal_free);
  g_free (result);
}

static void
cs_model_slot_free (CsModelSlot *slot)
{
  g_clear_pointer (&slot->model, cs_pipeline_model_free);
  g_free (slot->reason);
  g_mutex_clear (&slot->lock);
  g_free (slot);
}

static void
cs_window_show_loading_page (gpointer user_data)
{
  CsWindow *self = user_data;

  self->loading_page_timeout = 0;
  gtk_stack_set_visible_child_name (self->stack, "loading");
  gtk_spinner_set_spinning (self->loading_spinner, TRUE);
}

static void
cs_window_set_state (CsWindow      *self,
                     CsWindowState  state)
{
  static const char *const page_names[] = {
    [CS_WINDOW_STATE_EMPTY] = "empty",
    [CS_WINDOW_STATE_LOADING] = "loading",
    [CS_WINDOW_STATE_SHOWING] = "slice",
    [CS_WINDOW_STATE_FAILED] = "error",
  };

  g_clear_handle_id (&self->loading_page_timeout, g_source_remove);
  gtk_spinner_set_spinning (self->loading_spinner, FALSE);
  if (state == CS_WINDOW_STATE_LOADING)
    {
      /* Most cases open in well under a second: the case on screen stays until the next
       * one is ready, and the spinner only shows for slow ones, so nothing flashes. */
      if (self->state != CS_WINDOW_STATE_SHOWING)
        gtk_stack_set_visible_child_name (self->stack, "loading");
      self->loading_page_timeout =
        g_timeout_add_once (LOADING_PAGE_DELAY_MS, cs_window_show_loading_page, self);
    }
  else
    gtk_stack_set_visible_child_name (self->stack, page_names[state]);
  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

static void
cs_window_show_titles (CsWindow   *self,
                       const char *title,
                       const char *subtitle)
{
  adw_window_title_set_title (self->window_title, title);
  adw_window_title_set_subtitle (self->window_title, subtitle != NULL ? subtitle : "");
  gtk_window_set_title (GTK_WINDOW (self), title);
}

static void
cs_window_show_failure (CsWindow     *self,
                        const char   *what,
                        const GError *error)
{
  g_autofree char *title = g_strdup_printf (_("Could Not Open “%s”"), what);

  adw_status_page_set_title (self->error_page, title);
  /* The description is Pango markup; file names may hold '&' or '<'. */
  g_autofree char *reason = g_markup_escape_text (error->message, -1);
  adw_status_page_set_description (self->error_page, reason);
  /* The case that was on screen is gone too: the window says what failed, nothing else. */
  cs_slice_view_set_sagittal (self->slice_view, NULL, 0);
  cs_window_annotation_close (self, NULL);
  g_clear_pointer (&self->loaded, cs_loaded_case_free);
  cs_window_show_titles (self, "Cordscope", NULL);
  cs_window_set_state (self, CS_WINDOW_STATE_FAILED);
  cs_window_update_panel (self);
}

/* ---- results and worklist ---------------------------------------------------------- */

static const CsCase *
cs_window_case (CsWindow *self,
                guint     index)
{
  if (self->cases == NULL || index >= self->cases->len)
    return NULL;
  return g_ptr_array_index (self->cases, index);
}

static CsCaseResult *
cs_window_result (CsWindow   *self,
                  const char *image_path,
                  gboolean    create)
{
  CsCaseResult *result = g_hash_table_lookup (self->results, image_path);
  if (result == NULL && create)
    {
      result = g_new0 (CsCaseResult, 1);
      g_hash_table_insert (self->results, g_strdup (image_path), result);
    }
  return result;
}

double
cs_window_get_threshold (CsWindow       *self,
                         CsDetectorKind  detector)
{
  const char *key = detector == CS_DETECTOR_ZSCORE ? "threshold-zscore" : "threshold-u2ad";
  if (self->settings == NULL)
    return detector == CS_DETECTOR_ZSCORE ? 0.8 : 0.3;
  return g_settings_get_double (self->settings, key);
}

static CsCaseState
cs_window_result_state (CsWindow           *self,
                        const CsCaseResult *result)
{
  if (result == NULL)
    return CS_CASE_NOT_RUN;
  if (result->running)
    return self->worker != NULL && cs_worker_get_running (self->worker) == result->job_id
             ? CS_CASE_RUNNING : CS_CASE_QUEUED;
  if (result->detection != NULL)
    return result->detection->patient_score
             >= cs_window_get_threshold (self, result->detection->detector)
             ? CS_CASE_SUSPICIOUS : CS_CASE_NORMAL;
  return result->error != NULL ? CS_CASE_FAILED : CS_CASE_NOT_RUN;
}

CsCaseState
cs_window_get_case_state (CsWindow *self,
                          guint     index)
{
  const CsCase *c = cs_window_case (self, index);
  g_return_val_if_fail (c != NULL, CS_CASE_NOT_RUN);
  return cs_window_result_state (self, cs_window_result (self, c->image_path, FALSE));
}

static const char *
case_state_text (CsCaseState state)
{
  switch (state)
    {
    case CS_CASE_QUEUED:
      return _("Queued");
    case CS_CASE_RUNNING:
      return _("Running");
    case CS_CASE_NORMAL:
      return _("Normal");
    case CS_CASE_SUSPICIOUS:
      return _("Suspicious");
    case CS_CASE_FAILED:
      return _("Failed");
    case CS_CASE_NOT_RUN:
    default:
      return _("Not run");
    }
}

static GtkWidget *
cs_window_build_row (CsWindow *self,
                     guint     index)
{
  const CsCase *c = cs_window_case (self, index);
  const CsCaseResult *result = cs_window_result (self, c->image_path, FALSE);
  CsCaseState state = cs_window_result_state (self, result);

  GtkWidget *grid = gtk_grid_new ();
  gtk_grid_set_column_spacing (GTK_GRID (grid), 6);
  gtk_widget_set_margin_top (grid, 3);
  gtk_widget_set_margin_bottom (grid, 3);

  GtkWidget *name = gtk_label_new (c->name);
  gtk_label_set_xalign (GTK_LABEL (name), 0);
  gtk_label_set_ellipsize (GTK_LABEL (name), PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_set_hexpand (name, TRUE);
  gtk_grid_attach (GTK_GRID (grid), name, 0, 0, 1, 1);

  const CsSidecar *labels = self->annotation != NULL && self->loaded != NULL
                           && self->loaded->index == index
                             ? cs_annotation_get_sidecar (self->annotation)
                           : self->worklist_sidecars != NULL && index < self->worklist_sidecars->len
                             ? g_ptr_array_index (self->worklist_sidecars, index) : NULL;
  guint n_labelled = cs_sidecar_n_labelled (labels);
  if (n_labelled > 0)
    {
      g_autofree char *text = g_strdup_printf ("%u/6", n_labelled);
      GtkWidget *count = gtk_label_new (text);
      gtk_widget_add_css_class (count, "caption");
      gtk_widget_add_css_class (count, "numeric");
      gtk_widget_add_css_class (count, n_labelled == 6 ? "success" : "dim-label");
      gtk_widget_set_tooltip_text (count, _("Segments labelled"));
      gtk_grid_attach (GTK_GRID (grid), count, 2, 0, 1, 1);
    }

  if (cs_case_is_labelled (c))
    {
      GtkWidget *labelled = gtk_image_new_from_icon_name ("emblem-ok-symbolic");
      gtk_widget_set_tooltip_text (labelled, _("Labelled: has a reference to compare with"));
      gtk_accessible_update_property (GTK_ACCESSIBLE (labelled), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      _("Labelled"), -1);
      gtk_grid_attach (GTK_GRID (grid), labelled, 1, 0, 1, 1);
    }

  GtkWidget *status = gtk_label_new (case_state_text (state));
  gtk_label_set_xalign (GTK_LABEL (status), 0);
  gtk_widget_add_css_class (status, "caption");
  if (state == CS_CASE_SUSPICIOUS || state == CS_CASE_FAILED)
    gtk_widget_add_css_class (status, "error");
  else if (state == CS_CASE_NORMAL)
    gtk_widget_add_css_class (status, "success");
  else
    gtk_widget_add_css_class (status, "dim-label");
  gtk_grid_attach (GTK_GRID (grid), status, 0, 1, 1, 1);

  if (result != NULL && result->detection != NULL)
    {
      g_autofree char *score = g_strdup_printf ("%.2f", result->detection->patient_score);
      GtkWidget *score_label = gtk_label_new (score);
      gtk_widget_add_css_class (score_label, "caption");
      gtk_widget_add_css_class (score_label, "numeric");
      gtk_grid_attach (GTK_GRID (grid), score_label, 1, 1, 1, 1);
    }
  return grid;
}

/* Rows carry their case's index: filters and the score order list a subset, reordered. */
static int
cs_window_case_of_row (GtkListBoxRow *row)
{
  return row != NULL ? GPOINTER_TO_INT (g_object_get_data (G_OBJECT (row), "cs-case")) - 1 : -1;
}

static GtkListBoxRow *
cs_window_row_of_case (CsWindow *self,
                       guint     index)
{
  for (GtkWidget *child = gtk_widget_get_first_child (GTK_WIDGET (self->worklist));
       child != NULL; child = gtk_widget_get_next_sibling (child))
    if (GTK_IS_LIST_BOX_ROW (child)
        && cs_window_case_of_row (GTK_LIST_BOX_ROW (child)) == (int) index)
      return GTK_LIST_BOX_ROW (child);
  return NULL;
}

static void
cs_window_update_row (CsWindow *self,
                      guint     index)
{
  GtkListBoxRow *row = cs_window_row_of_case (self, index);
  if (row != NULL)
    gtk_list_box_row_set_child (row, cs_window_build_row (self, index));
}

static void
cs_window_update_row_for_path (CsWindow   *self,
                               const char *image_path)
{
  for (guint i = 0; self->cases != NULL && i < self->cases->len; i++)
    if (g_strcmp0 (cs_window_case (self, i)->image_path, image_path) == 0)
      cs_window_update_row (self, i);
}

/* The worklist's view of every case: its labels (the document's for the case on screen),
 * the model's calls and the patient score. Free with g_free. */
static CsWorklistItem *
cs_window_worklist_items (CsWindow *self,
                          guint    *n_items)
{
  guint n = self->cases != NULL ? self->cases->len : 0;
  CsWorklistItem *items = g_new0 (CsWorklistItem, MAX (n, 1));

  for (guint i = 0; i < n; i++)
    {
      const CsCase *c = cs_window_case (self, i);
      const CsCaseResult *result = cs_window_result (self, c->image_path, FALSE);
      const CsDetection *det = result != NULL ? result->detection : NULL;
      gboolean on_screen = self->annotation != NULL && self->loaded != NULL
                           && self->loaded->index == i;
      items[i].sidecar = on_screen ? cs_annotation_get_sidecar (self->annotation)
                         : self->worklist_sidecars != NULL && i < self->worklist_sidecars->len
                           ? g_ptr_array_index (self->worklist_sidecars, i) : NULL;
      items[i].patient_score = det != NULL ? det->patient_score : NAN;
      double threshold = det != NULL ? cs_window_get_threshold (self, det->detector) : NAN;
      for (int s = 0; s < CS_N_SEGMENTS; s++)
        items[i].model_calls[s] =
          det == NULL || !det->have_segments || !det->segments[s].present
          || !isfinite (det->segments[s].score) ? CS_SEGMENT_LABEL_UNSET
          : det->segments[s].score >= threshold ? CS_SEGMENT_LABEL_HYPERINTENSE
          : CS_SEGMENT_LABEL_NORMAL;
    }
  *n_items = n;
  return items;
}

static void
cs_window_load_worklist_sidecars (CsWindow *self)
{
  g_clear_pointer (&self->worklist_sidecars, g_ptr_array_unref);
  self->worklist_sidecars = g_ptr_array_new_with_free_func ((GDestroyNotify) cs_sidecar_free);
  for (guint i = 0; self->cases != NULL && i < self->cases->len; i++)
    {
      const CsCase *c = cs_window_case (self, i);
      g_autoptr(GError) error = NULL;
      /* An unreadable sidecar counts as unlabelled here; opening the case says why. */
      CsSidecar *sidecar = c->sidecar_path != NULL ? cs_sidecar_load (c->sidecar_path, &error)
                                                   : NULL;
      g_ptr_array_add (self->worklist_sidecars, sidecar);
    }
}

/* Keeps the worklist's copy of the case on screen's labels (the document goes on close). */
void
cs_window_worklist_keep_labels (CsWindow *self)
{
  if (self->annotation == NULL || self->loaded == NULL || self->worklist_sidecars == NULL
      || self->loaded->index >= self->worklist_sidecars->len)
    return;
  /* A deep copy of the document's state, through its own text. */
  g_autofree char *json = cs_annotation_to_json (self->annotation);
  CsSidecar *copy = cs_sidecar_from_json (json, -1, cs_annotation_get_path (self->annotation),
                                          NULL);
  if (copy == NULL)
    return;
  cs_sidecar_free (g_ptr_array_index (self->worklist_sidecars, self->loaded->index));
  g_ptr_array_index (self->worklist_sidecars, self->loaded->index) = copy;
}

static void
cs_window_select_row (CsWindow *self,
                      guint     index)
{
  GtkListBoxRow *row = cs_window_row_of_case (self, index);
  self->selecting = TRUE;
  gtk_list_box_select_row (self->worklist, row);
  self->selecting = FALSE;
}

static void
cs_window_fill_worklist (CsWindow *self)
{
  guint n_items;
  g_autofree CsWorklistItem *items = cs_window_worklist_items (self, &n_items);
  CsWorklistFilter filter = gtk_drop_down_get_selected (self->worklist_filter);
  gboolean by_score = gtk_toggle_button_get_active (self->worklist_sort);
  g_autoptr(GArray) order = cs_worklist_order (items, n_items, CS_WORKLIST_ALL, by_score);
  int on_screen = self->loaded != NULL ? (int) self->loaded->index : -1;

  self->selecting = TRUE;
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->worklist))) != NULL)
    gtk_list_box_remove (self->worklist, child);
  for (guint k = 0; k < order->len; k++)
    {
      guint i = g_array_index (order, guint, k);
      /* The case on screen stays listed while it is labelled out of the filter. */
      if (!cs_worklist_item_matches (&items[i], filter) && (int) i != on_screen)
        continue;
      GtkWidget *row = gtk_list_box_row_new ();
      g_object_set_data (G_OBJECT (row), "cs-case", GINT_TO_POINTER ((int) i + 1));
      gtk_list_box_append (self->worklist, row);
      cs_window_update_row (self, i);
    }
  self->selecting = FALSE;
  if (on_screen >= 0)
    cs_window_select_row (self, on_screen);

  g_autofree char *progress =
    g_strdup_printf (_("%u of %u labelled"), cs_worklist_n_complete (items, n_items), n_items);
  gtk_label_set_label (self->worklist_progress, progress);
  gtk_widget_set_visible (self->worklist_box, self->cases != NULL && self->cases->len > 1);
}

void
cs_window_worklist_changed (CsWindow *self)
{
  CsWorklistFilter filter = gtk_drop_down_get_selected (self->worklist_filter);
  if (filter != CS_WORKLIST_ALL || gtk_toggle_button_get_active (self->worklist_sort))
    {
      cs_window_fill_worklist (self);
      return;
    }
  guint n_items;
  g_autofree CsWorklistItem *items = cs_window_worklist_items (self, &n_items);
  g_autofree char *progress =
    g_strdup_printf (_("%u of %u labelled"), cs_worklist_n_complete (items, n_items), n_items);
  gtk_label_set_label (self->worklist_progress, progress);
  /* The row shows the labelled count: rebuilt when that changes. */
  GtkListBoxRow *row = self->loaded != NULL ? cs_window_row_of_case (self, self->loaded->index)
                                            : NULL;
  guint n_labelled =
    self->loaded != NULL ? cs_sidecar_n_labelled (items[self->loaded->index].sidecar) : 0;
  if (row != NULL
      && GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (row), "cs-labelled")) != n_labelled + 1)
    {
      g_object_set_data (G_OBJECT (row), "cs-labelled", GUINT_TO_POINTER (n_labelled + 1));
      cs_window_update_row (self, self->loaded->index);
    }
}

void
cs_window_worklist_reload (CsWindow *self)
{
  cs_window_load_worklist_sidecars (self);
  cs_window_fill_worklist (self);
}

static void
on_worklist_order_changed (CsWindow *self)
{
  cs_window_fill_worklist (self);
}

/* ---- the case on screen ------------------------------------------------------------ */

const CsDetection *
cs_window_get_detection (CsWindow *self)
{
  g_return_val_if_fail (CS_IS_WINDOW (self), NULL);
  if (self->loaded == NULL)
    return NULL;
  const CsCaseResult *result = cs_window_result (self, self->loaded->image_path, FALSE);
  return result != NULL ? result->detection : NULL;
}

/* A grid map (SIZE x SIZE) on the analysed display slice: bilinear at each pixel's grid
 * position; off the grid 0, or NAN for the mean reconstruction (the image shows there).
 * Runs in the worker thread. */
static CsSagittal *
grid_map_to_display (const CsSlice2d *grid,
                     const float     *map,
                     gboolean         mean)
{
  CsSagittal *s = g_new0 (CsSagittal, 1);
  s->width = grid->src_width;
  s->height = grid->src_height;
  s->spacing[0] = grid->spacing[0];
  s->spacing[1] = grid->spacing[1];
  s->slice = grid->slice;
  s->sagittal_axis = grid->sagittal_axis;
  memcpy (s->volume_dim, grid->vol_dim, sizeof s->volume_dim);
  s->data = g_new0 (float, (gsize) s->width * s->height);
  int n = grid->size;
  double scale = grid->clip_hi - grid->clip_lo;

  for (int row = 0; row < s->height; row++)
    for (int col = 0; col < s->width; col++)
      {
        gsize index = (gsize) row * s->width + col;
        double u, v;
        cs_slice2d_px_to_grid (grid, col, row, &u, &v);
        int u0 = (int) floor (u), v0 = (int) floor (v);
        if (u0 < 0 || v0 < 0 || u0 + 1 >= n || v0 + 1 >= n)
          {
            s->data[index] = mean ? NAN : 0.0f;
            continue;
          }
        double fu = u - u0, fv = v - v0;
        const float *p = map + (gsize) v0 * n + u0;
        double value = (p[0] * (1 - fu) + p[1] * fu) * (1 - fv)
                       + (p[n] * (1 - fu) + p[n + 1] * fu) * fv;
        /* The mean goes back to the source intensities, to be read under the same window. */
        s->data[index] = (float) (mean ? grid->clip_lo + value * scale : value);
      }
  return s;
}

static CsSagittal *
sagittal_copy (const CsSagittal *s)
{
  CsSagittal *copy = g_new0 (CsSagittal, 1);
  *copy = *s;
  copy->data = g_memdup2 (s->data, sizeof (float) * s->width * s->height);
  return copy;
}

static void
cs_window_show_detection_layers (CsWindow *self)
{
  const CsSagittal *image = cs_slice_view_get_sagittal (self->slice_view);
  CsCaseResult *result = self->loaded != NULL
                           ? cs_window_result (self, self->loaded->image_path, FALSE) : NULL;
  const CsDetection *det = result != NULL ? result->detection : NULL;

  if (det == NULL || image == NULL || det->slice_index != self->slice)
    {
      for (int i = 0; i < 4; i++)
        cs_slice_view_set_layer (self->slice_view, result_layers[i], NULL);
      cs_curve_view_set_curve (self->curve_view, NULL, NULL, 0);
      cs_curve_view_set_segments (self->curve_view, NULL, 0);
      return;
    }

  for (int i = 0; i < 4; i++)
    {
      CsSagittal *layer = result->layers[i] != NULL ? sagittal_copy (result->layers[i]) : NULL;
      /* Off the engine's grid the mean reconstruction is the image itself. */
      for (gsize p = 0; i == 3 && layer != NULL && p < (gsize) layer->width * layer->height
                        && layer->width == image->width && layer->height == image->height; p++)
        if (isnan (layer->data[p]))
          layer->data[p] = image->data[p];
      cs_slice_view_set_layer (self->slice_view, result_layers[i], layer);
    }

  /* The curve on display rows: each grid row where the grid's centre column lies. */
  g_autofree double *rows = g_new (double, det->size);
  g_autofree double *values = g_new (double, det->size);
  for (int v = 0; v < det->size; v++)
    {
      double col;
      cs_slice2d_grid_to_px (det->slice, det->size / 2.0, v, &col, &rows[v]);
      values[v] = det->curve[v];
    }
  cs_curve_view_set_curve (self->curve_view, rows, values, det->size);

  CsCurveSegment segments[CS_PIPELINE_N_SEGMENTS];
  CsDetectionSegment spans[CS_PIPELINE_N_SEGMENTS];
  gboolean have_segments = cs_window_effective_segments (self, det, spans);
  for (int i = 0; i < CS_PIPELINE_N_SEGMENTS; i++)
    segments[i] = (CsCurveSegment) { spans[i].name, have_segments && spans[i].present,
                                     spans[i].row_start, spans[i].row_end, spans[i].score };
  cs_curve_view_set_segments (self->curve_view, segments, CS_PIPELINE_N_SEGMENTS);
}

/* Shows sagittal slice SLICE of the loaded case with its labels and, on the analysed
 * slice, the detection. KEEP_VIEW keeps window/level, zoom and pan. */
static void
cs_window_show_slice (CsWindow   *self,
                      int         slice,
                      CsSagittal *image,
                      gboolean    keep_view)
{
  const CsLoadedCase *loaded = self->loaded;

  if (image == NULL)
    image = cs_volume_extract_sagittal (loaded->volume, slice);
  if (image == NULL)
    return;
  self->slice = slice;
  cs_slice_view_set_image (self->slice_view, image, loaded->n_slices, keep_view);
  if (loaded->seg != NULL)
    cs_slice_view_set_layer (self->slice_view, CS_OVERLAY_CORD,
                             cs_volume_extract_sagittal (loaded->seg, slice));
  if (loaded->lesion != NULL)
    cs_slice_view_set_layer (self->slice_view, CS_OVERLAY_LESION,
                             cs_volume_extract_sagittal (loaded->lesion, slice));
  if (self->annotation != NULL)
    cs_window_annotation_show_discs (self, FALSE);
  else if (loaded->discs != NULL)
    {
      CsSegment segments[CS_N_SEGMENTS];
      g_autoptr(GError) error = NULL;
      const CsCase *c = cs_window_case (self, loaded->index);
      if (cs_segments_compute (loaded->discs, cs_slice_view_get_sagittal (self->slice_view),
                               c != NULL ? c->discs_path : loaded->name, segments, &error))
        cs_slice_view_set_discs (self->slice_view, segments);
      else
        g_debug ("No disc markers: %s", error->message);
    }
  cs_window_show_detection_layers (self);
}

void
cs_window_step_slice (CsWindow *self,
                      int       delta)
{
  g_return_if_fail (CS_IS_WINDOW (self));
  if (self->loaded == NULL)
    return;
  int slice = CLAMP (self->slice + delta, 0, self->loaded->n_slices - 1);
  if (slice != self->slice)
    cs_window_show_slice (self, slice, NULL, TRUE);
}

static void
on_step_slice (CsSliceView *view,
               int          delta,
               CsWindow    *self)
{
  cs_window_step_slice (self, delta);
}

static void
set_style (GtkWidget  *widget,
           const char *style)
{
  static const char *const styles[] = { "error", "success", "warning", "dim-label" };
  for (guint i = 0; i < G_N_ELEMENTS (styles); i++)
    gtk_widget_remove_css_class (widget, styles[i]);
  if (style != NULL)
    gtk_widget_add_css_class (widget, style);
}

void
cs_window_show_detection (CsWindow *self)
{
  cs_window_show_detection_layers (self);
  cs_window_update_panel (self);
}

static void
cs_window_update_panel (CsWindow *self)
{
  const CsCaseResult *result = self->loaded != NULL
                                 ? cs_window_result (self, self->loaded->image_path, FALSE)
                                 : NULL;
  const CsDetection *det = result != NULL ? result->detection : NULL;
  CsCaseState state = cs_window_result_state (self, result);
  double threshold = det != NULL ? cs_window_get_threshold (self, det->detector) : NAN;

  gtk_label_set_label (self->verdict_label, case_state_text (state));
  set_style (GTK_WIDGET (self->verdict_label),
             state == CS_CASE_SUSPICIOUS || state == CS_CASE_FAILED ? "error"
             : state == CS_CASE_NORMAL ? "success" : "dim-label");
  cs_curve_view_set_threshold (self->curve_view, threshold);
  cs_window_annotation_set_detection (self, det, threshold);

  if (det != NULL)
    {
      g_autofree char *score =
        g_strdup_printf (_("Patient score %.3f (threshold %.2f)"), det->patient_score, threshold);
      gtk_label_set_label (self->score_label, score);
      g_autofree char *backend = g_ascii_strup (det->backend, -1);
      g_autofree char *detector =
        det->detector == CS_DETECTOR_ZSCORE
          ? g_strdup_printf (_("Z-score baseline on slice %d, %.2f s"), det->slice_index + 1,
                             det->timings.total_s)
          : g_strdup_printf (_("U2AD, K = %d, %d passes on %s, slice %d, %.1f s"), det->k,
                             det->n_passes, backend, det->slice_index + 1,
                             det->timings.total_s);
      gtk_label_set_label (self->detector_label, detector);
    }
  else
    {
      gtk_label_set_label (self->score_label,
                           self->loaded != NULL ? _("Press Detect to score this case") : "");
      gtk_label_set_label (self->detector_label, "");
    }

  /* The annotator's discs, when moved, give the spans and scores (from the curve). */
  CsDetectionSegment spans[CS_PIPELINE_N_SEGMENTS];
  gboolean have_segments = det != NULL && cs_window_effective_segments (self, det, spans);
  double scale = isfinite (threshold) ? threshold : 0.0;
  for (int i = 0; det != NULL && i < CS_PIPELINE_N_SEGMENTS; i++)
    if (have_segments && spans[i].present && isfinite (spans[i].score))
      scale = MAX (scale, spans[i].score);
  scale = scale > 0 ? scale * 1.1 : 1.0;

  for (int i = 0; i < CS_PIPELINE_N_SEGMENTS; i++)
    {
      gboolean present = det != NULL && have_segments && spans[i].present
                         && isfinite (spans[i].score);
      double score = present ? spans[i].score : 0.0;
      gtk_level_bar_set_value (self->segment_bars[i], CLAMP (score / scale, 0, 1));
      const char *call = det == NULL ? "" : !present ? _("Not scored")
                         : score >= threshold ? _("Suspicious") : _("Normal");
      gtk_label_set_label (self->segment_calls[i], call);
      set_style (GTK_WIDGET (self->segment_calls[i]),
                 !present ? "dim-label" : score >= threshold ? "error" : "success");
      g_autofree char *tooltip = present ? g_strdup_printf ("%.3f", score) : NULL;
      gtk_widget_set_tooltip_text (GTK_WIDGET (self->segment_bars[i]), tooltip);
    }

  const char *error = result != NULL && result->detection == NULL ? result->error : NULL;
  gtk_widget_set_visible (GTK_WIDGET (self->detection_error_label), error != NULL);
  if (error != NULL)
    {
      g_autofree char *text = g_strdup_printf (_("Detection failed: %s"), error);
      gtk_label_set_label (self->detection_error_label, text);
    }

  gboolean running = result != NULL && result->running;
  GAction *detect = g_action_map_lookup_action (G_ACTION_MAP (self), "detect");
  GAction *cancel = g_action_map_lookup_action (G_ACTION_MAP (self), "cancel-detection");
  if (detect != NULL)
    g_simple_action_set_enabled (G_SIMPLE_ACTION (detect), self->loaded != NULL && !running);
  if (cancel != NULL)
    g_simple_action_set_enabled (G_SIMPLE_ACTION (cancel), self->running_job != 0);
}

static void
cs_window_load_done (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(CsWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  GTask *task = G_TASK (result);
  g_autoptr(CsLoadedCase) loaded = cs_case_loader_load_finish (result, &error);

  /* A newer open replaced this one; its result is no longer wanted. */
  if (g_task_get_cancellable (task) != self->load_cancellable)
    return;
  g_clear_object (&self->load_cancellable);

  if (loaded == NULL)
    {
      const char *what = g_object_get_data (G_OBJECT (task), "cs-what");
      cs_window_show_failure (self, what != NULL ? what : "", error);
      return;
    }

  if (loaded->cases != self->cases)
    {
      /* A new open: a new worklist; results of cases seen before are kept by path. */
      g_clear_pointer (&self->cases, g_ptr_array_unref);
      self->cases = g_ptr_array_ref (loaded->cases);
      cs_window_load_worklist_sidecars (self);
    }

  g_autofree char *folder = g_path_get_dirname (loaded->image_path);
  g_autofree char *folder_name = g_filename_display_basename (folder);
  cs_window_show_titles (self, loaded->name, folder_name);
  /* The labels of the case that goes are written before the next case's open. */
  cs_window_annotation_close (self, NULL);
  g_clear_pointer (&self->loaded, cs_loaded_case_free);
  self->loaded = g_steal_pointer (&loaded);
  cs_window_annotation_open (self);
  cs_window_fill_worklist (self);
  /* Moving along the worklist keeps the reader's view; the view still holds it even when
   * the loading page covered it meanwhile. */
  gboolean keep_view = self->keep_view && cs_slice_view_get_sagittal (self->slice_view) != NULL;
  int slice = self->loaded->sagittal->slice;
  cs_window_show_slice (self, slice, g_steal_pointer (&self->loaded->sagittal), keep_view);
  cs_window_set_state (self, CS_WINDOW_STATE_SHOWING);
  cs_window_update_panel (self);
}

static void
cs_window_start_loading (CsWindow   *self,
                         const char *display_name)
{
  if (self->load_cancellable != NULL)
    g_cancellable_cancel (self->load_cancellable);
  g_clear_object (&self->load_cancellable);
  self->load_cancellable = g_cancellable_new ();

  g_autofree char *loading = g_strdup_printf (_("Opening “%s”…"), display_name);
  adw_status_page_set_title (self->loading_page, loading);
  cs_window_set_state (self, CS_WINDOW_STATE_LOADING);
}

typedef struct
{
  CsWindow *window;
  char     *what;
} LoadContext;

static void
cs_window_load_done_named (GObject      *source,
                           GAsyncResult *result,
                           gpointer      user_data)
{
  LoadContext *ctx = user_data;
  g_object_set_data_full (G_OBJECT (result), "cs-what", g_steal_pointer (&ctx->what), g_free);
  cs_window_load_done (source, result, ctx->window);
  g_free (ctx);
}

void
cs_window_open (CsWindow *self,
                GFile    *file)
{
  g_return_if_fail (CS_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (file));

  g_autofree char *name = g_file_get_basename (file);
  g_autofree char *display_name = g_filename_display_name (name);
  cs_window_start_loading (self, display_name);
  self->keep_view = FALSE;

  LoadContext *ctx = g_new0 (LoadContext, 1);
  ctx->window = g_object_ref (self);
  ctx->what = g_strdup (display_name);
  cs_case_loader_load_async (file, self->load_cancellable, cs_window_load_done_named, ctx);
}

static void
cs_window_open_case (CsWindow *self,
                     guint     index)
{
  const CsCase *c = cs_window_case (self, index);
  if (c == NULL)
    return;
  g_autofree char *display_name = g_filename_display_basename (c->image_path);
  cs_window_start_loading (self, display_name);
  self->keep_view = TRUE;

  LoadContext *ctx = g_new0 (LoadContext, 1);
  ctx->window = g_object_ref (self);
  ctx->what = g_strdup (display_name);
  cs_case_loader_load_case_async (self->cases, index, self->load_cancellable,
                                  cs_window_load_done_named, ctx);
}

void
cs_window_step_case (CsWindow *self,
                     int       delta)
{
  g_return_if_fail (CS_IS_WINDOW (self));
  if (self->cases == NULL || self->cases->len == 0)
    return;
  /* Along the listed rows (the filter and order on screen). */
  GtkListBoxRow *row = gtk_list_box_get_selected_row (self->worklist);
  if (row == NULL && self->loaded != NULL)
    row = cs_window_row_of_case (self, self->loaded->index);
  GtkWidget *at = row != NULL ? GTK_WIDGET (row)
                              : gtk_widget_get_first_child (GTK_WIDGET (self->worklist));
  if (at == NULL)
    return;
  for (int step = 0; row != NULL && step < ABS (delta); step++)
    {
      GtkWidget *next = delta > 0 ? gtk_widget_get_next_sibling (at)
                                  : gtk_widget_get_prev_sibling (at);
      if (next == NULL || !GTK_IS_LIST_BOX_ROW (next))
        break;
      at = next;
    }
  int next = cs_window_case_of_row (GTK_LIST_BOX_ROW (at));
  if (next < 0 || (self->loaded != NULL && (int) self->loaded->index == next
                   && self->load_cancellable == NULL))
    return;
  cs_window_select_row (self, next);
  cs_window_open_case (self, next);
}

static void
on_row_selected (GtkListBox    *box,
                 GtkListBoxRow *row,
                 CsWindow      *self)
{
  if (self->selecting || row == NULL)
    return;
  int index = cs_window_case_of_row (row);
  if (self->loaded != NULL && (int) self->loaded->index == index && self->load_cancellable == NULL)
    return;
  cs_window_open_case (self, index);
}

void
cs_window_open_sample (CsWindow *self)
{
  g_autofree char *samples = cs_application_find_sample ();

  g_return_if_fail (CS_IS_WINDOW (self));

  if (samples == NULL)
    {
      g_autoptr(GError) error =
        g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                             _("The sample case that ships with Cordscope is not installed. "
                               "Open a case of your own instead."));
      cs_window_show_failure (self, _("the bundled sample"), error);
      return;
    }

  g_autoptr(GFile) file = g_file_new_for_path (samples);
  cs_window_open (self, file);
}

/* ---- detection in the engine worker ------------------------------------------------ */

typedef struct
{
  GPtrArray   *cases;
  guint        index;
  CsModelSlot *slot;
  gboolean     zscore_only;
} DetectJob;

/* What a detection job hands back: the detection and its maps on the display slice. */
typedef struct
{
  CsDetection *detection;
  CsSagittal  *layers[4];
} DetectOutcome;

static void
detect_outcome_free (DetectOutcome *outcome)
{
  g_clear_pointer (&outcome->detection, cs_detection_free);
  for (int i = 0; i < 4; i++)
    g_clear_pointer (&outcome->layers[i], cs_sagittal_free);
  g_free (outcome);
}

static void
detect_job_free (DetectJob *job)
{
  g_ptr_array_unref (job->cases);
  g_free (job);
}

static void
detect_progress (const char *stage,
                 double      fraction,
                 gpointer    user_data)
{
  cs_worker_job_report (user_data, stage, fraction, NULL);
}

/* In the worker thread. */
static gpointer
detect_job_run (CsWorkerJob   *job,
                gpointer       data,
                GCancellable  *cancellable,
                GError       **error)
{
  DetectJob *dj = data;
  CsDetectOptions options;
  CsPipelineModel *model = NULL;

  cs_detect_options_init (&options);
  /* The window maps the grid maps onto the slice itself: no full volumes to keep. */
  options.volume_maps = FALSE;
  if (!dj->zscore_only)
    {
      g_mutex_lock (&dj->slot->lock);
      if (!dj->slot->tried)
        {
          dj->slot->tried = TRUE;
          cs_worker_job_report (job, "model", 0.0, NULL);
          g_autofree char *path = cs_pipeline_bundled_model_path ();
          g_autoptr(GError) model_error = NULL;
          if (path != NULL)
            /* One core stays with the main loop, so the window never waits for the engine. */
            dj->slot->model = cs_pipeline_model_load (path, "auto",
                                                      MAX (1, (int) g_get_num_processors () - 1),
                                                      &model_error);
          if (dj->slot->model == NULL)
            dj->slot->reason = g_strdup (model_error != NULL ? model_error->message
                                                              : "no bundled model");
        }
      model = dj->slot->model;
      g_mutex_unlock (&dj->slot->lock);
    }
  options.detector = model != NULL ? CS_DETECTOR_U2AD : CS_DETECTOR_ZSCORE;
  CsDetection *det = cs_pipeline_detect_case (g_ptr_array_index (dj->cases, dj->index), model,
                                              &options, cancellable, detect_progress, job, error);
  if (det == NULL)
    return NULL;

  /* The maps on the display slice are made here, not on the main thread. */
  DetectOutcome *outcome = g_new0 (DetectOutcome, 1);
  const float *maps[4] = { det->anomaly, det->eu, det->au, det->mean };
  for (int i = 0; i < 4; i++)
    if (maps[i] != NULL)
      outcome->layers[i] = grid_map_to_display (det->slice, maps[i], i == 3);
  outcome->detection = det;
  return outcome;
}

static const char *
stage_text (const char *stage)
{
  if (g_strcmp0 (stage, "model") == 0)
    return _("Loading the model…");
  if (g_strcmp0 (stage, "load") == 0)
    return _("Reading the case…");
  if (g_strcmp0 (stage, "slice") == 0)
    return _("Preparing the slice…");
  if (g_strcmp0 (stage, "inference") == 0)
    return _("Running the detector…");
  if (g_strcmp0 (stage, "postprocess") == 0)
    return _("Scoring…");
  if (g_strcmp0 (stage, "maps") == 0)
    return _("Making the maps…");
  return _("Working…");
}

static void
on_worker_progress (CsWorker   *worker,
                    guint       job_id,
                    const char *stage,
                    double      fraction,
                    const char *message,
                    gpointer    user_data)
{
  CsWindow *self = user_data;

  if (job_id != self->running_job)
    {
      /* The next queued job started: its row turns from queued to running. */
      guint previous = self->running_job;
      self->running_job = job_id;
      GHashTableIter iter;
      gpointer key, value;
      g_hash_table_iter_init (&iter, self->results);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          CsCaseResult *r = value;
          if (r->job_id == job_id || r->job_id == previous)
            cs_window_update_row_for_path (self, key);
        }
      cs_window_update_panel (self);
    }
  gtk_revealer_set_reveal_child (self->progress_revealer, TRUE);
  gtk_label_set_label (self->progress_label, stage_text (stage));
  if (fraction >= 0)
    gtk_progress_bar_set_fraction (self->progress_bar, CLAMP (fraction, 0, 1));
  else
    gtk_progress_bar_pulse (self->progress_bar);
}

typedef struct
{
  CsWindow *window;   /* weak: cleared if the window goes first (the worker is freed then) */
  char     *image_path;
} DoneContext;

static void
on_detect_done (CsWorker     *worker,
                guint         job_id,
                gpointer      value,
                const GError *error,
                gpointer      user_data)
{
  DoneContext *ctx = user_data;
  CsWindow *self = ctx->window;
  DetectOutcome *outcome = value;
  g_autoptr(CsDetection) detection = outcome != NULL ? g_steal_pointer (&outcome->detection) : NULL;
  CsCaseResult *result = cs_window_result (self, ctx->image_path, TRUE);

  if (result->job_id == job_id)
    {
      result->running = FALSE;
      result->job_id = 0;
      if (detection != NULL)
        {
          g_clear_pointer (&result->detection, cs_detection_free);
          for (int i = 0; i < 4; i++)
            g_clear_pointer (&result->layers[i], cs_sagittal_free);
          result->detection = g_steal_pointer (&detection);
          for (int i = 0; i < 4; i++)
            result->layers[i] = g_steal_pointer (&outcome->layers[i]);
          g_clear_pointer (&result->error, g_free);
          if (g_strcmp0 (result->detection->backend, "none") != 0)
            {
              g_autofree char *backend = g_ascii_strup (result->detection->backend, -1);
              gtk_label_set_label (self->backend_label, backend);
            }
        }
      else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_free (result->error);
          result->error = g_strdup (error->message);
        }
    }
  if (self->running_job == job_id)
    self->running_job = 0;
  if (cs_worker_get_n_jobs (worker) == 0)
    {
      self->running_job = 0;
      gtk_revealer_set_reveal_child (self->progress_revealer, FALSE);
    }

  cs_window_update_row_for_path (self, ctx->image_path);
  cs_window_worklist_changed (self);
  if (self->loaded != NULL && g_strcmp0 (self->loaded->image_path, ctx->image_path) == 0)
    cs_window_show_detection_layers (self);
  cs_window_update_panel (self);
  if (outcome != NULL)
    detect_outcome_free (outcome);
  g_free (ctx->image_path);
  g_free (ctx);
}

guint
cs_window_detect (CsWindow *self)
{
  g_return_val_if_fail (CS_IS_WINDOW (self), 0);
  if (self->loaded == NULL || self->cases == NULL)
    return 0;

  CsCaseResult *result = cs_window_result (self, self->loaded->image_path, TRUE);
  if (result->running)
    return result->job_id;

  DetectJob *job = g_new0 (DetectJob, 1);
  job->cases = g_ptr_array_ref (self->cases);
  job->index = self->loaded->index;
  job->slot = self->model_slot;
  if (self->settings != NULL)
    {
      g_autofree char *detector = g_settings_get_string (self->settings, "detector");
      job->zscore_only = g_strcmp0 (detector, "zscore") == 0;
    }
  DoneContext *ctx = g_new0 (DoneContext, 1);
  ctx->window = self;
  ctx->image_path = g_strdup (self->loaded->image_path);

  result->running = TRUE;
  g_clear_pointer (&result->error, g_free);
  result->job_id = cs_worker_submit (self->worker, "detect", detect_job_run, job,
                                     (GDestroyNotify) detect_job_free,
                                     (GDestroyNotify) detect_outcome_free, on_detect_done, ctx);
  if (self->running_job == 0)
    self->running_job = result->job_id;
  gtk_progress_bar_set_fraction (self->progress_bar, 0);
  gtk_label_set_label (self->progress_label, stage_text ("load"));
  gtk_revealer_set_reveal_child (self->progress_revealer, TRUE);
  cs_window_update_row (self, self->loaded->index);
  cs_window_update_panel (self);
  return result->job_id;
}

void
cs_window_cancel_detection (CsWindow *self)
{
  g_return_if_fail (CS_IS_WINDOW (self));
  /* Cancels the case on screen's job, else whichever runs. */
  CsCaseResult *result = self->loaded != NULL
                           ? cs_window_result (self, self->loaded->image_path, FALSE) : NULL;
  if (result != NULL && result->running)
    cs_worker_cancel (self->worker, result->job_id);
  else if (self->running_job != 0)
    cs_worker_cancel (self->worker, self->running_job);
}

/* ---- settings ---------------------------------------------------------------------- */

void
cs_window_remember_folder (CsWindow *self,
                           GFile    *file)
{
  if (self->settings == NULL)
    return;

  g_autoptr(GFile) folder = NULL;
  if (g_file_query_file_type (file, G_FILE_QUERY_INFO_NONE, NULL) == G_FILE_TYPE_DIRECTORY)
    folder = g_object_ref (file);
  else
    folder = g_file_get_parent (file);
  g_autofree char *path = folder != NULL ? g_file_get_path (folder) : NULL;
  if (path != NULL)
    g_settings_set_string (self->settings, "last-folder", path);
}

static void
cs_window_overlays_from_settings (CsWindow *self)
{
  if (self->settings == NULL)
    return;
  g_autoptr(GVariant) overlays = g_settings_get_value (self->settings, "overlays");
  GVariantIter iter;
  const char *id;
  gboolean visible;
  double opacity, threshold;

  g_variant_iter_init (&iter, overlays);
  while (g_variant_iter_next (&iter, "{&s(bdd)}", &id, &visible, &opacity, &threshold))
    {
      CsOverlay overlay;
      if (!cs_overlay_from_id (id, &overlay))
        continue;
      cs_slice_view_set_overlay_visible (self->slice_view, overlay, visible);
      cs_slice_view_set_overlay_opacity (self->slice_view, overlay, opacity);
      cs_slice_view_set_overlay_threshold (self->slice_view, overlay, threshold);
    }
}

void
cs_window_overlays_to_settings (CsWindow *self)
{
  if (self->settings == NULL)
    return;
  GVariantBuilder builder;
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{s(bdd)}"));
  for (int i = 0; i < CS_N_OVERLAYS; i++)
    g_variant_builder_add (&builder, "{s(bdd)}", cs_overlay_get_id (i),
                           cs_slice_view_get_overlay_visible (self->slice_view, i),
                           cs_slice_view_get_overlay_opacity (self->slice_view, i),
                           cs_slice_view_get_overlay_threshold (self->slice_view, i));
  g_settings_set_value (self->settings, "overlays", g_variant_builder_end (&builder));
}

static void
on_overlays_changed (CsSliceView *view,
                     CsWindow    *self)
{
  for (int i = 0; i < CS_N_OVERLAYS; i++)
    {
      g_autofree char *name = g_strdup_printf ("overlay-%s", cs_overlay_get_id (i));
      GAction *action = g_action_map_lookup_action (G_ACTION_MAP (self), name);
      if (action != NULL)
        g_simple_action_set_state (G_SIMPLE_ACTION (action),
                                   g_variant_new_boolean (cs_slice_view_get_overlay_visible (view, i)));
      if (self->opacity_scales[i] != NULL)
        gtk_range_set_value (self->opacity_scales[i], cs_slice_view_get_overlay_opacity (view, i));
      if (self->threshold_scales[i] != NULL)
        gtk_range_set_value (self->threshold_scales[i],
                             cs_slice_view_get_overlay_threshold (view, i));
    }
  cs_window_overlays_to_settings (self);
}

static void
on_threshold_setting_changed (GSettings  *settings,
                              const char *key,
                              CsWindow   *self)
{
  for (guint i = 0; self->cases != NULL && i < self->cases->len; i++)
    cs_window_update_row (self, i);
  cs_window_update_panel (self);
}

static gboolean
cs_window_close_request (GtkWindow *window)
{
  CsWindow *self = CS_WINDOW (window);

  cs_window_annotation_close (self, NULL);
  if (self->settings != NULL)
    {
      gboolean maximized = gtk_window_is_maximized (window);
      g_settings_set_boolean (self->settings, "window-maximized", maximized);
      if (!maximized)
        {
          int width, height;
          gtk_window_get_default_size (window, &width, &height);
          g_settings_set_int (self->settings, "window-width", MAX (width, 360));
          g_settings_set_int (self->settings, "window-height", MAX (height, 360));
        }
    }

  return GTK_WINDOW_CLASS (cs_window_parent_class)->close_request (window);
}

/* ---- drag and drop ----------------------------------------------------------------- */

static gboolean
on_drop (GtkDropTarget *target,
         const GValue  *value,
         double         x,
         double         y,
         CsWindow      *self)
{
  GSList *files = g_value_get_boxed (value);
  if (files == NULL)
    return FALSE;
  cs_window_remember_folder (self, files->data);
  cs_window_open (self, files->data);
  return TRUE;
}

/* ---- construction ------------------------------------------------------------------ */

static void
cs_window_build_segment_grid (CsWindow *self)
{
  static const char *const names[CS_PIPELINE_N_SEGMENTS] = {
    "C2-3", "C3-4", "C4-5", "C5-6", "C6-7", "C7-T1",
  };
  for (int i = 0; i < CS_PIPELINE_N_SEGMENTS; i++)
    {
      GtkWidget *name = gtk_label_new (names[i]);
      gtk_label_set_xalign (GTK_LABEL (name), 0);
      gtk_widget_add_css_class (name, "numeric");
      GtkWidget *bar = gtk_level_bar_new ();
      gtk_widget_set_hexpand (bar, TRUE);
      gtk_widget_set_valign (bar, GTK_ALIGN_CENTER);
      /* The bar is a score, not a "fill level": no low/high colouring offsets. */
      gtk_level_bar_remove_offset_value (GTK_LEVEL_BAR (bar), GTK_LEVEL_BAR_OFFSET_LOW);
      gtk_level_bar_remove_offset_value (GTK_LEVEL_BAR (bar), GTK_LEVEL_BAR_OFFSET_HIGH);
      gtk_level_bar_remove_offset_value (GTK_LEVEL_BAR (bar), GTK_LEVEL_BAR_OFFSET_FULL);
      GtkWidget *call = gtk_label_new ("");
      gtk_label_set_xalign (GTK_LABEL (call), 0);
      gtk_label_set_width_chars (GTK_LABEL (call), 9);
      gtk_widget_add_css_class (call, "caption");
      gtk_grid_attach (self->segment_grid, name, 0, i, 1, 1);
      gtk_grid_attach (self->segment_grid, bar, 1, i, 1, 1);
      gtk_grid_attach (self->segment_grid, call, 2, i, 1, 1);
      self->segment_names[i] = GTK_LABEL (name);
      self->segment_bars[i] = GTK_LEVEL_BAR (bar);
      self->segment_calls[i] = GTK_LABEL (call);
    }
}

static void
on_opacity_changed (GtkRange *range,
                    CsWindow *self)
{
  CsOverlay overlay = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (range), "cs-overlay"));
  cs_slice_view_set_overlay_opacity (self->slice_view, overlay, gtk_range_get_value (range));
}

static void
on_threshold_changed (GtkRange *range,
                      CsWindow *self)
{
  CsOverlay overlay = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (range), "cs-overlay"));
  cs_slice_view_set_overlay_threshold (self->slice_view, overlay, gtk_range_get_value (range));
}

static GtkRange *
overlay_scale (CsWindow  *self,
               CsOverlay  overlay,
               double     value,
               GCallback  changed,
               const char *label)
{
  GtkWidget *scale = gtk_scale_new_with_range (GTK_ORIENTATION_HORIZONTAL, 0, 1, 0.05);
  gtk_widget_set_size_request (scale, 72, -1);
  gtk_range_set_value (GTK_RANGE (scale), value);
  gtk_widget_set_tooltip_text (scale, label);
  gtk_accessible_update_property (GTK_ACCESSIBLE (scale), GTK_ACCESSIBLE_PROPERTY_LABEL, label,
                                  -1);
  g_object_set_data (G_OBJECT (scale), "cs-overlay", GINT_TO_POINTER (overlay));
  g_signal_connect (scale, "value-changed", changed, self);
  return GTK_RANGE (scale);
}

static void
cs_window_build_overlay_grid (CsWindow *self)
{
  const char *labels[CS_N_OVERLAYS] = {
    [CS_OVERLAY_ANOMALY] = _("_Anomaly map"),
    [CS_OVERLAY_EU] = _("_EU (model’s doubt)"),
    [CS_OVERLAY_AU] = _("A_U (residual)"),
    [CS_OVERLAY_MEAN] = _("_Mean reconstruction"),
    [CS_OVERLAY_CORD] = _("_Cord outline"),
    [CS_OVERLAY_DISCS] = _("_Disc markers"),
    [CS_OVERLAY_LESION] = _("_Lesion truth"),
  };
  GtkWidget *opacity_title = gtk_label_new (_("Opacity"));
  GtkWidget *threshold_title = gtk_label_new (_("Threshold"));
  gtk_widget_add_css_class (opacity_title, "dim-label");
  gtk_widget_add_css_class (threshold_title, "dim-label");
  gtk_grid_attach (self->overlay_grid, opacity_title, 1, 0, 1, 1);
  gtk_grid_attach (self->overlay_grid, threshold_title, 2, 0, 1, 1);

  for (int i = 0; i < CS_N_OVERLAYS; i++)
    {
      g_autofree char *action = g_strdup_printf ("win.overlay-%s", cs_overlay_get_id (i));
      GtkWidget *check = gtk_check_button_new_with_mnemonic (labels[i]);
      gtk_actionable_set_action_name (GTK_ACTIONABLE (check), action);
      gtk_grid_attach (self->overlay_grid, check, 0, i + 1, 1, 1);
      if (i == CS_OVERLAY_MEAN)
        continue;  /* swapped with the image: no opacity */
      g_autofree char *opacity_label = g_strdup_printf (_("Opacity of %s"),
                                                        cs_overlay_get_id (i));
      self->opacity_scales[i] =
        overlay_scale (self, i, cs_slice_view_get_overlay_opacity (self->slice_view, i),
                       G_CALLBACK (on_opacity_changed), opacity_label);
      gtk_grid_attach (self->overlay_grid, GTK_WIDGET (self->opacity_scales[i]), 1, i + 1, 1, 1);
      if (i == CS_OVERLAY_ANOMALY || i == CS_OVERLAY_EU || i == CS_OVERLAY_AU)
        {
          g_autofree char *threshold_label = g_strdup_printf (_("Threshold of %s"),
                                                              cs_overlay_get_id (i));
          self->threshold_scales[i] =
            overlay_scale (self, i, cs_slice_view_get_overlay_threshold (self->slice_view, i),
                           G_CALLBACK (on_threshold_changed), threshold_label);
          gtk_grid_attach (self->overlay_grid, GTK_WIDGET (self->threshold_scales[i]), 2, i + 1,
                           1, 1);
        }
    }
}

static void
cs_window_constructed (GObject *object)
{
  CsWindow *self = CS_WINDOW (object);
  /* The "application" property is set only after constructed(): ask for the running one. */
  GApplication *app = g_application_get_default ();

  G_OBJECT_CLASS (cs_window_parent_class)->constructed (object);

  if (CS_IS_APPLICATION (app) && cs_application_get_settings (CS_APPLICATION (app)) != NULL)
    self->settings = g_object_ref (cs_application_get_settings (CS_APPLICATION (app)));
  if (self->settings != NULL)
    {
      gtk_window_set_default_size (GTK_WINDOW (self),
                                   g_settings_get_int (self->settings, "window-width"),
                                   g_settings_get_int (self->settings, "window-height"));
      if (g_settings_get_boolean (self->settings, "window-maximized"))
        gtk_window_maximize (GTK_WINDOW (self));
      cs_window_overlays_from_settings (self);
      g_signal_connect_object (self->settings, "changed::threshold-zscore",
                               G_CALLBACK (on_threshold_setting_changed), self, 0);
      g_signal_connect_object (self->settings, "changed::threshold-u2ad",
                               G_CALLBACK (on_threshold_setting_changed), self, 0);
    }
  cs_window_build_overlay_grid (self);
  on_overlays_changed (self->slice_view, self);
  g_signal_connect (self->slice_view, "overlays-changed", G_CALLBACK (on_overlays_changed), self);

  g_autofree char *backend = g_strdup_printf (_("Engine: %s"), cs_application_get_backend_name ());
  gtk_label_set_label (self->backend_label, cs_application_get_backend_name ());
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->backend_label), backend);
  cs_window_update_panel (self);
}

static void
cs_window_dispose (GObject *object)
{
  CsWindow *self = CS_WINDOW (object);

  if (self->load_cancellable != NULL)
    g_cancellable_cancel (self->load_cancellable);
  g_clear_object (&self->load_cancellable);
  /* Joins the running job; no callback reaches this window afterwards. */
  g_clear_pointer (&self->worker, cs_worker_free);
  g_clear_pointer (&self->model_slot, cs_model_slot_free);
  g_clear_handle_id (&self->loading_page_timeout, g_source_remove);
  if (self->annotation != NULL)
    cs_window_annotation_close (self, NULL);
  if (self->file_chooser != NULL)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->file_chooser));
  g_clear_object (&self->file_chooser);
  if (self->curve_view != NULL)
    cs_curve_view_set_slice_view (self->curve_view, NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), CS_TYPE_WINDOW);

  G_OBJECT_CLASS (cs_window_parent_class)->dispose (object);
}

static void
cs_window_finalize (GObject *object)
{
  CsWindow *self = CS_WINDOW (object);

  g_clear_pointer (&self->loaded, cs_loaded_case_free);
  g_clear_pointer (&self->cases, g_ptr_array_unref);
  g_clear_pointer (&self->worklist_sidecars, g_ptr_array_unref);
  g_clear_pointer (&self->results, g_hash_table_unref);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (cs_window_parent_class)->finalize (object);
}

static void
cs_window_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  CsWindow *self = CS_WINDOW (object);

  switch (prop_id)
    {
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cs_window_class_init (CsWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->constructed = cs_window_constructed;
  object_class->dispose = cs_window_dispose;
  object_class->finalize = cs_window_finalize;
  object_class->get_property = cs_window_get_property;
  window_class->close_request = cs_window_close_request;

  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL, CS_TYPE_WINDOW_STATE, CS_WINDOW_STATE_EMPTY,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  g_type_ensure (CS_TYPE_SLICE_VIEW);
  g_type_ensure (CS_TYPE_CURVE_VIEW);
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/cordscope/Cordscope/cs-window.ui");
  gtk_widget_class_bind_template_child (widget_class, CsWindow, window_title);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, backend_label);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, stack);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, empty_page);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, loading_page);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, loading_spinner);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, error_page);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, slice_view);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, curve_view);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, worklist_box);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, worklist);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, worklist_progress);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, worklist_filter);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, worklist_sort);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, progress_revealer);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, progress_label);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, verdict_label);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, score_label);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, detector_label);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, segment_grid);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, detection_error_label);
  gtk_widget_class_bind_template_child (widget_class, CsWindow, overlay_grid);
}

static void
cs_window_init (CsWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->results = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) cs_case_result_free);
  self->model_slot = g_new0 (CsModelSlot, 1);
  g_mutex_init (&self->model_slot->lock);
  self->worker = cs_worker_new (NULL, on_worker_progress, self);
  cs_window_add_actions (self);
  cs_window_build_segment_grid (self);
  cs_window_annotation_init (self);
  cs_window_export_add_actions (self);
  cs_curve_view_set_slice_view (self->curve_view, self->slice_view);
  g_signal_connect (self->slice_view, "step-slice", G_CALLBACK (on_step_slice), self);
  g_signal_connect (self->worklist, "row-selected", G_CALLBACK (on_row_selected), self);
  g_signal_connect_swapped (self->worklist_filter, "notify::selected",
                            G_CALLBACK (on_worklist_order_changed), self);
  g_signal_connect_swapped (self->worklist_sort, "toggled",
                            G_CALLBACK (on_worklist_order_changed), self);

  GtkDropTarget *drop = gtk_drop_target_new (GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
  g_signal_connect (drop, "drop", G_CALLBACK (on_drop), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drop));

  self->state = CS_WINDOW_STATE_EMPTY;
  cs_window_set_state (self, CS_WINDOW_STATE_EMPTY);
}

CsWindow *
cs_window_new (CsApplication *application)
{
  return g_object_new (CS_TYPE_WINDOW, "application", application, NULL);
}

CsWindowState
cs_window_get_state (CsWindow *self)
{
  g_return_val_if_fail (CS_IS_WINDOW (self), CS_WINDOW_STATE_EMPTY);
  return self->state;
}

const char *
cs_window_get_case_name (CsWindow *self)
{
  g_return_val_if_fail (CS_IS_WINDOW (self), NULL);
  return self->loaded != NULL ? self->loaded->name : NULL;
}

const char *
cs_window_get_image_path (CsWindow *self)
{
  g_return_val_if_fail (CS_IS_WINDOW (self), NULL);
  return self->loaded != NULL ? self->loaded->image_path : NULL;
}
