/* test-viewer.c: the viewer driven through its actions under Xvfb: the bundled sample
 * folder opens as a worklist; detection runs in the engine worker and its anomaly overlay
 * is drawn where the truth lesion is; next/previous case keep window/level, zoom and
 * overlays and reuse cached results; slices step; a queued detection cancels; a failed
 * detection says why; every window action has an accelerator listed in the shortcuts
 * window. */
#include "cs-config.h"

#include <adwaita.h>
#include <math.h>
#include <glib/gstdio.h>

#include <nifti1.h>

#include "io/cs-paths.h"
#include "cs-application.h"
#include "cs-window-private.h"
#include "cs-ui-test-util.h"

static CsApplication *app;

static void
wait_for_detection (CsWindow *window)
{
  gint64 deadline = g_get_monotonic_time () + 300 * G_USEC_PER_SEC;
  iterate_for (20);
  while (cs_worker_get_n_jobs (window->worker) > 0 && g_get_monotonic_time () < deadline)
    iterate_for (10);
  g_assert_cmpuint (cs_worker_get_n_jobs (window->worker), ==, 0);
  iterate_for (200);
}

static void
close_all_windows (void)
{
  GList *windows;
  while ((windows = gtk_application_get_windows (GTK_APPLICATION (app))) != NULL)
    gtk_window_destroy (GTK_WINDOW (windows->data));
  iterate_for (50);
}

static void
activate (CsWindow *window, const char *action)
{
  g_assert_true (g_action_group_has_action (G_ACTION_GROUP (window), action));
  g_action_group_activate_action (G_ACTION_GROUP (window), action, NULL);
}

static void
set_overlay (CsWindow *window, CsOverlay overlay, gboolean visible)
{
  g_autofree char *name = g_strdup_printf ("overlay-%s", cs_overlay_get_id (overlay));
  g_action_group_change_action_state (G_ACTION_GROUP (window), name,
                                      g_variant_new_boolean (visible));
  g_assert_cmpint (cs_slice_view_get_overlay_visible (window->slice_view, overlay), ==, visible);
}

/* Hot colours are red-dominant: a grey image pixel has R = G = B. */
static gboolean
is_hot (const Pixels *p, int x, int y)
{
  const guint8 *px = p->bgra + (gsize) y * p->stride + (gsize) x * 4;
  return px[2] - px[0] > 60 && px[2] >= px[1];
}

typedef struct
{
  int hot_in_lesion, n_lesion, hot_in_cord, n_cord;
} HotCounts;

/* Counts hot screen pixels over the truth lesion and over the rest of the cord (both
 * read here from the case's own files, on the slice the view shows). */
static HotCounts
count_hot (CsWindow *window, const Pixels *p)
{
  const CsSagittal *view = cs_slice_view_get_sagittal (window->slice_view);
  g_autoptr(GError) error = NULL;
  HotCounts c = { 0 };
  const CsCase *kase = g_ptr_array_index (window->cases, window->loaded->index);
  g_autoptr(CsVolume) lesion = cs_volume_load (kase->lesion_path, &error);
  g_assert_no_error (error);
  g_autoptr(CsVolume) seg = cs_volume_load (kase->seg_path, &error);
  g_assert_no_error (error);
  g_autoptr(CsSagittal) lesion_s = cs_volume_extract_sagittal (lesion, view->slice);
  g_autoptr(CsSagittal) seg_s = cs_volume_extract_sagittal (seg, view->slice);
  graphene_rect_t r;
  g_assert_true (cs_slice_view_get_image_rect (window->slice_view, &r));

  for (int y = (int) ceil (r.origin.y); y < (int) (r.origin.y + r.size.height); y++)
    for (int x = (int) ceil (r.origin.x); x < (int) (r.origin.x + r.size.width); x++)
      {
        int col = (int) ((x + 0.5 - r.origin.x) / r.size.width * view->width);
        int row = (int) ((y + 0.5 - r.origin.y) / r.size.height * view->height);
        if (col < 0 || row < 0 || col >= view->width || row >= view->height)
          continue;
        gsize i = (gsize) row * view->width + col;
        gboolean hot = is_hot (p, x, y);
        if (lesion_s->data[i] > 0.5f)
          c.n_lesion++, c.hot_in_lesion += hot;
        else if (seg_s->data[i] > 0.5f)
          c.n_cord++, c.hot_in_cord += hot;
      }
  return c;
}

