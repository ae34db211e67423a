/* cordscope-cli: Cordscope's io and engine without a display, for batch work and CI. */
#include "cs-config.h"
#include "cs-cli.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

static const CsCliCommand commands[] = {
  { "info", "Print a volume's geometry and the label files found with it (JSON)", cs_cli_info },
  { "phantom", "Make synthetic cervical-spine cases with known lesions", cs_cli_phantom },
  { "pretrain", "Pre-train the U2AD masked autoencoder on healthy slices", cs_cli_pretrain },
  { "detect", "Detect T2 hyperintensity per case and segment (U2AD or z-score)", cs_cli_detect },
  { "adapt", "Adapt a U2AD model to a clinical set (EU/AU-guided masking)", cs_cli_adapt },
  { "evaluate", "Cross-validated patient and segment metrics of a detector", cs_cli_evaluate },
  { "export", "Annotations as dataset CSV/JSON and SCT disc labels; CSV import", cs_cli_export },
};

int
cs_cli_fail (const char *command, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  fprintf (stderr, "cordscope-cli %s: %s\n", command, message);
  return 1;
}

gboolean
cs_cli_parse_int (const char *text, int min, int *out)
{
  char *end = NULL;
  if (text == NULL || *text == '\0')
    return FALSE;
  gint64 v = g_ascii_strtoll (text, &end, 10);
  if (*end != '\0' || v < min || v > G_MAXINT)
    return FALSE;
  *out = (int) v;
  return TRUE;
}

static void
print_usage (FILE *out)
{
  fprintf (out, "Usage: cordscope-cli COMMAND [OPTIONS...]\n\n"
                "Cordscope %s, headless: review, label and detect T2 hyperintensity in\n"
                "sagittal cervical-spine MRI.\n\nCommands:\n", CS_VERSION);
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\nRun 'cordscope-cli COMMAND --help' for a command's options.\n");
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  setlocale (LC_NUMERIC, "C");  /* JSON and CSV numbers always use a '.' */

  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0
      || strcmp (argv[1], "help") == 0)
    {
      print_usage (stdout);
      return argc < 2 ? 2 : 0;
    }
  if (strcmp (argv[1], "--version") == 0)
    {
      printf ("cordscope-cli %s\n", CS_VERSION);
      return 0;
    }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].run (argc - 1, argv + 1);

  fprintf (stderr, "cordscope-cli: unknown command '%s'\n\n", argv[1]);
  print_usage (stderr);
  return 2;
}
