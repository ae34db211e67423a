/* cordscope-cli: Cordscope's io and engine without a display, for batch work and CI. */
#include "cs-config.h"
#include "cs-cli.h"

#include <glib-unix.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

static const CsCliCommand commands[] = {
  { "info", "Print a volume's geometry and the label files found with it (JSON)", cs_cli_info },
  { "phantom", "Make synthetic cervical-spine cases with known lesions", cs_cli_phantom },
  { "lesion", "Copy a real case with one phantom-model lesion in its cord", cs_cli_lesion },
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

typedef struct
{
  const char *command;
  void (*work) (gpointer data);
  gpointer data;
  GCancellable *cancellable;
  GMainLoop *loop;
} CancellableRun;

static gboolean
run_quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static gpointer
run_thread (gpointer data)
{
  CancellableRun *run = data;
  run->work (run->data);
  g_main_context_invoke (NULL, run_quit_loop, run->loop);
  return NULL;
}

static gboolean
run_interrupted (gpointer data)
{
  CancellableRun *run = data;
  if (!g_cancellable_is_cancelled (run->cancellable))
    fprintf (stderr, "\n%s: interrupted: stopping after the current batch...\n", run->command);
  g_cancellable_cancel (run->cancellable);
  return G_SOURCE_CONTINUE;
}

void
cs_cli_run_cancellable (const char *command, void (*work) (gpointer data), gpointer data,
                        GCancellable *cancellable)
{
  CancellableRun run = { command, work, data, cancellable, g_main_loop_new (NULL, FALSE) };
  guint sigint = g_unix_signal_add (SIGINT, run_interrupted, &run);
  guint sigterm = g_unix_signal_add (SIGTERM, run_interrupted, &run);
  GThread *thread = g_thread_new (command, run_thread, &run);
  g_main_loop_run (run.loop);
  g_thread_join (thread);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  g_main_loop_unref (run.loop);
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