static char *
sample_folder (void)
{
  char *samples = cs_data_find ("samples");
  if (samples == NULL)
    g_test_skip ("the bundled sample folder is not built");
  return samples;
}

static void
test_sample_detect_overlay_on_lesion (void)
{
  g_autofree char *samples = sample_folder ();
  if (samples == NULL)
    return;
  CsWindow *window = open_window (app, samples);
  wait_for_load (window, 300);

  /* The folder is a worklist of its three cases; none has been run. */
  g_assert_nonnull (window->cases);
  g_assert_cmpuint (window->cases->len, ==, 3);
  g_assert_true (gtk_widget_get_visible (window->worklist_box));
  g_assert_cmpstr (cs_window_get_case_name (window), ==, "phantom-0000");
  g_assert_cmpint (cs_window_get_case_state (window, 0), ==, CS_CASE_NOT_RUN);
  g_assert_null (cs_window_get_detection (window));
  g_assert_false (cs_slice_view_has_layer (window->slice_view, CS_OVERLAY_ANOMALY));
  g_assert_true (cs_slice_view_has_layer (window->slice_view, CS_OVERLAY_CORD));
  g_assert_true (cs_slice_view_has_layer (window->slice_view, CS_OVERLAY_DISCS));

  activate (window, "detect");
  /* Running or finished already: never "not run" once asked. */
  g_assert_cmpint (cs_window_get_case_state (window, 0), !=, CS_CASE_NOT_RUN);
  wait_for_detection (window);

  const CsDetection *det = cs_window_get_detection (window);
  g_assert_nonnull (det);
  /* The progress bar goes once nothing runs. */
  g_assert_false (gtk_revealer_get_reveal_child (window->progress_revealer));
  double threshold = cs_window_get_threshold (window, det->detector);
  g_assert_cmpint (cs_window_get_case_state (window, 0), ==,
                   det->patient_score >= threshold ? CS_CASE_SUSPICIOUS : CS_CASE_NORMAL);
  g_assert_cmpint (det->slice_index, ==, cs_slice_view_get_sagittal (window->slice_view)->slice);
  g_assert_true (cs_slice_view_has_layer (window->slice_view, CS_OVERLAY_ANOMALY));
  /* The verdict on the panel says the same as the worklist. */
  g_assert_cmpstr (gtk_label_get_label (window->verdict_label), ==,
                   det->patient_score >= threshold ? "Suspicious" : "Normal");

  /* Only the anomaly map, fully opaque, every positive value drawn. */
  for (int i = 0; i < CS_N_OVERLAYS; i++)
    set_overlay (window, i, i == CS_OVERLAY_ANOMALY);
  cs_slice_view_set_overlay_opacity (window->slice_view, CS_OVERLAY_ANOMALY, 1.0);
  cs_slice_view_set_overlay_threshold (window->slice_view, CS_OVERLAY_ANOMALY, 0.0);
  iterate_for (200);

  g_autoptr(Pixels) on = render_widget (GTK_WIDGET (window->slice_view));
  HotCounts c = count_hot (window, on);
  double in_lesion = (double) c.hot_in_lesion / MAX (c.n_lesion, 1);
  double in_cord = (double) c.hot_in_cord / MAX (c.n_cord, 1);
  g_test_message ("hot pixels: %d of %d over the lesion (%.2f), %d of %d over the rest of the "
                  "cord (%.2f)", c.hot_in_lesion, c.n_lesion, in_lesion, c.hot_in_cord, c.n_cord,
                  in_cord);
  g_assert_cmpint (c.n_lesion, >, 20);
  g_assert_cmpfloat (in_lesion, >, 0.25);
  g_assert_cmpfloat (in_lesion, >, 2 * in_cord);

  /* Space (win.toggle-overlay) hides it: not one hot pixel is left. */
  activate (window, "toggle-overlay");
  g_assert_false (cs_slice_view_get_overlay_visible (window->slice_view, CS_OVERLAY_ANOMALY));
  iterate_for (100);
  g_autoptr(Pixels) off = render_widget (GTK_WIDGET (window->slice_view));
  HotCounts c_off = count_hot (window, off);
  g_assert_cmpint (c_off.hot_in_lesion + c_off.hot_in_cord, ==, 0);
  activate (window, "toggle-overlay");
  g_assert_true (cs_slice_view_get_overlay_visible (window->slice_view, CS_OVERLAY_ANOMALY));

  /* The curve shares the slice's rows: the hovered row is marked on the slice. */
  graphene_rect_t r;
  g_assert_true (cs_slice_view_get_image_rect (window->slice_view, &r));
  cs_curve_view_hover (window->curve_view, r.origin.y + r.size.height / 2);
  double row = cs_slice_view_y_to_row (window->slice_view, r.origin.y + r.size.height / 2);
  g_assert_cmpfloat (fabs (row - cs_slice_view_get_sagittal (window->slice_view)->height / 2.0),
                     <=, 1.0);
  cs_curve_view_hover (window->curve_view, -1);

  close_all_windows ();
}

