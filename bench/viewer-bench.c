/* viewer-bench.c: the viewer's responsiveness, measured in the real window (run it under
 * xvfb-run; printed, not a test):
 *  - first paint: cs_window_open() of errsm30-full to the first frame painted with it;
 *  - slice-step redraw: a step plus the slice view's snapshot rendered by the window's
 *    renderer, with the anomaly and EU maps and the cord outline on (median of 200);
 *  - the longest main-loop stall while a detection runs in the engine worker;
 *  - resident memory with 20 cases open, each detected (results kept per case).
 * Usage: viewer-bench [--data DIR] [--cases N] (DIR: ../shared/data by default). */
#include "cs-config.h"

#include <adwaita.h>
#include <math.h>
#include <stdlib.h>
#include <glib/gstdio.h>
#include <sys/resource.h>
#include <time.h>

#include "cs-application.h"
#include "cs-window-private.h"

static CsApplication *app;

static void
iterate_for (guint ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;
  while (g_get_monotonic_time () < end)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (200);
}

static CsWindow *
new_window (void)
{
  CsWindow *window = cs_window_new (app);
  gtk_window_set_default_size (GTK_WINDOW (window), 1400, 880);
  gtk_window_present (GTK_WINDOW (window));
  iterate_for (500);
  return window;
}

static void
wait_loaded (CsWindow *window)
{
  while (cs_window_get_state (window) == CS_WINDOW_STATE_LOADING
         || window->load_cancellable != NULL)
    g_main_context_iteration (NULL, TRUE);
}

static void
wait_detected (CsWindow *window)
{
  while (cs_worker_get_n_jobs (window->worker) > 0)
    g_main_context_iteration (NULL, TRUE);
  iterate_for (50);
}

/* CPU seconds of the whole process (all threads): on a shared, loaded machine this says
 * what the work costs, where wall time says how busy the machine was. */
static double
process_cpu_ms (void)
{
  struct rusage usage;
  getrusage (RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3
         + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
}

static double last_cpu_ms;

/* ---- first paint ---- */

static gint64 painted_at, shown_at;

static void
on_state (CsWindow *window, GParamSpec *pspec, gpointer user_data)
{
  if (shown_at == 0 && cs_window_get_state (window) == CS_WINDOW_STATE_SHOWING)
    shown_at = g_get_monotonic_time ();
}

static void
on_after_paint (GdkFrameClock *clock,
                CsWindow      *window)
{
  if (painted_at == 0 && cs_window_get_state (window) == CS_WINDOW_STATE_SHOWING)
    painted_at = g_get_monotonic_time ();
}

static double
first_paint_ms (CsWindow *window,
                const char *path)
{
  GdkFrameClock *clock = gtk_widget_get_frame_clock (GTK_WIDGET (window));
  gulong handler = g_signal_connect (clock, "after-paint", G_CALLBACK (on_after_paint), window);
  g_autoptr(GFile) file = g_file_new_for_path (path);

  gulong state_handler = g_signal_connect (window, "notify::state", G_CALLBACK (on_state), NULL);
  painted_at = shown_at = 0;
  double cpu_start = process_cpu_ms ();
  gint64 start = g_get_monotonic_time ();
  cs_window_open (window, file);
  while (painted_at == 0)
    g_main_context_iteration (NULL, TRUE);
  last_cpu_ms = process_cpu_ms () - cpu_start;
  g_signal_handler_disconnect (clock, handler);
  g_signal_handler_disconnect (window, state_handler);
  g_print ("  case read and on screen after %.1f ms, painted %.1f ms later\n",
           (shown_at - start) / 1000.0, (painted_at - shown_at) / 1000.0);
  return (painted_at - start) / 1000.0;
}

/* ---- slice-step redraw ---- */

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
render_slice_view (CsWindow *window)
{
  GtkWidget *widget = GTK_WIDGET (window->slice_view);
  int w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  GTK_WIDGET_GET_CLASS (widget)->snapshot (widget, snapshot);
  g_autoptr(GskRenderNode) node = gtk_snapshot_free_to_node (snapshot);
  GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));
  g_autoptr(GdkTexture) texture =
    gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, w, h));
  return gdk_texture_get_width (texture);
}

