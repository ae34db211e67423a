/* cs-window-annotation.c: the annotation document of the case on screen (issue 7): its
 * actions ("annotation.*", forwarded as win.* for keys and D-Bus), the save state and
 * recovery offer in the segment panel, and the label of each segment next to the model's
 * call. The document itself (commands, undo, autosave, recovery) is src/io/cs-annotation.c.
 *
 * With CS_ANNOTATION_TRACE=1 in the environment the window prints, on stdout, the lines
 * tests/kill-test.sh checks: "START state" when a case opens, "PENDING n state" after a
 * change, "SAVED n state" when the sidecar holds it, "FAILED n message". */
#include "cs-config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <glib/gi18n.h>

#include "io/cs-centerline.h"
#include "io/cs-slice2d.h"
#include "cs-window-private.h"

static const char *const segment_names[CS_N_SEGMENTS] = {
  "C2-3", "C3-4", "C4-5", "C5-6", "C6-7", "C7-T1",
};

static void show_centerline      (CsWindow *self);
static void add_centerline_point (CsWindow *self,
                                  double    col,
                                  double    row);

static gboolean trace_enabled;
static guint trace_n;

static const char *
label_text (CsSegmentLabel label)
{
  switch (label)
    {
    case CS_SEGMENT_LABEL_NORMAL:
      return _("Normal");
    case CS_SEGMENT_LABEL_HYPERINTENSE:
      return _("Hyperintense");
    case CS_SEGMENT_LABEL_UNCERTAIN:
      return _("Uncertain");
    case CS_SEGMENT_LABEL_UNSET:
    default:
      return _("Unlabelled");
    }
}

char *
cs_window_annotation_describe (CsWindow *self)
{
  static const char codes[] = { '-', 'N', 'H', 'U' };
  if (self->annotation == NULL)
    return g_strdup ("");
  const CsSidecar *s = cs_annotation_get_sidecar (self->annotation);
  GString *text = g_string_new ("labels=");
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    g_string_append_c (text, codes[CLAMP ((int) s->segments[i].label, 0, 3)]);
  g_string_append_printf (text, " review=%c artifact=%d note=%s discs=",
                          s->review == CS_REVIEW_PASS ? 'P'
                          : s->review == CS_REVIEW_FAIL ? 'F' : '-',
                          s->artifact ? 1 : 0, s->note != NULL ? s->note : "");
  g_autoptr(GArray) discs = cs_annotation_dup_discs (self->annotation);
  for (guint i = 0; discs != NULL && i < discs->len; i++)
    {
      const CsDisc *d = &g_array_index (discs, CsDisc, i);
      if (d->source != CS_DISC_SOURCE_MANUAL)
        continue;  /* the sidecar holds the annotator's discs only */
      g_string_append_printf (text, "%s%d@%d/%d/%d", text->str[text->len - 1] == '=' ? "" : ",",
                              d->value, (int) d->voxel[0], (int) d->voxel[1],
                              (int) d->voxel[2]);
    }
  return g_string_free (text, FALSE);
}

static void
trace (CsWindow   *self,
       const char *kind,
       const char *extra)
{
  if (!trace_enabled)
    return;
  g_autofree char *state = extra == NULL ? cs_window_annotation_describe (self) : NULL;
  if (g_str_equal (kind, "START"))
    printf ("START %s\n", state);
  else
    printf ("%s %u %s\n", kind, trace_n, extra != NULL ? extra : state);
  fflush (stdout);
}

/* ---- what the panel shows ---------------------------------------------------------- */

static void
set_action_enabled (CsWindow   *self,
                    const char *name,
                    gboolean    enabled)
{
  GAction *action = g_action_map_lookup_action (G_ACTION_MAP (self), name);
  if (action != NULL)
    g_simple_action_set_enabled (G_SIMPLE_ACTION (action), enabled);
}

static void
update_save_state (CsWindow *self)
{
  CsAnnotation *doc = self->annotation;
  CsSaveState state = doc != NULL ? cs_annotation_get_save_state (doc) : CS_SAVE_STATE_SAVED;
  GtkWidget *label = GTK_WIDGET (self->save_label);

  gtk_widget_remove_css_class (label, "error");
  gtk_widget_remove_css_class (label, "dim-label");
  if (doc == NULL)
    gtk_label_set_label (self->save_label, "");
  else if (state == CS_SAVE_STATE_FAILED)
    {
      const char *reason = cs_annotation_get_last_error (doc);
      g_autofree char *text = g_strdup_printf (_("Save failed: %s"),
                                               reason != NULL ? reason : _("unknown reason"));
      gtk_label_set_label (self->save_label, text);
      gtk_widget_add_css_class (label, "error");
    }
  else
    {
      gtk_label_set_label (self->save_label,
                           state == CS_SAVE_STATE_DIRTY ? _("Saving…") : _("Saved"));
      gtk_widget_add_css_class (label, "dim-label");
    }
  gtk_widget_set_visible (self->save_retry, doc != NULL && state == CS_SAVE_STATE_FAILED);

  GAction *action = g_action_map_lookup_action (G_ACTION_MAP (self), "save-state");
  if (action != NULL)
    g_simple_action_set_state (G_SIMPLE_ACTION (action),
                               g_variant_new_string (doc != NULL
                                                     ? cs_save_state_to_string (state) : "none"));
}

