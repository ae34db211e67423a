/* cli-detect-args.h: the command-line options detect and evaluate share (what to detect
 * with, how to score it, where to run), parsed in one place so both read them alike. */
#pragma once

#include "engine/cs-pipeline.h"

G_BEGIN_DECLS

typedef struct
{
  CsDetectOptions options;
  const char *data;        /* the positional DATA */
  const char *json_path;   /* --json */
  const char *model_path;  /* --model */
  const char *backend;     /* --backend, "auto" by default */
  int threads;             /* --threads, 0 = all cores */
  gboolean quiet;          /* --quiet */
} CsCliDetectArgs;

void cs_cli_detect_args_init (CsCliDetectArgs *args);

/* Takes argv[*i] (and its value, advancing *i) when it is a shared option or DATA.
 * Returns 1 when taken, 0 when it is not a shared option (the command's own, or unknown),
 * -1 on a bad value, after printing why as COMMAND's error. */
int  cs_cli_detect_args_take (CsCliDetectArgs *args, const char *command, int argc,
                              char **argv, int *i);

typedef enum {
  CS_CLI_ARG_HELP,   /* --help: usage printed, exit 0 */
  CS_CLI_ARG_ERROR,  /* the reason printed, exit 1 */
  CS_CLI_ARG_TAKEN,  /* a shared option or DATA */
  CS_CLI_ARG_OWN,    /* argv[*i - 1] is an option of the command's own; *value is its value */
} CsCliArgKind;

/* One step of detect's and evaluate's argument loop: --help prints usage (a format taking
 * the default cord inset and the two default markers of the patient options), shared
 * options are taken, anything else must be an option with a value, which is left to the
 * command: *i is advanced past it. */
CsCliArgKind cs_cli_detect_args_next (CsCliDetectArgs *args, const char *command,
                                      const char *usage, int argc, char **argv, int *i,
                                      const char **value);

G_END_DECLS
