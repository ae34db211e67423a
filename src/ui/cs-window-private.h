/* cs-window-private.h: CsWindow's instance, shared by cs-window*.c and the UI tests. */
#pragma once

#include "cs-case-loader.h"
#include "cs-slice-view.h"
#include "cs-window.h"

G_BEGIN_DECLS

struct _CsWindow
{
  AdwApplicationWindow  parent_instance;

  GSettings            *settings;        /* NULL when the schema is not installed */

  /* Template children */
  AdwWindowTitle       *window_title;
  GtkLabel             *backend_label;
  GtkStack             *stack;
  AdwStatusPage        *empty_page;
  AdwStatusPage        *loading_page;
  GtkSpinner           *loading_spinner;
  AdwStatusPage        *error_page;
  CsSliceView          *slice_view;

  CsWindowState         state;
  GCancellable         *load_cancellable; /* the load in flight, replaced by a newer open */
  guint                 loading_page_timeout;
  CsLoadedCase         *loaded;           /* the case on screen; its slice is the view's */
  GtkFileChooserNative *file_chooser;
};

void cs_window_add_actions     (CsWindow *self);
void cs_window_remember_folder (CsWindow *self,
                                GFile    *file);

G_END_DECLS