static void
update_recovery (CsWindow *self)
{
  const char *pending = self->annotation != NULL
                          ? cs_annotation_get_pending_recovery (self->annotation) : NULL;
  if (pending != NULL)
    {
      g_autofree char *text =
        g_strdup_printf (_("Unsaved labels of this case were kept in %s. Restore them?"),
                         pending);
      gtk_label_set_label (self->recovery_label, text);
    }
  gtk_revealer_set_reveal_child (self->recovery_revealer, pending != NULL);
}

/* Setting an entry's text relays it out: only when it differs. */
static void
set_text_if_changed (GtkEntry   *entry,
                     const char *text)
{
  if (g_strcmp0 (gtk_editable_get_text (GTK_EDITABLE (entry)), text) != 0)
    gtk_editable_set_text (GTK_EDITABLE (entry), text);
}

static void
update_labels (CsWindow *self)
{
  CsAnnotation *doc = self->annotation;
  const CsSidecar *s = doc != NULL ? cs_annotation_get_sidecar (doc) : NULL;

  for (int i = 0; i < CS_N_SEGMENTS; i++)
    {
      GtkWidget *button = GTK_WIDGET (self->segment_labels[i]);
      CsSegmentLabel label = s != NULL ? s->segments[i].label : CS_SEGMENT_LABEL_UNSET;
      /* Setting a menu button's label rebuilds its child: only when it changes. */
      if (g_strcmp0 (gtk_menu_button_get_label (self->segment_labels[i]), label_text (label)) != 0)
        gtk_menu_button_set_label (self->segment_labels[i], label_text (label));
      gtk_widget_set_sensitive (button, doc != NULL);
      gtk_widget_remove_css_class (button, "error");
      gtk_widget_remove_css_class (button, "success");
      gtk_widget_remove_css_class (button, "warning");
      gtk_widget_remove_css_class (button, "dim-label");
      gtk_widget_add_css_class (button, label == CS_SEGMENT_LABEL_HYPERINTENSE ? "error"
                                        : label == CS_SEGMENT_LABEL_NORMAL ? "success"
                                        : label == CS_SEGMENT_LABEL_UNCERTAIN ? "warning"
                                        : "dim-label");
      g_autofree char *tooltip = NULL;
      if (s != NULL && s->segments[i].label != CS_SEGMENT_LABEL_UNSET)
        tooltip = g_strdup_printf (_("%s by %s, %s"), label_text (label),
                                   s->segments[i].annotator != NULL
                                     ? s->segments[i].annotator : "?",
                                   s->segments[i].time != NULL ? s->segments[i].time : "?");
      gtk_widget_set_tooltip_text (button, tooltip);

      /* The selected segment (keys 1-6) is what N/H/U/Delete label. */
      GtkWidget *name = GTK_WIDGET (self->segment_names[i]);
      if (doc != NULL && i == self->selected_segment)
        {
          gtk_widget_add_css_class (name, "accent");
          gtk_widget_add_css_class (name, "heading");
        }
      else
        {
          gtk_widget_remove_css_class (name, "accent");
          gtk_widget_remove_css_class (name, "heading");
        }
    }

  /* The case's flags and note as the document has them. */
  self->syncing_flags = TRUE;
  gtk_toggle_button_set_active (self->review_pass, s != NULL && s->review == CS_REVIEW_PASS);
  gtk_toggle_button_set_active (self->review_fail, s != NULL && s->review == CS_REVIEW_FAIL);
  gtk_check_button_set_active (self->artifact_check, s != NULL && s->artifact);
  if (!gtk_widget_has_focus (GTK_WIDGET (self->reason_entry))
      && !gtk_widget_has_focus (gtk_widget_get_first_child (GTK_WIDGET (self->reason_entry))))
    set_text_if_changed (self->reason_entry,
                         s != NULL && s->flag_reason != NULL ? s->flag_reason : "");
  if (!self->typing)
    set_text_if_changed (self->note_entry, s != NULL && s->note != NULL ? s->note : "");
  for (GtkWidget *w = GTK_WIDGET (self->review_pass); w != NULL; w = NULL)
    gtk_widget_set_sensitive (gtk_widget_get_parent (w), doc != NULL);
  gtk_widget_set_sensitive (GTK_WIDGET (self->reason_entry), doc != NULL);
  gtk_widget_set_sensitive (GTK_WIDGET (self->note_entry), doc != NULL);
  if (doc != NULL && cs_annotation_get_centerline_width (doc) > 0)
    gtk_spin_button_set_value (self->centerline_width, cs_annotation_get_centerline_width (doc));
  /* The width only matters to the centerline tool, which is for cases without `_seg`. */
  gtk_widget_set_visible (gtk_widget_get_parent (GTK_WIDGET (self->centerline_width)),
                          self->loaded == NULL || self->loaded->seg == NULL);
  self->syncing_flags = FALSE;

  static const char *const doc_actions[] = {
    "label-normal", "label-hyperintense", "label-uncertain", "clear-label", "accept-model",
    "select-segment", "place-discs", "draw-centerline",
  };
  for (guint i = 0; i < G_N_ELEMENTS (doc_actions); i++)
    set_action_enabled (self, doc_actions[i], doc != NULL && !self->typing);
  set_action_enabled (self, "undo", doc != NULL && cs_annotation_can_undo (doc));
  set_action_enabled (self, "redo", doc != NULL && cs_annotation_can_redo (doc));
}