static void
slice_step_ms (CsWindow *window,
               int       n_steps,
               double   *median_all,
               double   *median_maps)
{
  g_autofree double *all = g_new (double, n_steps);
  g_autofree double *maps = g_new (double, n_steps);
  g_autofree double *steps = g_new (double, n_steps);
  int n_maps = 0;

  for (int i = 0; i < n_steps; i++)
    {
      gint64 start = g_get_monotonic_time ();
      /* Around the analysed slice, so every other frame carries the two maps. */
      cs_window_step_slice (window, i % 2 == 0 ? 1 : -1);
      steps[i] = (g_get_monotonic_time () - start) / 1000.0;
      render_slice_view (window);
      all[i] = (g_get_monotonic_time () - start) / 1000.0;
      if (cs_slice_view_has_layer (window->slice_view, CS_OVERLAY_ANOMALY))
        maps[n_maps++] = all[i];
      g_main_context_iteration (NULL, FALSE);
    }
  qsort (all, n_steps, sizeof (double), compare_doubles);
  qsort (steps, n_steps, sizeof (double), compare_doubles);
  g_print ("  of which the step itself (slices, layers, discs): median %.2f ms\n",
           steps[n_steps / 2]);
  qsort (maps, n_maps, sizeof (double), compare_doubles);
  *median_all = all[n_steps / 2];
  *median_maps = n_maps > 0 ? maps[n_maps / 2] : NAN;
}

/* ---- stall during detection ---- */

static gint64 last_tick, longest_gap;
static double last_tick_cpu, longest_cpu_gap;

/* CPU time of the calling (main) thread, ms: what the main loop itself spent between two
 * ticks, whatever else the machine ran meanwhile. */
static double
main_thread_cpu_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static gboolean
on_tick (gpointer user_data)
{
  gint64 now = g_get_monotonic_time ();
  double cpu = main_thread_cpu_ms ();
  if (last_tick != 0)
    {
      longest_gap = MAX (longest_gap, now - last_tick);
      longest_cpu_gap = MAX (longest_cpu_gap, cpu - last_tick_cpu);
    }
  last_tick = now;
  last_tick_cpu = cpu;
  return G_SOURCE_CONTINUE;
}

static double
detection_stall_ms (CsWindow *window,
                    double   *detect_s)
{
  last_tick = 0;
  longest_gap = 0;
  longest_cpu_gap = 0;
  guint tick = g_timeout_add (2, on_tick, NULL);
  gint64 start = g_get_monotonic_time ();
  cs_window_detect (window);
  wait_detected (window);
  *detect_s = (g_get_monotonic_time () - start) / 1e6;
  iterate_for (100);  /* the frame that shows the result counts too */
  g_source_remove (tick);
  return longest_gap / 1000.0;
}

/* ---- memory ---- */

static long
rss_kib (void)
{
  g_autofree char *status = NULL;
  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return -1;
  const char *line = strstr (status, "VmRSS:");
  return line != NULL ? atol (line + 6) : -1;
}