static void
test_next_case_keeps_view_and_results (void)
{
  g_autofree char *samples = sample_folder ();
  if (samples == NULL)
    return;
  CsWindow *window = open_window (app, samples);
  wait_for_load (window, 300);

  activate (window, "detect");
  wait_for_detection (window);
  const CsDetection *first = cs_window_get_detection (window);
  g_assert_nonnull (first);

  /* A reader's own window/level, zoom and overlays. */
  cs_slice_view_set_window (window->slice_view, 123.0, 456.0);
  cs_slice_view_zoom_at (window->slice_view, 2.0, 300, 300);
  set_overlay (window, CS_OVERLAY_EU, TRUE);
  set_overlay (window, CS_OVERLAY_CORD, FALSE);
  cs_slice_view_set_overlay_opacity (window->slice_view, CS_OVERLAY_ANOMALY, 0.35);

  activate (window, "next-case");
  wait_for_load (window, 300);
  g_assert_cmpstr (cs_window_get_case_name (window), ==, "phantom-0001");
  g_assert_cmpint (cs_window_get_case_state (window, 1), ==, CS_CASE_NOT_RUN);
  double low, high;
  cs_slice_view_get_window (window->slice_view, &low, &high);
  g_assert_cmpfloat (low, ==, 123.0);
  g_assert_cmpfloat (high, ==, 456.0);
  g_assert_cmpfloat (cs_slice_view_get_zoom (window->slice_view), ==, 2.0);
  g_assert_true (cs_slice_view_get_overlay_visible (window->slice_view, CS_OVERLAY_EU));
  g_assert_false (cs_slice_view_get_overlay_visible (window->slice_view, CS_OVERLAY_CORD));
  g_assert_cmpfloat (cs_slice_view_get_overlay_opacity (window->slice_view, CS_OVERLAY_ANOMALY),
                     ==, 0.35);
  /* Not run here: no maps of the previous case linger. */
  g_assert_false (cs_slice_view_has_layer (window->slice_view, CS_OVERLAY_ANOMALY));

  /* Back: the first case's result is the same object, not recomputed. */
  activate (window, "previous-case");
  wait_for_load (window, 300);
  g_assert_cmpstr (cs_window_get_case_name (window), ==, "phantom-0000");
  g_assert_true (cs_window_get_detection (window) == first);
  g_assert_cmpuint (cs_worker_get_n_jobs (window->worker), ==, 0);
  g_assert_true (cs_slice_view_has_layer (window->slice_view, CS_OVERLAY_ANOMALY));

  /* At the top, "previous" stays; the automatic window is the percentile one again. */
  activate (window, "previous-case");
  iterate_for (100);
  g_assert_null (window->load_cancellable);
  activate (window, "auto-window");
  cs_slice_view_get_window (window->slice_view, &low, &high);
  g_assert_cmpfloat (low, !=, 123.0);
  g_assert_cmpfloat (high, >, low);
  activate (window, "zoom-fit");
  g_assert_cmpfloat (cs_slice_view_get_zoom (window->slice_view), ==, 1.0);

  /* The settings keep the overlays for the next session. */
  GSettings *settings = cs_application_get_settings (app);
  g_autoptr(GVariant) saved = g_settings_get_value (settings, "overlays");
  gboolean visible;
  double opacity, threshold;
  g_assert_true (g_variant_lookup (saved, "eu", "(bdd)", &visible, &opacity, &threshold));
  g_assert_true (visible);
  g_assert_true (g_variant_lookup (saved, "anomaly", "(bdd)", &visible, &opacity, &threshold));
  g_assert_cmpfloat (opacity, ==, 0.35);

  set_overlay (window, CS_OVERLAY_EU, FALSE);
  set_overlay (window, CS_OVERLAY_CORD, TRUE);
  close_all_windows ();
}

