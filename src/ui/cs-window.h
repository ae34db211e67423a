/* cs-window.h: the main window: one case's sagittal slice, or why there is none. */
#pragma once

#include <adwaita.h>

#include "cs-application.h"

G_BEGIN_DECLS

#define CS_TYPE_WINDOW (cs_window_get_type ())
G_DECLARE_FINAL_TYPE (CsWindow, cs_window, CS, WINDOW, AdwApplicationWindow)

typedef enum
{
  CS_WINDOW_STATE_EMPTY,     /* nothing opened yet */
  CS_WINDOW_STATE_LOADING,   /* a case is being read in the background */
  CS_WINDOW_STATE_SHOWING,   /* a case's slice is on screen */
  CS_WINDOW_STATE_FAILED,    /* the last open failed; the status page says why */
} CsWindowState;

GType          cs_window_state_get_type  (void) G_GNUC_CONST;
#define CS_TYPE_WINDOW_STATE (cs_window_state_get_type ())

CsWindow      *cs_window_new             (CsApplication *application);
/* Opens the first case found at FILE (an image, a folder of cases or a BIDS tree). */
void           cs_window_open            (CsWindow      *self,
                                          GFile         *file);
/* Opens the sample case that ships with Cordscope. */
void           cs_window_open_sample     (CsWindow      *self);
CsWindowState  cs_window_get_state       (CsWindow      *self);
/* The case on screen, or NULL. */
const char    *cs_window_get_case_name   (CsWindow      *self);
const char    *cs_window_get_image_path  (CsWindow      *self);

G_END_DECLS