/* ---- discs --------------------------------------------------------------------------- */

static gboolean
discs_edited (CsAnnotation *doc)
{
  const CsSidecar *s = cs_annotation_get_sidecar (doc);
  if (s->discs != NULL && s->discs->len > 0)
    return TRUE;
  for (int value = 1; value <= 25; value++)
    if (cs_annotation_disc_removed (doc, value))
      return TRUE;
  return FALSE;
}

static void
update_next_disc (CsWindow *self)
{
  gboolean placing = cs_slice_view_get_placing_discs (self->slice_view);
  if (self->drawing_centerline)
    return;
  int next = self->annotation != NULL ? cs_annotation_next_disc (self->annotation) : 0;
  g_autofree char *text = NULL;
  if (next >= 3 && next <= 8)
    text = g_strdup_printf (_("Place %s"), segment_names[next - 3]);
  else if (self->annotation != NULL)
    text = g_strdup (_("All six discs placed: drag to move"));
  cs_slice_view_set_placing_discs (self->slice_view, placing, text);
}

void
cs_window_annotation_show_discs (CsWindow *self,
                                 gboolean  refresh)
{
  const CsSagittal *view = cs_slice_view_get_sagittal (self->slice_view);
  g_autoptr(GArray) discs = self->annotation != NULL
                              ? cs_annotation_dup_discs (self->annotation) : NULL;
  g_autoptr(GError) error = NULL;

  /* While drawing the centerline clicks add points: no disc marker to grab. */
  cs_slice_view_set_disc_points (self->slice_view, self->drawing_centerline ? NULL : discs);
  show_centerline (self);
  self->have_disc_segments =
    discs != NULL && view != NULL
    && cs_segments_compute (discs, view, cs_annotation_get_path (self->annotation),
                            self->disc_segments, &error);
  update_next_disc (self);
  if (refresh)
    cs_window_show_detection (self);
}

gboolean
cs_window_effective_segments (CsWindow           *self,
                              const CsDetection  *det,
                              CsDetectionSegment  out[CS_PIPELINE_N_SEGMENTS])
{
  memcpy (out, det->segments, sizeof det->segments);
  if (self->annotation == NULL || !discs_edited (self->annotation))
    return det->have_segments;
  if (!self->have_disc_segments || det->curve == NULL)
    return FALSE;

  /* The detection's curve on display rows, rescored over the annotator's spans. */
  for (int i = 0; i < CS_PIPELINE_N_SEGMENTS; i++)
    {
      const CsSegment *seg = &self->disc_segments[i];
      out[i].present = seg->present;
      out[i].row_start = seg->row_start;
      out[i].row_end = seg->row_end;
      out[i].score = NAN;
      for (int v = 0; seg->present && v < det->size; v++)
        {
          double col, row;
          cs_slice2d_grid_to_px (det->slice, det->size / 2.0, v, &col, &row);
          if (row >= seg->row_start && row < seg->row_end && isfinite (det->curve[v])
              && !(det->curve[v] <= out[i].score))
            out[i].score = det->curve[v];
        }
    }
  return TRUE;
}

static void
on_disc_dropped (CsSliceView *view,
                 int          value,
                 double       col,
                 double       row,
                 CsWindow    *self)
{
  const CsSagittal *s = cs_slice_view_get_sagittal (view);
  if (self->annotation == NULL || s == NULL)
    return;
  if (self->drawing_centerline)
    {
      add_centerline_point (self, col + 0.5, row + 0.5);
      return;
    }
  if (value < 0)
    value = cs_annotation_next_disc (self->annotation);
  if (value <= 0)
    return;  /* all six placed: drag one to move it */
  double voxel[3];
  for (int r = 0; r < 3; r++)
    voxel[r] = s->px2vox[r][0] * col + s->px2vox[r][1] * row + s->px2vox[r][3];
  cs_annotation_place_disc (self->annotation, value, voxel);
}

/* ---- the centerline tool (cases without `_seg`) -------------------------------------- */

/* The document's centerline on the slice on screen as display points, superior first. */
static GArray *
centerline_display_points (CsWindow *self)
{
  const CsSagittal *view = cs_slice_view_get_sagittal (self->slice_view);
  GArray *points = g_array_new (FALSE, FALSE, sizeof (CsDisplayPoint));
  const CsSidecar *s = self->annotation != NULL ? cs_annotation_get_sidecar (self->annotation)
                                                 : NULL;
  for (guint i = 0; view != NULL && s != NULL && s->centerline != NULL && i < s->centerline->len;
       i++)
    {
      CsDisplayPoint p;
      cs_sagittal_voxel_to_display (view, g_array_index (s->centerline, CsCenterlinePoint,
                                                         i).voxel, &p.col, &p.row);
      g_array_append_val (points, p);
    }
  return points;
}