static void
test_slice_stepping (void)
{
  g_autofree char *samples = sample_folder ();
  if (samples == NULL)
    return;
  CsWindow *window = open_window (app, samples);
  wait_for_load (window, 300);
  activate (window, "detect");
  wait_for_detection (window);

  int analysed = cs_window_get_detection (window)->slice_index;
  double low, high;
  cs_slice_view_get_window (window->slice_view, &low, &high);
  activate (window, "next-slice");
  g_assert_cmpint (cs_slice_view_get_sagittal (window->slice_view)->slice, ==, analysed + 1);
  /* The maps belong to the analysed slice only; the window/level stays. */
  g_assert_false (cs_slice_view_has_layer (window->slice_view, CS_OVERLAY_ANOMALY));
  double low2, high2;
  cs_slice_view_get_window (window->slice_view, &low2, &high2);
  g_assert_cmpfloat (low2, ==, low);
  g_assert_cmpfloat (high2, ==, high);
  /* The wheel asks for slices through the same path. */
  g_signal_emit_by_name (window->slice_view, "step-slice", -1);
  g_assert_cmpint (cs_slice_view_get_sagittal (window->slice_view)->slice, ==, analysed);
  g_assert_true (cs_slice_view_has_layer (window->slice_view, CS_OVERLAY_ANOMALY));
  for (int i = 0; i < 100; i++)
    activate (window, "previous-slice");
  g_assert_cmpint (cs_slice_view_get_sagittal (window->slice_view)->slice, ==, 0);

  close_all_windows ();
}

/* A job that holds the worker until told to stop, so a detection queues behind it. */
static gpointer
blocking_job (CsWorkerJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  volatile gint *release = data;
  while (!g_atomic_int_get (release) && !g_cancellable_is_cancelled (cancellable))
    g_usleep (1000);
  return g_strdup ("done");
}

static void
test_queued_detection_cancels (void)
{
  g_autofree char *samples = sample_folder ();
  if (samples == NULL)
    return;
  CsWindow *window = open_window (app, samples);
  wait_for_load (window, 300);

  static volatile gint release = 0;
  guint blocker = cs_worker_submit (window->worker, "block", blocking_job, (gpointer) &release,
                                    NULL, g_free, NULL, NULL);
  g_assert_cmpuint (blocker, >, 0);
  guint job = cs_window_detect (window);
  g_assert_cmpuint (job, >, 0);
  iterate_for (50);
  g_assert_cmpint (cs_window_get_case_state (window, 0), ==, CS_CASE_QUEUED);
  g_assert_true (gtk_revealer_get_reveal_child (window->progress_revealer));

  activate (window, "cancel-detection");
  iterate_for (100);
  g_assert_cmpint (cs_window_get_case_state (window, 0), ==, CS_CASE_NOT_RUN);
  g_assert_null (cs_window_get_detection (window));
  /* A cancel is not a failure: no error is shown. */
  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (window->detection_error_label)));

  g_atomic_int_set (&release, 1);
  wait_for_detection (window);
  close_all_windows ();
}

static void
test_failed_detection_says_why (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *folder = g_dir_make_tmp ("cordscope-viewer-XXXXXX", &error);
  g_assert_no_error (error);
  const int dim[3] = { 32, 40, 6 };
  const double vox2mm[4][4] = { { 0, 0, 1, 0 }, { -1, 0, 0, 0 }, { 0, 1, 0, 0 }, { 0, 0, 0, 1 } };
  g_autoptr(CsVolume) vol = cs_volume_new (dim, vox2mm);
  for (gsize i = 0; i < cs_volume_n_voxels (vol); i++)
    vol->data[i] = (float) (i % 17);
  g_autofree char *path = g_build_filename (folder, "nocord.nii.gz", NULL);
  g_assert_true (cs_volume_save (vol, path, DT_INT16, &error));
  g_assert_no_error (error);

  CsWindow *window = open_window (app, folder);
  wait_for_load (window, 300);
  activate (window, "detect");
  wait_for_detection (window);
  /* No cord mask: the detector refuses, and the panel says so with the file's name. */
  g_assert_cmpint (cs_window_get_case_state (window, 0), ==, CS_CASE_FAILED);
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (window->detection_error_label)));
  const char *text = gtk_label_get_label (window->detection_error_label);
  g_test_message ("%s", text);
  g_assert_nonnull (strstr (text, "nocord"));
  g_assert_cmpstr (gtk_label_get_label (window->verdict_label), ==, "Failed");

  close_all_windows ();
  g_unlink (path);
  g_rmdir (folder);
}

