/* viewer-shot.c: screenshots of the real window, driven through its own actions (no xdotool).
 * Usage: viewer-shot OUT.png PATH [STEP...]; a STEP is an action name ("win.detect"),
 * "wait-detect", "sleep:MS", "slice:+N", "hover:FX,FY" (cursor at that fraction of the
 * slice), "click:FX,FY" (a click there while placing discs or drawing the centerline),
 * "curve:FY" (hover the curve), "zoom:F" or "window:LOW,HIGH". Writes OUT.png. */
#include "cs-config.h"

#include <adwaita.h>
#include <stdlib.h>

#include "cs-application.h"
#include "cs-window-private.h"

static void
iterate_for (guint ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;
  while (g_get_monotonic_time () < end)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
}

static void
wait_detect (CsWindow *window)
{
  gint64 deadline = g_get_monotonic_time () + 600 * G_USEC_PER_SEC;
  iterate_for (50);
  while (cs_worker_get_n_jobs (window->worker) > 0 && g_get_monotonic_time () < deadline)
    iterate_for (20);
  iterate_for (200);
}

static int
run_steps (CsApplication *app,
           char         **argv,
           int            argc)
{
  GList *windows = gtk_application_get_windows (GTK_APPLICATION (app));
  if (windows == NULL)
    return 1;
  CsWindow *window = CS_WINDOW (windows->data);
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while ((cs_window_get_state (window) == CS_WINDOW_STATE_LOADING
          || cs_window_get_state (window) == CS_WINDOW_STATE_EMPTY)
         && g_get_monotonic_time () < deadline)
    iterate_for (20);
  iterate_for (500);

  for (int i = 3; i < argc; i++)
    {
      const char *step = argv[i];
      graphene_rect_t r;
      if (g_str_equal (step, "wait-detect"))
        wait_detect (window);
      else if (g_str_has_prefix (step, "sleep:"))
        iterate_for (atoi (step + 6));
      else if (g_str_has_prefix (step, "slice:"))
        cs_window_step_slice (window, atoi (step + 6));
      else if (g_str_has_prefix (step, "zoom:") && cs_slice_view_get_image_rect (window->slice_view, &r))
        cs_slice_view_zoom_at (window->slice_view, g_ascii_strtod (step + 5, NULL),
                               r.origin.x + r.size.width / 2, r.origin.y + r.size.height * 0.35);
      else if (g_str_has_prefix (step, "window:"))
        {
          char *end;
          double low = g_ascii_strtod (step + 7, &end);
          double high = g_ascii_strtod (end + 1, NULL);
          cs_slice_view_set_window (window->slice_view, low, high);
        }
      else if (g_str_has_prefix (step, "hover:") && cs_slice_view_get_image_rect (window->slice_view, &r))
        {
          char *end;
          double fx = g_ascii_strtod (step + 6, &end), fy = g_ascii_strtod (end + 1, NULL);
          const CsSagittal *s = cs_slice_view_get_sagittal (window->slice_view);
          cs_slice_view_set_cursor (window->slice_view, fx * s->width, fy * s->height);
        }
      else if (g_str_has_prefix (step, "click:")
               && cs_slice_view_get_image_rect (window->slice_view, &r))
        {
          /* A primary click at that fraction of the slice, in a placing mode (D, C). */
          char *end;
          double fx = g_ascii_strtod (step + 6, &end), fy = g_ascii_strtod (end + 1, NULL);
          const CsSagittal *s = cs_slice_view_get_sagittal (window->slice_view);
          g_signal_emit_by_name (window->slice_view, "disc-dropped", -1, floor (fx * s->width),
                                 floor (fy * s->height));
        }
      else if (g_str_has_prefix (step, "curve:") && cs_slice_view_get_image_rect (window->slice_view, &r))
        cs_curve_view_hover (window->curve_view,
                             r.origin.y + g_ascii_strtod (step + 6, NULL) * r.size.height);
      else
        {
          /* "win.NAME" on the window, "app.NAME" on the application. */
          if (g_str_has_prefix (step, "app."))
            g_action_group_activate_action (G_ACTION_GROUP (app), step + 4, NULL);
          else
            {
              /* A detailed name ("win.select-segment(2)") carries its parameter. */
              g_autofree char *name = NULL;
              g_autoptr(GVariant) target = NULL;
              if (g_action_parse_detailed_name (step, &name, &target, NULL))
                gtk_widget_activate_action_variant (GTK_WIDGET (window), name, target);
            }
        }
      iterate_for (150);
      /* A step that opened another case is done when that case is on screen. */
      while (window->load_cancellable != NULL)
        iterate_for (20);
    }
  iterate_for (500);

  GtkWidget *widget = GTK_WIDGET (window);
  int w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
  g_autoptr(GskRenderNode) node = gtk_snapshot_free_to_node (snapshot);
  GskRenderer *renderer = gtk_native_get_renderer (GTK_NATIVE (window));
  g_autoptr(GdkTexture) texture =
    gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, w, h));
  if (!gdk_texture_save_to_png (texture, argv[1]))
    return 1;
  graphene_rect_t image;
  if (cs_slice_view_get_image_rect (window->slice_view, &image))
    g_print ("slice view %dx%d, zoom %.2f, slice drawn at %.0f,%.0f %.0fx%.0f\n",
             gtk_widget_get_width (GTK_WIDGET (window->slice_view)),
             gtk_widget_get_height (GTK_WIDGET (window->slice_view)),
             cs_slice_view_get_zoom (window->slice_view), image.origin.x, image.origin.y,
             image.size.width, image.size.height);
  g_print ("%s: %dx%d\n", argv[1], w, h);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc < 3)
    {
      g_printerr ("Usage: %s OUT.png PATH [STEP...]\n", argv[0]);
      return 2;
    }
  g_autoptr(CsApplication) app = cs_application_new ();
  g_application_set_flags (G_APPLICATION (app),
                           G_APPLICATION_HANDLES_OPEN | G_APPLICATION_NON_UNIQUE);
  if (!g_application_register (G_APPLICATION (app), NULL, NULL))
    return 1;
  g_autoptr(GFile) file = g_file_new_for_commandline_arg (argv[2]);
  g_application_open (G_APPLICATION (app), &file, 1, "");
  GList *windows = gtk_application_get_windows (GTK_APPLICATION (app));
  if (windows != NULL)
    gtk_window_set_default_size (GTK_WINDOW (windows->data), 1400, 880);
  int status = run_steps (app, argv, argc);
  GList *all;
  while ((all = gtk_application_get_windows (GTK_APPLICATION (app))) != NULL)
    gtk_window_destroy (GTK_WINDOW (all->data));
  return status;
}