/* The cord ROI the centerline gives, as the cord layer, when the case has no `_seg`. */
static void
show_centerline (CsWindow *self)
{
  const CsSagittal *view = cs_slice_view_get_sagittal (self->slice_view);
  if (view == NULL || self->loaded == NULL || self->loaded->seg != NULL)
    return;
  g_autoptr(GArray) points = centerline_display_points (self);
  double width = cs_annotation_get_centerline_width (self->annotation);
  g_autoptr(GError) error = NULL;
  float *mask = points->len >= 2 && width > 0
                  ? cs_centerline_mask_sagittal (view, (CsDisplayPoint *) (void *) points->data,
                                                 points->len, width, TRUE, &error)
                  : NULL;
  if (mask == NULL)
    {
      cs_slice_view_set_layer (self->slice_view, CS_OVERLAY_CORD, NULL);
      return;
    }
  CsSagittal *layer = g_new0 (CsSagittal, 1);
  *layer = *view;
  layer->data = mask;
  cs_slice_view_set_layer (self->slice_view, CS_OVERLAY_CORD, layer);
}

/* Writes POINTS (display, any order) and the width as the document's centerline. */
static void
set_centerline (CsWindow *self,
                GArray   *points)
{
  const CsSagittal *view = cs_slice_view_get_sagittal (self->slice_view);
  if (self->annotation == NULL || view == NULL)
    return;
  g_autoptr(GArray) voxels = g_array_new (FALSE, FALSE, sizeof (CsCenterlinePoint));
  for (guint i = 0; i < points->len; i++)
    {
      const CsDisplayPoint *p = &g_array_index (points, CsDisplayPoint, i);
      CsCenterlinePoint v;
      for (int r = 0; r < 3; r++)
        v.voxel[r] = view->px2vox[r][0] * p->col + view->px2vox[r][1] * p->row
                     + view->px2vox[r][3];
      g_array_append_val (voxels, v);
    }
  double width = gtk_spin_button_get_value (self->centerline_width);
  cs_annotation_set_centerline (self->annotation, (CsCenterlinePoint *) (void *) voxels->data,
                                voxels->len, voxels->len > 0 ? width : 0);
}

static int
compare_rows (gconstpointer a,
              gconstpointer b)
{
  double x = ((const CsDisplayPoint *) a)->row, y = ((const CsDisplayPoint *) b)->row;
  return x < y ? -1 : x > y;
}

/* A click while drawing: one more point, kept in order from superior to inferior. */
static void
add_centerline_point (CsWindow *self,
                      double    col,
                      double    row)
{
  g_autoptr(GArray) points = centerline_display_points (self);
  CsDisplayPoint p = { col, row };
  g_array_append_val (points, p);
  g_array_sort (points, compare_rows);
  set_centerline (self, points);
}

static void
on_centerline_width (GtkSpinButton *spin,
                     CsWindow      *self)
{
  if (self->syncing_flags || self->annotation == NULL)
    return;
  g_autoptr(GArray) points = centerline_display_points (self);
  if (points->len > 0)
    set_centerline (self, points);
}

/* ---- the document's signals -------------------------------------------------------- */

static void
on_changed (CsAnnotation *doc,
            guint         parts,
            CsWindow     *self)
{
  trace_n++;
  trace (self, "PENDING", NULL);
  update_labels (self);
  if (parts & (CS_ANNOTATION_PART_SEGMENTS | CS_ANNOTATION_PART_FLAGS))
    cs_window_worklist_changed (self);
  if (parts & CS_ANNOTATION_PART_DISCS)
    cs_window_annotation_show_discs (self, TRUE);
  if (parts & CS_ANNOTATION_PART_CENTERLINE)
    show_centerline (self);
}

static void
on_save_state (CsAnnotation *doc,
               GParamSpec   *pspec,
               CsWindow     *self)
{
  CsSaveState state = cs_annotation_get_save_state (doc);
  if (state == CS_SAVE_STATE_SAVED && cs_annotation_get_save_count (doc) > 0)
    trace (self, "SAVED", NULL);
  else if (state == CS_SAVE_STATE_FAILED)
    trace (self, "FAILED", cs_annotation_get_last_error (doc));
  update_save_state (self);
}

static void
on_undo_state (CsAnnotation *doc,
               GParamSpec   *pspec,
               CsWindow     *self)
{
  update_labels (self);
}

static void
on_recovery (CsAnnotation *doc,
             GParamSpec   *pspec,
             CsWindow     *self)
{
  update_recovery (self);
}

/* ---- open and close ---------------------------------------------------------------- */

static char *
annotator_name (CsWindow *self)
{
  g_autofree char *name = self->settings != NULL
                            ? g_settings_get_string (self->settings, "annotator-name") : NULL;
  if (name != NULL && name[0] != '\0')
    return g_steal_pointer (&name);
  const char *real = g_get_real_name ();
  return g_strdup (real != NULL && real[0] != '\0' && !g_str_equal (real, "Unknown")
                     ? real : g_get_user_name ());
}