/* With the bundled model, detection is U2AD: EU, AU and the mean reconstruction come with
 * it, and showing the mean instead of the image changes the slice inside the engine's grid. */
static void
test_u2ad_maps_and_mean_swap (void)
{
  g_autofree char *model = cs_pipeline_bundled_model_path ();
  g_autofree char *samples = sample_folder ();
  if (samples == NULL)
    return;
  if (model == NULL)
    {
      g_test_skip ("the bundled model is not there");
      return;
    }
  GSettings *settings = cs_application_get_settings (app);
  g_settings_set_string (settings, "detector", "auto");
  CsWindow *window = open_window (app, samples);
  wait_for_load (window, 300);
  activate (window, "detect");
  wait_for_detection (window);
  g_settings_set_string (settings, "detector", "zscore");

  const CsDetection *det = cs_window_get_detection (window);
  g_assert_nonnull (det);
  g_assert_cmpint (det->detector, ==, CS_DETECTOR_U2AD);
  g_assert_true (cs_slice_view_has_layer (window->slice_view, CS_OVERLAY_EU));
  g_assert_true (cs_slice_view_has_layer (window->slice_view, CS_OVERLAY_AU));
  g_assert_true (cs_slice_view_has_layer (window->slice_view, CS_OVERLAY_MEAN));
  g_autofree char *backend = g_ascii_strup (det->backend, -1);
  g_assert_cmpstr (gtk_label_get_label (window->backend_label), ==, backend);

  for (int i = 0; i < CS_N_OVERLAYS; i++)
    set_overlay (window, i, FALSE);
  iterate_for (100);
  g_autoptr(Pixels) image = render_widget (GTK_WIDGET (window->slice_view));
  set_overlay (window, CS_OVERLAY_MEAN, TRUE);
  iterate_for (100);
  g_autoptr(Pixels) mean = render_widget (GTK_WIDGET (window->slice_view));
  set_overlay (window, CS_OVERLAY_MEAN, FALSE);

  /* The reconstruction (resampled, clipped, partly predicted) is not the image. */
  graphene_rect_t r;
  g_assert_true (cs_slice_view_get_image_rect (window->slice_view, &r));
  int n_changed = 0;
  for (int y = (int) ceil (r.origin.y); y < (int) (r.origin.y + r.size.height); y++)
    for (int x = (int) ceil (r.origin.x); x < (int) (r.origin.x + r.size.width); x++)
      n_changed += memcmp (image->bgra + (gsize) y * image->stride + 4 * x,
                           mean->bgra + (gsize) y * mean->stride + 4 * x, 3) != 0;
  g_test_message ("%d pixels changed by the mean reconstruction", n_changed);
  g_assert_cmpint (n_changed, >, 50);
  close_all_windows ();
}

/* The slice view alone: Ctrl+wheel zoom keeps the point under the cursor, pan moves the
 * slice by the drag, fit restores it, and the readout names the voxel, millimetres and
 * values under the cursor. */
