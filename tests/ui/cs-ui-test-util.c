#include "cs-config.h"
#include "cs-ui-test-util.h"

#include <stdlib.h>

CsApplication *
cs_ui_test_init (int *argc, char ***argv)
{
  /* Isolated user folders, but the system's data folders: GTK needs its own schemas. */
  const char *system_data = g_getenv ("XDG_DATA_DIRS");
  g_autofree char *system_data_dirs = g_strdup (system_data != NULL && system_data[0] != '\0'
                                                  ? system_data : "/usr/local/share:/usr/share");
  g_test_init (argc, argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_setenv ("XDG_DATA_DIRS", system_data_dirs, TRUE);

  if (g_getenv ("DISPLAY") == NULL && g_getenv ("WAYLAND_DISPLAY") == NULL)
    {
      g_print ("SKIP: no display (run under xvfb-run)\n");
      exit (77);
    }

  CsApplication *app = g_object_new (CS_TYPE_APPLICATION,
                                     "application-id", CS_APP_ID,
                                     "flags", G_APPLICATION_HANDLES_OPEN
                                              | G_APPLICATION_NON_UNIQUE,
                                     "resource-base-path", "/io/github/cordscope/Cordscope",
                                     NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, &error));
  g_assert_no_error (error);
  return app;
}

void
pixels_free (Pixels *p)
{
  g_free (p->bgra);
  g_free (p);
}

Pixels *
render_widget (GtkWidget *widget)
{
  int w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
  g_autoptr(GskRenderNode) node = gtk_snapshot_free_to_node (snapshot);
  g_assert_nonnull (node);
  GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));
  g_autoptr(GdkTexture) texture =
    gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, w, h));
  Pixels *p = g_new0 (Pixels, 1);
  p->width = gdk_texture_get_width (texture);
  p->height = gdk_texture_get_height (texture);
  p->stride = (gsize) p->width * 4;
  p->bgra = g_malloc (p->stride * p->height);
  gdk_texture_download (texture, p->bgra, p->stride);
  return p;
}

int
grey_at (const Pixels *p, int x, int y)
{
  const guint8 *px = p->bgra + (gsize) y * p->stride + (gsize) x * 4;
  return (px[0] + px[1] + px[2]) / 3;
}

void
iterate_for (guint ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;
  while (g_get_monotonic_time () < end)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
}

CsWindow *
open_window (CsApplication *app, const char *path)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_application_open (G_APPLICATION (app), &file, 1, "");
  CsWindow *window = CS_WINDOW (gtk_application_get_windows (GTK_APPLICATION (app))->data);
  gtk_window_set_default_size (GTK_WINDOW (window), 1280, 800);
  return window;
}

void
wait_for_load (CsWindow *window, guint settle_ms)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  iterate_for (20);
  while ((cs_window_get_state (window) == CS_WINDOW_STATE_LOADING
          || window->load_cancellable != NULL)
         && g_get_monotonic_time () < deadline)
    iterate_for (5);
  g_assert_cmpint (cs_window_get_state (window), ==, CS_WINDOW_STATE_SHOWING);
  iterate_for (settle_ms);
}