void
cs_window_annotation_open (CsWindow *self)
{
  g_autoptr(GError) error = NULL;

  cs_window_annotation_close (self, NULL);
  const CsCase *c = self->loaded != NULL && self->cases != NULL
                    && self->loaded->index < self->cases->len
                      ? g_ptr_array_index (self->cases, self->loaded->index) : NULL;
  if (c != NULL)
    self->annotation = cs_annotation_open_case (c, &error);
  if (self->annotation == NULL)
    {
      if (error != NULL)
        {
          g_autofree char *text = g_strdup_printf (_("Labels cannot be opened: %s"),
                                                   error->message);
          gtk_label_set_label (self->save_label, text);
          gtk_widget_add_css_class (GTK_WIDGET (self->save_label), "error");
        }
      update_labels (self);
      update_recovery (self);
      return;
    }

  CsAnnotation *doc = self->annotation;
  g_autofree char *annotator = annotator_name (self);
  cs_annotation_set_annotator (doc, annotator);
  cs_annotation_set_save_in_background (doc, TRUE);
  if (self->loaded->discs != NULL)
    cs_annotation_set_file_discs (doc, self->loaded->discs);
  gtk_widget_insert_action_group (GTK_WIDGET (self), "annotation",
                                  cs_annotation_get_action_group (doc));
  g_signal_connect_object (doc, "changed", G_CALLBACK (on_changed), self, 0);
  g_signal_connect_object (doc, "notify::save-state", G_CALLBACK (on_save_state), self, 0);
  g_signal_connect_object (doc, "notify::last-error", G_CALLBACK (on_save_state), self, 0);
  g_signal_connect_object (doc, "notify::can-undo", G_CALLBACK (on_undo_state), self, 0);
  g_signal_connect_object (doc, "notify::can-redo", G_CALLBACK (on_undo_state), self, 0);
  g_signal_connect_object (doc, "notify::pending-recovery", G_CALLBACK (on_recovery), self, 0);

  cs_window_annotation_show_discs (self, FALSE);
  self->selected_segment = 0;
  g_action_group_change_action_state (G_ACTION_GROUP (self), "select-segment",
                                      g_variant_new_int32 (0));
  trace (self, "START", NULL);
  update_labels (self);
  update_save_state (self);
  update_recovery (self);
}

gboolean
cs_window_annotation_close (CsWindow  *self,
                            GError   **error)
{
  gboolean ok = TRUE;

  if (self->annotation == NULL)
    return TRUE;
  cs_window_worklist_keep_labels (self);
  g_autoptr(GError) local = NULL;
  if (!cs_annotation_flush (self->annotation, &local))
    {
      /* The labels are in the recovery file then; the next open offers them. */
      g_message ("Labels of %s not saved: %s", cs_annotation_get_path (self->annotation),
                 local->message);
      if (error != NULL)
        *error = g_steal_pointer (&local);
      ok = FALSE;
    }
  gtk_widget_insert_action_group (GTK_WIDGET (self), "annotation", NULL);
  g_signal_handlers_disconnect_by_data (self->annotation, self);
  g_clear_object (&self->annotation);
  if (self->save_label != NULL)
    {
      update_labels (self);
      update_save_state (self);
      update_recovery (self);
    }
  return ok;
}

void
cs_window_annotation_set_detection (CsWindow          *self,
                                    const CsDetection *detection,
                                    double             threshold)
{
  CsSegmentLabel calls[CS_N_SEGMENTS];
  double scores[CS_N_SEGMENTS];

  if (self->annotation == NULL)
    return;
  if (detection == NULL || !detection->have_segments)
    {
      cs_annotation_set_model_calls (self->annotation, NULL, NULL);
      return;
    }
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    {
      gboolean present = detection->segments[i].present
                         && isfinite (detection->segments[i].score);
      scores[i] = present ? detection->segments[i].score : NAN;
      calls[i] = !present ? CS_SEGMENT_LABEL_UNSET
                 : scores[i] >= threshold ? CS_SEGMENT_LABEL_HYPERINTENSE
                 : CS_SEGMENT_LABEL_NORMAL;
    }
  cs_annotation_set_model_calls (self->annotation, calls, scores);
}

/* ---- window actions (keys, D-Bus) forwarded to the document ------------------------ */

static void
set_selected_label (CsWindow       *self,
                    CsSegmentLabel  label)
{
  if (self->annotation == NULL)
    return;
  if (label == CS_SEGMENT_LABEL_UNSET)
    cs_annotation_clear_segment_label (self->annotation, self->selected_segment);
  else
    cs_annotation_set_segment_label (self->annotation, self->selected_segment, label);
}

static void
select_segment_change_state (GSimpleAction *action,
                             GVariant      *state,
                             gpointer       user_data)
{
  CsWindow *self = CS_WINDOW (user_data);
  int segment = g_variant_get_int32 (state);
  if (segment < 0 || segment >= CS_N_SEGMENTS)
    return;
  self->selected_segment = segment;
  g_simple_action_set_state (action, state);
  update_labels (self);
}