int
main (int argc, char **argv)
{
  const char *data = g_getenv ("CS_SHARED_DATA");
  int n_cases = 20;
  g_autofree char *data_dir = g_strdup (data != NULL ? data : CS_SOURCE_ROOT "/../shared/data");

  for (int i = 1; i < argc; i++)
    if (g_str_equal (argv[i], "--data") && i + 1 < argc)
      {
        g_free (data_dir);
        data_dir = g_strdup (argv[++i]);
      }
    else if (g_str_equal (argv[i], "--cases") && i + 1 < argc)
      n_cases = atoi (argv[++i]);

  g_autofree char *errsm30 = g_build_filename (data_dir, "real", "errsm30-full", NULL);
  if (!g_file_test (errsm30, G_FILE_TEST_IS_DIR))
    {
      g_print ("SKIP: %s is missing\n", errsm30);
      return 77;
    }
  if (g_getenv ("DISPLAY") == NULL && g_getenv ("WAYLAND_DISPLAY") == NULL)
    {
      g_print ("SKIP: no display (run under xvfb-run)\n");
      return 77;
    }

  app = g_object_new (CS_TYPE_APPLICATION, "application-id", CS_APP_ID,
                      "flags", G_APPLICATION_HANDLES_OPEN | G_APPLICATION_NON_UNIQUE,
                      "resource-base-path", "/io/github/cordscope/Cordscope", NULL);
  if (!g_application_register (G_APPLICATION (app), NULL, NULL))
    return 1;
  g_application_hold (G_APPLICATION (app));

  {
    CsWindow *probe = new_window ();
    GskRenderer *renderer = gtk_native_get_renderer (GTK_NATIVE (probe));
    double load[3];
    getloadavg (load, 3);
    g_print ("renderer %s, %u processors, load average %.1f\n", G_OBJECT_TYPE_NAME (renderer),
             g_get_num_processors (), load[0]);
    gtk_window_destroy (GTK_WINDOW (probe));
  }
  /* 1. First paint, on a fresh window, twice: the first also pays for loading code. */
  CsWindow *window = new_window ();
  double cold = first_paint_ms (window, errsm30);
  iterate_for (200);
  gtk_window_destroy (GTK_WINDOW (window));
  window = new_window ();
  double warm = first_paint_ms (window, errsm30);
  iterate_for (300);
  g_print ("first paint, errsm30-full: %.1f ms wall, %.1f ms CPU (first open in the process "
           "%.1f ms wall)\n", warm, last_cpu_ms, cold);

  /* 2. Detection stall, then the slice steps with two maps on. */
  double detect_s;
  double stall = detection_stall_ms (window, &detect_s);
  const CsDetection *det = cs_window_get_detection (window);
  g_print ("detection (%s on %s): %.2f s; longest main-loop stall %.1f ms wall, of which the "
           "main thread's own work %.1f ms\n",
           det != NULL ? cs_detector_kind_name (det->detector) : "failed",
           det != NULL ? det->backend : "-", detect_s, stall, longest_cpu_gap);

  cs_slice_view_set_overlay_visible (window->slice_view, CS_OVERLAY_ANOMALY, TRUE);
  cs_slice_view_set_overlay_visible (window->slice_view, CS_OVERLAY_EU, TRUE);
  cs_slice_view_set_overlay_visible (window->slice_view, CS_OVERLAY_CORD, TRUE);
  iterate_for (100);
  double median_all, median_maps;
  double cpu_start = process_cpu_ms ();
  slice_step_ms (window, 200, &median_all, &median_maps);
  g_print ("  CPU per step (mean over the 200): %.2f ms\n", (process_cpu_ms () - cpu_start) / 200);
  g_print ("slice-step redraw (step + snapshot + render), 200 steps: median %.2f ms; "
           "median of the frames with the anomaly and EU maps %.2f ms\n", median_all,
           median_maps);
  gtk_window_destroy (GTK_WINDOW (window));
  iterate_for (200);

  /* 3. Memory with N cases open, each detected. */
  g_autoptr(GError) error = NULL;
  g_autofree char *folder = g_dir_make_tmp ("cordscope-viewer-bench-XXXXXX", &error);
  g_autofree char *count = g_strdup_printf ("%d", n_cases);
  const char *cli = g_getenv ("CORDSCOPE_CLI");
  g_autofree char *cli_path = g_strdup (cli != NULL ? cli : CS_BUILD_ROOT "/src/cli/cordscope-cli");
  const char *phantom_argv[] = { cli_path, "phantom", "--out", folder, "--count", count,
                                 "--seed", "7", "--quiet", NULL };
  int status = 0;
  if (!g_spawn_sync (NULL, (char **) phantom_argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL,
                     &status, &error) || !g_spawn_check_wait_status (status, &error))
    {
      g_print ("memory: could not make %d phantoms: %s\n", n_cases, error->message);
      return 1;
    }

  long before = rss_kib ();
  window = new_window ();
  g_autoptr(GFile) file = g_file_new_for_path (folder);
  cs_window_open (window, file);
  wait_loaded (window);
  double worst_stall = 0;
  for (int i = 0; i < n_cases; i++)
    {
      double s;
      worst_stall = MAX (worst_stall, detection_stall_ms (window, &s));
      if (i + 1 < n_cases)
        {
          cs_window_step_case (window, 1);
          wait_loaded (window);
        }
    }
  iterate_for (200);
  long after = rss_kib ();
  guint n_done = 0;
  for (guint i = 0; i < window->cases->len; i++)
    n_done += cs_window_get_case_state (window, i) == CS_CASE_NORMAL
              || cs_window_get_case_state (window, i) == CS_CASE_SUSPICIOUS;
  g_print ("memory: %ld MiB resident with %u cases open (%u detected); %ld MiB before opening; "
           "longest stall over those detections %.1f ms\n", after / 1024, window->cases->len,
           n_done, before / 1024, worst_stall);

  gtk_window_destroy (GTK_WINDOW (window));
  g_autoptr(GDir) dir = g_dir_open (folder, 0, NULL);
  const char *name;
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (folder, name, NULL);
      g_unlink (path);
    }
  g_rmdir (folder);
  g_application_release (G_APPLICATION (app));
  g_clear_object (&app);
  return 0;
}
