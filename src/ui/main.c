/* main.c: cordscope, the desktop app. `cordscope [FILE-OR-FOLDER...]` */
#include "cs-config.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "cs-application.h"

int
main (int   argc,
      char *argv[])
{
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, CS_LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  g_autoptr(CsApplication) app = cs_application_new ();
  return g_application_run (G_APPLICATION (app), argc, argv);
}
