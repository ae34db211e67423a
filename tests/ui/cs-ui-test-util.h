/* cs-ui-test-util.h: what the in-process UI tests share: the application set up the same
 * way (isolated user folders, the system's data folders, skip without a display) and a
 * widget rendered to pixels by the window's own renderer. */
#pragma once

#include "cs-application.h"
#include "cs-window-private.h"

#include <gtk/gtk.h>

G_BEGIN_DECLS

/* g_test_init with isolated user folders but the system's XDG_DATA_DIRS (GTK needs its
 * own schemas); exits 77 (skip) without a display; returns the registered, non-unique
 * application. */
CsApplication *cs_ui_test_init (int *argc, char ***argv);

/* Runs the main context for ms milliseconds. */
void      iterate_for   (guint ms);
/* Opens path in a new window of app at 1280 x 800 and returns it (still loading). */
CsWindow *open_window   (CsApplication *app, const char *path);
/* Waits (60 s at most) until window has loaded and shows a case, then settle_ms of
 * frames so that the allocation is final and the views have been drawn (the viewer's
 * pixel checks want 300, the annotation tests, which open cases a hundred times, 100). */
void      wait_for_load (CsWindow *window, guint settle_ms);

/* The widget as it would be on screen. */
typedef struct
{
  int width, height;
  gsize stride;
  guint8 *bgra;  /* gdk_texture_download's format: B, G, R, A bytes on little endian */
} Pixels;

void    pixels_free   (Pixels *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Pixels, pixels_free)
Pixels *render_widget (GtkWidget *widget);
/* Mean of B, G and R at (x, y). */
int     grey_at       (const Pixels *p, int x, int y);

G_END_DECLS
