/* cs-application.h: the Cordscope application (app id io.github.cordscope.Cordscope). */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define CS_TYPE_APPLICATION (cs_application_get_type ())
G_DECLARE_FINAL_TYPE (CsApplication, cs_application, CS, APPLICATION, AdwApplication)

CsApplication *cs_application_new              (void);
/* The app's settings, or NULL when its schema is neither installed nor in the build tree. */
GSettings     *cs_application_get_settings     (CsApplication *self);
/* The folder of the sample case that ships with Cordscope, or NULL when it is missing. */
char          *cs_application_find_sample      (void);
/* The engine backend detection will run on, as shown to the user ("CPU", a GPU's name). */
const char    *cs_application_get_backend_name (void);

G_END_DECLS