static void
test_slice_view_zoom_pan_readout (void)
{
  enum { W = 40, H = 60 };
  CsSagittal *s = g_new0 (CsSagittal, 1);
  s->width = W;
  s->height = H;
  s->spacing[0] = 1.0;
  s->spacing[1] = 2.0;
  /* px2vox: (col, row) -> voxel (col, H - 1 - row, 3); px2mm: 1 x 2 mm, offset (5, 7, 9). */
  double px2vox[4][4] = { { 1, 0, 0, 0 }, { 0, -1, 0, H - 1 }, { 0, 0, 0, 3 }, { 0, 0, 0, 1 } };
  double px2mm[4][4] = { { 1, 0, 0, 5 }, { 0, -2, 0, 7 }, { 0, 0, 0, 9 }, { 0, 0, 0, 1 } };
  memcpy (s->px2vox, px2vox, sizeof px2vox);
  memcpy (s->px2mm, px2mm, sizeof px2mm);
  s->slice = 3;
  s->data = g_new (float, W * H);
  for (int i = 0; i < W * H; i++)
    s->data[i] = (float) i;

  GtkWidget *window = gtk_window_new ();
  GtkWidget *view = cs_slice_view_new ();
  gtk_window_set_child (GTK_WINDOW (window), view);
  gtk_window_set_default_size (GTK_WINDOW (window), 500, 500);
  gtk_window_present (GTK_WINDOW (window));
  CsSliceView *sv = CS_SLICE_VIEW (view);
  cs_slice_view_set_sagittal (sv, s, 7);
  iterate_for (300);

  graphene_rect_t fit, zoomed;
  g_assert_true (cs_slice_view_get_image_rect (sv, &fit));
  /* 40 mm wide, 120 mm tall. */
  g_assert_cmpfloat_with_epsilon (fit.size.width / fit.size.height, 40.0 / 120.0, 0.01);
  double x = fit.origin.x + fit.size.width * 0.3, y = fit.origin.y + fit.size.height * 0.6;
  double row_before = cs_slice_view_y_to_row (sv, y);
  cs_slice_view_zoom_at (sv, 2.5, x, y);
  g_assert_cmpfloat (cs_slice_view_get_zoom (sv), ==, 2.5);
  g_assert_true (cs_slice_view_get_image_rect (sv, &zoomed));
  g_assert_cmpfloat_with_epsilon (zoomed.size.width, fit.size.width * 2.5, 1e-3);
  g_assert_cmpfloat_with_epsilon (cs_slice_view_y_to_row (sv, y), row_before, 1e-4);
  g_assert_cmpfloat_with_epsilon ((x - zoomed.origin.x) / zoomed.size.width, 0.3, 1e-5);
  cs_slice_view_pan (sv, 10, -4);
  graphene_rect_t panned;
  g_assert_true (cs_slice_view_get_image_rect (sv, &panned));
  g_assert_cmpfloat_with_epsilon (panned.origin.x - zoomed.origin.x, 10, 1e-4);
  g_assert_cmpfloat_with_epsilon (panned.origin.y - zoomed.origin.y, -4, 1e-4);
  cs_slice_view_zoom_fit (sv);
  g_assert_true (cs_slice_view_get_image_rect (sv, &zoomed));
  g_assert_true (graphene_rect_equal (&zoomed, &fit));

  /* Cursor at pixel (col 12, row 20): voxel (12, 39, 3), mm (17, -33, 9), value 20*40+12. */
  cs_slice_view_set_cursor (sv, 12.5, 20.5);
  g_autofree char *readout = cs_slice_view_dup_readout (sv);
  g_test_message ("%s", readout);
  g_assert_nonnull (strstr (readout, "Voxel 12, 39, 3"));
  g_assert_nonnull (strstr (readout, "17.0, -33.0, 9.0 mm"));
  g_assert_nonnull (strstr (readout, "Intensity 812"));
  g_assert_null (strstr (readout, "Anomaly"));
  cs_slice_view_set_cursor (sv, -1, -1);
  g_assert_null (cs_slice_view_dup_readout (sv));

  /* Right-drag: 200 px right doubles the width about the same level; 100 px down lowers the
   * level by half the width; dragging back restores the window. */
  double low, high;
  cs_slice_view_window_after_drag (100, 300, 200, 0, &low, &high);
  g_assert_cmpfloat_with_epsilon (low, 0, 1e-9);
  g_assert_cmpfloat_with_epsilon (high, 400, 1e-9);
  cs_slice_view_window_after_drag (100, 300, 0, 100, &low, &high);
  g_assert_cmpfloat_with_epsilon (low, 0, 1e-9);
  g_assert_cmpfloat_with_epsilon (high, 200, 1e-9);
  cs_slice_view_window_after_drag (100, 300, -200, 0, &low, &high);
  g_assert_cmpfloat_with_epsilon (high - low, 100, 1e-9);

  gtk_window_destroy (GTK_WINDOW (window));
  iterate_for (50);
}

