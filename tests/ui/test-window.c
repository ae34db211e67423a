/* test-window.c: drives the real application in-process under Xvfb: opens a volume with a
 * bright square at a known anatomical place and checks where the rendered slice shows it;
 * opens corrupt files; checks actions, saved window size, that loading never blocks the main
 * loop and that a newer open wins; starts with no argument and finds the bundled sample. */
#include "cs-config.h"

#include <adwaita.h>
#include <glib/gstdio.h>

#include <nifti1.h>

#include "io/cs-volume.h"
#include "cs-application.h"
#include "cs-window-private.h"
#include "cs-ui-test-util.h"

/* One application for the whole process, as in the real app; each test opens windows. */
static CsApplication *app;

/* The test volume: i runs anterior to posterior (1 mm), j inferior to superior (2 mm),
 * k left to right (1.5 mm), as scanners often store sagittal series (P-S-R). */
enum { NX = 64, NY = 40, NZ = 5 };
/* A 12 x 12 mm bright square, anterior (i 4..15) and superior (j 28..33). */
enum { SQ_I0 = 4, SQ_I1 = 16, SQ_J0 = 28, SQ_J1 = 34 };
/* The one sagittal slice (k) with cord in the case's mask; the middle one is k = 2. */
enum { SEG_SLICE = 1 };

static char *
write_square_case (const char *folder)
{
  const int dim[3] = { NX, NY, NZ };
  const double vox2mm[4][4] = {
    { 0.0, 0.0, 1.5, 10.0 },
    { -1.0, 0.0, 0.0, 20.0 },
    { 0.0, 2.0, 0.0, -30.0 },
    { 0.0, 0.0, 0.0, 1.0 },
  };
  g_autoptr(CsVolume) vol = cs_volume_new (dim, vox2mm);
  g_autoptr(GError) error = NULL;

  for (int k = 0; k < NZ; k++)
    for (int j = 0; j < NY; j++)
      for (int i = 0; i < NX; i++)
        {
          gboolean in_square = i >= SQ_I0 && i < SQ_I1 && j >= SQ_J0 && j < SQ_J1;
          /* A dim textured background, so the percentile window is not degenerate. */
          vol->data[((gsize) k * NY + j) * NX + i] =
            in_square ? 1000.0f : 100.0f + (float) ((i * 7 + j * 3 + k) % 10);
        }

  char *path = g_build_filename (folder, "square.nii.gz", NULL);
  g_assert_true (cs_volume_save (vol, path, DT_INT16, &error));
  g_assert_no_error (error);

  /* A cord mask on slice SEG_SLICE only: the default slice must follow it, not the middle. */
  g_autoptr(CsVolume) seg = cs_volume_new_like (vol);
  for (int j = 5; j < 35; j++)
    for (int i = 30; i < 36; i++)
      seg->data[((gsize) SEG_SLICE * NY + j) * NX + i] = 1.0f;
  g_autofree char *seg_path = g_build_filename (folder, "square_seg.nii.gz", NULL);
  g_assert_true (cs_volume_save (seg, seg_path, DT_UINT8, &error));
  g_assert_no_error (error);
  return path;
}

static CsWindow *
newest_window (void)
{
  GList *windows = gtk_application_get_windows (GTK_APPLICATION (app));
  g_assert_nonnull (windows);
  return CS_WINDOW (windows->data);
}

static void
wait_not_loading (CsWindow *window)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  while (cs_window_get_state (window) == CS_WINDOW_STATE_LOADING
         && g_get_monotonic_time () < deadline)
    iterate_for (5);
  g_assert_cmpint (cs_window_get_state (window), !=, CS_WINDOW_STATE_LOADING);
}

static void
wait_for_drawn (GtkWidget *widget)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while ((!gtk_widget_get_mapped (widget) || gtk_widget_get_width (widget) < 100)
         && g_get_monotonic_time () < deadline)
    iterate_for (5);
  g_assert_true (gtk_widget_get_mapped (widget));
  /* A few frames, so that the allocation is final and the view has been drawn. */
  iterate_for (300);
}