static void
label_normal_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  set_selected_label (CS_WINDOW (user_data), CS_SEGMENT_LABEL_NORMAL);
}

static void
label_hyperintense_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  set_selected_label (CS_WINDOW (user_data), CS_SEGMENT_LABEL_HYPERINTENSE);
}

static void
label_uncertain_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  set_selected_label (CS_WINDOW (user_data), CS_SEGMENT_LABEL_UNCERTAIN);
}

static void
clear_label_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  CsWindow *self = CS_WINDOW (user_data);
  int hovered = cs_slice_view_get_hovered_disc (self->slice_view);

  /* Placing discs, Delete removes the marker under the pointer. */
  if (self->annotation != NULL && cs_slice_view_get_placing_discs (self->slice_view)
      && hovered > 0)
    cs_annotation_delete_disc (self->annotation, hovered);
  else
    set_selected_label (self, CS_SEGMENT_LABEL_UNSET);
}

static void
draw_centerline_change_state (GSimpleAction *action,
                              GVariant      *state,
                              gpointer       user_data)
{
  CsWindow *self = CS_WINDOW (user_data);
  gboolean drawing = g_variant_get_boolean (state);
  g_simple_action_set_state (action, state);
  if (drawing)
    g_action_group_change_action_state (G_ACTION_GROUP (self), "place-discs",
                                        g_variant_new_boolean (FALSE));
  self->drawing_centerline = drawing;
  cs_slice_view_set_placing_discs (self->slice_view, drawing,
                                   drawing ? _("Click along the cord, top to bottom") : NULL);
  if (drawing)
    g_action_group_change_action_state (G_ACTION_GROUP (self), "overlay-cord",
                                        g_variant_new_boolean (TRUE));
  cs_window_annotation_show_discs (self, FALSE);
}

static void
place_discs_change_state (GSimpleAction *action,
                          GVariant      *state,
                          gpointer       user_data)
{
  CsWindow *self = CS_WINDOW (user_data);
  g_simple_action_set_state (action, state);
  if (g_variant_get_boolean (state) && self->drawing_centerline)
    g_action_group_change_action_state (G_ACTION_GROUP (self), "draw-centerline",
                                        g_variant_new_boolean (FALSE));
  cs_slice_view_set_placing_discs (self->slice_view, g_variant_get_boolean (state), NULL);
  update_next_disc (self);
  /* Markers must be seen to be placed. */
  if (g_variant_get_boolean (state))
    g_action_group_change_action_state (G_ACTION_GROUP (self), "overlay-discs",
                                        g_variant_new_boolean (TRUE));
}

static void
accept_model_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  CsWindow *self = CS_WINDOW (user_data);
  if (self->annotation != NULL)
    cs_annotation_accept_model_calls (self->annotation);
}

static void
undo_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  CsWindow *self = CS_WINDOW (user_data);
  if (self->annotation != NULL)
    cs_annotation_undo (self->annotation);
}

static void
redo_action (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  CsWindow *self = CS_WINDOW (user_data);
  if (self->annotation != NULL)
    cs_annotation_redo (self->annotation);
}

static const GActionEntry annotation_actions[] = {
  { .name = "select-segment", .parameter_type = "i", .state = "0",
    .change_state = select_segment_change_state },
  { .name = "label-normal", .activate = label_normal_action },
  { .name = "label-hyperintense", .activate = label_hyperintense_action },
  { .name = "label-uncertain", .activate = label_uncertain_action },
  { .name = "clear-label", .activate = clear_label_action },
  { .name = "accept-model", .activate = accept_model_action },
  { .name = "undo", .activate = undo_action },
  { .name = "redo", .activate = redo_action },
  { .name = "place-discs", .state = "false", .change_state = place_discs_change_state },
  { .name = "draw-centerline", .state = "false", .change_state = draw_centerline_change_state },
};

/* ---- flags and note ----------------------------------------------------------------- */

static void
commit_flags_review (CsWindow *self,
                     CsReview  review)
{
  if (self->syncing_flags || self->annotation == NULL)
    return;
  const char *reason = gtk_editable_get_text (GTK_EDITABLE (self->reason_entry));
  cs_annotation_set_flags (self->annotation, review,
                           gtk_check_button_get_active (self->artifact_check),
                           reason[0] != '\0' ? reason : NULL);
}

static void
commit_flags (CsWindow *self)
{
  commit_flags_review (self, gtk_toggle_button_get_active (self->review_pass) ? CS_REVIEW_PASS
                             : gtk_toggle_button_get_active (self->review_fail) ? CS_REVIEW_FAIL
                             : CS_REVIEW_UNSET);
}

/* The button that turns on says the review; turning the active one off unsets it. */
static void
on_review_toggled (GtkToggleButton *button,
                   CsWindow        *self)
{
  if (gtk_toggle_button_get_active (button))
    commit_flags_review (self, button == self->review_pass ? CS_REVIEW_PASS : CS_REVIEW_FAIL);
  else if (!gtk_toggle_button_get_active (self->review_pass)
           && !gtk_toggle_button_get_active (self->review_fail))
    commit_flags_review (self, CS_REVIEW_UNSET);
}

