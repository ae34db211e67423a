/* cs-cli.h: cordscope-cli subcommands. Each takes argv with argv[0] = subcommand name,
 * prints its own --help, and returns the process exit status. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct
{
  const char *name;
  const char *summary;
  int (*run) (int argc, char **argv);
} CsCliCommand;

int cs_cli_info     (int argc, char **argv);
int cs_cli_phantom  (int argc, char **argv);
int cs_cli_lesion   (int argc, char **argv);
int cs_cli_pretrain (int argc, char **argv);
int cs_cli_detect   (int argc, char **argv);
int cs_cli_adapt    (int argc, char **argv);
int cs_cli_evaluate (int argc, char **argv);
int cs_cli_export   (int argc, char **argv);

/* Runs WORK (DATA) on a worker thread while this one waits; SIGINT and SIGTERM cancel
 * CANCELLABLE, with a note naming COMMAND, so the job stops at its next check. */
void cs_cli_run_cancellable (const char *command, void (*work) (gpointer data), gpointer data,
                             GCancellable *cancellable);

/* TEXT as a decimal int >= MIN; FALSE (OUT untouched) for anything else. */
gboolean cs_cli_parse_int (const char *text, int min, int *out);

/* Prints "cordscope-cli NAME: MESSAGE" to stderr and returns 1, for error exits. */
int cs_cli_fail (const char *command, const char *format, ...) G_GNUC_PRINTF (2, 3);

G_END_DECLS