static void
close_all_windows (void)
{
  GList *windows;
  while ((windows = gtk_application_get_windows (GTK_APPLICATION (app))) != NULL)
    gtk_window_destroy (GTK_WINDOW (windows->data));
  iterate_for (50);
}

static int
count_bright (const Pixels *p, double x0, double y0, double x1, double y1, int threshold)
{
  int n = 0;
  for (int y = MAX (0, (int) y0); y < MIN (p->height, (int) y1); y++)
    for (int x = MAX (0, (int) x0); x < MIN (p->width, (int) x1); x++)
      n += grey_at (p, x, y) > threshold;
  return n;
}

static void
test_square_in_display_orientation (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *folder = g_dir_make_tmp ("cordscope-ui-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *path = write_square_case (folder);
  /* Opened as a folder: discovery finds the one case in it. */
  g_autoptr(GFile) file = g_file_new_for_path (folder);

  g_application_open (G_APPLICATION (app), &file, 1, "");
  CsWindow *window = newest_window ();
  wait_not_loading (window);
  if (cs_window_get_state (window) == CS_WINDOW_STATE_FAILED)
    g_error ("opening %s failed: %s", folder, adw_status_page_get_description (window->error_page));
  g_assert_cmpint (cs_window_get_state (window), ==, CS_WINDOW_STATE_SHOWING);
  g_assert_cmpstr (cs_window_get_case_name (window), ==, "square");
  g_assert_cmpstr (adw_window_title_get_title (window->window_title), ==, "square");
  g_assert_true (gtk_widget_is_ancestor (GTK_WIDGET (window->slice_view),
                                        gtk_stack_get_visible_child (window->stack)));
  /* Only the image: the cord outline would count as bright pixels. */
  g_action_group_change_action_state (G_ACTION_GROUP (window), "overlay-cord",
                                      g_variant_new_boolean (FALSE));
  g_assert_false (cs_slice_view_get_overlay_visible (window->slice_view, CS_OVERLAY_CORD));

  GtkWidget *view = GTK_WIDGET (window->slice_view);
  wait_for_drawn (view);
  g_assert_cmpint (cs_slice_view_get_sagittal (window->slice_view)->slice, ==, SEG_SLICE);

  /* Default window: 0.5 and 99.5 percentiles of the slice: the background and the square
   * (72 of 2560 pixels, 2.8%). */
  double low, high;
  cs_slice_view_get_window (window->slice_view, &low, &high);
  g_assert_cmpfloat (low, >=, 100.0);
  g_assert_cmpfloat (low, <=, 101.0);
  g_assert_cmpfloat (high, ==, 1000.0);

  /* The slice keeps its physical proportions: 64 mm wide (A-P), 80 mm tall (S-I). */
  graphene_rect_t r;
  g_assert_true (cs_slice_view_get_image_rect (window->slice_view, &r));
  g_assert_cmpfloat_with_epsilon (r.size.width / r.size.height, 64.0 / 80.0, 0.01);
  g_assert_cmpfloat (r.origin.x, >=, 0);
  g_assert_cmpfloat (r.origin.y, >=, 0);
  g_assert_cmpfloat (r.origin.x + r.size.width, <=, gtk_widget_get_width (view) + 0.5);
  g_assert_cmpfloat (r.origin.y + r.size.height, <=, gtk_widget_get_height (view) + 0.5);

  g_autoptr(Pixels) pixels = render_widget (view);
  g_assert_cmpint (pixels->width, ==, gtk_widget_get_width (view));

  /* Bounding box of the bright pixels inside the slice's rectangle. */
  int bx0 = G_MAXINT, by0 = G_MAXINT, bx1 = -1, by1 = -1, n_bright = 0;
  for (int y = (int) ceil (r.origin.y); y < (int) (r.origin.y + r.size.height); y++)
    for (int x = (int) ceil (r.origin.x); x < (int) (r.origin.x + r.size.width); x++)
      if (grey_at (pixels, x, y) > 128)
        {
          bx0 = MIN (bx0, x), by0 = MIN (by0, y);
          bx1 = MAX (bx1, x), by1 = MAX (by1, y);
          n_bright++;
        }
  g_assert_cmpint (n_bright, >, 0);

  /* Superior up, anterior left: the square's columns are 4..15 of 64 counted from the
   * anterior edge, its rows 6..11 of 40 counted from the superior edge (j 33..28). */
  double texel_w = r.size.width / NX, texel_h = r.size.height / NY;
  double want_x0 = r.origin.x + SQ_I0 * texel_w, want_x1 = r.origin.x + SQ_I1 * texel_w;
  double want_y0 = r.origin.y + (NY - SQ_J1) * texel_h, want_y1 = r.origin.y + (NY - SQ_J0) * texel_h;
  double tol_x = texel_w / 2 + 2, tol_y = texel_h / 2 + 2;
  g_test_message ("rect %.1f,%.1f %.1fx%.1f; square drawn x %d..%d y %d..%d; wanted x %.1f..%.1f "
                  "y %.1f..%.1f", r.origin.x, r.origin.y, r.size.width, r.size.height,
                  bx0, bx1 + 1, by0, by1 + 1, want_x0, want_x1, want_y0, want_y1);
  g_assert_cmpfloat (fabs (bx0 - want_x0), <=, tol_x);
  g_assert_cmpfloat (fabs (bx1 + 1 - want_x1), <=, tol_x);
  g_assert_cmpfloat (fabs (by0 - want_y0), <=, tol_y);
  g_assert_cmpfloat (fabs (by1 + 1 - want_y1), <=, tol_y);
  /* 12 x 12 mm on screen too, though its voxels are 1 x 2 mm. */
  g_assert_cmpfloat_with_epsilon ((double) (bx1 + 1 - bx0) / (by1 + 1 - by0), 1.0, 0.15);

  /* The S label sits above the slice's centre on the black background; the same strip
   * further right holds no text. */
  double cx = r.origin.x + r.size.width / 2, strip = 24;
  int label = count_bright (pixels, cx - strip / 2, 0, cx + strip / 2, r.origin.y, 128);
  int control = count_bright (pixels, r.origin.x + r.size.width * 0.8 - strip / 2, 0,
                              r.origin.x + r.size.width * 0.8 + strip / 2, r.origin.y, 128);
  g_test_message ("bright pixels above the slice: %d at the centre, %d to the right", label,
                  control);
  g_assert_cmpint (r.origin.y, >=, 8);
  g_assert_cmpint (label, >=, 5);
  g_assert_cmpint (control, ==, 0);

  close_all_windows ();
  g_autofree char *seg_path = g_build_filename (folder, "square_seg.nii.gz", NULL);
  g_unlink (seg_path);
  g_unlink (path);
  g_rmdir (folder);
}

/* The text the user reads in a label under WIDGET that contains NEEDLE, or NULL. */
static const char *
find_label_text (GtkWidget *widget, const char *needle)
{
  if (GTK_IS_LABEL (widget) && gtk_widget_get_visible (widget)
      && strstr (gtk_label_get_text (GTK_LABEL (widget)), needle) != NULL)
    return gtk_label_get_text (GTK_LABEL (widget));
  for (GtkWidget *child = gtk_widget_get_first_child (widget); child != NULL;
       child = gtk_widget_get_next_sibling (child))
    {
      const char *text = find_label_text (child, needle);
      if (text != NULL)
        return text;
    }
  return NULL;
}

static void
test_corrupt_file_shows_reason (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *folder = g_dir_make_tmp ("cordscope-ui-XXXXXX", &error);
  g_assert_no_error (error);
  /* '&' and '<' would break a status page that took the name as markup. */
  const char *name = "broken & <bad>.nii.gz";
  g_autofree char *path = g_build_filename (folder, name, NULL);
  char garbage[700];
  memset (garbage, 'x', sizeof garbage);
  g_assert_true (g_file_set_contents (path, garbage, sizeof garbage, &error));
  g_autoptr(GFile) file = g_file_new_for_path (path);

  g_application_open (G_APPLICATION (app), &file, 1, "");
  CsWindow *window = newest_window ();
  wait_not_loading (window);

  g_assert_cmpint (cs_window_get_state (window), ==, CS_WINDOW_STATE_FAILED);
  g_assert_true (gtk_stack_get_visible_child (window->stack) == GTK_WIDGET (window->error_page));
  g_assert_null (cs_window_get_case_name (window));
  iterate_for (100);

  /* What is on screen: the title names the file, the reason (the reader's GError) names it
   * too and says what is wrong with it. */
  g_autofree char *title_needle = g_strdup_printf ("“%s”", name);
  const char *title = find_label_text (GTK_WIDGET (window->error_page), title_needle);
  g_autofree char *reason_needle = g_strdup_printf ("%s: ", path);
  const char *reason = find_label_text (GTK_WIDGET (window->error_page), reason_needle);
  g_test_message ("status page: %s / %s", title, reason);
  g_assert_nonnull (title);
  g_assert_nonnull (reason);
  g_assert_cmpuint (strlen (reason), >, strlen (reason_needle) + 10);

  close_all_windows ();
  g_unlink (path);
  g_rmdir (folder);
}

static void
test_no_argument_opens_bundled_sample (void)
{
  g_autofree char *samples = cs_application_find_sample ();
  if (samples == NULL)
    g_error ("the bundled sample was not found: is data/samples built?");

  /* What `cordscope` with no argument does. */
  g_application_activate (G_APPLICATION (app));
  CsWindow *window = newest_window ();
  wait_not_loading (window);

  if (cs_window_get_state (window) == CS_WINDOW_STATE_FAILED)
    g_error ("opening the sample failed: %s", adw_status_page_get_description (window->error_page));
  g_assert_cmpint (cs_window_get_state (window), ==, CS_WINDOW_STATE_SHOWING);
  g_assert_true (g_str_has_prefix (cs_window_get_image_path (window), samples));
  g_assert_cmpstr (adw_window_title_get_title (window->window_title), ==,
                   cs_window_get_case_name (window));
  const CsSagittal *s = cs_slice_view_get_sagittal (window->slice_view);
  g_assert_nonnull (s);
  g_assert_cmpint (s->width, >, 1);
  g_assert_cmpint (s->height, >, 1);

  close_all_windows ();
}

typedef struct
{
  gint64 last;
  gint64 longest_gap;
} MainLoopWatch;

static gboolean
main_loop_tick (gpointer user_data)
{
  MainLoopWatch *watch = user_data;
  gint64 now = g_get_monotonic_time ();
  if (watch->last != 0)
    watch->longest_gap = MAX (watch->longest_gap, now - watch->last);

  watch->last = now;
  return G_SOURCE_CONTINUE;
}

/* Reading a real scan happens in a worker thread: the main loop keeps running meanwhile. */
static void
test_load_does_not_stall (void)
{
  const char *shared = g_getenv ("CS_SHARED_DATA");
  g_autofree char *path = g_build_filename (shared != NULL ? shared : "", "real", "errsm30-full",
                                            "errsm30_T2w.nii.gz", NULL);
  if (shared == NULL || !g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("CS_SHARED_DATA/real/errsm30-full is absent");
      return;
    }

  /* Not shown: under Xvfb every frame is software GL, whose paint time is not the loader's. */
  CsWindow *window = cs_window_new (app);

  MainLoopWatch watch = { 0, 0 };
  guint tick = g_timeout_add (1, main_loop_tick, &watch);
  g_autoptr(GFile) file = g_file_new_for_path (path);
  gint64 start = g_get_monotonic_time ();
  cs_window_open (window, file);
  wait_not_loading (window);
  gint64 loaded = g_get_monotonic_time ();
  g_source_remove (tick);

  g_assert_cmpint (cs_window_get_state (window), ==, CS_WINDOW_STATE_SHOWING);
  g_test_message ("errsm30-full: loaded in %.0f ms; longest main-loop gap meanwhile %.1f ms",
                  (loaded - start) / 1000.0, watch.longest_gap / 1000.0);
  /* Decompressing and converting 3.9 M voxels takes far longer than this on one core. */
  g_assert_cmpint (watch.longest_gap, <, 50 * 1000);

  gtk_window_destroy (GTK_WINDOW (window));
  iterate_for (20);
}

/* Opening a second case while a slow first one is still loading: the second one wins, even
 * though the first one finishes after it. Then a failed open clears it. */
static void
test_newer_open_wins_failed_open_clears (void)
{
  const char *shared = g_getenv ("CS_SHARED_DATA");
  g_autofree char *slow_path = g_build_filename (shared != NULL ? shared : "", "real",
                                                 "errsm30-full", "errsm30_T2w.nii.gz", NULL);
  if (shared == NULL || !g_file_test (slow_path, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("CS_SHARED_DATA/real/errsm30-full is absent");
      return;
    }
  g_autoptr(GError) error = NULL;
  g_autofree char *folder = g_dir_make_tmp ("cordscope-ui-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *fast_path = write_square_case (folder);

  CsWindow *window = cs_window_new (app);
  g_autoptr(GFile) slow = g_file_new_for_path (slow_path);
  g_autoptr(GFile) fast = g_file_new_for_path (fast_path);
  cs_window_open (window, slow);
  /* Let the worker get into reading errsm30 (about 100 ms or more), then supersede it. */
  g_usleep (20 * 1000);
  cs_window_open (window, fast);
  wait_not_loading (window);
  /* Long enough for the superseded errsm30 read to have come back too. */
  iterate_for (1500);

  g_assert_cmpint (cs_window_get_state (window), ==, CS_WINDOW_STATE_SHOWING);
  g_assert_cmpstr (cs_window_get_case_name (window), ==, "square");
  g_assert_cmpint (cs_slice_view_get_sagittal (window->slice_view)->width, ==, NX);

  /* A failed open replaces the case on screen: no stale slice under the error page. */
  g_autofree char *bad_path = g_build_filename (folder, "empty.nii", NULL);
  g_assert_true (g_file_set_contents (bad_path, "", 0, &error));
  g_autoptr(GFile) bad = g_file_new_for_path (bad_path);
  cs_window_open (window, bad);
  wait_not_loading (window);
  g_assert_cmpint (cs_window_get_state (window), ==, CS_WINDOW_STATE_FAILED);
  g_assert_null (cs_window_get_case_name (window));
  g_assert_null (cs_slice_view_get_sagittal (window->slice_view));
  g_assert_cmpstr (gtk_window_get_title (GTK_WINDOW (window)), ==, "Cordscope");

  gtk_window_destroy (GTK_WINDOW (window));
  iterate_for (20);
  g_autofree char *seg_path = g_build_filename (folder, "square_seg.nii.gz", NULL);
  g_unlink (seg_path);
  g_unlink (bad_path);
  g_unlink (fast_path);
  g_rmdir (folder);
}

static AdwAboutWindow *
find_about_window (void)
{
  GListModel *toplevels = gtk_window_get_toplevels ();  /* owned by GTK */
  for (guint i = 0; i < g_list_model_get_n_items (toplevels); i++)
    {
      g_autoptr(GObject) toplevel = g_list_model_get_item (toplevels, i);
      if (ADW_IS_ABOUT_WINDOW (toplevel) && gtk_widget_get_visible (GTK_WIDGET (toplevel)))
        return ADW_ABOUT_WINDOW (toplevel);
    }
  return NULL;
}

static void
assert_accel (const char *action, const char *accel)
{
  g_auto(GStrv) accels = gtk_application_get_accels_for_action (GTK_APPLICATION (app), action);
  g_assert_nonnull (accels);
  g_assert_true (g_strv_contains ((const char *const *) accels, accel));
}

static void
test_actions_and_empty_window (void)
{
  CsWindow *window = cs_window_new (app);
  gtk_window_present (GTK_WINDOW (window));
  iterate_for (100);

  /* Nothing opened yet: the status page invites to open a case. */
  g_assert_cmpint (cs_window_get_state (window), ==, CS_WINDOW_STATE_EMPTY);
  g_assert_true (gtk_stack_get_visible_child (window->stack) == GTK_WIDGET (window->empty_page));
  g_assert_cmpstr (gtk_label_get_label (window->backend_label), ==, "CPU");

  assert_accel ("app.quit", "<Control>q");
  assert_accel ("app.shortcuts", "<Control>question");
  assert_accel ("win.open-file", "<Control>o");
  assert_accel ("win.open-folder", "<Shift><Control>o");
  g_assert_true (g_action_group_has_action (G_ACTION_GROUP (window), "open-sample"));

  g_action_group_activate_action (G_ACTION_GROUP (app), "shortcuts", NULL);
  iterate_for (100);
  GtkShortcutsWindow *overlay = gtk_application_window_get_help_overlay (GTK_APPLICATION_WINDOW (window));
  g_assert_nonnull (overlay);
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (overlay)));
  gtk_widget_set_visible (GTK_WIDGET (overlay), FALSE);

  g_assert_null (find_about_window ());
  g_action_group_activate_action (G_ACTION_GROUP (app), "about", NULL);
  iterate_for (100);
  AdwAboutWindow *about = find_about_window ();
  g_assert_nonnull (about);
  g_assert_cmpstr (adw_about_window_get_application_name (about), ==, "Cordscope");
  g_assert_cmpstr (adw_about_window_get_version (about), ==, CS_VERSION);
  gtk_window_destroy (GTK_WINDOW (about));

  close_all_windows ();
}

/* Quitting closes every window through close-request, so each saves its size. */
static void
test_quit_saves_window_size (void)
{
  GSettings *settings = cs_application_get_settings (app);
  g_assert_nonnull (settings);  /* the schema compiled into the build tree */

  CsWindow *window = cs_window_new (app);
  gtk_window_set_default_size (GTK_WINDOW (window), 900, 640);
  gtk_window_present (GTK_WINDOW (window));
  iterate_for (100);
  g_assert_cmpint (g_settings_get_int (settings, "window-width"), !=, 900);

  g_action_group_activate_action (G_ACTION_GROUP (app), "quit", NULL);
  iterate_for (100);
  g_assert_null (gtk_application_get_windows (GTK_APPLICATION (app)));
  g_assert_cmpint (g_settings_get_int (settings, "window-width"), ==, 900);
  g_assert_cmpint (g_settings_get_int (settings, "window-height"), ==, 640);
  g_assert_false (g_settings_get_boolean (settings, "window-maximized"));

  /* The next window opens at the saved size. */
  window = cs_window_new (app);
  int width, height;
  gtk_window_get_default_size (GTK_WINDOW (window), &width, &height);
  g_assert_cmpint (width, ==, 900);
  g_assert_cmpint (height, ==, 640);
  gtk_window_destroy (GTK_WINDOW (window));
  g_settings_reset (settings, "window-width");
  g_settings_reset (settings, "window-height");
}

int
main (int argc, char *argv[])
{
  app = cs_ui_test_init (&argc, &argv);

  g_test_add_func ("/ui/window/actions-and-empty-window", test_actions_and_empty_window);
  g_test_add_func ("/ui/window/square-in-display-orientation", test_square_in_display_orientation);
  g_test_add_func ("/ui/window/corrupt-file-shows-reason", test_corrupt_file_shows_reason);
  g_test_add_func ("/ui/window/quit-saves-window-size", test_quit_saves_window_size);
  g_test_add_func ("/ui/window/load-does-not-stall", test_load_does_not_stall);
  g_test_add_func ("/ui/window/newer-open-wins-failed-open-clears",
                   test_newer_open_wins_failed_open_clears);
  g_test_add_func ("/ui/window/no-argument-opens-bundled-sample",
                   test_no_argument_opens_bundled_sample);

  int status = g_test_run ();
  g_clear_object (&app);
  return status;
}