static void
commit_note (CsWindow *self)
{
  if (self->syncing_flags || self->annotation == NULL)
    return;
  const char *note = gtk_editable_get_text (GTK_EDITABLE (self->note_entry));
  cs_annotation_set_note (self->annotation, note[0] != '\0' ? note : NULL);
}

/* One-key labels must not fire while a text field takes the keys. */
static void
on_focus_widget (CsWindow   *self,
                 GParamSpec *pspec,
                 gpointer    user_data)
{
  GtkWidget *focus = gtk_root_get_focus (GTK_ROOT (self));
  gboolean typing = focus != NULL && GTK_IS_EDITABLE (focus);
  if (typing == self->typing)
    return;
  if (!typing)
    {
      /* Leaving a field commits it (each commit is one undo step). */
      commit_flags (self);
      commit_note (self);
    }
  self->typing = typing;
  update_labels (self);
}

/* ---- construction ------------------------------------------------------------------ */

static GMenuModel *
segment_label_menu (int segment)
{
  static const struct { const char *label; const char *value; } items[] = {
    { N_("_Normal"), "normal" },
    { N_("_Hyperintense"), "hyperintense" },
    { N_("_Uncertain"), "uncertain" },
    { N_("_Clear"), "unset" },
  };
  GMenu *menu = g_menu_new ();
  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    {
      g_autoptr(GMenuItem) item = g_menu_item_new (_(items[i].label), NULL);
      g_menu_item_set_action_and_target_value (item, "annotation.set-label",
                                               g_variant_new ("(is)", segment, items[i].value));
      g_menu_append_item (menu, item);
    }
  return G_MENU_MODEL (menu);
}