/* Dropping a folder on the window opens it, as the file chooser would. */
static void
test_drop_folder_opens_it (void)
{
  g_autofree char *samples = sample_folder ();
  if (samples == NULL)
    return;
  CsWindow *window = cs_window_new (app);
  gtk_window_present (GTK_WINDOW (window));
  iterate_for (100);

  GtkDropTarget *drop = NULL;
  g_autoptr(GListModel) controllers = gtk_widget_observe_controllers (GTK_WIDGET (window));
  for (guint i = 0; i < g_list_model_get_n_items (controllers); i++)
    {
      g_autoptr(GObject) controller = g_list_model_get_item (controllers, i);
      if (GTK_IS_DROP_TARGET (controller))
        drop = GTK_DROP_TARGET (controller);
    }
  g_assert_nonnull (drop);

  g_autoptr(GFile) folder = g_file_new_for_path (samples);
  GSList *files = g_slist_append (NULL, folder);
  GValue value = G_VALUE_INIT;
  g_value_init (&value, GDK_TYPE_FILE_LIST);
  g_value_set_boxed (&value, files);
  gboolean accepted = FALSE;
  g_signal_emit_by_name (drop, "drop", &value, 10.0, 10.0, &accepted);
  g_value_unset (&value);
  g_slist_free (files);
  g_assert_true (accepted);
  wait_for_load (window, 300);
  g_assert_cmpuint (window->cases->len, ==, 3);
  g_assert_cmpstr (cs_window_get_case_name (window), ==, "phantom-0000");
  close_all_windows ();
}

/* Every window action has an accelerator and is in the shortcuts window. */
static void
test_actions_have_listed_accelerators (void)
{
  CsWindow *window = cs_window_new (app);
  g_autoptr(GBytes) overlay =
    g_resources_lookup_data ("/io/github/cordscope/Cordscope/gtk/help-overlay.ui", 0, NULL);
  g_assert_nonnull (overlay);
  const char *xml = g_bytes_get_data (overlay, NULL);
  g_auto(GStrv) actions = g_action_group_list_actions (G_ACTION_GROUP (window));
  int n = 0;

  for (int i = 0; actions[i] != NULL; i++)
    {
      if (g_str_equal (actions[i], "show-help-overlay"))
        continue;  /* GtkApplicationWindow's own, bound to app.shortcuts' key */
      if (g_str_equal (actions[i], "save-state"))
        continue;  /* a read-only state (for D-Bus readers), not a command */
      /* An action with a parameter has its keys on targets: the first is listed. */
      const GVariantType *type =
        g_action_group_get_action_parameter_type (G_ACTION_GROUP (window), actions[i]);
      g_autofree char *detailed =
        type != NULL && g_variant_type_equal (type, G_VARIANT_TYPE_INT32)
          ? g_strdup_printf ("win.%s(0)", actions[i]) : g_strdup_printf ("win.%s", actions[i]);
      g_auto(GStrv) accels =
        gtk_application_get_accels_for_action (GTK_APPLICATION (app), detailed);
      if (accels[0] == NULL)
        g_error ("%s has no accelerator", detailed);
      g_autofree char *listed = g_strdup_printf (">%s<", detailed);
      if (strstr (xml, listed) == NULL)
        g_error ("%s is not in the shortcuts window", detailed);
      n++;
    }
  g_assert_cmpint (n, >=, 20);
  gtk_window_destroy (GTK_WINDOW (window));
}

int
main (int argc, char **argv)
{
  app = cs_ui_test_init (&argc, &argv);
  /* Z-score baseline with its default threshold: the test needs no model. */
  g_settings_set_string (cs_application_get_settings (app), "detector", "zscore");

  g_test_add_func ("/ui/viewer/actions-have-listed-accelerators",
                   test_actions_have_listed_accelerators);
  g_test_add_func ("/ui/viewer/slice-view-zoom-pan-readout", test_slice_view_zoom_pan_readout);
  g_test_add_func ("/ui/viewer/sample-detect-overlay-on-lesion",
                   test_sample_detect_overlay_on_lesion);
  g_test_add_func ("/ui/viewer/next-case-keeps-view-and-results",
                   test_next_case_keeps_view_and_results);
  g_test_add_func ("/ui/viewer/slice-stepping", test_slice_stepping);
  g_test_add_func ("/ui/viewer/drop-folder-opens-it", test_drop_folder_opens_it);
  g_test_add_func ("/ui/viewer/queued-detection-cancels", test_queued_detection_cancels);
  g_test_add_func ("/ui/viewer/failed-detection-says-why", test_failed_detection_says_why);
  g_test_add_func ("/ui/viewer/u2ad-maps-and-mean-swap", test_u2ad_maps_and_mean_swap);
  int status = g_test_run ();
  g_clear_object (&app);
  return status;
}