void
cs_window_annotation_init (CsWindow *self)
{
  trace_enabled = g_strcmp0 (g_getenv ("CS_ANNOTATION_TRACE"), "1") == 0;

  g_action_map_add_action_entries (G_ACTION_MAP (self), annotation_actions,
                                   G_N_ELEMENTS (annotation_actions), self);
  /* The save state as the window shows it, for D-Bus readers (the kill test): read only. */
  GSimpleAction *save_state = g_simple_action_new_stateful ("save-state", NULL,
                                                            g_variant_new_string ("none"));
  g_simple_action_set_enabled (save_state, FALSE);
  g_action_map_add_action (G_ACTION_MAP (self), G_ACTION (save_state));
  g_object_unref (save_state);

  /* The label column of the segment grid: one menu per segment, next to the model's call. */
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    {
      GtkWidget *button = gtk_menu_button_new ();
      g_autoptr(GMenuModel) menu = segment_label_menu (i);
      gtk_menu_button_set_menu_model (GTK_MENU_BUTTON (button), menu);
      gtk_widget_add_css_class (button, "flat");
      g_autofree char *name = g_strdup_printf (_("Label of %s"), segment_names[i]);
      gtk_accessible_update_property (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      name, -1);
      gtk_grid_attach (self->segment_grid, button, 3, i, 1, 1);
      self->segment_labels[i] = GTK_MENU_BUTTON (button);
    }

  /* Above the verdict: the save state (with Retry after a failure) and the recovery offer. */
  GtkWidget *panel = gtk_widget_get_parent (GTK_WIDGET (self->verdict_label));
  GtkWidget *save_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *save_label = gtk_label_new ("");
  gtk_label_set_xalign (GTK_LABEL (save_label), 0);
  gtk_label_set_wrap (GTK_LABEL (save_label), TRUE);
  gtk_label_set_wrap_mode (GTK_LABEL (save_label), PANGO_WRAP_WORD_CHAR);
  gtk_widget_set_hexpand (save_label, TRUE);
  gtk_widget_add_css_class (save_label, "caption");
  GtkWidget *retry = gtk_button_new_with_mnemonic (_("_Retry"));
  gtk_actionable_set_action_name (GTK_ACTIONABLE (retry), "annotation.save");
  gtk_widget_set_valign (retry, GTK_ALIGN_CENTER);
  gtk_box_append (GTK_BOX (save_box), save_label);
  gtk_box_append (GTK_BOX (save_box), retry);
  self->save_label = GTK_LABEL (save_label);
  self->save_retry = retry;

  GtkWidget *revealer = gtk_revealer_new ();
  GtkWidget *bar = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_add_css_class (bar, "card");
  gtk_widget_add_css_class (bar, "recovery");
  GtkWidget *recovery_label = gtk_label_new ("");
  gtk_label_set_wrap (GTK_LABEL (recovery_label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (recovery_label), 0);
  gtk_widget_set_margin_start (recovery_label, 6);
  gtk_widget_set_margin_end (recovery_label, 6);
  gtk_widget_set_margin_top (recovery_label, 6);
  GtkWidget *buttons = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_widget_set_halign (buttons, GTK_ALIGN_END);
  gtk_widget_set_margin_end (buttons, 6);
  gtk_widget_set_margin_bottom (buttons, 6);
  GtkWidget *discard = gtk_button_new_with_mnemonic (_("_Discard"));
  gtk_actionable_set_action_name (GTK_ACTIONABLE (discard), "annotation.discard-recovery");
  GtkWidget *restore = gtk_button_new_with_mnemonic (_("Re_store"));
  gtk_actionable_set_action_name (GTK_ACTIONABLE (restore), "annotation.restore-recovery");
  gtk_widget_add_css_class (restore, "suggested-action");
  gtk_box_append (GTK_BOX (buttons), discard);
  gtk_box_append (GTK_BOX (buttons), restore);
  gtk_box_append (GTK_BOX (bar), recovery_label);
  gtk_box_append (GTK_BOX (bar), buttons);
  gtk_revealer_set_child (GTK_REVEALER (revealer), bar);
  self->recovery_revealer = GTK_REVEALER (revealer);
  self->recovery_label = GTK_LABEL (recovery_label);

  gtk_box_prepend (GTK_BOX (panel), save_box);
  gtk_box_prepend (GTK_BOX (panel), revealer);

  /* Under the segments: the case's review flags, their reason and a free-text note. */
  GtkWidget *review_title = gtk_label_new (_("Review"));
  gtk_label_set_xalign (GTK_LABEL (review_title), 0);
  gtk_widget_add_css_class (review_title, "heading");
  gtk_widget_set_margin_top (review_title, 12);
  GtkWidget *flags = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *pass = gtk_toggle_button_new_with_mnemonic (_("_Pass"));
  GtkWidget *fail = gtk_toggle_button_new_with_mnemonic (_("_Fail"));
  /* Not a GtkToggleButton group: that turns one off before the other on (two changes),
   * and could not go back to no review. The document's state keeps them exclusive. */
  GtkWidget *artifact = gtk_check_button_new_with_mnemonic (_("Ar_tifact"));
  gtk_box_append (GTK_BOX (flags), pass);
  gtk_box_append (GTK_BOX (flags), fail);
  gtk_box_append (GTK_BOX (flags), artifact);
  GtkWidget *reason = gtk_entry_new ();
  gtk_entry_set_placeholder_text (GTK_ENTRY (reason), _("Reason for fail or artifact"));
  GtkWidget *note = gtk_entry_new ();
  gtk_entry_set_placeholder_text (GTK_ENTRY (note), _("Note"));
  gtk_accessible_update_property (GTK_ACCESSIBLE (reason), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Reason for fail or artifact"), -1);
  gtk_accessible_update_property (GTK_ACCESSIBLE (note), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Note"), -1);
  self->review_pass = GTK_TOGGLE_BUTTON (pass);
  self->review_fail = GTK_TOGGLE_BUTTON (fail);
  self->artifact_check = GTK_CHECK_BUTTON (artifact);
  self->reason_entry = GTK_ENTRY (reason);
  self->note_entry = GTK_ENTRY (note);
  g_signal_connect (pass, "toggled", G_CALLBACK (on_review_toggled), self);
  g_signal_connect (fail, "toggled", G_CALLBACK (on_review_toggled), self);
  g_signal_connect_swapped (artifact, "toggled", G_CALLBACK (commit_flags), self);
  g_signal_connect_swapped (reason, "activate", G_CALLBACK (commit_flags), self);
  g_signal_connect_swapped (note, "activate", G_CALLBACK (commit_note), self);
  g_signal_connect (self, "notify::focus-widget", G_CALLBACK (on_focus_widget), NULL);

  GtkWidget *after = GTK_WIDGET (self->segment_grid);
  gtk_box_insert_child_after (GTK_BOX (panel), review_title, after);
  gtk_box_insert_child_after (GTK_BOX (panel), flags, review_title);
  gtk_box_insert_child_after (GTK_BOX (panel), reason, flags);
  gtk_box_insert_child_after (GTK_BOX (panel), note, reason);

  /* The centerline tool's width (cases without `_seg`; key C draws). */
  GtkWidget *width_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *width_label = gtk_label_new_with_mnemonic (_("Cord _width (mm)"));
  gtk_label_set_xalign (GTK_LABEL (width_label), 0);
  gtk_widget_set_hexpand (width_label, TRUE);
  GtkWidget *width = gtk_spin_button_new_with_range (2.0, 20.0, 0.5);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (width), 8.0);
  gtk_label_set_mnemonic_widget (GTK_LABEL (width_label), width);
  gtk_widget_set_tooltip_text (width, _("Width of the cord region the centerline tool draws"));
  gtk_box_append (GTK_BOX (width_box), width_label);
  gtk_box_append (GTK_BOX (width_box), width);
  self->centerline_width = GTK_SPIN_BUTTON (width);
  g_signal_connect (width, "value-changed", G_CALLBACK (on_centerline_width), self);
  gtk_box_insert_child_after (GTK_BOX (panel), width_box, note);

  update_labels (self);
  update_save_state (self);
  update_recovery (self);
  g_signal_connect (self->slice_view, "disc-dropped", G_CALLBACK (on_disc_dropped), self);
}
